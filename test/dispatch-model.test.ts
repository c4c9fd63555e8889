/**
 * Model-based property test of per-service order (fast-check). Random
 * interleavings of everything that can happen to a service's actions drive
 * the real code: trigger calls (REDEPLOY, which may join, and SCALEUP by 1 to
 * 3), the API's redeploy/, cancel/ and retry/ (over HTTP, through the Worker),
 * the object's outbox (`takeDue`, what its alarm sends), deliveries of queue
 * messages (`beginAttempt`), duplicated messages, attempt reports
 * (`finishAttempt`: success, retryable, permanent; chained or not), the dead-
 * letter verdict (`giveUp`), time passing, a consumer crash (its attempts
 * never report) and a runtime crash (messages lost, object evicted). The test
 * plays the queue and the consumer; the clock is faked (Date only), so
 * deadlines pass on command.
 *
 * After every step:
 *   - at most one action of the service is In progress;
 *   - an action starts only when every earlier action of its service has
 *     finished, and never while another attempt of the service is live;
 *   - an action answered Canceled is never started;
 *   - target_num_containers = start + the scale-ups that succeeded, and it is
 *     what the orchestrator was last told by a successful attempt;
 *   - the head of the service (its first unfinished action) has a deadline,
 *     every other unfinished action waits.
 * After the steps, the queue and consumer run without faults until every
 * action has finished: nothing accepted is lost.
 *
 * CI runs MODEL_RUNS (vitest.config.ts, default 60); by hand:
 *   MODEL_RUNS=1000 npx vitest run test/dispatch-model.test.ts
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import type { ActionRow } from "../src/domain/action";
import type { NamespaceObject } from "../src/durable-objects/namespace";
import { takeDue } from "../src/durable-objects/namespace/dispatch";
import type { Job } from "../src/targets/job";
import { as, call, createService, createTrigger, createUser, type User } from "./helpers/api";

const NUM_RUNS = inject("modelRuns");

/** The object's settings for this test: real delays, few attempts. */
const VARS = {
  RETRY_BASE_DELAY_SECONDS: "5",
  RETRY_MAX_DELAY_SECONDS: "60",
  MAX_ATTEMPTS: "4",
  TARGET_TIMEOUT_MS: "2000",
  DISPATCH_LEASE_SECONDS: "30",
};
const WINDOW_MS = 3 * 2000 + 5000;
const LEASE_MS = 30_000;
const START = 1;
const MAX = 40;

type Op =
  | { t: "callScale"; n: number }
  | { t: "callRedeploy" }
  | { t: "userRedeploy" }
  | { t: "cancel"; pick: number }
  | { t: "retry"; pick: number }
  | { t: "dispatch" }
  | { t: "deliver"; pick: number; keepCopy: boolean }
  | { t: "report"; pick: number; outcome: "success" | "retry" | "failed"; chain: boolean }
  | { t: "advance"; ms: number }
  | { t: "crashConsumer" }
  | { t: "crashRuntime" }
  | { t: "deadLetter"; pick: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }).map((n): Op => ({ t: "callScale", n })) },
  { weight: 2, arbitrary: fc.constant<Op>({ t: "callRedeploy" }) },
  { weight: 1, arbitrary: fc.constant<Op>({ t: "userRedeploy" }) },
  { weight: 2, arbitrary: fc.nat().map((pick): Op => ({ t: "cancel", pick })) },
  { weight: 1, arbitrary: fc.nat().map((pick): Op => ({ t: "retry", pick })) },
  { weight: 4, arbitrary: fc.constant<Op>({ t: "dispatch" }) },
  {
    weight: 6,
    arbitrary: fc.record({ pick: fc.nat(), keepCopy: fc.boolean() }).map((r): Op => ({ t: "deliver", ...r })),
  },
  {
    weight: 6,
    arbitrary: fc
      .record({
        pick: fc.nat(),
        outcome: fc.constantFrom("success", "success", "retry", "failed") as fc.Arbitrary<
          "success" | "retry" | "failed"
        >,
        chain: fc.boolean(),
      })
      .map((r): Op => ({ t: "report", ...r })),
  },
  { weight: 2, arbitrary: fc.constantFrom(1_000, 10_000, 40_000, 300_000).map((ms): Op => ({ t: "advance", ms })) },
  { weight: 1, arbitrary: fc.constant<Op>({ t: "crashConsumer" }) },
  { weight: 1, arbitrary: fc.constant<Op>({ t: "crashRuntime" }) },
  { weight: 1, arbitrary: fc.nat().map((pick): Op => ({ t: "deadLetter", pick })) },
);

type Attempt = { uuid: string; attempt: number; startedAt: number; job: Job };
type Row = Pick<
  ActionRow,
  "uuid" | "seq" | "kind" | "state" | "dispatch" | "due_at" | "scale_by" | "attempts" | "new_target"
> & { logs: string };

const FINISHED = new Set(["Success", "Failed", "Canceled"]);
const pickFrom = <T>(list: T[], pick: number): T | undefined => (list.length ? list[pick % list.length] : undefined);

let user: User;
let stub: DurableObjectStub<NamespaceObject>;
const stats = { runs: 0, steps: 0, actions: 0, begun: 0, successes: 0, canceled: 0, crashes: 0, stale: 0 };

/** Gives the object this test's settings (again after an eviction, which forgets them). */
async function prime() {
  await runInDurableObject(stub, (o: NamespaceObject) => {
    Object.defineProperty(o, "env", { value: { ...env, ...VARS }, configurable: true });
  });
}

async function rows(service: string): Promise<Row[]> {
  return runInDurableObject(stub, (_o: NamespaceObject, state) =>
    state.storage.sql
      .exec<Row>(
        `SELECT uuid, seq, kind, state, dispatch, due_at, scale_by, attempts, new_target,
           COALESCE((SELECT group_concat(line, char(10)) FROM (SELECT line FROM action_logs WHERE action_uuid = actions.uuid ORDER BY n)), '') AS logs
         FROM actions WHERE service_uuid = ? ORDER BY seq`,
        service,
      )
      .toArray(),
  );
}

async function registryTarget(service: string): Promise<number> {
  return runInDurableObject(
    stub,
    (_o: NamespaceObject, state) =>
      state.storage.sql
        .exec<{ t: number }>("SELECT target_num_containers AS t FROM services WHERE uuid = ?", service)
        .one().t,
  );
}

/** One run: a fresh service, the ops, the checks; then a fault-free drain. */
async function run(ops: Op[]) {
  stats.runs += 1;
  // A namespace of its own per run: the outbox hands over every due action of a namespace.
  user = await createUser();
  stub = env.NAMESPACES.getByName(user.username);
  const svc = await createService(user, { target_num_containers: START, max_num_containers: MAX });
  const redeployTrigger = await createTrigger(user, svc, { operation: "REDEPLOY", rate_limit: 100_000 });
  const scaleTrigger = await createTrigger(user, svc, { operation: "SCALEUP", rate_limit: 100_000 });
  await prime();

  const known = new Set<string>(); // every action the API answered with
  const canceled = new Set<string>();
  let inflight: string[] = []; // queue messages, by action uuid
  let running: Attempt[] = []; // attempts started and not reported
  let lastTold: number | null = null; // the count the orchestrator was last told by a successful attempt

  const now = () => Date.now();
  const live = (a: Attempt) => now() - a.startedAt < WINDOW_MS;

  const checkState = async (what: string) => {
    const rs = await rows(svc.uuid);
    expect(rs.filter((r) => r.state === "In progress").length, `${what}: at most one In progress`).toBeLessThanOrEqual(
      1,
    );
    const open = rs.filter((r) => !FINISHED.has(r.state));
    for (const [i, r] of open.entries()) {
      if (i === 0) {
        expect(r.dispatch, `${what}: the head may run`).not.toBe("waiting");
        expect(r.due_at, `${what}: the head has a deadline`).not.toBeNull();
      } else {
        expect(r.dispatch, `${what}: ${r.uuid} is behind the head and waits`).toBe("waiting");
      }
    }
    for (const r of rs.filter((x) => FINISHED.has(x.state))) {
      expect(r.dispatch, `${what}: a finished action is done`).toBe("done");
      expect(r.due_at).toBeNull();
    }
    for (const uuid of known)
      expect(
        rs.some((r) => r.uuid === uuid),
        `${what}: ${uuid} was lost`,
      ).toBe(true);
    const succeeded = rs
      .filter((r) => r.kind === "scaleup" && r.state === "Success")
      .reduce((sum, r) => sum + (r.scale_by ?? 1), 0);
    const target = await registryTarget(svc.uuid);
    expect(target, `${what}: registry = start + successful scale-ups`).toBe(START + succeeded);
    if (lastTold !== null) expect(target, `${what}: registry = what the orchestrator was last told`).toBe(lastTold);
    return rs;
  };

  /** A begin (or a chained one) that returned a job: it must be in turn. */
  const started = async (job: Job, what: string) => {
    const uuid = job.action.uuid;
    stats.begun += 1;
    expect(canceled.has(uuid), `${what}: ${uuid} was answered Canceled and must never run`).toBe(false);
    const others = running.filter(live);
    expect(
      others.map((a) => a.uuid),
      `${what}: ${uuid} started while another attempt of the service is live`,
    ).toEqual([]);
    const rs = await rows(svc.uuid);
    const me = rs.find((r) => r.uuid === uuid);
    expect(me?.state).toBe("In progress");
    const earlier = rs.filter((r) => me && r.seq < me.seq && !FINISHED.has(r.state));
    expect(
      earlier.map((r) => r.uuid),
      `${what}: ${uuid} started before earlier actions finished`,
    ).toEqual([]);
    running.push({ uuid, attempt: job.attempt, startedAt: now(), job });
  };

  /** Records the action an accepted request answered with (its URI is in X-DockerCloud-Action-URI). */
  const remember = async (r: Response, what: string) => {
    if (r.status === 202 || r.status === 200) {
      const uuid = r.headers.get("x-dockercloud-action-uri")?.match(/\/action\/([0-9a-f-]{36})\//)?.[1];
      expect(uuid, `${what}: the action's URI`).toBeDefined();
      known.add(uuid as string);
      stats.actions += 1;
      return uuid;
    }
    expect([409, 429], `${what}: answered ${r.status} ${await r.text()}`).toContain(r.status);
    return null;
  };

  const step = async (o: Op) => {
    stats.steps += 1;
    const what = JSON.stringify(o);
    switch (o.t) {
      case "callScale":
        await remember(await call(`${scaleTrigger.url}${o.n}/`, { method: "POST" }), what);
        break;
      case "callRedeploy":
        await remember(await call(redeployTrigger.url, { method: "POST" }), what);
        break;
      case "userRedeploy":
        await remember(await as(user, "POST", `${svc.resource_uri}redeploy/`), what);
        break;
      case "cancel": {
        const uuid = pickFrom([...known], o.pick);
        if (!uuid) break;
        const r = await as(user, "POST", `/api/audit/v1/action/${uuid}/cancel/`);
        expect([200, 409], what).toContain(r.status);
        if (r.status === 200) {
          canceled.add(uuid);
          stats.canceled += 1;
          expect(
            running.some((a) => a.uuid === uuid && live(a)),
            `${what}: canceled while running`,
          ).toBe(false);
        }
        break;
      }
      case "retry": {
        const uuid = pickFrom([...known], o.pick);
        if (!uuid) break;
        const r = await as(user, "POST", `/api/audit/v1/action/${uuid}/retry/`);
        if (r.status === 202 || r.status === 200 || r.status === 201)
          known.add((await r.json<{ uuid: string }>()).uuid);
        else expect(r.status, what).toBe(409);
        break;
      }
      case "dispatch": {
        const sent = await runInDurableObject(stub, (_o: NamespaceObject, state) =>
          takeDue(state.storage.sql, Date.now(), LEASE_MS, 100),
        );
        inflight.push(...sent);
        break;
      }
      case "deliver": {
        const i = inflight.length ? o.pick % inflight.length : -1;
        const uuid = inflight[i];
        if (uuid === undefined) break;
        if (!o.keepCopy) inflight.splice(i, 1);
        const begun = await stub.beginAttempt(uuid);
        if (begun.status === "run") await started(begun.job, what);
        break;
      }
      case "report": {
        const i = running.length ? o.pick % running.length : -1;
        const a = running[i];
        if (!a) break;
        running.splice(i, 1);
        // An attempt past its window has timed out: all it can report is a retryable failure.
        const isLive = live(a);
        const result = isLive ? o.outcome : "retry";
        if (!isLive) stats.stale += 1;
        const next = await stub.finishAttempt(
          a.uuid,
          a.attempt,
          { result, detail: `model ${result}`, durationMs: 1 },
          o.chain,
        );
        if (isLive && result === "success") {
          stats.successes += 1;
          const after = (await rows(svc.uuid)).find((r) => r.uuid === a.uuid);
          expect(after?.state, `${what}: a live attempt's success is recorded`).toBe("Success");
          if (a.job.kind === "scaleup") lastTold = a.job.new_target_num_containers;
        }
        if (next?.status === "run") await started(next.job, `${what} (chained)`);
        break;
      }
      case "advance":
        vi.setSystemTime(now() + o.ms);
        break;
      case "crashConsumer":
        stats.crashes += 1;
        running = [];
        break;
      case "crashRuntime":
        stats.crashes += 1;
        running = [];
        inflight = [];
        await evictDurableObject(stub);
        await prime();
        break;
      case "deadLetter": {
        const i = inflight.length ? o.pick % inflight.length : -1;
        const uuid = inflight[i];
        if (uuid === undefined) break;
        inflight.splice(i, 1);
        await stub.giveUp(uuid);
        const after = (await rows(svc.uuid)).find((r) => r.uuid === uuid);
        if (after?.state === "Failed") {
          expect(
            running.some((a) => a.uuid === uuid && live(a)),
            `${what}: failed while an attempt is live`,
          ).toBe(false);
        }
        break;
      }
    }
    await checkState(what);
  };

  for (const o of ops) await step(o);

  // Drain: no more faults; every accepted action must finish.
  for (let round = 0; round < 200; round++) {
    const open = (await rows(svc.uuid)).filter((r) => !FINISHED.has(r.state));
    if (open.length === 0) break;
    for (const a of running.splice(0)) {
      const next = await stub.finishAttempt(
        a.uuid,
        a.attempt,
        { result: live(a) ? "success" : "retry", detail: "drain", durationMs: 1 },
        true,
      );
      if (live(a) && a.job.kind === "scaleup") lastTold = a.job.new_target_num_containers;
      if (next?.status === "run") await started(next.job, "drain (chained)");
    }
    await step({ t: "dispatch" });
    for (const uuid of inflight.splice(0)) {
      const begun = await stub.beginAttempt(uuid);
      if (begun.status === "run") await started(begun.job, "drain");
    }
    if (running.length === 0) vi.setSystemTime(now() + LEASE_MS + WINDOW_MS);
  }
  const final = await checkState("after the drain");
  expect(
    final.filter((r) => !FINISHED.has(r.state)).map((r) => `${r.uuid} ${r.state} ${r.dispatch}`),
    "every accepted action finished",
  ).toEqual([]);
}

describe("model: per-service order, cancel, retries, redelivery and crashes", () => {
  beforeAll(async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    // Far ahead of the real clock, so the object's real alarm (set at these deadlines) never fires during the test.
    vi.setSystemTime(Date.now() + 10 * 365 * 86_400_000);
    stub = env.NAMESPACES.getByName((await createUser()).username);
    const inside = await runInDurableObject(stub, () => Date.now());
    expect(Math.abs(inside - Date.now()), "the object sees the test's clock").toBeLessThan(1_000);
  });
  afterAll(() => {
    vi.useRealTimers();
    console.log("model runs:", JSON.stringify(stats));
  });

  it(`${NUM_RUNS} runs of up to 40 random steps hold every invariant`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40, size: "max" }), async (ops) => {
        await run(ops);
      }),
      { numRuns: NUM_RUNS, verbose: 1 },
    );
  }, 1_800_000);

  it("the reported case: A1 waits for its retry, A2..A4 wait, A4 is canceled; A2 starts only after A1 succeeds", async () => {
    await run([
      { t: "callScale", n: 1 }, // A1
      { t: "dispatch" },
      { t: "deliver", pick: 0, keepCopy: false },
      { t: "report", pick: 0, outcome: "retry", chain: false }, // A1's first attempt: 500
      { t: "callScale", n: 1 }, // A2
      { t: "callScale", n: 1 }, // A3
      { t: "callScale", n: 1 }, // A4
      { t: "cancel", pick: 3 }, // A4
      { t: "dispatch" },
      { t: "advance", ms: 10_000 },
      { t: "dispatch" },
      { t: "deliver", pick: 0, keepCopy: false },
      { t: "report", pick: 0, outcome: "success", chain: true },
      { t: "report", pick: 0, outcome: "success", chain: true },
      { t: "report", pick: 0, outcome: "success", chain: true },
    ]);
  });
});
