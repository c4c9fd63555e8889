import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { HttpResponse, http } from "msw";
import { describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { FINISHED, logsOf, sleep } from "./helpers/actions";
import {
  ADMIN_TOKEN,
  admin,
  as,
  basic,
  call,
  createOrg,
  createService,
  createTrigger,
  createUser,
  type ServiceJson,
  type User,
  uniqueName,
} from "./helpers/api";
import { network } from "./helpers/msw";

type Action = {
  uuid: string;
  resource_uri: string;
  state: string;
  path: string;
  trigger: string | null;
  [k: string]: unknown;
};

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

const randomKey = () =>
  [...crypto.getRandomValues(new Uint8Array(24))].map((b) => b.toString(16).padStart(2, "0")).join("");

/** Every text stored by a namespace's object: table -> rows. */
async function dumpNamespace(name: string): Promise<Record<string, Record<string, unknown>[]>> {
  return runInDurableObject(env.NAMESPACES.getByName(name), (_o, state) => {
    const sql = state.storage.sql;
    const tables = sql
      .exec<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'sqlite_%'",
      )
      .toArray()
      .map((t) => t.name);
    const out: Record<string, Record<string, unknown>[]> = {};
    for (const t of tables) out[t] = sql.exec(`SELECT * FROM "${t}"`).toArray() as Record<string, unknown>[];
    return out;
  });
}

/** The forms a secret could leak in: itself, its base64, and the parts a client would send. */
function leakForms(secret: string, extra: string[] = []): string[] {
  const forms = [secret, btoa(secret), ...extra];
  if (secret.startsWith("whsec_")) forms.push(secret.slice(6));
  return forms;
}

function expectNoLeak(text: string, forms: string[], where: string): void {
  for (const f of forms) expect(text.includes(f), `${where} contains a secret (${f.slice(0, 12)}…)`).toBe(false);
}

async function waitForAction(user: User, uri: string, timeout = 20_000): Promise<Action> {
  let action: Action | undefined;
  await vi.waitUntil(
    async () => {
      const r = await as(user, "GET", uri);
      action = await r.json<Action>();
      return FINISHED.includes(action.state);
    },
    { timeout, interval: 50 },
  );
  return action as Action;
}

async function auditText(user: User, ns = user.username): Promise<string> {
  const r = await as(user, "GET", `/api/audit/v1/${ns}/action/?limit=100`);
  expect(r.status).toBe(200);
  return r.text();
}

// ---------------------------------------------------------------------------

describe("API keys at rest", () => {
  it("are stored only as SHA-256 hashes", async () => {
    const user = await createUser();
    const made = await as(user, "POST", "/api/account/v1/apikey/", { label: "second" });
    expect(made.status).toBe(201);
    const second = (await made.json<{ key: string }>()).key;
    const keys = [user.apikey, second];

    const rows = await runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) =>
      state.storage.sql.exec("SELECT * FROM api_keys ORDER BY created_at").toArray(),
    );
    expect(rows).toHaveLength(2);
    const hashes = await Promise.all(keys.map(sha256Hex));
    for (const row of rows) {
      for (const [column, value] of Object.entries(row)) {
        for (const key of keys) {
          expect(value, `api_keys.${column}`).not.toBe(key);
          if (typeof value === "string") expect(value.includes(key), `api_keys.${column}`).toBe(false);
        }
      }
      expect(row.key_hash).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(rows.map((r) => r.key_hash).sort()).toEqual([...hashes].sort());

    // Nowhere else in the namespace's storage either, nor in the key list.
    const dump = JSON.stringify(await dumpNamespace(user.username));
    for (const key of keys) expectNoLeak(dump, [key, btoa(key)], "namespace storage");
    const listed = await (await as(user, "GET", "/api/account/v1/apikey/")).text();
    for (const key of keys) expectNoLeak(listed, [key], "GET /api/account/v1/apikey/");
    // And the stored hash authenticates the key.
    expect((await as({ ...user, auth: basic(user.username, second) }, "GET", "/api/app/v1/service/")).status).toBe(200);
  });
});

describe("target secrets", () => {
  it("webhook secrets are sealed (v1.), shown once on create and once on a PATCH that sets a new one", async () => {
    const user = await createUser();
    const url = `https://hook-${uniqueName("h")}.example.test/x`;
    const secret = randomSecret();
    const created = await as(user, "POST", "/api/app/v1/service/", {
      image: "nginx",
      name: uniqueName("svc"),
      target: { type: "webhook", url, secret },
    });
    expect(created.status).toBe(201);
    const svc = await created.json<ServiceJson & { target: Record<string, unknown> }>();
    expect(svc.target).toEqual({ type: "webhook", url, secret });

    const readRow = () =>
      runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) =>
        state.storage.sql
          .exec<{ target_public: string | null; target_sealed: string | null }>(
            "SELECT target_public, target_sealed FROM services WHERE uuid = ?",
            svc.uuid,
          )
          .one(),
      );
    const row = await readRow();
    expect(row.target_sealed).toMatch(/^v1\./);
    expectNoLeak(row.target_sealed as string, leakForms(secret), "target_sealed");
    const pub = JSON.parse(row.target_public as string) as Record<string, unknown>;
    expect(pub).toEqual({ type: "webhook", url });
    expectNoLeak(row.target_public as string, leakForms(secret), "target_public");
    expect(Object.keys(pub)).not.toContain("secret");

    const get = await (await as(user, "GET", svc.resource_uri)).text();
    expectNoLeak(get, leakForms(secret), "GET service");
    expect(JSON.parse(get).target).toEqual({ type: "webhook", url });
    const list = await (await as(user, "GET", "/api/app/v1/service/")).text();
    expectNoLeak(list, leakForms(secret), "service list");

    // A PATCH that does not touch the target shows no secret.
    const renamed = await as(user, "PATCH", svc.resource_uri, { target_num_containers: 2 });
    expect(renamed.status).toBe(200);
    expectNoLeak(await renamed.text(), leakForms(secret), "PATCH without target");

    // A PATCH setting a new target (secret generated) shows the new secret once.
    const patched = await as(user, "PATCH", svc.resource_uri, { target: { type: "webhook", url } });
    expect(patched.status).toBe(200);
    const patchedText = await patched.text();
    const newSecret = (JSON.parse(patchedText) as { target: { secret?: string } }).target.secret as string;
    expect(newSecret).toMatch(/^whsec_/);
    expect(newSecret).not.toBe(secret);
    expectNoLeak(patchedText, leakForms(secret), "PATCH answer (old secret)");
    const row2 = await readRow();
    expect(row2.target_sealed).toMatch(/^v1\./);
    expect(row2.target_sealed).not.toBe(row.target_sealed);
    expectNoLeak(`${row2.target_sealed}${row2.target_public}`, [...leakForms(secret), ...leakForms(newSecret)], "row");
    for (const text of [
      await (await as(user, "GET", svc.resource_uri)).text(),
      await (await as(user, "GET", `/api/app/v1/${user.username}/service/?name=${svc.name}`)).text(),
    ]) {
      expectNoLeak(text, [...leakForms(secret), ...leakForms(newSecret)], "GET after PATCH");
    }
    const dump = JSON.stringify(await dumpNamespace(user.username));
    expectNoLeak(dump, [...leakForms(secret), ...leakForms(newSecret)], "namespace storage");
  });

  it("Docker Cloud API keys are sealed and never returned, not even by the create or PATCH that set them", async () => {
    const user = await createUser();
    const apikey = randomKey();
    const target = { type: "dockercloud", url: "https://dc.example.test", username: "remoteuser", apikey };
    const forms = leakForms(apikey, [btoa(`remoteuser:${apikey}`)]);
    const created = await as(user, "POST", "/api/app/v1/service/", { image: "nginx", name: uniqueName("svc"), target });
    expect(created.status).toBe(201);
    const createdText = await created.text();
    expectNoLeak(createdText, forms, "create answer");
    const svc = JSON.parse(createdText) as ServiceJson & { target: Record<string, unknown> };
    expect(Object.keys(svc.target)).not.toContain("apikey");

    const row = await runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) =>
      state.storage.sql
        .exec<{ target_public: string; target_sealed: string }>(
          "SELECT target_public, target_sealed FROM services WHERE uuid = ?",
          svc.uuid,
        )
        .one(),
    );
    expect(row.target_sealed).toMatch(/^v1\./);
    expectNoLeak(row.target_sealed, forms, "target_sealed");
    expectNoLeak(row.target_public, forms, "target_public");
    expect(Object.keys(JSON.parse(row.target_public))).not.toContain("apikey");

    const apikey2 = randomKey();
    const forms2 = leakForms(apikey2, [btoa(`remoteuser:${apikey2}`)]);
    const patched = await as(user, "PATCH", svc.resource_uri, { target: { ...target, apikey: apikey2 } });
    expect(patched.status).toBe(200);
    expectNoLeak(await patched.text(), [...forms, ...forms2], "PATCH answer");
    for (const text of [
      await (await as(user, "GET", svc.resource_uri)).text(),
      await (await as(user, "GET", "/api/app/v1/service/")).text(),
      JSON.stringify(await dumpNamespace(user.username)),
    ]) {
      expectNoLeak(text, [...forms, ...forms2], "GET/list/storage");
    }
  });

  it("actions and logs never carry the webhook secret, even when the target answers 401 or 500", async () => {
    const user = await createUser();
    const host = `https://fail-${uniqueName("h")}.example.test`;
    network.use(
      http.post(`${host}/unauthorized`, async ({ request }) =>
        HttpResponse.json({ error: "bad signature", got: request.headers.get("webhook-signature") }, { status: 401 }),
      ),
      http.post(`${host}/broken`, () => HttpResponse.text("upstream exploded", { status: 500 })),
    );
    const secrets: string[] = [];
    const actions: string[] = [];
    for (const path of ["unauthorized", "broken"]) {
      const secret = randomSecret();
      secrets.push(secret);
      const svc = await createService(user, { target: { type: "webhook", url: `${host}/${path}`, secret } });
      const trigger = await createTrigger(user, svc);
      const r = await call(trigger.url, { method: "POST", body: "payload" });
      expect(r.status).toBe(202);
      actions.push((await r.json<Action>()).resource_uri);
      const op = await as(user, "POST", `${svc.resource_uri}redeploy/`);
      expect(op.status).toBe(202);
      actions.push(op.headers.get("X-DockerCloud-Action-URI") as string);
    }
    for (const uri of actions) {
      const a = await waitForAction(user, uri);
      const logs = await logsOf(user, uri);
      expect(a.state, logs).toBe("Failed");
      expect(logs).toMatch(/target answered (401|500)/);
    }
    const forms = secrets.flatMap((s) => leakForms(s));
    expectNoLeak(await auditText(user), forms, "audit list");
    for (const uri of actions) {
      expectNoLeak(await (await as(user, "GET", uri)).text(), forms, uri);
      expectNoLeak(await (await as(user, "GET", `${uri}logs/`)).text(), forms, `${uri}logs/`);
    }
    expectNoLeak(JSON.stringify(await dumpNamespace(user.username)), forms, "namespace storage");
  });

  it("actions and logs never carry the Docker Cloud API key when the remote answers 401 or 500", async () => {
    const user = await createUser();
    const host = `https://dc-${uniqueName("h")}.example.test`;
    network.use(
      http.all(`${host}/*`, ({ request }) =>
        new URL(request.url).pathname.includes("/unauth/")
          ? HttpResponse.json({ error: "invalid username or API key" }, { status: 401 })
          : HttpResponse.text("internal server error", { status: 500 }),
      ),
    );
    const apikeys: string[] = [];
    const actions: string[] = [];
    for (const namespace of ["unauth", "broken"]) {
      const apikey = randomKey();
      apikeys.push(apikey);
      const svc = await createService(user, {
        max_num_containers: 20,
        target: { type: "dockercloud", url: `${host}/${namespace}`, username: "remoteuser", apikey },
      });
      const redeploy = await createTrigger(user, svc);
      const scaleup = await createTrigger(user, svc, { operation: "SCALEUP" });
      for (const url of [redeploy.url, `${scaleup.url}2/`]) {
        const r = await call(url, { method: "POST" });
        expect(r.status).toBe(202);
        actions.push((await r.json<Action>()).resource_uri);
      }
    }
    const forms = apikeys.flatMap((k) => leakForms(k, [btoa(`remoteuser:${k}`)]));
    for (const uri of actions) {
      const a = await waitForAction(user, uri);
      const logs = await logsOf(user, uri);
      expect(a.state, logs).toBe("Failed");
      expect(logs).toMatch(/target answered (401|500)/);
      expectNoLeak(await (await as(user, "GET", `${uri}logs/`)).text(), forms, `${uri}logs/`);
    }
    expectNoLeak(await auditText(user), forms, "audit list");
    expectNoLeak(JSON.stringify(await dumpNamespace(user.username)), forms, "namespace storage");
  });

  it("a remote that echoes the API key in its error answer does not put it in the action logs", async () => {
    const user = await createUser();
    const host = `https://echo-${uniqueName("h")}.example.test`;
    network.use(
      http.all(`${host}/*`, ({ request }) => {
        const auth = request.headers.get("authorization") ?? "";
        const [, key] = atob(auth.replace(/^Basic /, "")).split(":");
        const status = new URL(request.url).pathname.includes("/unauth/") ? 401 : 500;
        return HttpResponse.json({ error: `API key '${key}' rejected (${auth})` }, { status });
      }),
    );
    const apikeys: string[] = [];
    const actions: string[] = [];
    for (const namespace of ["unauth", "broken"]) {
      const apikey = randomKey();
      apikeys.push(apikey);
      const svc = await createService(user, {
        target: { type: "dockercloud", url: `${host}/${namespace}`, username: "remoteuser", apikey },
      });
      const r = await call((await createTrigger(user, svc)).url, { method: "POST" });
      expect(r.status).toBe(202);
      actions.push((await r.json<Action>()).resource_uri);
    }
    const forms = apikeys.flatMap((k) => leakForms(k, [btoa(`remoteuser:${k}`)]));
    const leaking: string[] = [];
    for (const uri of actions) {
      const a = await waitForAction(user, uri);
      const logs = await logsOf(user, uri);
      expect(a.state, logs).toBe("Failed");
      if (forms.some((f) => JSON.stringify([a, logs]).includes(f))) leaking.push(logs);
    }
    expect(leaking, "action logs showing the API key").toEqual([]);
    expectNoLeak(await auditText(user), forms, "audit list");
    expectNoLeak(JSON.stringify(await dumpNamespace(user.username)), forms, "namespace storage");
  });
});

// ---------------------------------------------------------------------------

describe("credentials on management routes", () => {
  type Fixture = {
    owner: User;
    svc: ServiceJson;
    trigger: string;
    action: string;
    key: string;
  };

  async function fixture(): Promise<Fixture> {
    const owner = await createUser();
    const svc = await createService(owner);
    const trigger = (await createTrigger(owner, svc)).uuid;
    const op = await as(owner, "POST", `${svc.resource_uri}redeploy/`);
    expect(op.status).toBe(202);
    const action = (op.headers.get("X-DockerCloud-Action-URI") as string).split("/").at(-2) as string;
    await waitForAction(owner, op.headers.get("X-DockerCloud-Action-URI") as string);
    const k = await as(owner, "POST", "/api/account/v1/apikey/", { label: "spare" });
    const key = (await k.json<{ uuid: string }>()).uuid;
    return { owner, svc, trigger, action, key };
  }

  /** Every management route, non-namespaced and namespaced. */
  function routes(f: Fixture, ns = f.owner.username): [string, string, unknown?][] {
    const S = f.svc.uuid;
    const T = f.trigger;
    const A = f.action;
    const out: [string, string, unknown?][] = [];
    for (const prefix of ["", `${ns}/`]) {
      out.push(
        ["GET", `/api/app/v1/${prefix}service/`],
        ["POST", `/api/app/v1/${prefix}service/`, { image: "nginx", name: uniqueName("x") }],
        ["GET", `/api/app/v1/${prefix}service/${S}/`],
        ["PATCH", `/api/app/v1/${prefix}service/${S}/`, { target_num_containers: 3 }],
        ["DELETE", `/api/app/v1/${prefix}service/${S}/`],
        ["POST", `/api/app/v1/${prefix}service/${S}/redeploy/`],
        ["POST", `/api/app/v1/${prefix}service/${S}/scale/`],
        ["GET", `/api/app/v1/${prefix}service/${S}/trigger/`],
        ["POST", `/api/app/v1/${prefix}service/${S}/trigger/`, { name: "x" }],
        ["GET", `/api/app/v1/${prefix}service/${S}/trigger/${T}/`],
        ["PATCH", `/api/app/v1/${prefix}service/${S}/trigger/${T}/`, { name: "y" }],
        ["DELETE", `/api/app/v1/${prefix}service/${S}/trigger/${T}/`],
        ["GET", `/api/audit/v1/${prefix}action/`],
        ["GET", `/api/audit/v1/${prefix}action/${A}/`],
        ["POST", `/api/audit/v1/${prefix}action/${A}/cancel/`],
        ["POST", `/api/audit/v1/${prefix}action/${A}/retry/`],
      );
    }
    out.push(
      ["GET", "/api/account/v1/apikey/"],
      ["POST", "/api/account/v1/apikey/", { label: "z" }],
      ["DELETE", `/api/account/v1/apikey/${f.key}/`],
    );
    return out;
  }

  function send(method: string, path: string, authorization: string | null, body?: unknown) {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (authorization !== null) headers.authorization = authorization;
    return call(path, {
      method,
      headers,
      body: method === "GET" || method === "DELETE" ? undefined : JSON.stringify(body ?? {}),
    });
  }

  /** Nothing a refused request asked for happened. */
  async function expectUntouched(f: Fixture) {
    const svc = await as(f.owner, "GET", f.svc.resource_uri);
    expect(svc.status).toBe(200);
    expect((await svc.json<{ target_num_containers: number }>()).target_num_containers).toBe(1);
    const t = await as(f.owner, "GET", `${f.svc.resource_uri}trigger/`);
    const triggers = await t.json<{ objects: { uuid: string; name: string }[] }>();
    expect(triggers.objects.map((x) => [x.uuid, x.name])).toEqual([[f.trigger, "redeploy"]]);
    const actions = await (await as(f.owner, "GET", "/api/audit/v1/action/")).json<{ meta: { total_count: number } }>();
    expect(actions.meta.total_count).toBe(1);
    const keys = await (await as(f.owner, "GET", "/api/account/v1/apikey/")).json<{ objects: unknown[] }>();
    expect(keys.objects).toHaveLength(2);
    const services = await (await as(f.owner, "GET", "/api/app/v1/service/")).json<{ meta: { total_count: number } }>();
    expect(services.meta.total_count).toBe(1);
  }

  async function expect401(res: Response, what: string) {
    const text = await res.text();
    expect(res.status, `${what}: ${text}`).toBe(401);
    expect(res.headers.get("content-type"), what).toMatch(/^application\/json/);
    expect(Object.keys(JSON.parse(text)), what).toEqual(["error"]);
    // A challenge no browser answers with a prompt (a Basic one would: hostile-http.test.ts).
    expect(res.headers.get("www-authenticate"), what).toMatch(/^ApiKey realm=/);
  }

  it("refuses missing, malformed, wrong and revoked credentials with 401 JSON and WWW-Authenticate", async () => {
    const f = await fixture();
    // A key of the owner's, revoked.
    const spare = await as(f.owner, "POST", "/api/account/v1/apikey/", { label: "to revoke" });
    const revoked = await spare.json<{ uuid: string; key: string }>();
    expect((await as(f.owner, "DELETE", `/api/account/v1/apikey/${revoked.uuid}/`)).status).toBe(200);
    const stranger = await createUser();

    const bad: [string, string | null][] = [
      ["missing", null],
      ["empty", ""],
      ["not base64", "Basic !!!not-base64!!!"],
      ["no colon", `Basic ${btoa(f.owner.username)}`],
      ["empty key", `Basic ${btoa(`${f.owner.username}:`)}`],
      ["unknown scheme", `Digest username="${f.owner.username}"`],
      ["bearer admin token", `Bearer ${ADMIN_TOKEN}`],
      // The last character changed for another hex digit: never the key itself, whatever it ends with.
      [
        "wrong key",
        basic(f.owner.username, `${f.owner.apikey.slice(0, -1)}${f.owner.apikey.endsWith("0") ? "1" : "0"}`),
      ],
      ["another user's key", basic(f.owner.username, stranger.apikey)],
      ["unknown user", basic(uniqueName("ghost"), f.owner.apikey)],
      ["invalid username", basic("NOT A NAME", f.owner.apikey)],
      ["revoked key", basic(f.owner.username, revoked.key)],
      ["ApiKey scheme, wrong key", `ApiKey ${f.owner.username}:${"0".repeat(40)}`],
    ];
    for (const [label, auth] of bad) {
      for (const [method, path, body] of routes(f)) {
        await expect401(await send(method, path, auth, body), `${label}: ${method} ${path}`);
      }
    }
    // Authentication comes before validation: an invalid body still gets 401.
    await expect401(
      await send("PATCH", f.svc.resource_uri, null, { target_num_containers: "many" }),
      "invalid body, no credentials",
    );
    await expectUntouched(f);
    // The owner's key still works; the revoked one does not.
    expect((await as(f.owner, "GET", "/api/app/v1/service/")).status).toBe(200);
  });

  it("refuses another namespace with 403", async () => {
    const f = await fixture();
    const other = await createUser();
    for (const [method, path, body] of routes(f)) {
      if (!path.includes(`/${f.owner.username}/`)) continue;
      const r = await send(method, path, other.auth, body);
      const text = await r.text();
      expect(r.status, `${method} ${path}: ${text}`).toBe(403);
      expect(Object.keys(JSON.parse(text))).toEqual(["error"]);
      expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    }
    // An organization the caller is not a member of.
    const member = await createUser();
    const org = await createOrg(undefined, [member.username]);
    const orgSvc = await createService(member, {}, org);
    for (const path of [
      `/api/app/v1/${org}/service/`,
      `/api/app/v1/${org}/service/${orgSvc.uuid}/`,
      `/api/app/v1/${org}/service/${orgSvc.uuid}/trigger/`,
      `/api/audit/v1/${org}/action/`,
    ]) {
      expect((await as(other, "GET", path)).status, path).toBe(403);
      expect((await as(member, "GET", path)).status, path).toBe(200);
    }
    // A non-namespaced path to someone else's service finds nothing.
    expect((await as(other, "GET", `/api/app/v1/service/${f.svc.uuid}/`)).status).toBe(404);
    await expectUntouched(f);
  });

  it("the admin API refuses user Basic credentials and a wrong bearer with 401", async () => {
    const user = await createUser();
    const name = uniqueName("adm");
    const adminRoutes: [string, string, unknown?][] = [
      ["GET", "/api/admin/v1/user/"],
      ["POST", "/api/admin/v1/user/", { username: name }],
      ["DELETE", `/api/admin/v1/user/${user.username}/`],
      ["POST", `/api/admin/v1/user/${user.username}/apikey/`, { label: "x" }],
      ["GET", "/api/admin/v1/organization/"],
      ["POST", "/api/admin/v1/organization/", { name }],
    ];
    const creds = [
      ["no credentials", null],
      ["user Basic", user.auth],
      ["wrong bearer", `Bearer ${ADMIN_TOKEN.slice(0, -1)}x`],
      ["bearer prefix of the token", `Bearer ${ADMIN_TOKEN.slice(0, 32)}`],
      ["user key as bearer", `Bearer ${user.apikey}`],
      ["token as Basic", basic("admin", ADMIN_TOKEN)],
    ] as const;
    for (const [label, auth] of creds) {
      for (const [method, path, body] of adminRoutes) {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (auth) headers.authorization = auth;
        const r = await call(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
        const text = await r.text();
        expect(r.status, `${label}: ${method} ${path}: ${text}`).toBe(401);
        expect(Object.keys(JSON.parse(text))).toEqual(["error"]);
        expect(r.headers.get("www-authenticate")).toMatch(/^Bearer/);
      }
    }
    // Nothing happened: the user still works, the name is still free.
    expect((await as(user, "GET", "/api/app/v1/service/")).status).toBe(200);
    expect((await admin("POST", "/api/admin/v1/user/", { username: name })).status).toBe(201);
  });

  it("the admin API answers 503 when ADMIN_TOKEN is shorter than 32 characters or unset", async () => {
    async function direct(adminToken: string | undefined, bearer: string) {
      const ctx = createExecutionContext();
      const patched = { ...env, ADMIN_TOKEN: adminToken } as unknown as Env;
      const res = await worker.fetch(
        new Request("https://api.test/api/admin/v1/user/", { headers: { authorization: `Bearer ${bearer}` } }),
        patched,
        ctx,
      );
      await waitOnExecutionContext(ctx);
      return res;
    }
    const short = "short";
    const of31 = "a".repeat(31);
    const of32 = "b".repeat(32);
    for (const [token, bearer] of [
      [short, short],
      [short, ADMIN_TOKEN],
      [of31, of31],
      [undefined, ADMIN_TOKEN],
      [undefined, "undefined"],
      ["", ""],
    ] as const) {
      const r = await direct(token, bearer);
      const text = await r.text();
      expect(r.status, `ADMIN_TOKEN=${token}: ${text}`).toBe(503);
      expect(Object.keys(JSON.parse(text))).toEqual(["error"]);
      expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    }
    // The control: a 32-character token works, and only with itself.
    expect((await direct(of32, of32)).status).toBe(200);
    expect((await direct(of32, ADMIN_TOKEN)).status).toBe(401);
  });
});

// ---------------------------------------------------------------------------

describe("trigger uuids stay secret", () => {
  it("never appear in action logs, action paths, or error bodies of the call route", async () => {
    const user = await createUser();
    const hook = `https://tu-${uniqueName("h")}.example.test/hook`;
    network.use(http.post(hook, () => HttpResponse.text("nope", { status: 404 })));
    const svc = await createService(user, { max_num_containers: 3 });
    const failing = await createService(user, { target: { type: "webhook", url: hook } });
    const redeploy = await createTrigger(user, svc, { name: "deploy", rate_limit: 100000 });
    const scaleup = await createTrigger(user, svc, { operation: "SCALEUP", rate_limit: 100000 });
    const limited = await createTrigger(user, svc, { rate_limit: 1 });
    const onFailing = await createTrigger(user, failing);
    const secrets = [redeploy, scaleup, limited, onFailing].map((t) => t.uuid);
    const nonNamespaced = (url: string) => url.replace(`/api/app/v1/${user.username}/`, "/api/app/v1/");

    const accepted: Response[] = [];
    for (const url of [
      redeploy.url,
      nonNamespaced(redeploy.url),
      redeploy.url.replace(redeploy.uuid, redeploy.uuid.toUpperCase()),
      `${redeploy.url.replace(/\/$/, "")}//`,
    ]) {
      accepted.push(await call(url, { method: "POST", body: "x" }));
    }
    accepted.push(await call(redeploy.url, { method: "POST", headers: { "Idempotency-Key": "k1" } }));
    accepted.push(await call(redeploy.url, { method: "POST", headers: { "Idempotency-Key": "k1" } }));
    accepted.push(await call(`${scaleup.url}2/`, { method: "POST" }));
    accepted.push(await call(limited.url, { method: "POST" }));
    accepted.push(await call(onFailing.url, { method: "POST" }));
    for (const r of accepted) expect(r.status).toBe(202);
    const actionUris = new Set<string>();
    for (const r of accepted) {
      const text = await r.text();
      const body = JSON.parse(text) as Action;
      actionUris.add(body.resource_uri);
      // A call's answer leaves the path out (the action may be another caller's), and no action carries its logs;
      // the audit view and the logs are checked below.
      expect(body.path).toBeNull();
      expect(body).not.toHaveProperty("logs");
    }
    // A retry of a finished trigger action keeps it out too.
    const first = await waitForAction(user, [...actionUris][0] as string);
    const retried = await as(user, "POST", `${first.resource_uri}retry/`);
    expect(retried.status).toBe(202);
    actionUris.add((await retried.json<Action>()).resource_uri);

    for (const uri of actionUris) await waitForAction(user, uri);
    const all = JSON.parse(await auditText(user)) as { objects: Action[] };
    expect(all.objects.length).toBeGreaterThanOrEqual(4);
    expect(all.objects.some((a) => a.state === "Failed")).toBe(true);
    const logs = await Promise.all(all.objects.map((a) => logsOf(user, a.resource_uri)));
    expect(logs.some((l) => /joined/.test(l))).toBe(true);
    for (const [i, a] of all.objects.entries()) {
      expectNoLeak(a.path, secrets, `action ${a.uuid} path`);
      expectNoLeak(logs[i] as string, secrets, `action ${a.uuid} logs`);
      expectNoLeak(
        (logs[i] as string).toUpperCase(),
        secrets.map((s) => s.toUpperCase()),
        `action ${a.uuid} logs`,
      );
    }

    // Error answers of the call route.
    const big = "x".repeat(65 * 1024);
    const unknownTrigger = crypto.randomUUID();
    const errors: [number, string, RequestInit][] = [
      [
        404,
        `${svc.resource_uri.replace(svc.uuid, crypto.randomUUID())}trigger/${redeploy.uuid}/call/`,
        { method: "POST" },
      ],
      [404, `${svc.resource_uri}trigger/${unknownTrigger}/call/`, { method: "POST" }],
      [404, redeploy.url.replace(user.username, uniqueName("nobody")), { method: "POST" }],
      [404, `${failing.resource_uri}trigger/${redeploy.uuid}/call/`, { method: "POST" }],
      [404, `${redeploy.url}1/extra/`, { method: "POST" }],
      [404, `${scaleup.url}2/3/`, { method: "POST" }],
      [405, redeploy.url, { method: "GET" }],
      [405, redeploy.url, { method: "PUT", body: "x" }],
      [405, redeploy.url, { method: "DELETE" }],
      [405, `${scaleup.url}2/`, { method: "PATCH", body: "{}" }],
      [400, `${scaleup.url}abc/`, { method: "POST" }],
      [400, `${scaleup.url}0/`, { method: "POST" }],
      [400, `${scaleup.url}99/`, { method: "POST" }],
      [400, `${redeploy.url}2/`, { method: "POST" }],
      [400, redeploy.url, { method: "POST", headers: { "Idempotency-Key": "bad key" } }],
      [409, `${scaleup.url}3/`, { method: "POST" }],
      [429, limited.url, { method: "POST" }],
      [413, redeploy.url, { method: "POST", body: big }],
      [413, `${scaleup.url}1/`, { method: "POST", body: big }],
    ];
    // Every case is checked before failing, so one run reports every leak.
    const problems: string[] = [];
    const uuids = [...secrets, unknownTrigger].map((s) => s.toLowerCase());
    for (const [status, url, init] of errors) {
      const r = await call(url, init);
      const text = await r.text();
      const where = `${init.method} ${url.replace(/\/api\/app\/v1\/[^/]+\/service\/[^/]+/, "…")}`;
      if (r.status !== status) problems.push(`${where}: ${r.status} instead of ${status}: ${text}`);
      if (!/^\{"error":"[^"]*"\}$/.test(text)) problems.push(`${where}: body is not {"error": "..."}: ${text}`);
      const headerText = [...r.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
      if (uuids.some((u) => (text + headerText).toLowerCase().includes(u))) {
        problems.push(`${where}: ${r.status} answer shows the trigger uuid: ${text}`);
      }
    }
    expect(problems).toEqual([]);
    // The refused calls left no action and nothing with a trigger uuid in the audit log.
    const after = (JSON.parse(await auditText(user)) as { objects: Action[] }).objects;
    expectNoLeak(
      JSON.stringify(await Promise.all(after.map(async (a) => [a.path, await logsOf(user, a.resource_uri)]))),
      secrets,
      "audit log",
    );
  });
});

// ---------------------------------------------------------------------------

describe("response headers", () => {
  it("every answer, 2xx and 4xx, call route included, is JSON with nosniff and no-store", async () => {
    const user = await createUser();
    const svc = await createService(user, { max_num_containers: 1 });
    const trigger = await createTrigger(user, svc, { rate_limit: 1 });
    const scaleup = await createTrigger(user, svc, { operation: "SCALEUP" });
    const other = await createUser();
    const responses: [string, Response][] = [];
    const add = async (label: string, p: Promise<Response>) => {
      responses.push([label, await p]);
    };
    await add("200 list", as(user, "GET", "/api/app/v1/service/"));
    await add("200 get", as(user, "GET", svc.resource_uri));
    await add("201 create", as(user, "POST", "/api/app/v1/service/", { image: "nginx", name: uniqueName("s") }));
    await add("201 trigger", as(user, "POST", `${svc.resource_uri}trigger/`, {}));
    await add("202 call", call(trigger.url, { method: "POST" }));
    await add("202 redeploy", as(user, "POST", `${svc.resource_uri}redeploy/`));
    await add("200 audit", as(user, "GET", "/api/audit/v1/action/"));
    await add("200 account", as(user, "GET", "/api/account/v1/apikey/"));
    await add("201 admin", admin("POST", "/api/admin/v1/user/", { username: uniqueName() }));
    await add("200 admin list", admin("GET", "/api/admin/v1/user/"));
    await add("200 health", call("/api/health/"));
    await add("200 openapi", call("/api/openapi.json"));
    await add("400 body", as(user, "POST", "/api/app/v1/service/", { target_num_containers: "x" }));
    await add(
      "400 malformed json",
      call("/api/app/v1/service/", {
        method: "POST",
        headers: { authorization: user.auth, "content-type": "application/json" },
        body: "{",
      }),
    );
    await add(
      "415 form body",
      call("/api/app/v1/service/", { method: "POST", headers: { authorization: user.auth }, body: "image=nginx" }),
    );
    await add("400 call count", call(`${scaleup.url}abc/`, { method: "POST" }));
    await add("401", call("/api/app/v1/service/"));
    await add("401 admin", call("/api/admin/v1/user/"));
    await add("403", as(other, "GET", `/api/app/v1/${user.username}/service/`));
    await add(
      "403 cross-site",
      call(svc.resource_uri, {
        method: "DELETE",
        headers: { authorization: user.auth, origin: "https://evil.example" },
      }),
    );
    await add("404 route", call("/api/nothing/here/"));
    await add("404 service", as(user, "GET", `/api/app/v1/service/${crypto.randomUUID()}/`));
    await add("404 call", call(`${svc.resource_uri}trigger/${crypto.randomUUID()}/call/`, { method: "POST" }));
    await add("405", as(user, "PUT", "/api/app/v1/service/"));
    await add("405 call", call(trigger.url, { method: "GET" }));
    await add("409 call", call(`${scaleup.url}1/`, { method: "POST" }));
    await add("429 call", call(trigger.url, { method: "POST" }));
    await add(
      "413",
      call("/api/app/v1/service/", {
        method: "POST",
        headers: { authorization: user.auth, "content-type": "application/json" },
        body: "x".repeat(70_000),
      }),
    );
    await add("413 call", call(`${scaleup.url}1/`, { method: "POST", body: "x".repeat(70_000) }));
    await add("200 delete trigger", as(user, "DELETE", `${svc.resource_uri}trigger/${trigger.uuid}/`));
    await add("202 terminate", as(user, "DELETE", svc.resource_uri));
    const ctx = createExecutionContext();
    const disabled = await worker.fetch(
      new Request("https://api.test/api/admin/v1/user/"),
      { ...env, ADMIN_TOKEN: "short" } as unknown as Env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    responses.push(["503 admin", disabled]);

    const seen = new Set<number>();
    for (const [label, r] of responses) {
      seen.add(r.status);
      expect(String(r.status), label).toBe(label.split(" ")[0]);
      expect(r.headers.get("x-content-type-options"), label).toBe("nosniff");
      expect(r.headers.get("cache-control"), label).toBe("no-store");
      expect(r.headers.get("content-type"), label).toMatch(/^application\/json(;|$)/);
      const text = await r.text();
      expect(() => JSON.parse(text), label).not.toThrow();
    }
    expect([...seen].sort()).toEqual([200, 201, 202, 400, 401, 403, 404, 405, 409, 413, 415, 429, 503]);
  });
});

// ---------------------------------------------------------------------------

describe("target URL rules", () => {
  it("refuses http://, ftp:// and credentials in URLs, on create and on PATCH", async () => {
    const user = await createUser();
    const svc = await createService(user);
    const bad = [
      "http://example.com/hook",
      "http://example.com",
      "https://user:pw@example.com/hook",
      "https://user@example.com/hook",
      "https://:pw@example.com/hook",
      "ftp://example.com/hook",
      "file:///etc/passwd",
      "javascript:alert(1)",
      "//example.com/hook",
      "not a url",
    ];
    for (const url of bad) {
      for (const target of [
        { type: "webhook", url },
        { type: "dockercloud", url, username: "u", apikey: "k" },
      ]) {
        const created = await as(user, "POST", "/api/app/v1/service/", {
          image: "nginx",
          name: uniqueName("s"),
          target,
        });
        const text = await created.text();
        expect(created.status, `create ${target.type} ${url}: ${text}`).toBe(400);
        expect(Object.keys(JSON.parse(text))).toEqual(["error"]);
        const patched = await as(user, "PATCH", svc.resource_uri, { target });
        expect(patched.status, `PATCH ${target.type} ${url}`).toBe(400);
      }
    }
    // Nothing was created, and the service kept its (null) target.
    const list = await (await as(user, "GET", "/api/app/v1/service/")).json<{ meta: { total_count: number } }>();
    expect(list.meta.total_count).toBe(1);
    expect((await (await as(user, "GET", svc.resource_uri)).json<{ target: unknown }>()).target).toBeNull();
    // The control: https is accepted.
    const good = await as(user, "PATCH", svc.resource_uri, {
      target: { type: "webhook", url: "https://example.com/h" },
    });
    expect(good.status).toBe(200);
  });

  it("does not follow a webhook target's redirect: the action fails at once", async () => {
    const user = await createUser();
    const host = `https://redir-${uniqueName("h")}.example.test`;
    const elsewhere = `https://elsewhere-${uniqueName("h")}.example.test`;
    let hookHits = 0;
    let elsewhereHits = 0;
    network.use(
      http.post(`${host}/:code`, ({ params }) => {
        hookHits += 1;
        return new HttpResponse(null, {
          status: Number(params.code),
          headers: { Location: `${elsewhere}/landing` },
        });
      }),
      http.all(`${elsewhere}/*`, () => {
        elsewhereHits += 1;
        return HttpResponse.json({ ok: true });
      }),
    );
    for (const code of [301, 302, 303, 307, 308]) {
      const svc = await createService(user, { target: { type: "webhook", url: `${host}/${code}` } });
      const r = await call((await createTrigger(user, svc)).url, { method: "POST" });
      expect(r.status).toBe(202);
      const a = await waitForAction(user, (await r.json<Action>()).resource_uri);
      const logs = await logsOf(user, a.resource_uri);
      expect(a.state, logs).toBe("Failed");
      expect(logs).toMatch(new RegExp(`target answered ${code}`));
      expect(logs).not.toMatch(/attempt 2/);
      expect(logs).not.toContain(elsewhere);
    }
    await sleep(100);
    expect(hookHits).toBe(5);
    expect(elsewhereHits).toBe(0);
  });

  it("reads a 10 MB answer bounded: the attempt succeeds on 200", async () => {
    const user = await createUser();
    const host = `https://big-${uniqueName("h")}.example.test`;
    const TEN_MB = 10 * 1024 * 1024;
    let streamed = 0;
    network.use(
      http.post(`${host}/whole`, () => new HttpResponse(new Uint8Array(TEN_MB).fill(120), { status: 200 })),
      // 10 MB that then never ends: reading it all would hang the attempt until its timeout.
      http.post(`${host}/endless`, () => {
        const chunk = new Uint8Array(64 * 1024).fill(121);
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (streamed >= TEN_MB) return new Promise<void>(() => {});
            streamed += chunk.byteLength;
            controller.enqueue(chunk);
          },
        });
        return new HttpResponse(body, { status: 200 });
      }),
    );
    for (const path of ["whole", "endless"]) {
      const svc = await createService(user, { target: { type: "webhook", url: `${host}/${path}` } });
      const r = await call((await createTrigger(user, svc)).url, { method: "POST" });
      expect(r.status).toBe(202);
      const a = await waitForAction(user, (await r.json<Action>()).resource_uri, 10_000);
      const logs = await logsOf(user, a.resource_uri);
      expect(a.state, `${path}: ${logs}`).toBe("Success");
      expect(logs).toMatch(/attempt 1: target answered 200/);
      expect(logs).not.toMatch(/attempt 2/);
      expect(logs.length).toBeLessThan(2_000);
    }
    // Bounded: far less than the 10 MB on offer was pulled from the endless answer.
    expect(streamed).toBeGreaterThan(0);
    expect(streamed).toBeLessThan(TEN_MB);
  });
});
