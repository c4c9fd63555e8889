import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { HttpResponse, http } from "msw";
import { describe, expect, it, vi } from "vitest";
import { logsOf, readJson, sleep, WAIT, waitForState } from "./helpers/actions";
import {
  as,
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

/**
 * Docker Cloud targets that lead back to where they started. The Worker under
 * test answers at https://api.test (see helpers/api.ts); MSW hands the Worker's
 * own outbound requests to that origin back to its fetch handler, so a target
 * at https://api.test is this same deployment, as in production.
 */

const SELF = "https://api.test";
/** MAX_TARGET_HOPS as wrangler.jsonc sets it (the tests do not override it). */
const HOP_LIMIT = 5;
const HOPS = "x-dockercloud-hops";

type Action = { uuid: string; resource_uri: string; state: string; object: string };
type Outbound = { method: string; path: string; hops: string | null; status: number; text: string };

/** Serves the Worker's outbound requests to `origin` with the Worker itself, recording each. */
function serveSelf(origin = SELF): Outbound[] {
  const seen: Outbound[] = [];
  network.use(
    http.all(`${origin}/*`, async ({ request }) => {
      const method = request.method.toUpperCase();
      const body = method === "GET" || method === "HEAD" ? undefined : await request.text();
      const answer = await exports.default.fetch(
        new Request(request.url.replace(origin, SELF), { method, headers: request.headers, body }),
      );
      const text = await answer.text();
      const url = new URL(request.url);
      seen.push({
        method,
        path: url.pathname + url.search,
        hops: request.headers.get(HOPS),
        status: answer.status,
        text,
      });
      return new HttpResponse(text, { status: answer.status, headers: answer.headers });
    }),
  );
  return seen;
}

const dockercloud = (user: User, extra: Record<string, unknown> = {}) => ({
  type: "dockercloud",
  url: SELF,
  username: user.username,
  apikey: user.apikey,
  ...extra,
});

async function listActions(user: User): Promise<Action[]> {
  const r = await as(user, "GET", "/api/audit/v1/action/?limit=100");
  expect(r.status).toBe(200);
  return (await r.json<{ objects: Action[] }>()).objects;
}

/** Waits until the namespace holds at least `count` actions, all finished; oldest first. */
function settle(user: User, count: number): Promise<Action[]> {
  return vi.waitUntil(async () => {
    const objects = await listActions(user);
    const done = objects.every((a) => ["Success", "Failed", "Canceled"].includes(a.state));
    return objects.length >= count && done ? objects.reverse() : false;
  }, WAIT);
}

/** The dispatch state of every action of a namespace: 'done' once nothing is left for the queue. */
const dispatchStates = (user: User) =>
  runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) =>
    state.storage.sql
      .exec<{ dispatch: string; hops: number }>("SELECT dispatch, hops FROM actions ORDER BY seq")
      .toArray(),
  );

const attemptLines = (logs: string) => logs.split("\n").filter((l) => /attempt \d+:/.test(l));

async function expectError(res: Response, status: number, message: RegExp, what: string) {
  const text = await res.text();
  expect(res.status, `${what}: ${text}`).toBe(status);
  expect((JSON.parse(text) as { error: string }).error, what).toMatch(message);
}

describe("target loops: a target that is the service itself is refused", () => {
  it("service create: same origin (any spelling), no service_uuid, no namespace or its own namespace: 400", async () => {
    const u = await createUser();
    const refused: [string, Record<string, unknown>][] = [
      ["same origin", dockercloud(u)],
      ["trailing slash", dockercloud(u, { url: `${SELF}/` })],
      ["uppercase host", dockercloud(u, { url: "https://API.Test" })],
      ["explicit default port", dockercloud(u, { url: "https://api.test:443/" })],
      ["a path after the origin", dockercloud(u, { url: `${SELF}/api/` })],
      ["explicit own namespace", dockercloud(u, { namespace: u.username })],
      ["null namespace and service_uuid", dockercloud(u, { namespace: null, service_uuid: null })],
      ["an origin listed in SELF_ORIGINS", dockercloud(u, { url: "https://triggers.example.test" })],
    ];
    for (const [what, target] of refused) {
      const res = await as(u, "POST", "/api/app/v1/service/", {
        image: "tutum/hello-world",
        name: uniqueName(),
        target,
      });
      await expectError(res, 400, /target .*this service itself.*loop/, what);
    }
    const list = await (await as(u, "GET", "/api/app/v1/service/")).json<{ meta: { total_count: number } }>();
    expect(list.meta.total_count).toBe(0);
  });

  it("service PATCH: service_uuid equal to its own uuid (any case), with or without its namespace: 400, target unchanged", async () => {
    const u = await createUser();
    const s = await createService(u);
    const refused: [string, Record<string, unknown>][] = [
      ["no namespace, no service_uuid", dockercloud(u)],
      ["own service_uuid", dockercloud(u, { service_uuid: s.uuid })],
      ["own service_uuid in upper case", dockercloud(u, { service_uuid: s.uuid.toUpperCase() })],
      ["own namespace and service_uuid", dockercloud(u, { namespace: u.username, service_uuid: s.uuid })],
      ["trailing slash and own uuid", dockercloud(u, { url: `${SELF}/`, service_uuid: s.uuid })],
    ];
    for (const [what, target] of refused) {
      await expectError(await as(u, "PATCH", s.resource_uri, { target }), 400, /this service itself/, what);
      // The non-namespaced path resolves to the same service.
      await expectError(
        await as(u, "PATCH", `/api/app/v1/service/${s.uuid}/`, { target }),
        400,
        /this service itself/,
        `${what} (non-namespaced)`,
      );
    }
    expect((await readJson<ServiceJson>(u, s.resource_uri)).target).toBeNull();
  });

  it("an organization's service: a target naming the organization is itself; naming the user's own namespace is not", async () => {
    const u = await createUser();
    const org = await createOrg(uniqueName("org"), [u.username]);
    const s = await createService(u, {}, org);
    await expectError(
      await as(u, "PATCH", s.resource_uri, { target: dockercloud(u, { namespace: org }) }),
      400,
      /this service itself/,
      "organization namespace",
    );
    // Without a namespace the non-namespaced path finds the service wherever it lives: itself too.
    await expectError(
      await as(u, "PATCH", s.resource_uri, { target: dockercloud(u) }),
      400,
      /this service itself/,
      "no namespace",
    );
    const other = await as(u, "PATCH", s.resource_uri, { target: dockercloud(u, { namespace: u.username }) });
    expect(other.status, await other.clone().text()).toBe(200);
  });

  it("a target at ANOTHER service of the same deployment, another namespace or another deployment is accepted", async () => {
    const u = await createUser();
    const v = await createUser();
    const other = await createService(u);
    const accepted: [string, Record<string, unknown>][] = [
      ["another service", dockercloud(u, { service_uuid: other.uuid })],
      ["another service, own namespace", dockercloud(u, { namespace: u.username, service_uuid: other.uuid })],
      ["another namespace", dockercloud(v, { namespace: v.username })],
      ["another deployment", dockercloud(u, { url: "https://elsewhere.example.test" })],
      ["another port", dockercloud(u, { url: "https://api.test:8443" })],
    ];
    for (const [what, target] of accepted) {
      const res = await as(u, "POST", "/api/app/v1/service/", {
        image: "tutum/hello-world",
        name: uniqueName(),
        target,
      });
      expect(res.status, `${what}: ${await res.clone().text()}`).toBe(201);
    }
    const s = await createService(u);
    const patched = await as(u, "PATCH", s.resource_uri, { target: dockercloud(u, { service_uuid: other.uuid }) });
    expect(patched.status).toBe(200);
  });

  it("same-deployment rule: loopback names are one host; scheme, port and host must match", async () => {
    const { selfTargetProblem } = await import("../src/targets/loops");
    const self = { origins: ["http://localhost:8787"], namespace: "alice", serviceUuid: crypto.randomUUID() };
    const t = (url: string, extra: { namespace?: string | null; service_uuid?: string | null } = {}) =>
      selfTargetProblem({ url, ...extra }, self);
    expect(t("http://127.0.0.1:8787/")).not.toBeNull();
    expect(t("http://[::1]:8787")).not.toBeNull();
    expect(t("http://LOCALHOST:8787")).not.toBeNull();
    expect(t("http://localhost:8788")).toBeNull();
    expect(t("https://localhost:8787")).toBeNull();
    expect(t("http://localhost:8787", { namespace: "bob" })).toBeNull();
    expect(t("http://localhost:8787", { service_uuid: crypto.randomUUID() })).toBeNull();
    expect(t("http://localhost:8787", { service_uuid: self.serviceUuid.toUpperCase() })).not.toBeNull();
  });
});

describe("target loops: the hop count", () => {
  it("two services A → B and B → A: one redeploy/ of A ends after HOP_LIMIT + 1 actions, the last Failed with the loop reason", async () => {
    const u = await createUser();
    const a = await createService(u);
    const b = await createService(u, { target: dockercloud(u, { service_uuid: a.uuid }) });
    expect((await as(u, "PATCH", a.resource_uri, { target: dockercloud(u, { service_uuid: b.uuid }) })).status).toBe(
      200,
    );
    const outbound = serveSelf();

    const res = await as(u, "POST", `${a.resource_uri}redeploy/`);
    expect(res.status).toBe(202);
    const actions = await settle(u, HOP_LIMIT + 1);
    // Time for anything still going round to show up.
    await sleep(1_000);
    expect(await listActions(u)).toHaveLength(HOP_LIMIT + 1);
    expect(actions).toHaveLength(HOP_LIMIT + 1);

    // A, B, A, B, A, B: hops 0 to 5; every outbound request carries the next hop.
    expect(actions.map((x) => x.object)).toEqual(
      Array.from({ length: HOP_LIMIT + 1 }, (_, i) => (i % 2 === 0 ? a.resource_uri : b.resource_uri)),
    );
    expect(outbound.map((o) => `${o.method} ${o.hops} ${o.status}`)).toEqual([
      ...Array.from({ length: HOP_LIMIT }, (_, i) => `POST ${i + 1} 202`),
      `POST ${HOP_LIMIT + 1} 409`,
    ]);
    expect(outbound.at(-1)?.text).toMatch(/loop of Docker Cloud targets was detected/);
    expect(actions.slice(0, -1).map((x) => x.state)).toEqual(Array(HOP_LIMIT).fill("Success"));
    const last = actions.at(-1) as Action;
    expect(last.state).toBe("Failed");
    const logs = await Promise.all(actions.map((x) => logsOf(u, x.resource_uri)));
    const lastLogs = logs.at(-1) as string;
    // Failed at once: one attempt, not retried, never dead-lettered.
    expect(attemptLines(lastLogs)).toHaveLength(1);
    expect(attemptLines(lastLogs)[0]).toMatch(
      /attempt 1: redeploy: target answered 409: .*a loop of Docker Cloud targets was detected/,
    );
    expect(lastLogs).not.toMatch(/gave up/);
    for (const l of logs) expect(attemptLines(l), l).toHaveLength(1);

    // The queue is drained: nothing is left to hand over, and each action kept its hop count.
    expect(await dispatchStates(u)).toEqual(
      Array.from({ length: HOP_LIMIT + 1 }, (_, i) => ({ dispatch: "done", hops: i })),
    );
  });

  it("two deployments pointing at each other are bounded the same way (A here → B there → A here)", async () => {
    const u = await createUser();
    const v = await createUser();
    const a = await createService(u);
    // "There" is another origin served by this Worker: not the same deployment for the create check.
    const there = "https://peer.example.test";
    const b = await createService(v, { target: dockercloud(u, { service_uuid: a.uuid }) });
    const patched = await as(u, "PATCH", a.resource_uri, {
      target: dockercloud(v, { url: there, service_uuid: b.uuid }),
    });
    expect(patched.status).toBe(200);
    const here = serveSelf();
    const peer = serveSelf(there);

    expect((await as(u, "POST", `${a.resource_uri}redeploy/`)).status).toBe(202);
    const mine = await settle(u, 3);
    const theirs = await settle(v, 3);
    await sleep(1_000);
    expect([(await listActions(u)).length, (await listActions(v)).length]).toEqual([3, 3]);
    expect(peer.map((o) => `${o.hops} ${o.status}`)).toEqual(["1 202", "3 202", "5 202"]);
    expect(here.map((o) => `${o.hops} ${o.status}`)).toEqual(["2 202", "4 202", "6 409"]);
    expect(mine.map((x) => x.state)).toEqual(["Success", "Success", "Success"]);
    expect(theirs.map((x) => x.state)).toEqual(["Success", "Success", "Failed"]);
    expect(await logsOf(v, (theirs[2] as Action).resource_uri)).toMatch(
      /target answered 409: .*loop of Docker Cloud targets/,
    );
  });

  it("a SCALEUP call carrying hop 3 sends hop 4 on every request of the attempt (GET, PATCH, POST scale/)", async () => {
    const u = await createUser();
    const r = await createService(u, { target_num_containers: 1, max_num_containers: 10 });
    const s = await createService(u, { max_num_containers: 10, target: dockercloud(u, { service_uuid: r.uuid }) });
    const outbound = serveSelf();
    const trigger = await createTrigger(u, s, { operation: "SCALEUP" });
    const called = await call(`${trigger.url}2/`, { method: "POST", headers: { "X-DockerCloud-Hops": "3" } });
    expect(called.status).toBe(202);
    await waitForState(u, (await called.json<Action>()).resource_uri, "Success");
    expect(outbound.map((o) => `${o.method} ${o.hops} ${o.status}`)).toEqual([
      "GET 4 200",
      "PATCH 4 200",
      "POST 4 202",
    ]);
    await settle(u, 2);
    // R's own scale action was created at hop 4: its target is null, so nothing goes further.
    const hops = (await dispatchStates(u)).map((x) => x.hops);
    expect(hops).toEqual([3, 4]);
  });

  it("an action created with no hop header sends hop 1", async () => {
    const u = await createUser();
    const r = await createService(u);
    const s = await createService(u, { target: dockercloud(u, { service_uuid: r.uuid }) });
    const outbound = serveSelf();
    const res = await as(u, "POST", `${s.resource_uri}scale/`);
    expect(res.status).toBe(202);
    await waitForState(u, res.headers.get("x-dockercloud-action-uri") as string, "Success");
    expect(outbound.map((o) => `${o.method} ${o.hops}`)).toEqual(["PATCH 1", "POST 1"]);
    await settle(u, 2);
  });

  it("past the limit, every route that creates an action answers 409 naming the loop and creates nothing; at the limit it is accepted", async () => {
    const u = await createUser();
    const s = await createService(u);
    const trigger = await createTrigger(u, s);
    const scaleup = await createTrigger(u, s, { operation: "SCALEUP" });
    const routes: [string, (hops: string) => Promise<Response>][] = [
      ["call/", (h) => call(trigger.url, { method: "POST", headers: { [HOPS]: h } })],
      ["call/N/", (h) => call(`${scaleup.url}1/`, { method: "POST", headers: { [HOPS]: h } })],
      ["redeploy/", (h) => hopped(u, "POST", `${s.resource_uri}redeploy/`, h)],
      ["scale/", (h) => hopped(u, "POST", `${s.resource_uri}scale/`, h)],
    ];
    for (const [what, send] of routes) {
      await expectError(await send(String(HOP_LIMIT + 1)), 409, /loop of Docker Cloud targets was detected/, what);
      await expectError(await send("99999999999999999999"), 409, /loop of Docker Cloud targets/, `${what} huge`);
    }
    expect(await listActions(u)).toHaveLength(0);
    for (const [what, send] of routes) {
      const res = await send(String(HOP_LIMIT));
      expect(res.status, what).toBe(202);
      await settle(u, 1);
    }
  });

  it("a malformed hop header is a 400 on every route that creates an action, and creates nothing", async () => {
    const u = await createUser();
    const s = await createService(u);
    const trigger = await createTrigger(u, s);
    const done = await as(u, "POST", `${s.resource_uri}redeploy/`);
    const [first] = await settle(u, 1);
    expect(done.status).toBe(202);
    const routes: [string, (hops: string) => Promise<Response>][] = [
      ["call/", (h) => call(trigger.url, { method: "POST", headers: { [HOPS]: h } })],
      ["redeploy/", (h) => hopped(u, "POST", `${s.resource_uri}redeploy/`, h)],
      ["scale/", (h) => hopped(u, "POST", `${s.resource_uri}scale/`, h)],
      ["retry/", (h) => hopped(u, "POST", `${first?.resource_uri}retry/`, h)],
    ];
    for (const [what, send] of routes) {
      for (const bad of ["", "abc", "-1", "1.5", "+1", "0x1", "1, 2", "1 2"]) {
        await expectError(await send(bad), 400, /X-DockerCloud-Hops must be a whole number/, `${what} '${bad}'`);
      }
    }
    expect(await listActions(u)).toHaveLength(1);
  });

  it("a webhook target that calls the service's own trigger is bounded the same way", async () => {
    const u = await createUser();
    const s = await createService(u);
    const trigger = await createTrigger(u, s);
    const patched = await as(u, "PATCH", s.resource_uri, { target: { type: "webhook", url: `${SELF}${trigger.url}` } });
    expect(patched.status).toBe(200);
    const outbound = serveSelf();
    expect((await call(trigger.url, { method: "POST" })).status).toBe(202);
    const actions = await settle(u, HOP_LIMIT + 1);
    await sleep(1_000);
    expect(await listActions(u)).toHaveLength(HOP_LIMIT + 1);
    expect(outbound.map((o) => `${o.hops} ${o.status}`)).toEqual([
      ...Array.from({ length: HOP_LIMIT }, (_, i) => `${i + 1} 202`),
      `${HOP_LIMIT + 1} 409`,
    ]);
    expect(actions.map((x) => x.state)).toEqual([...Array(HOP_LIMIT).fill("Success"), "Failed"]);
    expect(await logsOf(u, (actions.at(-1) as Action).resource_uri)).toMatch(
      /attempt 1: target answered 409: .*loop of Docker Cloud targets/,
    );
  });

  it("retry/ of an action keeps its hop count: a loop cannot be restarted by retrying its last action", async () => {
    const u = await createUser();
    const r = await createService(u);
    const s = await createService(u, { target: dockercloud(u, { service_uuid: r.uuid }) });
    const outbound = serveSelf();
    const res = await hopped(u, "POST", `${s.resource_uri}redeploy/`, String(HOP_LIMIT));
    expect(res.status).toBe(202);
    const failed = await waitForState<Action>(u, res.headers.get("x-dockercloud-action-uri") as string, "Failed");
    expect(await logsOf(u, failed.resource_uri)).toMatch(/loop of Docker Cloud targets/);
    const retried = await as(u, "POST", `${failed.resource_uri}retry/`);
    expect(retried.status).toBe(202);
    const again = await waitForState<Action>(u, retried.headers.get("x-dockercloud-action-uri") as string, "Failed");
    expect(await logsOf(u, again.resource_uri)).toMatch(/target answered 409: .*loop of Docker Cloud targets/);
    expect(outbound.map((o) => `${o.hops} ${o.status}`)).toEqual([`${HOP_LIMIT + 1} 409`, `${HOP_LIMIT + 1} 409`]);
    // A retry asked with a higher hop count than the action's takes the higher one.
    const s2 = await createService(u);
    const plain = await as(u, "POST", `${s2.resource_uri}redeploy/`);
    const ok = await waitForState<Action>(u, plain.headers.get("x-dockercloud-action-uri") as string, "Success");
    expect((await hopped(u, "POST", `${ok.resource_uri}retry/`, "2")).status).toBe(202);
    await settle(u, 4);
    expect((await dispatchStates(u)).map((x) => x.hops)).toEqual([HOP_LIMIT, HOP_LIMIT, 0, 2]);
  });
});

function hopped(user: User, method: string, path: string, hops: string): Promise<Response> {
  return call(path, { method, headers: { authorization: user.auth, [HOPS]: hops } });
}
