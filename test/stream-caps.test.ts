/**
 * The caps that keep one member from locking the others out of an
 * organization's streams: API keys per user (keys are self-service, and each
 * brings its own allowance of streams), and streams per user in a namespace,
 * whatever keys they use. Each refusal names its cap; the key cap creates
 * nothing, even under concurrent creates.
 */
import { describe, expect, it, vi } from "vitest";
import { MAX_API_KEYS_PER_USER } from "../src/durable-objects/namespace/api-keys";
import {
  MAX_STREAMS_PER_KEY,
  MAX_STREAMS_PER_NAMESPACE,
  MAX_STREAMS_PER_USER,
} from "../src/durable-objects/namespace/streams";
import { waitForState } from "./helpers/actions";
import { admin, as, basic, call, createOrg, createService, createTrigger, createUser, type User } from "./helpers/api";
import { listen } from "./helpers/sockets";

const KEY_CAP = `a user may hold at most ${MAX_API_KEYS_PER_USER} API keys; revoke one (DELETE /api/account/v1/apikey/<uuid>/) before creating another`;
const USER_CAP = `per-user cap: you have ${MAX_STREAMS_PER_USER} streams open in this namespace, the most one user may hold with all their keys; close one first`;
const KEY_STREAM_CAP = `per-key cap: this API key has ${MAX_STREAMS_PER_KEY} streams open, the most one key may hold; close one first or use another of your keys`;

type Key = { uuid: string; label: string };
type Stream = ReturnType<typeof listen>;

const upgrade = (path: string, auth: string) => call(path, { headers: { upgrade: "websocket", authorization: auth } });

async function stream(path: string, auth: string): Promise<Stream> {
  const res = await upgrade(path, auth);
  if (res.status !== 101) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return listen(res.webSocket as WebSocket);
}

/** The refusal of an upgrade: a 401 whose body is only the error. */
async function refusal(path: string, auth: string): Promise<string> {
  const res = await upgrade(path, auth);
  expect(res.status).toBe(401);
  const body = await res.json<{ error: string }>();
  expect(Object.keys(body)).toEqual(["error"]);
  return body.error;
}

/** A closed socket leaves the object's count a moment after the client closes it. */
async function streamOnceFreed(path: string, auth: string): Promise<Stream> {
  return vi.waitUntil(
    async () => {
      const res = await upgrade(path, auth);
      if (res.status === 101) return listen(res.webSocket as WebSocket);
      await res.body?.cancel();
      return false;
    },
    { timeout: 3000, interval: 50 },
  );
}

async function keysOf(user: User): Promise<Key[]> {
  const r = await as(user, "GET", "/api/account/v1/apikey/");
  expect(r.status).toBe(200);
  return (await r.json<{ objects: Key[] }>()).objects;
}

/** Another key of the user's, as credentials. */
async function anotherKey(user: User, label = "more"): Promise<User> {
  const r = await as(user, "POST", "/api/account/v1/apikey/", { label });
  expect(r.status).toBe(201);
  const { key } = await r.json<{ key: string }>();
  return { ...user, apikey: key, auth: basic(user.username, key) };
}

async function expectRefusedKey(res: Response) {
  expect(res.status).toBe(403);
  expect(await res.json()).toEqual({ error: KEY_CAP });
}

const closeAll = (open: Stream[]) => {
  for (const s of open) s.ws.close();
};

describe(`API keys: at most ${MAX_API_KEYS_PER_USER} per user`, () => {
  it("refuses the next key with 403 on both routes, creating nothing; a revoke makes room for one", async () => {
    const user = await createUser();
    for (let i = 1; i < MAX_API_KEYS_PER_USER; i++) await anotherKey(user, `k${i}`);
    const before = await keysOf(user);
    expect(before).toHaveLength(MAX_API_KEYS_PER_USER);

    await expectRefusedKey(await as(user, "POST", "/api/account/v1/apikey/", { label: "one too many" }));
    await expectRefusedKey(await admin("POST", `/api/admin/v1/user/${user.username}/apikey/`, { label: "admin's" }));
    expect(await keysOf(user)).toEqual(before);

    const gone = before[3] as Key;
    expect((await as(user, "DELETE", `/api/account/v1/apikey/${gone.uuid}/`)).status).toBe(200);
    const made = await as(user, "POST", "/api/account/v1/apikey/", { label: "after a revoke" });
    expect(made.status).toBe(201);
    const after = await keysOf(user);
    expect(after).toHaveLength(MAX_API_KEYS_PER_USER);
    expect(after.map((k) => k.label)).toContain("after a revoke");
    expect(after.map((k) => k.uuid)).not.toContain(gone.uuid);
    await expectRefusedKey(await admin("POST", `/api/admin/v1/user/${user.username}/apikey/`, { label: "again" }));
  });

  it("holds under concurrent creates: exactly enough succeed to reach the cap", async () => {
    const user = await createUser();
    const extra = 5;
    // The runtime's digest settles before another request can run; made to yield here, a count taken
    // before the hash would let every create in flight pass it.
    const digest = crypto.subtle.digest.bind(crypto.subtle);
    const slow = vi.spyOn(crypto.subtle, "digest").mockImplementation(async (...args) => {
      await new Promise((r) => setTimeout(r, 5));
      return digest(...args);
    });
    let answers: Response[];
    try {
      answers = await Promise.all(
        Array.from({ length: MAX_API_KEYS_PER_USER - 1 + extra }, (_, i) =>
          i % 2 === 0
            ? as(user, "POST", "/api/account/v1/apikey/", { label: `c${i}` })
            : admin("POST", `/api/admin/v1/user/${user.username}/apikey/`, { label: `c${i}` }),
        ),
      );
    } finally {
      slow.mockRestore();
    }
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(MAX_API_KEYS_PER_USER - 1);
    expect(statuses.filter((s) => s === 403)).toHaveLength(extra);
    for (const r of answers) if (r.status === 403) expect(await r.json()).toEqual({ error: KEY_CAP });
    expect(await keysOf(user)).toHaveLength(MAX_API_KEYS_PER_USER);
  });

  it("the OpenAPI document declares the 403 of both routes that create keys", async () => {
    const doc = await (await call("/api/openapi.json")).json<{
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    }>();
    expect(Object.keys(doc.paths["/api/account/v1/apikey/"]?.post?.responses ?? {})).toContain("403");
    expect(Object.keys(doc.paths["/api/admin/v1/user/{username}/apikey/"]?.post?.responses ?? {})).toContain("403");
  });
});

describe("streams: caps per user and per key, each named in its refusal", () => {
  it(`a member holds at most ${MAX_STREAMS_PER_USER} streams of an organization, whatever the keys; the others still get theirs`, async () => {
    const greedy = await createUser();
    const other = await createUser();
    const org = await createOrg(undefined, [greedy.username, other.username]);
    const events = `/api/audit/v1/${org}/events`;
    const keys = [greedy];
    while (keys.length * MAX_STREAMS_PER_KEY < MAX_STREAMS_PER_USER) keys.push(await anotherKey(greedy));
    const open: Stream[] = [];
    try {
      for (const k of keys) {
        for (let i = 0; i < MAX_STREAMS_PER_KEY && open.length < MAX_STREAMS_PER_USER; i++) {
          open.push(await stream(events, k.auth));
        }
      }
      expect(open).toHaveLength(MAX_STREAMS_PER_USER);
      expect(MAX_STREAMS_PER_USER).toBeLessThan(MAX_STREAMS_PER_NAMESPACE);

      // A fresh key, with none of its own open: the user's cap is what refuses it.
      const fresh = await anotherKey(greedy, "fresh");
      expect(await refusal(events, fresh.auth)).toBe(USER_CAP);
      expect(await refusal(events, greedy.auth)).toBe(USER_CAP);

      // The cap counts followed action logs too: it refuses them with the same words.
      const svc = await createService(other, {}, org);
      const trigger = await createTrigger(other, svc, { operation: "REDEPLOY" });
      const fired = await call(trigger.url, { method: "POST" });
      expect(fired.status).toBe(202);
      const action = await fired.json<{ resource_uri: string }>();
      await waitForState(other, action.resource_uri, "Success");
      expect(await refusal(`${action.resource_uri}logs/?follow=true`, fresh.auth)).toBe(USER_CAP);

      // Another member of the organization is not locked out, and the cap is per namespace.
      open.push(await stream(events, other.auth));
      open.push(await stream("/api/audit/v1/events", fresh.auth));

      // Closing one of the member's streams makes room for exactly one.
      open[0]?.ws.close();
      open.push(await streamOnceFreed(events, fresh.auth));
      expect(await refusal(events, fresh.auth)).toBe(USER_CAP);
    } finally {
      closeAll(open);
    }
  }, 60_000);

  it(`a key holds at most ${MAX_STREAMS_PER_KEY}, refused in its own words; another key of the user's is served`, async () => {
    const user = await createUser();
    const open: Stream[] = [];
    try {
      for (let i = 0; i < MAX_STREAMS_PER_KEY; i++) open.push(await stream("/api/audit/v1/events", user.auth));
      expect(await refusal("/api/audit/v1/events", user.auth)).toBe(KEY_STREAM_CAP);
      const second = await anotherKey(user);
      open.push(await stream("/api/audit/v1/events", second.auth));
    } finally {
      closeAll(open);
    }
  });
});
