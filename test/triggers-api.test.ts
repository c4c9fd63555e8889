import { describe, expect, it } from "vitest";
import {
  as,
  asGo,
  asPython,
  call,
  createOrg,
  createService,
  createTrigger,
  createUser,
  type ServiceJson,
  type TriggerJson,
  type User,
  uniqueName,
} from "./helpers/api";
import { UUID4 } from "./helpers/formats";

type Meta = { limit: number; next: string | null; offset: number; previous: string | null; total_count: number };
type TriggerList = { meta: Meta; objects: TriggerJson[] };

/** The non-namespaced service path, as the Go SDK builds it. */
const plainServicePath = (svc: ServiceJson) => `/api/app/v1/service/${svc.uuid}/`;

/** The trigger object with our extension fields (rate_limit, call_count, rejected_count, last_called). */
type TriggerObject = TriggerJson & {
  rate_limit: number;
  call_count: number;
  rejected_count: number;
  last_called: string | null;
};

/**
 * Asserts the exact shape of a newly created trigger object: the five keys
 * both SDKs and the CLI read, plus our extension fields, at their defaults
 * (rate_limit 30, never called).
 */
function expectTrigger(t: unknown, ns: string, svc: ServiceJson, expected: { name?: string; operation: string }) {
  const trigger = t as TriggerObject;
  expect(Object.keys(trigger).sort()).toEqual([
    "call_count",
    "last_called",
    "name",
    "operation",
    "rate_limit",
    "rejected_count",
    "resource_uri",
    "url",
    "uuid",
  ]);
  expect(trigger.rate_limit).toBe(30);
  expect(trigger.call_count).toBe(0);
  expect(trigger.rejected_count).toBe(0);
  expect(trigger.last_called).toBeNull();
  expect(trigger.uuid).toMatch(UUID4);
  expect(trigger.operation).toBe(expected.operation);
  if (expected.name !== undefined) expect(trigger.name).toBe(expected.name);
  expect(typeof trigger.name).toBe("string");
  expect(trigger.resource_uri).toBe(`/api/app/v1/${ns}/service/${svc.uuid}/trigger/${trigger.uuid}/`);
  expect(trigger.url).toBe(`/api/app/v1/${ns}/service/${svc.uuid}/trigger/${trigger.uuid}/call/`);
}

async function expectJsonError(res: Response, status: number): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = await res.json<{ error: string }>();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(typeof body.error).toBe("string");
  expect(body.error.length).toBeGreaterThan(0);
  return body.error;
}

async function setup(): Promise<{ user: User; svc: ServiceJson }> {
  const user = await createUser();
  const svc = await createService(user);
  return { user, svc };
}

describe("create trigger, as each client sends it", () => {
  it("Python SDK: POST to the service resource_uri + '/trigger/' (double slash, namespaced) answers 201 with the trigger object", async () => {
    const { user, svc } = await setup();
    expect(svc.resource_uri).toBe(`/api/app/v1/${user.username}/service/${svc.uuid}/`);
    const res = await asPython(user, "POST", `${svc.resource_uri}/trigger/`, {
      name: "mytrigger_name",
      operation: "REDEPLOY",
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = await res.json();
    expect(Array.isArray(body)).toBe(false);
    expectTrigger(body, user.username, svc, { name: "mytrigger_name", operation: "REDEPLOY" });
  });

  it("Python SDK: non-namespaced double-slash path /api/app/v1/service/<S>//trigger/ answers 201", async () => {
    const { user, svc } = await setup();
    const res = await asPython(user, "POST", `/api/app/v1/service/${svc.uuid}//trigger/`, {
      name: "py",
      operation: "SCALEUP",
    });
    expect(res.status).toBe(201);
    expectTrigger(await res.json(), user.username, svc, { name: "py", operation: "SCALEUP" });
  });

  it("Python SDK omits falsy keys: body {} gives 201 with operation REDEPLOY", async () => {
    const { user, svc } = await setup();
    const res = await asPython(user, "POST", `${svc.resource_uri}/trigger/`, {});
    expect(res.status).toBe(201);
    expectTrigger(await res.json(), user.username, svc, { operation: "REDEPLOY" });
  });

  it("Python SDK with an empty body (Content-Length: 0) gives 201 with operation REDEPLOY", async () => {
    const { user, svc } = await setup();
    const res = await asPython(user, "POST", `${svc.resource_uri}/trigger/`);
    expect(res.status).toBe(201);
    expectTrigger(await res.json(), user.username, svc, { operation: "REDEPLOY" });
  });

  it('Go SDK: no Content-Type, body {"name":"","operation":""} gives 201 with operation REDEPLOY', async () => {
    const { user, svc } = await setup();
    const res = await asGo(user, "POST", `${plainServicePath(svc)}trigger/`, { name: "", operation: "" });
    expect(res.status).toBe(201);
    const t = await res.json<TriggerJson>();
    expectTrigger(t, user.username, svc, { operation: "REDEPLOY" });
  });

  it("Go SDK: leading double slash //api/... is accepted", async () => {
    const { user, svc } = await setup();
    const res = await asGo(user, "POST", `//api/app/v1/service/${svc.uuid}/trigger/`, {
      name: "go-trigger",
      operation: "SCALEUP",
    });
    expect(res.status).toBe(201);
    expectTrigger(await res.json(), user.username, svc, { name: "go-trigger", operation: "SCALEUP" });
  });

  it("CLI: lower-case operation 'scaleup' is stored as SCALEUP; mixed case 'Redeploy' as REDEPLOY", async () => {
    const { user, svc } = await setup();
    const up = await asPython(user, "POST", `${svc.resource_uri}/trigger/`, { name: "up", operation: "scaleup" });
    expect(up.status).toBe(201);
    expectTrigger(await up.json(), user.username, svc, { name: "up", operation: "SCALEUP" });
    const re = await asPython(user, "POST", `${svc.resource_uri}/trigger/`, { operation: "Redeploy" });
    expect(re.status).toBe(201);
    expectTrigger(await re.json(), user.username, svc, { operation: "REDEPLOY" });
  });

  it("unknown operation answers 400 JSON naming the operation, and creates nothing", async () => {
    const { user, svc } = await setup();
    const res = await asPython(user, "POST", `${svc.resource_uri}/trigger/`, { name: "x", operation: "RESTART" });
    const error = await expectJsonError(res, 400);
    expect(error).toMatch(/operation/);
    const list = await as(user, "GET", `${svc.resource_uri}trigger/`);
    expect((await list.json<TriggerList>()).meta.total_count).toBe(0);
  });

  it("operation of the wrong JSON type answers 400", async () => {
    const { user, svc } = await setup();
    const res = await as(user, "POST", `${svc.resource_uri}trigger/`, { operation: 5 });
    expect(await expectJsonError(res, 400)).toMatch(/operation/);
  });

  it("a name of 256 characters answers 400 naming the name; 255 characters is accepted", async () => {
    const { user, svc } = await setup();
    const long = await as(user, "POST", `${svc.resource_uri}trigger/`, { name: "n".repeat(256) });
    expect(await expectJsonError(long, 400)).toMatch(/name/);
    const max = await as(user, "POST", `${svc.resource_uri}trigger/`, { name: "m".repeat(255) });
    expect(max.status).toBe(201);
    expectTrigger(await max.json(), user.username, svc, { name: "m".repeat(255), operation: "REDEPLOY" });
  });

  it("each created trigger gets a distinct uuid4", async () => {
    const { user, svc } = await setup();
    const a = await createTrigger(user, svc);
    const b = await createTrigger(user, svc);
    expect(a.uuid).toMatch(UUID4);
    expect(b.uuid).toMatch(UUID4);
    expect(a.uuid).not.toBe(b.uuid);
  });

  it("without credentials answers 401; with a wrong key answers 401", async () => {
    const { user, svc } = await setup();
    const none = await call(`${svc.resource_uri}trigger/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    await expectJsonError(none, 401);
    const wrong = await asPython(
      { ...user, auth: `Basic ${btoa(`${user.username}:nope`)}` },
      "POST",
      `${svc.resource_uri}trigger/`,
      {},
    );
    await expectJsonError(wrong, 401);
  });

  it("on an unknown service answers 404", async () => {
    const { user } = await setup();
    const res = await as(user, "POST", `/api/app/v1/service/${crypto.randomUUID()}/trigger/`, {});
    await expectJsonError(res, 404);
  });
});

describe("list triggers", () => {
  it("answers the envelope with every trigger, through the Python double-slash path", async () => {
    const { user, svc } = await setup();
    const made = [
      await createTrigger(user, svc, { name: "a" }),
      await createTrigger(user, svc, { name: "b", operation: "SCALEUP" }),
    ];
    const res = await asPython(user, "GET", `${svc.resource_uri}/trigger/`);
    expect(res.status).toBe(200);
    const body = await res.json<TriggerList>();
    expect(Object.keys(body).sort()).toEqual(["meta", "objects"]);
    expect(body.meta).toEqual({ limit: 25, next: null, offset: 0, previous: null, total_count: 2 });
    expect(body.objects.map((t) => t.uuid).sort()).toEqual(made.map((t) => t.uuid).sort());
    for (const t of body.objects) {
      const mine = made.find((m) => m.uuid === t.uuid);
      expect(t).toEqual(mine);
    }
  });

  it("Go SDK: non-namespaced list answers the same triggers", async () => {
    const { user, svc } = await setup();
    const t = await createTrigger(user, svc, { name: "go" });
    const res = await asGo(user, "GET", `${plainServicePath(svc)}trigger/`);
    expect(res.status).toBe(200);
    const body = await res.json<TriggerList>();
    expect(body.meta.total_count).toBe(1);
    expect(body.objects).toEqual([t]);
  });

  it("pages with limit/offset; next and previous are /api/ paths that keep working", async () => {
    const { user, svc } = await setup();
    const made: TriggerJson[] = [];
    for (const name of ["p1", "p2", "p3", "p4", "p5"]) made.push(await createTrigger(user, svc, { name }));
    const base = `/api/app/v1/${user.username}/service/${svc.uuid}/trigger/`;

    const first = await as(user, "GET", `${base}?limit=2`);
    expect(first.status).toBe(200);
    const p1 = await first.json<TriggerList>();
    expect(p1.meta.limit).toBe(2);
    expect(p1.meta.offset).toBe(0);
    expect(p1.meta.total_count).toBe(5);
    expect(p1.meta.previous).toBeNull();
    expect(p1.objects).toHaveLength(2);
    expect(p1.meta.next).not.toBeNull();
    const next = p1.meta.next as string;
    expect(next.startsWith(`${base}?`)).toBe(true);
    const q = new URL(`https://x${next}`).searchParams;
    expect(q.get("limit")).toBe("2");
    expect(q.get("offset")).toBe("2");

    // The Go SDK cuts "/api/" and requests the rest under its REST host.
    const second = await asGo(user, "GET", `/api/${next.slice(5)}`);
    expect(second.status).toBe(200);
    const p2 = await second.json<TriggerList>();
    expect(p2.meta.offset).toBe(2);
    expect(p2.objects).toHaveLength(2);
    expect(p2.meta.previous).not.toBeNull();
    const prev = new URL(`https://x${p2.meta.previous}`).searchParams;
    expect((p2.meta.previous as string).startsWith("/api/")).toBe(true);
    expect(prev.get("offset")).toBe("0");
    expect(prev.get("limit")).toBe("2");

    const third = await as(user, "GET", `${base}?limit=2&offset=4`);
    const p3 = await third.json<TriggerList>();
    expect(p3.meta.next).toBeNull();
    expect(p3.objects).toHaveLength(1);

    const seen = [...p1.objects, ...p2.objects, ...p3.objects].map((t) => t.uuid);
    expect(new Set(seen).size).toBe(5);
    expect(seen.sort()).toEqual(made.map((t) => t.uuid).sort());
  });

  it("refuses limit=0 (it would make the Python SDK loop) with 400", async () => {
    const { user, svc } = await setup();
    await createTrigger(user, svc);
    const res = await as(user, "GET", `${svc.resource_uri}trigger/?limit=0`);
    await expectJsonError(res, 400);
  });

  it("filter name= matches only that name (CLI `trigger rm <service> <name>`)", async () => {
    const { user, svc } = await setup();
    await createTrigger(user, svc, { name: "deploy" });
    const target = await createTrigger(user, svc, { name: "deploy-prod" });
    await createTrigger(user, svc, { name: "other" });
    const res = await asPython(user, "GET", `${svc.resource_uri}/trigger/?name=deploy-prod`);
    expect(res.status).toBe(200);
    const body = await res.json<TriggerList>();
    expect(body.meta.total_count).toBe(1);
    expect(body.objects).toEqual([target]);

    const none = await (await as(user, "GET", `${svc.resource_uri}trigger/?name=nosuch`)).json<TriggerList>();
    expect(none.meta.total_count).toBe(0);
    expect(none.objects).toEqual([]);
  });

  it("filter name= keeps the filter in next", async () => {
    const { user, svc } = await setup();
    for (let i = 0; i < 3; i++) await createTrigger(user, svc, { name: "same" });
    await createTrigger(user, svc, { name: "different" });
    const body = await (await as(user, "GET", `${svc.resource_uri}trigger/?name=same&limit=2`)).json<TriggerList>();
    expect(body.meta.total_count).toBe(3);
    expect(body.objects).toHaveLength(2);
    expect(new URL(`https://x${body.meta.next}`).searchParams.get("name")).toBe("same");
    const rest = await (await as(user, "GET", body.meta.next as string)).json<TriggerList>();
    expect(rest.objects).toHaveLength(1);
    expect(rest.objects[0]?.name).toBe("same");
  });

  it("filter uuid__startswith= matches by prefix, case-insensitively", async () => {
    const { user, svc } = await setup();
    const a = await createTrigger(user, svc, { name: "a" });
    await createTrigger(user, svc, { name: "b" });
    await createTrigger(user, svc, { name: "c" });
    const prefix = a.uuid.slice(0, 8);
    const body = await (
      await asPython(user, "GET", `${svc.resource_uri}/trigger/?uuid__startswith=${prefix}`)
    ).json<TriggerList>();
    expect(body.objects).toEqual([a]);
    const upper = await (
      await as(user, "GET", `${svc.resource_uri}trigger/?uuid__startswith=${prefix.toUpperCase()}`)
    ).json<TriggerList>();
    expect(upper.objects).toEqual([a]);
    const full = await (
      await as(user, "GET", `${svc.resource_uri}trigger/?uuid__startswith=${a.uuid}`)
    ).json<TriggerList>();
    expect(full.objects).toEqual([a]);
  });

  it("lists only the triggers of the service asked for", async () => {
    const { user, svc } = await setup();
    const other = await createService(user);
    const mine = await createTrigger(user, svc, { name: "mine" });
    await createTrigger(user, other, { name: "theirs" });
    const body = await (await as(user, "GET", `${svc.resource_uri}trigger/`)).json<TriggerList>();
    expect(body.objects).toEqual([mine]);
  });
});

describe("get one trigger", () => {
  it("answers 200 with the trigger, namespaced, non-namespaced, double slash and without trailing slash", async () => {
    const { user, svc } = await setup();
    const t = await createTrigger(user, svc, { name: "one", operation: "SCALEUP" });
    for (const path of [
      t.resource_uri,
      `/api/app/v1/service/${svc.uuid}/trigger/${t.uuid}/`,
      `${svc.resource_uri}/trigger/${t.uuid}/`,
      `/api/app/v1/service/${svc.uuid}/trigger/${t.uuid}`,
      `/api/app/v1/service/${svc.uuid}/trigger/${t.uuid.toUpperCase()}/`,
    ]) {
      const res = await asPython(user, "GET", path);
      expect(res.status, path).toBe(200);
      expect(await res.json(), path).toEqual(t);
    }
  });

  it("a trigger asked for under another service answers 404", async () => {
    const { user, svc } = await setup();
    const other = await createService(user);
    const t = await createTrigger(user, svc);
    await expectJsonError(await as(user, "GET", `${other.resource_uri}trigger/${t.uuid}/`), 404);
    await expectJsonError(await as(user, "GET", `/api/app/v1/service/${other.uuid}/trigger/${t.uuid}/`), 404);
  });

  it("an unknown trigger uuid and a non-uuid trigger id answer 404", async () => {
    const { user, svc } = await setup();
    await expectJsonError(await as(user, "GET", `${svc.resource_uri}trigger/${crypto.randomUUID()}/`), 404);
    await expectJsonError(await as(user, "GET", `${svc.resource_uri}trigger/not-a-uuid/`), 404);
  });
});

describe("delete (revoke) a trigger", () => {
  it("Python SDK: DELETE on the double-slash path answers 200 with a JSON object; then GET and call answer 404", async () => {
    const { user, svc } = await setup();
    const t = await createTrigger(user, svc, { name: "gone" });
    const res = await asPython(user, "DELETE", `${svc.resource_uri}/trigger/${t.uuid}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = await res.json();
    expect(body !== null && typeof body === "object" && !Array.isArray(body)).toBe(true);
    expect(body).toEqual(t);

    const called = await call(t.url, { method: "POST" });
    await expectJsonError(called, 404);
    await expectJsonError(await as(user, "GET", t.resource_uri), 404);
    const list = await (await as(user, "GET", `${svc.resource_uri}trigger/`)).json<TriggerList>();
    expect(list.meta.total_count).toBe(0);
    expect(list.objects).toEqual([]);
  });

  it("Go SDK: DELETE with a {} body and no Content-Type, non-namespaced, answers 200 with a JSON object", async () => {
    const { user, svc } = await setup();
    const t = await createTrigger(user, svc);
    const res = await asGo(user, "DELETE", `/api/app/v1/service/${svc.uuid}/trigger/${t.uuid}/`, {});
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text.length).toBeGreaterThan(0);
    expect(JSON.parse(text)).toEqual(t);
    const called = await call(`/api/app/v1/service/${svc.uuid}/trigger/${t.uuid}/call/`, {
      method: "POST",
      body: "{}",
    });
    expect(called.status).toBe(404);
  });

  it("deleting a trigger twice answers 404 the second time", async () => {
    const { user, svc } = await setup();
    const t = await createTrigger(user, svc);
    expect((await as(user, "DELETE", t.resource_uri)).status).toBe(200);
    await expectJsonError(await as(user, "DELETE", t.resource_uri), 404);
  });

  it("deleting a trigger under another service answers 404 and leaves it working", async () => {
    const { user, svc } = await setup();
    const other = await createService(user);
    const t = await createTrigger(user, svc);
    await expectJsonError(await as(user, "DELETE", `${other.resource_uri}trigger/${t.uuid}/`), 404);
    expect((await as(user, "GET", t.resource_uri)).status).toBe(200);
  });

  it("CLI `trigger rm <service> <name>`: filter by name, delete the match, the others stay", async () => {
    const { user, svc } = await setup();
    const keep1 = await createTrigger(user, svc, { name: "alpha" });
    await createTrigger(user, svc, { name: "beta" });
    const keep2 = await createTrigger(user, svc, { name: "gamma" });
    const found = await (await asPython(user, "GET", `${svc.resource_uri}/trigger/?name=beta`)).json<TriggerList>();
    expect(found.objects).toHaveLength(1);
    for (const t of found.objects) {
      expect((await asPython(user, "DELETE", `${svc.resource_uri}/trigger/${t.uuid}/`)).status).toBe(200);
    }
    const left = await (await as(user, "GET", `${svc.resource_uri}trigger/`)).json<TriggerList>();
    expect(left.objects.map((t) => t.uuid).sort()).toEqual([keep1.uuid, keep2.uuid].sort());
  });
});

describe("at most 100 triggers per service", () => {
  it("the 101st create answers 403 JSON; deleting one frees a slot", async () => {
    const { user, svc } = await setup();
    const made: TriggerJson[] = [];
    for (let i = 0; i < 100; i++) made.push(await createTrigger(user, svc, { name: `t${i}` }));
    const over = await asPython(user, "POST", `${svc.resource_uri}/trigger/`, { name: "one-too-many" });
    expect(await expectJsonError(over, 403)).toMatch(/100/);

    const list = await (await as(user, "GET", `${svc.resource_uri}trigger/?limit=100`)).json<TriggerList>();
    expect(list.meta.total_count).toBe(100);
    expect(list.objects).toHaveLength(100);
    expect(list.meta.next).toBeNull();
    expect((await as(user, "GET", `${svc.resource_uri}trigger/?name=one-too-many`)).status).toBe(200);
    const named = await (await as(user, "GET", `${svc.resource_uri}trigger/?name=one-too-many`)).json<TriggerList>();
    expect(named.meta.total_count).toBe(0);

    expect((await as(user, "DELETE", (made[0] as TriggerJson).resource_uri)).status).toBe(200);
    const again = await as(user, "POST", `${svc.resource_uri}trigger/`, { name: "freed" });
    expect(again.status).toBe(201);
    const after = await as(user, "POST", `${svc.resource_uri}trigger/`, { name: "over-again" });
    await expectJsonError(after, 403);

    // The limit is per service: another service of the same user is unaffected.
    const other = await createService(user);
    expect((await as(user, "POST", `${other.resource_uri}trigger/`, {})).status).toBe(201);
  }, 60_000);
});

describe("at most 100 triggers per service, under concurrency", () => {
  it("98 triggers, then 5 creates at once: exactly 2 answer 201 and 3 answer 403", async () => {
    const { user, svc } = await setup();
    for (let i = 0; i < 98; i++) await createTrigger(user, svc, { name: `c${i}` });
    const results = await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        asGo(user, "POST", `/api/app/v1/service/${svc.uuid}/trigger/`, { name: `race${i}`, operation: "" }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 201, 403, 403, 403]);
    const list = await (await as(user, "GET", `${svc.resource_uri}trigger/?limit=100`)).json<TriggerList>();
    expect(list.meta.total_count).toBe(100);
    expect(list.objects).toHaveLength(100);
  }, 60_000);
});

describe("a terminated service", () => {
  it("its triggers and trigger list answer 404; creating a trigger answers 404", async () => {
    const { user, svc } = await setup();
    const t = await createTrigger(user, svc);
    const del = await as(user, "DELETE", svc.resource_uri);
    expect(del.status).toBeLessThan(300);
    await expectJsonError(await as(user, "GET", `${svc.resource_uri}trigger/`), 404);
    await expectJsonError(await as(user, "GET", t.resource_uri), 404);
    await expectJsonError(await as(user, "POST", `${svc.resource_uri}trigger/`, {}), 404);
    await expectJsonError(await asGo(user, "DELETE", `/api/app/v1/service/${svc.uuid}/trigger/${t.uuid}/`, {}), 404);
  });
});

describe("triggers under an organization namespace", () => {
  async function orgSetup() {
    const member = await createUser();
    const outsider = await createUser();
    const org = await createOrg(uniqueName("org"), [member.username]);
    const svc = await createService(member, {}, org);
    return { member, outsider, org, svc };
  }

  it("the service and its triggers carry the org namespace; a member manages them namespaced (Python) and non-namespaced (Go)", async () => {
    const { member, org, svc } = await orgSetup();
    expect(svc.resource_uri).toBe(`/api/app/v1/${org}/service/${svc.uuid}/`);
    const created = await asPython(member, "POST", `${svc.resource_uri}/trigger/`, {
      name: "org-t",
      operation: "scaleup",
    });
    expect(created.status).toBe(201);
    const t = await created.json<TriggerJson>();
    expectTrigger(t, org, svc, { name: "org-t", operation: "SCALEUP" });

    // The Go SDK never namespaces trigger calls.
    const goCreated = await asGo(member, "POST", `/api/app/v1/service/${svc.uuid}/trigger/`, {
      name: "",
      operation: "",
    });
    expect(goCreated.status).toBe(201);
    const g = await goCreated.json<TriggerJson>();
    expectTrigger(g, org, svc, { operation: "REDEPLOY" });

    const goList = await asGo(member, "GET", `/api/app/v1/service/${svc.uuid}/trigger/`);
    expect(goList.status).toBe(200);
    expect((await goList.json<TriggerList>()).meta.total_count).toBe(2);
    const pyList = await asPython(member, "GET", `${svc.resource_uri}/trigger/`);
    expect(pyList.status).toBe(200);
    expect((await pyList.json<TriggerList>()).meta.total_count).toBe(2);

    expect((await asGo(member, "GET", `/api/app/v1/service/${svc.uuid}/trigger/${t.uuid}/`)).status).toBe(200);
    const del = await asGo(member, "DELETE", `/api/app/v1/service/${svc.uuid}/trigger/${g.uuid}/`, {});
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual(g);
  });

  it("a member's own namespace does not hold the org's service: namespaced under the user answers 404", async () => {
    const { member, svc } = await orgSetup();
    const res = await as(member, "GET", `/api/app/v1/${member.username}/service/${svc.uuid}/trigger/`);
    await expectJsonError(res, 404);
  });

  it("a non-member gets 403 on namespaced paths", async () => {
    const { member, outsider, org, svc } = await orgSetup();
    const t = await createTrigger(member, svc);
    await expectJsonError(await asPython(outsider, "GET", `/api/app/v1/${org}/service/${svc.uuid}//trigger/`), 403);
    await expectJsonError(
      await asPython(outsider, "POST", `/api/app/v1/${org}/service/${svc.uuid}//trigger/`, {}),
      403,
    );
    await expectJsonError(await as(outsider, "GET", t.resource_uri), 403);
    await expectJsonError(await as(outsider, "DELETE", t.resource_uri), 403);
    // Nothing changed.
    const list = await (await as(member, "GET", `${svc.resource_uri}trigger/`)).json<TriggerList>();
    expect(list.objects).toEqual([t]);
  });

  it("a non-member gets 404 on non-namespaced paths (the service's existence is not revealed)", async () => {
    const { member, outsider, svc } = await orgSetup();
    const t = await createTrigger(member, svc);
    const plain = `/api/app/v1/service/${svc.uuid}/trigger/`;
    const listErr = await expectJsonError(await asGo(outsider, "GET", plain), 404);
    const unknownErr = await expectJsonError(
      await asGo(outsider, "GET", `/api/app/v1/service/${crypto.randomUUID()}/trigger/`),
      404,
    );
    expect(listErr).toBe(unknownErr);
    await expectJsonError(await asGo(outsider, "POST", plain, { name: "", operation: "" }), 404);
    await expectJsonError(await asGo(outsider, "GET", `${plain}${t.uuid}/`), 404);
    await expectJsonError(await asGo(outsider, "DELETE", `${plain}${t.uuid}/`, {}), 404);
    expect((await as(member, "GET", t.resource_uri)).status).toBe(200);
  });

  it("another user's personal service: 403 namespaced, 404 non-namespaced", async () => {
    const { user, svc } = await setup();
    const other = await createUser();
    const t = await createTrigger(user, svc);
    await expectJsonError(await as(other, "GET", t.resource_uri), 403);
    await expectJsonError(await as(other, "GET", `/api/app/v1/service/${svc.uuid}/trigger/${t.uuid}/`), 404);
  });
});
