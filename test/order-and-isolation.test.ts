import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { HttpResponse, http } from "msw";
import { describe, expect, it, vi } from "vitest";
import type { NamespaceObject } from "../src/durable-objects/namespace";
import { gate, readJson, sleep, WAIT, waitForState } from "./helpers/actions";
import { as, call, createService, createTrigger, createUser, type User } from "./helpers/api";
import { network } from "./helpers/msw";

/**
 * Order, isolation and recovery through the real queue and consumer
 * (vitest.config.ts: retry base delay 0, target timeout 2 s, MAX_ATTEMPTS 4).
 */

type Action = { uuid: string; resource_uri: string; state: string };

async function webhookService(user: User, body: Record<string, unknown> = {}) {
  const url = `https://${crypto.randomUUID().slice(0, 8)}.hooks.example.test/deploy`;
  const svc = await createService(user, { target: { type: "webhook", url }, ...body });
  return { svc, url };
}

async function fire(url: string): Promise<Action> {
  const r = await call(url, { method: "POST" });
  expect(r.status, await r.clone().text()).toBe(202);
  return r.json<Action>();
}

describe("per-service order holds under cancel", () => {
  it("A1 waits for its retry, A2..A4 wait, A4 is canceled: A2 and A3 go only after A1 succeeds; the count ends at start + 3", async () => {
    const user = await createUser();
    const { svc, url } = await webhookService(user, { target_num_containers: 1, max_num_containers: 10 });
    const trigger = await createTrigger(user, svc, { operation: "SCALEUP" });
    const held = gate();
    const deliveries: { action: string | null; count: number }[] = [];
    let first = true;
    network.use(
      http.post(url, async ({ request }) => {
        const payload = (await request.json()) as { data: { target_num_containers: number } };
        deliveries.push({ action: request.headers.get("webhook-id"), count: payload.data.target_num_containers });
        if (first) {
          // A1's first delivery is held while the later calls and the cancel happen, then answered 500.
          first = false;
          await held.wait;
          return new HttpResponse("try again", { status: 500 });
        }
        return new HttpResponse(null, { status: 200 });
      }),
    );

    const a1 = await fire(trigger.url);
    await vi.waitUntil(() => deliveries.length === 1, WAIT);
    const a2 = await fire(trigger.url);
    const a3 = await fire(trigger.url);
    const a4 = await fire(trigger.url);
    const canceled = await as(user, "POST", `${a4.resource_uri}cancel/`);
    expect(canceled.status).toBe(200);
    // Anything wrongly let go by the cancel would be delivered now, while A1 is still unanswered.
    await sleep(500);
    expect(deliveries.map((d) => d.action)).toEqual([a1.uuid]);
    held.release();

    for (const a of [a1, a2, a3]) await waitForState(user, a.resource_uri, "Success");
    expect((await readJson<Action>(user, a4.resource_uri)).state).toBe("Canceled");
    expect(deliveries.map((d) => d.action)).toEqual([a1.uuid, a1.uuid, a2.uuid, a3.uuid]);
    expect(deliveries.map((d) => d.count)).toEqual([2, 2, 3, 4]);
    const after = await readJson<{ target_num_containers: number }>(user, svc.resource_uri);
    expect(after.target_num_containers).toBe(4);
  });
});

describe("one service's hanging target delays only that service", () => {
  it("another tenant's call is delivered while the first tenant's delivery hangs", async () => {
    const slowUser = await createUser();
    const fastUser = await createUser();
    const slow = await webhookService(slowUser);
    const fast = await webhookService(fastUser);
    const slowTrigger = await createTrigger(slowUser, slow.svc);
    const fastTrigger = await createTrigger(fastUser, fast.svc);
    const hang = gate();
    let slowOpen = false;
    let slowWasOpenWhenFastArrived: boolean | null = null;
    network.use(
      http.post(slow.url, async ({ request }) => {
        slowOpen = true;
        request.signal.addEventListener("abort", () => {
          slowOpen = false;
        });
        await hang.wait;
        slowOpen = false;
        return new HttpResponse(null, { status: 200 });
      }),
      http.post(fast.url, () => {
        slowWasOpenWhenFastArrived = slowOpen;
        return new HttpResponse(null, { status: 200 });
      }),
    );

    const s = await fire(slowTrigger.url);
    await vi.waitUntil(() => slowOpen, WAIT);
    const f = await fire(fastTrigger.url);
    await waitForState(fastUser, f.resource_uri, "Success");
    expect(slowWasOpenWhenFastArrived, "the slow delivery was still waiting for its answer").toBe(true);
    hang.release();
    await waitForState(slowUser, s.resource_uri, "Success");
  });
});

describe("a consumer that died mid-attempt", () => {
  it("a redelivered message is acked while the attempt may still run; the object's deadline brings the action back after it", async () => {
    const user = await createUser();
    const { svc, url } = await webhookService(user);
    const trigger = await createTrigger(user, svc);
    const ns = env.NAMESPACES.getByName(user.username);
    let delivered = 0;
    network.use(
      http.post(url, () => {
        delivered += 1;
        return new HttpResponse(null, { status: 200 });
      }),
    );
    // An action whose attempt started a moment ago on a consumer that then died: nothing will report it.
    const a = await fire(trigger.url);
    await vi.waitUntil(() => delivered === 1, WAIT);
    await waitForState(user, a.resource_uri, "Success");
    const b = await fire(trigger.url);
    await vi.waitUntil(() => delivered === 2, WAIT);
    await waitForState(user, b.resource_uri, "Success");
    // Rewind b as if its attempt had started and been lost: In progress, attempt started now.
    const startedAt = Date.now();
    await runInDurableObject(ns, (_o: NamespaceObject, state) => {
      state.storage.sql.exec(
        `UPDATE actions SET state = 'In progress', end_at = NULL, attempt_started_at = ?, dispatch = 'queued',
           due_at = ? WHERE uuid = ?`,
        startedAt,
        startedAt + 3 * 2000 + 5000,
        b.uuid,
      );
    });
    // A redelivery now is acked and performs nothing: the attempt may still be running.
    const begun = await ns.beginAttempt(b.uuid);
    expect(begun).toEqual({ status: "done", reason: "another delivery of this action is being performed" });
    expect(delivered).toBe(2);
    // The alarm before the deadline hands nothing over.
    await runDurableObjectAlarm(ns);
    await sleep(300);
    expect(delivered).toBe(2);
    // Past the deadline (moved here instead of waiting 11 s), the alarm hands it to the queue again.
    await runInDurableObject(ns, (_o: NamespaceObject, state) => {
      state.storage.sql.exec(
        "UPDATE actions SET attempt_started_at = ?, due_at = ? WHERE uuid = ?",
        startedAt - 60_000,
        Date.now() - 1,
        b.uuid,
      );
    });
    await runDurableObjectAlarm(ns);
    await waitForState(user, b.resource_uri, "Success");
    expect(delivered).toBe(3);
  });
});
