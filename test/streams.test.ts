/**
 * Docker Cloud's live streams, through the Worker: the events stream
 * (`/api/audit/v1/[<ns>/]events`) and an action's log (`.../action/<uuid>/logs/`,
 * a stream on an upgrade, a JSON list otherwise). Authenticated as REST
 * (Basic, or Go's `?user=&token=` query), every refused upgrade a 401, every
 * field of every event present, Go's filters honoured, the sockets closed when
 * a membership or a key is revoked, bounded per key and per namespace (the
 * per-user bound and the cap on keys: test/stream-caps.test.ts).
 */
import { HttpResponse, http } from "msw";
import { describe, expect, it, vi } from "vitest";
import {
  MAX_STREAMS_PER_KEY,
  MAX_STREAMS_PER_NAMESPACE,
  MAX_STREAMS_PER_USER,
} from "../src/durable-objects/namespace/streams";
import { gate, logsOf, readJson, sleep, WAIT, waitForState } from "./helpers/actions";
import { admin, as, basic, call, createOrg, createService, createTrigger, createUser, type User } from "./helpers/api";
import { network } from "./helpers/msw";
import { listen } from "./helpers/sockets";

type Event = {
  type: string;
  action: string;
  uuid: string;
  resource_uri: string;
  state: string;
  parents: string[];
  datetime: string;
  data: Record<string, unknown>;
};
type Action = { uuid: string; resource_uri: string; state: string };

const upgrade = (path: string, headers: Record<string, string> = {}) =>
  call(path, { headers: { upgrade: "websocket", ...headers } });

async function stream(path: string, user: User | null, headers: Record<string, string> = {}) {
  const res = await upgrade(path, user ? { authorization: user.auth, ...headers } : headers);
  if (res.status !== 101) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return listen(res.webSocket as WebSocket);
}

async function refused(path: string, headers: Record<string, string>) {
  const res = await upgrade(path, headers);
  expect(res.status).toBe(401);
  expect(Object.keys(await res.json<{ error: string }>())).toEqual(["error"]);
}

async function fire(url: string, body?: string): Promise<Action> {
  const r = await call(url, { method: "POST", ...(body === undefined ? {} : { body }) });
  expect(r.status).toBe(202);
  return r.json<Action>();
}

describe("the events stream", () => {
  it("answers a non-upgrade with 426, and refuses every upgrade it may not open with 401", async () => {
    const user = await createUser();
    const stranger = await createUser();
    const org = await createOrg();
    const res = await call("/api/audit/v1/events", { headers: { authorization: user.auth } });
    expect(res.status).toBe(426);
    await refused("/api/audit/v1/events", {});
    await refused("/api/audit/v1/events", { authorization: basic(user.username, "wrong-key") });
    await refused("/api/audit/v1/events", { authorization: "Bearer nonsense" });
    await refused(`/api/audit/v1/${org}/events`, { authorization: user.auth });
    await refused(`/api/audit/v1/${stranger.username}/events/`, { authorization: user.auth });
    await refused("/api/audit/v1/nosuchnamespace/events", { authorization: user.auth });
    for (const path of ["/api/audit/v1/events", "/api/audit/v1/events/", `/api/audit/v1/${user.username}/events`]) {
      (await stream(path, user)).ws.close();
    }
    // A page of another site may dial a WebSocket (no CORS): its Origin is refused; the SDKs' are not.
    await refused("/api/audit/v1/events", { authorization: user.auth, origin: "https://evil.example" });
    await refused("/api/audit/v1/events", { authorization: user.auth, origin: "null" });
    for (const origin of ["https://api.test", "http://api.test", "https://triggers.example.test"]) {
      (await stream("/api/audit/v1/events", user, { origin })).ws.close();
    }
    // Go's query credentials, here too; a wrong one is the same 401, and neither is echoed.
    (
      await stream(`/api/audit/v1/events?user=${user.username}&token=${encodeURIComponent(user.apikey)}`, null)
    ).ws.close();
    const bad = await upgrade(`/api/audit/v1/events?user=${user.username}&token=wrong-token-4242`);
    expect(bad.status).toBe(401);
    expect(await bad.text()).not.toContain("wrong-token-4242");
  });

  it("carries a trigger call's action from Pending to Success, every field in every message", async () => {
    const user = await createUser();
    const events = await stream("/api/audit/v1/events", user);
    const svc = await createService(user, { name: "web" });
    const trigger = await createTrigger(user, svc, { operation: "REDEPLOY" });
    const action = await fire(trigger.url);
    await waitForState(user, action.resource_uri, "Success");
    await events.until(
      () => events.parsed<Event>().some((e) => e.uuid === action.uuid && e.state === "Success"),
      "the action's Success",
    );
    const all = events.parsed<Event>();
    for (const e of all) {
      expect(Object.keys(e).sort()).toEqual(
        ["action", "data", "datetime", "parents", "resource_uri", "state", "type", "uuid"].sort(),
      );
      for (const k of ["type", "action", "uuid", "resource_uri", "state", "datetime"] as const) {
        expect(typeof e[k]).toBe("string");
      }
      expect(Array.isArray(e.parents)).toBe(true);
      expect(e.data !== null && typeof e.data === "object" && !Array.isArray(e.data)).toBe(true);
    }
    expect(all[0]).toMatchObject({ type: "service", action: "create", uuid: svc.uuid, state: "Not running" });
    expect(all.find((e) => e.type === "trigger")).toMatchObject({
      action: "create",
      state: "",
      parents: [svc.resource_uri],
    });
    const states = all.filter((e) => e.uuid === action.uuid).map((e) => `${e.action}:${e.state}`);
    expect(states).toEqual(["create:Pending", "update:In progress", "update:Success"]);
    expect(all.filter((e) => e.uuid === action.uuid).every((e) => e.parents[0] === svc.resource_uri)).toBe(true);
    expect(all.some((e) => e.type === "service" && e.action === "update" && e.state === "Running")).toBe(true);
    events.ws.close();
  });

  it("honours Go's filters: object, type, parents", async () => {
    const user = await createUser();
    const a = await createService(user, { name: "a" });
    const b = await createService(user, { name: "b" });
    const onlyActions = await stream("/api/audit/v1/events?type=action", user);
    const onlyA = await stream(`/api/audit/v1/events?parents=${encodeURIComponent(a.resource_uri)}`, user);
    const onlyB = await stream(`/api/audit/v1/events?object=${encodeURIComponent(b.resource_uri)}`, user);
    const ta = await createTrigger(user, a, { operation: "REDEPLOY" });
    await as(user, "PATCH", b.resource_uri, { target_num_containers: 2 });
    const done = await fire(ta.url);
    await waitForState(user, done.resource_uri, "Success");
    await onlyA.until(() => onlyA.parsed<Event>().some((e) => e.state === "Success"), "a's action's Success");
    await sleep(100);
    expect(onlyActions.parsed<Event>().every((e) => e.type === "action")).toBe(true);
    expect(onlyActions.parsed<Event>().length).toBeGreaterThanOrEqual(3);
    expect(onlyA.parsed<Event>().every((e) => e.parents.includes(a.resource_uri))).toBe(true);
    expect(onlyA.parsed<Event>().map((e) => e.type)).toContain("trigger");
    expect(onlyB.parsed<Event>().map((e) => `${e.type}:${e.action}`)).toEqual(["service:update"]);
  });

  it("closes at once when the membership or the key is revoked, and refuses the re-dial", async () => {
    const member = await createUser();
    const org = await createOrg(undefined, [member.username]);
    const orgStream = await stream(`/api/audit/v1/${org}/events`, member);
    expect((await admin("DELETE", `/api/admin/v1/organization/${org}/member/${member.username}/`)).status).toBe(200);
    await orgStream.until(() => orgStream.closed() !== null, "the org stream to close");
    expect(orgStream.closed()?.code).toBe(4401);
    await refused(`/api/audit/v1/${org}/events`, { authorization: member.auth });

    const user = await createUser();
    const org2 = await createOrg(undefined, [user.username]);
    const own = await stream("/api/audit/v1/events", user);
    const theirs = await stream(`/api/audit/v1/${org2}/events`, user);
    const keys = await (await as(user, "GET", "/api/account/v1/apikey/")).json<{ objects: { uuid: string }[] }>();
    for (const k of keys.objects)
      expect((await as(user, "DELETE", `/api/account/v1/apikey/${k.uuid}/`)).status).toBe(200);
    await own.until(() => own.closed() !== null, "the own stream to close");
    await theirs.until(() => theirs.closed() !== null, "the org stream to close");
    await refused("/api/audit/v1/events", { authorization: user.auth });
  });

  it(`holds at most ${MAX_STREAMS_PER_KEY} streams per key`, async () => {
    const user = await createUser();
    const open = [];
    for (let i = 0; i < MAX_STREAMS_PER_KEY; i++) open.push(await stream("/api/audit/v1/events", user));
    const res = await upgrade("/api/audit/v1/events", { authorization: user.auth });
    expect(res.status).toBe(401);
    expect((await res.json<{ error: string }>()).error).toContain(`${MAX_STREAMS_PER_KEY} streams open`);
    open[0]?.ws.close();
    await sleep(100);
    (await stream("/api/audit/v1/events", user)).ws.close();
    for (const s of open) s.ws.close();
  });

  it(`holds at most ${MAX_STREAMS_PER_NAMESPACE} streams per namespace, whatever the members and keys`, async () => {
    // A member holds at most MAX_STREAMS_PER_USER (test/stream-caps.test.ts): filling the namespace takes several.
    const members: User[] = [];
    for (let m = 0; m * MAX_STREAMS_PER_USER < MAX_STREAMS_PER_NAMESPACE; m++) members.push(await createUser());
    const late = await createUser();
    const org = await createOrg(undefined, [...members.map((m) => m.username), late.username]);
    const open = [];
    for (const member of members) {
      for (let k = 0; k * MAX_STREAMS_PER_KEY < MAX_STREAMS_PER_USER; k++) {
        const made = await admin("POST", `/api/admin/v1/user/${member.username}/apikey/`, { label: `k${k}` });
        const key = (await made.json<{ key: string }>()).key;
        const keyed = { ...member, apikey: key, auth: basic(member.username, key) };
        for (let i = 0; i < MAX_STREAMS_PER_KEY && open.length < MAX_STREAMS_PER_NAMESPACE; i++) {
          open.push(await stream(`/api/audit/v1/${org}/events`, keyed));
        }
      }
    }
    expect(open).toHaveLength(MAX_STREAMS_PER_NAMESPACE);
    const res = await upgrade(`/api/audit/v1/${org}/events`, { authorization: late.auth });
    expect(res.status).toBe(401);
    const error = (await res.json<{ error: string }>()).error;
    expect(error).toContain("per-namespace cap");
    expect(error).toContain(`${MAX_STREAMS_PER_NAMESPACE} streams open`);
    for (const s of open) s.ws.close();
  }, 60_000);
});

describe("an action's log", () => {
  async function finishedAction() {
    const user = await createUser();
    const svc = await createService(user, { name: "web" });
    const trigger = await createTrigger(user, svc, { operation: "REDEPLOY" });
    const a = await fire(trigger.url);
    await waitForState(user, a.resource_uri, "Success");
    return { user, svc, trigger, a };
  }

  it("is not part of the action object; its lines are a JSON list at .../logs/, the last `tail` of them", async () => {
    const { user, a, trigger } = await finishedAction();
    expect(Object.keys(await readJson<object>(user, a.resource_uri))).not.toContain("logs");
    expect(Object.keys(await fire(trigger.url))).not.toContain("logs");
    const list = await (await as(user, "GET", `${a.resource_uri}logs/`)).json<{
      meta: { total_count: number };
      objects: { type: string; log: string; timestamp: number }[];
    }>();
    expect(list.objects.length).toBeGreaterThan(0);
    for (const m of list.objects) {
      expect(m.type).toBe("log");
      expect(Number.isInteger(m.timestamp)).toBe(true);
      expect(m.timestamp).toBe(Math.floor(Date.parse(m.log.slice(0, 24)) / 1000));
    }
    const last = await (await as(user, "GET", `${a.resource_uri}logs/?tail=1`)).json<{ objects: { log: string }[] }>();
    expect(last.objects.map((o) => o.log)).toEqual([list.objects.at(-1)?.log]);
    expect((await call(`${a.resource_uri}logs/`)).status).toBe(401);
    expect((await as(user, "GET", `${a.resource_uri}logs/?tail=0`)).status).toBe(400);
  });

  it("takes Go's ?user=&token= and never echoes them", async () => {
    const { user, a } = await finishedAction();
    const q = `?user=${user.username}&token=${encodeURIComponent(user.apikey)}`;
    const ok = await call(`${a.resource_uri}logs/${q}`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).not.toContain(user.apikey);
    const bad = await call(`${a.resource_uri}logs/?user=${user.username}&token=not-the-key-12345`);
    expect(bad.status).toBe(401);
    expect(await bad.text()).not.toContain("not-the-key-12345");
    const s = await stream(`${a.resource_uri}logs/${q}`, null);
    await s.until(() => s.closed() !== null, "the stream to end");
    expect(s.messages.join("\n")).not.toContain(user.apikey);
  });

  it("as a stream: follow=false sends the lines and closes; a finished action closes even with follow=true", async () => {
    const { user, a } = await finishedAction();
    const expected = (await logsOf(user, a.resource_uri)).split("\n");
    for (const follow of ["false", "true"]) {
      const s = await stream(`${a.resource_uri}logs/?follow=${follow}`, user);
      await s.until(() => s.closed() !== null, "the stream to end");
      expect(s.parsed<{ log: string }>().map((m) => m.log)).toEqual(expected);
      expect(s.closed()?.code).toBe(1000);
    }
    const tail = await stream(`${a.resource_uri}logs/?follow=false&tail=1`, user);
    await tail.until(() => tail.closed() !== null, "the stream to end");
    expect(tail.parsed<{ log: string }>().map((m) => m.log)).toEqual(expected.slice(-1));
  });

  it("follows a running action's new lines and closes when it finishes", async () => {
    const user = await createUser();
    const url = `https://${crypto.randomUUID().slice(0, 8)}.hooks.example.test/deploy`;
    const svc = await createService(user, { name: "web", target: { type: "webhook", url } });
    const trigger = await createTrigger(user, svc, { operation: "REDEPLOY" });
    const held = gate();
    let attempts = 0;
    network.use(
      http.post(url, async () => {
        attempts += 1;
        if (attempts === 1) return new HttpResponse("busy", { status: 503 });
        await held.wait;
        return new HttpResponse(null, { status: 200 });
      }),
    );
    const a = await fire(trigger.url);
    await vi.waitUntil(() => attempts === 2, WAIT);
    const s = await stream(`${a.resource_uri}logs/?follow=true`, user);
    await s.until(
      () => s.parsed<{ log: string }>().some((m) => m.log.includes("attempt 1")),
      "the first attempt's line",
    );
    expect(s.closed()).toBeNull();
    held.release();
    await s.until(() => s.closed() !== null, "the stream to close once the action finished");
    expect(s.closed()?.code).toBe(1000);
    const lines = s.parsed<{ log: string }>().map((m) => m.log);
    expect(lines.some((l) => l.includes("attempt 2"))).toBe(true);
    expect(lines.join("\n")).toBe(await logsOf(user, a.resource_uri));
  });

  it("refuses with 401 an upgrade it may not serve", async () => {
    const { user, a } = await finishedAction();
    const other = await createUser();
    await refused(`${a.resource_uri}logs/`, {});
    await refused(`${a.resource_uri}logs/`, { authorization: other.auth });
    await refused(`/api/audit/v1/action/${crypto.randomUUID()}/logs/`, { authorization: user.auth });
    await refused(`${a.resource_uri}logs/?tail=nope`, { authorization: user.auth });
  });
});
