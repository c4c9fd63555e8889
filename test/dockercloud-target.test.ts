import { exports } from "cloudflare:workers";
import { HttpResponse, http } from "msw";
import { describe, expect, it, vi } from "vitest";
import { logsOf, readJson, sleep, WAIT, waitForState as waitFor } from "./helpers/actions";
import { as, basic, call, createService, createTrigger, createUser, type User, uniqueName } from "./helpers/api";
import { RFC1123 } from "./helpers/formats";
import { network } from "./helpers/msw";

/**
 * The Docker Cloud target against THIS Worker: user B's service R is the
 * "remote"; user A's service S targets it through https://remote.example.test,
 * which MSW hands to the Worker's own fetch handler (as https://api.test), so
 * the remote side is the real API. Every remote request is recorded.
 */

const REMOTE = "https://remote.example.test";

type Action = { uuid: string; resource_uri: string; state: string; user: string | null; action: string };
type Service = {
  uuid: string;
  resource_uri: string;
  name: string;
  target_num_containers: number;
  current_num_containers: number;
  running_num_containers: number;
  deployed_datetime: string | null;
  target: Record<string, unknown> | null;
};
type RemoteCall = { method: string; path: string; authorization: string | null; body: string; status: number };

/**
 * Routes every request to the remote host to the Worker itself and records it.
 * `override(n, call)` may replace the Worker's answer to the n-th request
 * (after the Worker has served it).
 */
function serveRemote(override?: (n: number, c: RemoteCall) => Response | undefined): RemoteCall[] {
  const calls: RemoteCall[] = [];
  network.use(
    http.all(`${REMOTE}/*`, async ({ request }) => {
      const method = request.method.toUpperCase();
      const body = method === "GET" || method === "HEAD" ? "" : await request.text();
      const url = new URL(request.url);
      const forwarded = await exports.default.fetch(
        new Request(request.url.replace(REMOTE, "https://api.test"), {
          method,
          headers: request.headers,
          body: method === "GET" || method === "HEAD" ? undefined : body,
        }),
      );
      const text = await forwarded.text();
      const c: RemoteCall = {
        method,
        path: url.pathname + url.search,
        authorization: request.headers.get("authorization"),
        body,
        status: forwarded.status,
      };
      calls.push(c);
      const replaced = override?.(calls.length, c);
      if (replaced) return replaced;
      return new HttpResponse(text, { status: forwarded.status, headers: forwarded.headers });
    }),
  );
  return calls;
}

/** Waits until every action of a user's namespace is finished. */
async function settleAll(user: User): Promise<Action[]> {
  return vi.waitUntil(async () => {
    const r = await as(user, "GET", "/api/audit/v1/action/?limit=100");
    const { objects } = await r.json<{ objects: Action[] }>();
    return objects.every((a) => ["Success", "Failed", "Canceled"].includes(a.state)) ? objects : false;
  }, WAIT);
}

async function setup(opts: { apikey?: string; remoteCount?: number } = {}) {
  const b = await createUser();
  const r = (await createService(b, {
    target_num_containers: opts.remoteCount ?? 1,
    max_num_containers: 10,
  })) as unknown as Service;
  const a = await createUser();
  const target = {
    type: "dockercloud",
    url: REMOTE,
    username: b.username,
    apikey: opts.apikey ?? b.apikey,
    namespace: b.username,
    service_uuid: r.uuid,
  };
  const created = await as(a, "POST", "/api/app/v1/service/", {
    image: "tutum/hello-world",
    name: uniqueName("svc"),
    target_num_containers: 1,
    max_num_containers: 10,
    target,
  });
  const text = await created.text();
  expect(created.status, text).toBe(201);
  const s = JSON.parse(text) as Service;
  return { a, b, r, s, createdText: text };
}

const remoteBase = (b: User, r: Service) => `/api/app/v1/${b.username}/service/${r.uuid}/`;
const remoteActionUri = (logs: string, b: User) =>
  logs.match(new RegExp(`remote action "(/api/audit/v1/${b.username}/action/[0-9a-f-]{36}/)"`))?.[1];

const _readAction = (user: User, uri: string) => readJson<Action>(user, uri);
const readService = (user: User, uri: string) => readJson<Service>(user, uri);
const waitForState = (user: User, uri: string, state: string) => waitFor<Action>(user, uri, state);

describe("docker cloud target: the stored target", () => {
  it("create, GET and list show {type,url,username,namespace,service_uuid}, never the apikey", async () => {
    const { a, b, r, s, createdText } = await setup();
    const expected = {
      type: "dockercloud",
      url: `${REMOTE}/`,
      username: b.username,
      namespace: b.username,
      service_uuid: r.uuid,
    };
    expect(s.target).toEqual(expected);
    expect(createdText).not.toContain(b.apikey);
    const got = await as(a, "GET", s.resource_uri);
    const gotText = await got.text();
    expect(JSON.parse(gotText).target).toEqual(expected);
    expect(gotText).not.toContain(b.apikey);
    const list = await as(a, "GET", "/api/app/v1/service/");
    const listText = await list.text();
    expect(listText).not.toContain(b.apikey);
    expect(JSON.parse(listText).objects[0].target).toEqual(expected);
    // A PATCH that changes something else keeps the target and still hides the key.
    const patched = await as(a, "PATCH", s.resource_uri, { target_num_containers: 2 });
    const patchedText = await patched.text();
    expect(patched.status).toBe(200);
    expect(JSON.parse(patchedText).target).toEqual(expected);
    expect(patchedText).not.toContain(b.apikey);
  });

  it("a bad target is refused with 400: http://, credentials in the URL, no username, no apikey, bad service_uuid", async () => {
    const a = await createUser();
    const good = {
      type: "dockercloud",
      url: REMOTE,
      username: "someone",
      apikey: "k".repeat(40),
      namespace: "someone",
      service_uuid: crypto.randomUUID(),
    };
    const { username: _u, ...noUsername } = good;
    const { apikey: _k, ...noApikey } = good;
    const bad: [string, Record<string, unknown>, RegExp][] = [
      ["http", { ...good, url: "http://example.com" }, /https/],
      ["credentials", { ...good, url: "https://user:pass@remote.example.test" }, /credentials/],
      ["username only in url", { ...good, url: "https://user@remote.example.test" }, /credentials/],
      ["no username", noUsername, /username/],
      ["empty username", { ...good, username: "" }, /username/],
      ["no apikey", noApikey, /apikey/],
      ["bad service_uuid", { ...good, service_uuid: "nope" }, /service_uuid/],
      ["bad namespace", { ...good, namespace: "A B" }, /namespace/],
      ["not a url", { ...good, url: "remote.example.test" }, /URL/],
    ];
    const existing = (await createService(a)) as unknown as Service;
    for (const [what, target, message] of bad) {
      const created = await as(a, "POST", "/api/app/v1/service/", {
        image: "tutum/hello-world",
        name: uniqueName("s"),
        target,
      });
      expect(created.status, what).toBe(400);
      expect((await created.json<{ error: string }>()).error, what).toMatch(message);
      const patched = await as(a, "PATCH", existing.resource_uri, { target });
      expect(patched.status, `PATCH ${what}`).toBe(400);
    }
    const list = await (await as(a, "GET", "/api/app/v1/service/")).json<{ meta: { total_count: number } }>();
    expect(list.meta.total_count).toBe(1);
    expect((await readService(a, existing.resource_uri)).target).toBeNull();
  });
});

describe("docker cloud target: operations", () => {
  it("a REDEPLOY call on S redeploys R: POST .../redeploy/ with B's credentials; both actions Succeed", async () => {
    const { a, b, r, s } = await setup();
    const calls = serveRemote();
    const trigger = await createTrigger(a, s as never);
    const called = await call(trigger.url, { method: "POST" });
    expect(called.status).toBe(202);
    const action = await called.json<Action>();
    await waitForState(a, action.resource_uri, "Success");
    const logs = await logsOf(a, action.resource_uri);

    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([`POST ${remoteBase(b, r)}redeploy/`]);
    expect(calls[0]?.authorization).toBe(basic(b.username, b.apikey));
    expect(calls[0]?.status).toBe(202);
    const remoteUri = remoteActionUri(logs, b);
    expect(remoteUri, logs).toBeDefined();
    expect(logs).toMatch(/attempt 1: redeploy: target answered 202/);

    const remote = await waitForState(b, remoteUri as string, "Success");
    expect(remote.action).toBe("Service Redeploy");
    expect(remote.user).toBe(b.username);
    expect((await readService(b, r.resource_uri)).deployed_datetime).toMatch(RFC1123);
    // S's own registry entry is redeployed too.
    expect((await readService(a, s.resource_uri)).deployed_datetime).toMatch(RFC1123);
    await settleAll(b);
  });

  it("redeploy/?reuse_volumes=False on S is passed on as ?reuse_volumes=false", async () => {
    const { a, b, r, s } = await setup();
    const calls = serveRemote();
    const res = await as(a, "POST", `${s.resource_uri}redeploy/?reuse_volumes=False`);
    expect(res.status).toBe(202);
    const uri = res.headers.get("x-dockercloud-action-uri") as string;
    await waitForState(a, uri, "Success");
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      `POST ${remoteBase(b, r)}redeploy/?reuse_volumes=false`,
    ]);
    await settleAll(b);
  });

  it("a SCALEUP call/3/ on S: GET, PATCH, POST scale/ in order; R ends at 4 with its own Success action", async () => {
    const { a, b, r, s } = await setup();
    const calls = serveRemote();
    const trigger = await createTrigger(a, s as never, { operation: "SCALEUP" });
    const called = await call(`${trigger.url}3/`, { method: "POST" });
    expect(called.status).toBe(202);
    const action = await called.json<Action>();
    await waitForState(a, action.resource_uri, "Success");
    const logs = await logsOf(a, action.resource_uri);

    const base = remoteBase(b, r);
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([`GET ${base}`, `PATCH ${base}`, `POST ${base}scale/`]);
    expect(calls.map((c) => c.status)).toEqual([200, 200, 202]);
    expect(JSON.parse(calls[1]?.body ?? "")).toEqual({ target_num_containers: 4 });
    expect(logs).toMatch(/remote count 1; scale to 4: target answered 202/);
    const remoteUri = remoteActionUri(logs, b);
    expect(remoteUri, logs).toBeDefined();
    const remote = await waitForState(b, remoteUri as string, "Success");
    expect(remote.action).toBe("Service Scale");

    const rNow = await readService(b, r.resource_uri);
    expect([rNow.target_num_containers, rNow.current_num_containers, rNow.running_num_containers]).toEqual([4, 4, 4]);
    expect((await readService(a, s.resource_uri)).target_num_containers).toBe(4);
    await settleAll(b);
  });

  it("scale/ on S (after PATCH to 5) sets R to 5: PATCH then POST scale/, no GET", async () => {
    const { a, b, r, s } = await setup();
    const calls = serveRemote();
    expect((await as(a, "PATCH", s.resource_uri, { target_num_containers: 5 })).status).toBe(200);
    const res = await as(a, "POST", `${s.resource_uri}scale/`);
    expect(res.status).toBe(202);
    await waitForState(a, res.headers.get("x-dockercloud-action-uri") as string, "Success");
    const base = remoteBase(b, r);
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([`PATCH ${base}`, `POST ${base}scale/`]);
    expect(JSON.parse(calls[0]?.body ?? "")).toEqual({ target_num_containers: 5 });
    await settleAll(b);
    expect((await readService(b, r.resource_uri)).current_num_containers).toBe(5);
  });

  it("remote 503 on the first PATCH (after applying it): retried WITHOUT adding N twice; R ends at exactly 1 + 3", async () => {
    const { a, b, r, s } = await setup();
    // The first PATCH reaches the Worker (R becomes 4) but its answer is lost behind a 503.
    const calls = serveRemote((_n, c) =>
      c.method === "PATCH" && calls.filter((x) => x.method === "PATCH").length === 1
        ? new HttpResponse("upstream busy", { status: 503 })
        : undefined,
    );
    const trigger = await createTrigger(a, s as never, { operation: "SCALEUP" });
    const called = await call(`${trigger.url}3/`, { method: "POST" });
    expect(called.status).toBe(202);
    const action = await called.json<Action>();
    await waitForState(a, action.resource_uri, "Success");
    const logs = await logsOf(a, action.resource_uri);

    const base = remoteBase(b, r);
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      `GET ${base}`,
      `PATCH ${base}`,
      `PATCH ${base}`,
      `POST ${base}scale/`,
    ]);
    expect(calls.filter((c) => c.method === "PATCH").map((c) => JSON.parse(c.body))).toEqual([
      { target_num_containers: 4 },
      { target_num_containers: 4 },
    ]);
    const attempts = logs.split("\n").filter((l) => /attempt \d+:/.test(l));
    expect(attempts).toHaveLength(2);
    expect(attempts[0]).toMatch(
      /attempt 1: remote count 1; setting target_num_containers to 4: target answered 503: "upstream busy"/,
    );
    expect(attempts[1]).toMatch(/attempt 2: scale to 4: target answered 202/);
    await settleAll(b);
    const rNow = await readService(b, r.resource_uri);
    expect(rNow.target_num_containers).toBe(4);
    expect(rNow.current_num_containers).toBe(4);
  });

  it("a wrong apikey: the remote answers 401 and S's action is Failed at once with the 401 in its logs", async () => {
    const { a, b, r, s } = await setup({ apikey: "0".repeat(40) });
    const calls = serveRemote();
    const trigger = await createTrigger(a, s as never);
    const called = await call(trigger.url, { method: "POST" });
    expect(called.status).toBe(202);
    const action = await called.json<Action>();
    await waitForState(a, action.resource_uri, "Failed");
    const logs = await logsOf(a, action.resource_uri);
    await sleep(300);
    expect(calls.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([`POST ${remoteBase(b, r)}redeploy/ 401`]);
    const attempts = logs.split("\n").filter((l) => /attempt \d+:/.test(l));
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatch(/attempt 1: redeploy: target answered 401/);
    expect(logs).not.toMatch(/gave up/);
    // Nothing happened on the remote side.
    const remoteActions = await (await as(b, "GET", "/api/audit/v1/action/")).json<{ meta: { total_count: number } }>();
    expect(remoteActions.meta.total_count).toBe(0);
    expect((await readService(b, r.resource_uri)).deployed_datetime).toBeNull();
  });
});
