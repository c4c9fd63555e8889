import { HttpResponse, http } from "msw";
import { Webhook } from "standardwebhooks";
import { describe, expect, it, vi } from "vitest";
import { gate, logsOf, readJson, sleep, WAIT, waitForState as waitFor } from "./helpers/actions";
import { as, call, createService, createTrigger, createUser, type User, uniqueName } from "./helpers/api";
import { RFC1123 } from "./helpers/formats";
import { network } from "./helpers/msw";

/**
 * The guard rails of trigger calls (src/durable-objects/namespace/call-guards.ts):
 * coalescing of REDEPLOY calls, Idempotency-Key, per-trigger rate limit,
 * SCALEUP bounds at call time, and the trigger's counters. Deliveries go
 * through the real queue; a held delivery is released well inside the 2 s
 * target timeout, and each test waits for every action it started.
 */

type Action = { uuid: string; resource_uri: string; state: string; action: string };
type Service = {
  uuid: string;
  resource_uri: string;
  target_num_containers: number;
  target: { secret?: string } | null;
};
type Trigger = {
  uuid: string;
  name: string;
  operation: string;
  url: string;
  resource_uri: string;
  rate_limit: number;
  call_count: number;
  rejected_count: number;
  last_called: string | null;
};
type Delivery = { id: string | null; payload: { type: string; data: Record<string, unknown> } | null };

async function webhookService(user: User, body: Record<string, unknown> = {}) {
  const url = `https://${uniqueName("hook")}.example.test/ops`;
  const svc = (await createService(user, { target: { type: "webhook", url }, ...body })) as unknown as Service;
  return { svc, url, secret: svc.target?.secret as string };
}

/** Records every delivery to `url` (verified with the secret) and answers 200, holding the first one until `hold`. */
function recordDeliveries(url: string, secret: string, hold?: Promise<void>) {
  const deliveries: Delivery[] = [];
  network.use(
    http.post(url, async ({ request }) => {
      const body = await request.text();
      const payload = new Webhook(secret).verify(body, Object.fromEntries(request.headers)) as Delivery["payload"];
      deliveries.push({ id: request.headers.get("webhook-id"), payload });
      if (deliveries.length === 1 && hold) await hold;
      return HttpResponse.json({ ok: true });
    }),
  );
  return deliveries;
}

async function actionCount(user: User): Promise<number> {
  const r = await as(user, "GET", "/api/audit/v1/action/");
  expect(r.status).toBe(200);
  return (await r.json<{ meta: { total_count: number } }>()).meta.total_count;
}

async function allActions(user: User): Promise<Action[]> {
  const r = await as(user, "GET", "/api/audit/v1/action/?limit=100");
  expect(r.status).toBe(200);
  return (await r.json<{ objects: Action[] }>()).objects;
}

async function readTrigger(user: User, t: { resource_uri: string }): Promise<Trigger> {
  const r = await as(user, "GET", t.resource_uri);
  expect(r.status).toBe(200);
  return r.json<Trigger>();
}

/** A call that must be accepted: 202, the action JSON, and the header naming it. */
async function fire(path: string, headers: Record<string, string> = {}): Promise<Action> {
  const r = await call(path, { method: "POST", headers });
  expect(r.status, await r.clone().text()).toBe(202);
  const a = await r.json<Action>();
  expect(r.headers.get("x-dockercloud-action-uri")).toBe(a.resource_uri);
  return a;
}

async function waitAllFinished(user: User): Promise<void> {
  await vi.waitUntil(
    async () => (await allActions(user)).every((a) => ["Success", "Failed", "Canceled"].includes(a.state)),
    WAIT,
  );
}

const readAction = (user: User, uri: string) => readJson<Action>(user, uri);
const waitForState = (user: User, uri: string, state: string) => waitFor<Action>(user, uri, state);

describe("coalescing", () => {
  it("REDEPLOY calls behind a held delivery join ONE Pending action; 2 deliveries in total", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user);
    const g = gate();
    const deliveries = recordDeliveries(url, secret, g.wait);
    const trigger = await createTrigger(user, svc as never);

    const first = await fire(trigger.url);
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
    const second = await fire(trigger.url);
    const third = await fire(trigger.url);
    const fourth = await fire(trigger.url);
    expect(second.uuid).not.toBe(first.uuid);
    expect(third.uuid).toBe(second.uuid);
    expect(fourth.uuid).toBe(second.uuid);
    const pending = await readAction(user, second.resource_uri);
    expect(pending.state).toBe("Pending");
    const logs = await logsOf(user, second.resource_uri);
    const joinedLines = logs.split("\n").filter((l) => l.includes("joined this pending redeploy"));
    expect(joinedLines).toHaveLength(2);
    expect(joinedLines[0]).toMatch(/\(1 joined\)$/);
    expect(joinedLines[1]).toMatch(/\(2 joined\)$/);
    expect(await actionCount(user)).toBe(2);

    g.release();
    await waitForState(user, first.resource_uri, "Success");
    await waitForState(user, second.resource_uri, "Success");
    await sleep(300);
    expect(deliveries.map((d) => d.id)).toEqual([first.uuid, second.uuid]);
    expect(deliveries.map((d) => d.payload?.type)).toEqual(["service.redeploy", "service.redeploy"]);
    // Every accepted call counts, joined ones included.
    const t = await readTrigger(user, trigger);
    expect(t.call_count).toBe(4);
    expect(t.rejected_count).toBe(0);
  });

  it("a REDEPLOY call made after the pending one started is NOT joined to it", async () => {
    const user = await createUser();
    const svc = (await createService(user)) as unknown as Service;
    const trigger = await createTrigger(user, svc as never);
    const a = await fire(trigger.url);
    await waitForState(user, a.resource_uri, "Success");
    const b = await fire(trigger.url);
    expect(b.uuid).not.toBe(a.uuid);
    await waitForState(user, b.resource_uri, "Success");
    expect(await actionCount(user)).toBe(2);
  });

  it("SCALEUP calls never coalesce: each is its own action and delivery", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user, { target_num_containers: 1, max_num_containers: 10 });
    const g = gate();
    const deliveries = recordDeliveries(url, secret, g.wait);
    const trigger = await createTrigger(user, svc as never, { operation: "SCALEUP" });

    const first = await fire(trigger.url);
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
    const rest = [await fire(trigger.url), await fire(trigger.url), await fire(trigger.url)];
    expect(new Set([first.uuid, ...rest.map((a) => a.uuid)]).size).toBe(4);
    for (const a of rest) expect(await logsOf(user, a.resource_uri)).not.toMatch(/joined/);

    g.release();
    for (const a of [first, ...rest]) await waitForState(user, a.resource_uri, "Success");
    await sleep(300);
    expect(deliveries.map((d) => d.id)).toEqual([first.uuid, ...rest.map((a) => a.uuid)]);
    expect(deliveries.map((d) => d.payload?.data.target_num_containers)).toEqual([2, 3, 4, 5]);
    expect((await readTrigger(user, trigger)).call_count).toBe(4);
  });
});

describe("Idempotency-Key", () => {
  it("a repeated key answers 202 with the first call's action: no second action nor delivery", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user);
    const deliveries = recordDeliveries(url, secret);
    const trigger = await createTrigger(user, svc as never);

    const first = await fire(trigger.url, { "Idempotency-Key": "deploy-42" });
    await waitForState(user, first.resource_uri, "Success");
    const repeat = await fire(trigger.url, { "Idempotency-Key": "deploy-42" });
    expect(repeat.uuid).toBe(first.uuid);
    expect(repeat.state).toBe("Success");
    await sleep(300);
    expect(deliveries.map((d) => d.id)).toEqual([first.uuid]);
    expect(await actionCount(user)).toBe(1);
    // The repeat is not counted as a new call.
    const t = await readTrigger(user, trigger);
    expect(t.call_count).toBe(1);
    expect(t.rejected_count).toBe(0);
  });

  it("a repeat while the first is still Pending answers the same action too", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user, { target_num_containers: 1 });
    const g = gate();
    const deliveries = recordDeliveries(url, secret, g.wait);
    const trigger = await createTrigger(user, svc as never, { operation: "SCALEUP" });
    const held = await fire(trigger.url);
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
    const a = await fire(`${trigger.url}2/`, { "Idempotency-Key": "k1" });
    const b = await fire(`${trigger.url}2/`, { "Idempotency-Key": "k1" });
    expect(b.uuid).toBe(a.uuid);
    expect(b.state).toBe("Pending");
    g.release();
    await waitForState(user, held.resource_uri, "Success");
    await waitForState(user, a.resource_uri, "Success");
    await sleep(300);
    expect(deliveries.map((d) => d.id)).toEqual([held.uuid, a.uuid]);
    // 1 + 1 + 2, not 1 + 1 + 2 + 2.
    expect((await (await as(user, "GET", svc.resource_uri)).json<Service>()).target_num_containers).toBe(4);
  });

  it("another key, or the same key on another trigger, makes a new action", async () => {
    const user = await createUser();
    const svc = (await createService(user)) as unknown as Service;
    const t1 = await createTrigger(user, svc as never);
    const t2 = await createTrigger(user, svc as never);
    const a = await fire(t1.url, { "Idempotency-Key": "same" });
    await waitForState(user, a.resource_uri, "Success");
    const b = await fire(t1.url, { "Idempotency-Key": "other" });
    expect(b.uuid).not.toBe(a.uuid);
    await waitForState(user, b.resource_uri, "Success");
    const c = await fire(t2.url, { "Idempotency-Key": "same" });
    expect(c.uuid).not.toBe(a.uuid);
    expect(c.uuid).not.toBe(b.uuid);
    await waitForState(user, c.resource_uri, "Success");
    expect(await actionCount(user)).toBe(3);
    // The first key still maps to the first action.
    expect((await fire(t1.url, { "Idempotency-Key": "same" })).uuid).toBe(a.uuid);
    expect(await actionCount(user)).toBe(3);
  });

  it("a 255-char key is accepted; 256 chars, spaces or non-ASCII → 400 and no action", async () => {
    const user = await createUser();
    const svc = (await createService(user)) as unknown as Service;
    const trigger = await createTrigger(user, svc as never);
    const ok = await fire(trigger.url, { "Idempotency-Key": "k".repeat(255) });
    await waitForState(user, ok.resource_uri, "Success");
    for (const key of ["k".repeat(256), "has space", "ключ"]) {
      const r = await call(trigger.url, { method: "POST", headers: { "Idempotency-Key": key } });
      expect(r.status, key).toBe(400);
      expect((await r.json<{ error: string }>()).error).toMatch(/Idempotency-Key/);
    }
    expect(await actionCount(user)).toBe(1);
    expect((await readTrigger(user, trigger)).call_count).toBe(1);
  });
});

describe("rate limit", () => {
  it("rate_limit 3: three calls → 202, the 4th → 429 with Retry-After and a JSON error, and no action", async () => {
    const user = await createUser();
    const svc = (await createService(user, { target_num_containers: 1, max_num_containers: 10 })) as unknown as Service;
    const trigger = (await createTrigger(user, svc as never, {
      operation: "SCALEUP",
      rate_limit: 3,
    })) as unknown as Trigger;
    expect(trigger.rate_limit).toBe(3);
    const accepted = [await fire(trigger.url), await fire(trigger.url), await fire(trigger.url)];
    expect(await actionCount(user)).toBe(3);

    const r = await call(trigger.url, { method: "POST" });
    expect(r.status).toBe(429);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    expect(r.headers.get("x-dockercloud-action-uri")).toBeNull();
    const retryAfter = r.headers.get("retry-after") ?? "";
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    expect((await r.json<{ error: string }>()).error).toMatch(/at most 3 calls per minute/);
    expect(await actionCount(user)).toBe(3);

    for (const a of accepted) await waitForState(user, a.resource_uri, "Success");
    const t = await readTrigger(user, trigger);
    expect(t.call_count).toBe(3);
    expect(t.rejected_count).toBe(1);
    expect(await actionCount(user)).toBe(3);
  });

  it("the default rate_limit is 30: 30 calls pass, the 31st → 429", async () => {
    const user = await createUser();
    const svc = (await createService(user)) as unknown as Service;
    const trigger = (await createTrigger(user, svc as never)) as unknown as Trigger;
    expect(trigger.rate_limit).toBe(30);
    expect(trigger.call_count).toBe(0);
    expect(trigger.rejected_count).toBe(0);
    expect(trigger.last_called).toBeNull();
    for (let i = 0; i < 30; i++) {
      const r = await call(trigger.url, { method: "POST" });
      expect(r.status, `call ${i + 1}`).toBe(202);
    }
    const r = await call(trigger.url, { method: "POST" });
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toMatch(/^([1-9]|[1-5]\d|60)$/);
    await waitAllFinished(user);
    const t = await readTrigger(user, trigger);
    expect(t.call_count).toBe(30);
    expect(t.rejected_count).toBe(1);
  });

  it("PATCH {rate_limit: 5, name: 'x'} → 200 with the new values; then two more calls pass and the next is refused", async () => {
    const user = await createUser();
    const svc = (await createService(user)) as unknown as Service;
    const trigger = await createTrigger(user, svc as never, { rate_limit: 3 });
    for (let i = 0; i < 3; i++) expect((await call(trigger.url, { method: "POST" })).status).toBe(202);
    expect((await call(trigger.url, { method: "POST" })).status).toBe(429);

    const p = await as(user, "PATCH", trigger.resource_uri, { rate_limit: 5, name: "x" });
    expect(p.status).toBe(200);
    const patched = await p.json<Trigger>();
    expect(patched).toMatchObject({
      uuid: trigger.uuid,
      name: "x",
      rate_limit: 5,
      operation: "REDEPLOY",
      url: trigger.url,
    });
    expect(await readTrigger(user, trigger)).toMatchObject({ name: "x", rate_limit: 5 });

    expect((await call(trigger.url, { method: "POST" })).status).toBe(202);
    expect((await call(trigger.url, { method: "POST" })).status).toBe(202);
    expect((await call(trigger.url, { method: "POST" })).status).toBe(429);
    await waitAllFinished(user);
    const t = await readTrigger(user, trigger);
    expect(t.call_count).toBe(5);
    expect(t.rejected_count).toBe(2);
  });

  it("invalid rate_limit (0, -1, 1.5, 'x', 100001, null) → 400 on create and on PATCH; 1 and 100000 are accepted", async () => {
    const user = await createUser();
    const svc = (await createService(user)) as unknown as Service;
    const trigger = await createTrigger(user, svc as never, { rate_limit: 7 });
    for (const bad of [0, -1, 1.5, "x", 100001, null]) {
      const created = await as(user, "POST", `${svc.resource_uri}trigger/`, { rate_limit: bad });
      expect(created.status, `create ${JSON.stringify(bad)}`).toBe(400);
      expect((await created.json<{ error: string }>()).error).toMatch(/rate_limit/);
      const patched = await as(user, "PATCH", trigger.resource_uri, { rate_limit: bad });
      expect(patched.status, `patch ${JSON.stringify(bad)}`).toBe(400);
      expect((await patched.json<{ error: string }>()).error).toMatch(/rate_limit/);
    }
    const list = await as(user, "GET", `${svc.resource_uri}trigger/`);
    expect((await list.json<{ meta: { total_count: number } }>()).meta.total_count).toBe(1);
    expect((await readTrigger(user, trigger)).rate_limit).toBe(7);

    for (const good of [1, 100000]) {
      const created = await as(user, "POST", `${svc.resource_uri}trigger/`, { rate_limit: good });
      expect(created.status).toBe(201);
      expect((await created.json<Trigger>()).rate_limit).toBe(good);
      const patched = await as(user, "PATCH", trigger.resource_uri, { rate_limit: good });
      expect(patched.status).toBe(200);
      expect((await patched.json<Trigger>()).rate_limit).toBe(good);
    }
  });
});

describe("SCALEUP bounds at call time", () => {
  it("target 2, max 5: call/2/ held → 202; call/2/ → 409 and no action; call/1/ → 202; ends at 5", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user, { target_num_containers: 2, max_num_containers: 5 });
    const g = gate();
    const deliveries = recordDeliveries(url, secret, g.wait);
    const trigger = await createTrigger(user, svc as never, { operation: "SCALEUP" });

    const first = await fire(`${trigger.url}2/`);
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
    const refused = await call(`${trigger.url}2/`, { method: "POST" });
    expect(refused.status).toBe(409);
    expect(refused.headers.get("x-dockercloud-action-uri")).toBeNull();
    const err = (await refused.json<{ error: string }>()).error;
    expect(err).toMatch(/max_num_containers \(5\)/);
    expect(err).toMatch(/targets 2 containers and 2 more are pending/);
    expect(await actionCount(user)).toBe(1);

    const fits = await fire(`${trigger.url}1/`);
    expect(fits.state).toBe("Pending");
    expect(await actionCount(user)).toBe(2);

    g.release();
    await waitForState(user, first.resource_uri, "Success");
    await waitForState(user, fits.resource_uri, "Success");
    await sleep(300);
    expect(deliveries.map((d) => d.id)).toEqual([first.uuid, fits.uuid]);
    expect(deliveries.map((d) => d.payload?.data.target_num_containers)).toEqual([4, 5]);
    expect((await (await as(user, "GET", svc.resource_uri)).json<Service>()).target_num_containers).toBe(5);

    // At the bound now: even call/1/ is refused.
    expect((await call(`${trigger.url}1/`, { method: "POST" })).status).toBe(409);
    const t = await readTrigger(user, trigger);
    expect(t.call_count).toBe(2);
    expect(t.rejected_count).toBe(2);
    expect(await actionCount(user)).toBe(2);
  });

  it("a count above max_num_containers, 0, or not a number → 400, counted neither accepted nor rejected", async () => {
    const user = await createUser();
    const svc = (await createService(user, { target_num_containers: 1, max_num_containers: 5 })) as unknown as Service;
    const trigger = await createTrigger(user, svc as never, { operation: "SCALEUP" });
    for (const n of ["6", "0", "abc", "-1"]) {
      const r = await call(`${trigger.url}${n}/`, { method: "POST" });
      expect(r.status, n).toBe(400);
    }
    expect(await actionCount(user)).toBe(0);
    const t = await readTrigger(user, trigger);
    expect(t.call_count).toBe(0);
    expect(t.rejected_count).toBe(0);
    expect(t.last_called).toBeNull();
  });
});

describe("trigger counters", () => {
  it("call_count counts accepted calls (joined included, idempotent repeats not); rejected_count the 429s and 409s; last_called is RFC 1123", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user, { target_num_containers: 1, max_num_containers: 3 });
    const g = gate();
    const deliveries = recordDeliveries(url, secret, g.wait);
    const redeploy = await createTrigger(user, svc as never, { rate_limit: 4 });
    const scaleup = await createTrigger(user, svc as never, { operation: "SCALEUP" });

    const before = Date.now();
    const held = await fire(redeploy.url); // 1 accepted
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
    const pending = await fire(redeploy.url, { "Idempotency-Key": "abc" }); // 2 accepted
    const joined = await fire(redeploy.url); // 3 accepted, joins
    expect(joined.uuid).toBe(pending.uuid);
    const repeat = await fire(redeploy.url, { "Idempotency-Key": "abc" }); // idempotent repeat
    expect(repeat.uuid).toBe(pending.uuid);
    await fire(redeploy.url); // 4 accepted, joins
    expect((await call(redeploy.url, { method: "POST" })).status).toBe(429); // rejected 1
    expect((await call(redeploy.url, { method: "POST" })).status).toBe(429); // rejected 2

    const up = await fire(`${scaleup.url}2/`); // 1 + 2 = 3 fits max 3
    expect((await call(`${scaleup.url}1/`, { method: "POST" })).status).toBe(409);

    const r = await readTrigger(user, redeploy);
    expect(r.call_count).toBe(4);
    expect(r.rejected_count).toBe(2);
    expect(r.last_called).toMatch(RFC1123);
    const lastCalled = Date.parse(r.last_called as string);
    expect(lastCalled).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(lastCalled).toBeLessThanOrEqual(Date.now());
    const s = await readTrigger(user, scaleup);
    expect(s.call_count).toBe(1);
    expect(s.rejected_count).toBe(1);
    expect(s.last_called).toMatch(RFC1123);

    // The list shows the same counters.
    const list = await (await as(user, "GET", `${svc.resource_uri}trigger/`)).json<{ objects: Trigger[] }>();
    expect(list.objects.find((t) => t.uuid === redeploy.uuid)).toMatchObject({ call_count: 4, rejected_count: 2 });

    g.release();
    for (const a of [held, pending, up]) await waitForState(user, a.resource_uri, "Success");
    await sleep(300);
    // Rejected calls never appear in the audit log: 3 actions in all.
    const actions = await allActions(user);
    expect(actions.map((a) => a.uuid).sort()).toEqual([held.uuid, pending.uuid, up.uuid].sort());
    expect(deliveries.map((d) => d.id)).toEqual([held.uuid, pending.uuid, up.uuid]);
  });
});
