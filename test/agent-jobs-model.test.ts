/**
 * Model-based property test of agent jobs (fast-check): random interleavings
 * of trigger calls on two services that target one agent, the API's cancel/,
 * the agent connecting, dropping its connection, acknowledging, saying it
 * applied a job, reporting (success or failure, on the current delivery or a
 * stale one), and deadlines passing (rewound, then the alarm); and hostile
 * messages: hellos repeated on one connection, acks repeated, floods of
 * progress lines that a terminal would misread, reports of a future delivery,
 * and reports sent by another agent of the namespace for this agent's jobs.
 * The agents are real WebSockets through the Worker, driven by the test.
 *
 * After every step:
 *   - a job reaches the agent only when every earlier action of its service
 *     has finished (per-service order), and never for an action answered
 *     Canceled;
 *   - at most one action of a service is In progress;
 *   - a delivery of an action the agent said it applied carries applied: true;
 *   - no action has had more than MAX_ATTEMPTS deliveries;
 *   - every log is within its budgets: what agents wrote per delivery within
 *     the delivery's, the whole log within the action's plus the few lines
 *     that tell how it went (a handful per delivery).
 * After the steps, the agent connects and reports every job, deadlines pass,
 * until all actions have finished: nothing accepted is left open.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, inject, it } from "vitest";
import { type AgentJob, DELIVERY_LOG_BUDGET } from "../src/domain/agent-protocol";
import type { NamespaceObject } from "../src/durable-objects/namespace";
import { ACTION_LOG_BUDGET } from "../src/durable-objects/namespace/action-logs";
import { sleep } from "./helpers/actions";
import { connect } from "./helpers/agent-socket";
import { as, call, createAgent, createService, createTrigger, createUser, type User } from "./helpers/api";

const NUM_RUNS = Math.max(10, Math.round(inject("modelRuns") / 3));
const MAX_ATTEMPTS = 4; // vitest.config.ts
/** The lines the service writes whatever the budget, per delivery (sent, waiting, report, a drop notice), at most. */
const TOLD_PER_DELIVERY = { lines: 4, bytes: 8 * 1024 };
const NASTY = "\u001b[2J\r\n\u202e".repeat(100);

type Op =
  | { t: "call"; s: number; scale: boolean }
  | { t: "cancel"; s: number }
  | { t: "connect" }
  | { t: "drop" }
  | { t: "ack"; s: number }
  | { t: "applied"; s: number }
  | { t: "report"; s: number; success: boolean; stale: boolean }
  | { t: "deadline" }
  | { t: "hello-again" }
  | { t: "flood"; s: number; lines: number }
  | { t: "future"; s: number }
  | { t: "impostor"; s: number };

const service = fc.integer({ min: 0, max: 1 });
const OP: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant("call" as const), s: service, scale: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("cancel" as const), s: service }) },
  { weight: 2, arbitrary: fc.constant({ t: "connect" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "drop" as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("ack" as const), s: service }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("applied" as const), s: service }) },
  {
    weight: 4,
    arbitrary: fc.record({ t: fc.constant("report" as const), s: service, success: fc.boolean(), stale: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.constant({ t: "deadline" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "hello-again" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant("flood" as const), s: service, lines: fc.integer({ min: 1, max: 60 }) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("future" as const), s: service }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("impostor" as const), s: service }) },
);

type Link = Awaited<ReturnType<typeof connect>>;
type Row = {
  uuid: string;
  service_uuid: string;
  seq: number;
  state: string;
  attempts: number;
  log_lines: number;
  log_bytes: number;
};

class World {
  links: Link[] = [];
  /** Every job received, on any connection, with the connection it came on. */
  seen = new Set<string>();
  canceled = new Set<string>();
  applied = new Set<string>();
  constructor(
    readonly user: User,
    readonly token: string,
    /** Another agent of the namespace, connected, that sends messages about this agent's jobs. */
    readonly impostor: Link,
    readonly services: string[],
    readonly calls: { redeploy: string; scaleup: string }[],
  ) {}

  get link(): Link | undefined {
    const last = this.links.at(-1);
    // A socket this side dropped is CLOSING before its close event: nothing may be sent on it.
    return last && last.ws.readyState === WebSocket.OPEN ? last : undefined;
  }

  ns() {
    return env.NAMESPACES.getByName(this.user.username);
  }

  rows(): Promise<Row[]> {
    return runInDurableObject(this.ns(), (_o: NamespaceObject, state) =>
      state.storage.sql
        .exec<Row>("SELECT uuid, service_uuid, seq, state, attempts, log_lines, log_bytes FROM actions ORDER BY seq")
        .toArray(),
    );
  }

  /** The latest job of service `s` on the current connection. */
  lastJob(s: number): AgentJob | undefined {
    return this.link
      ?.jobs()
      .filter((j) => j.service === `svc-${s}`)
      .at(-1);
  }
}

async function apply(w: World, op: Op): Promise<void> {
  const link = w.link;
  switch (op.t) {
    case "call": {
      const url = op.scale ? `${w.calls[op.s]?.scaleup}1/` : w.calls[op.s]?.redeploy;
      const r = await call(url ?? "", { method: "POST" });
      expect([202, 409]).toContain(r.status);
      return;
    }
    case "cancel": {
      const pending = (await w.rows()).filter((r) => r.service_uuid === w.services[op.s] && r.state === "Pending");
      const last = pending.at(-1);
      if (!last) return;
      const r = await as(w.user, "POST", `/api/audit/v1/action/${last.uuid}/cancel/`);
      if (r.status === 202 || r.status === 200) w.canceled.add(last.uuid);
      return;
    }
    case "connect": {
      const next = await connect(w.token);
      w.links.push(next);
      await next.hello();
      return;
    }
    case "drop":
      link?.ws.close(1001, "dropped");
      await sleep(10);
      return;
    case "hello-again":
      link?.send({
        type: "hello",
        agent_version: "0.1.0",
        orchestrator: "swarm",
        engine_version: "1",
        node_id: "n0de",
      });
      await sleep(15);
      return;
    case "deadline":
      await runInDurableObject(w.ns(), (_o: NamespaceObject, state) => {
        state.storage.sql.exec(
          "UPDATE actions SET due_at = ? WHERE dispatch = 'queued' AND state = 'In progress'",
          Date.now() - 1,
        );
      });
      await runDurableObjectAlarm(w.ns());
      return;
    default: {
      const job = w.lastJob(op.s);
      if (!link || !job) return;
      if (op.t === "ack") link.send({ type: "ack", action: job.action, attempt: job.attempt });
      if (op.t === "applied") {
        link.send({ type: "applied", action: job.action });
        w.applied.add(job.action);
      }
      if (op.t === "flood") {
        for (let i = 0; i < op.lines; i++) link.send({ type: "progress", action: job.action, line: NASTY });
      }
      const lie = { result: "success", detail: NASTY, observed: null };
      if (op.t === "future") link.send({ type: "report", action: job.action, attempt: job.attempt + 3, ...lie });
      if (op.t === "impostor") {
        w.impostor.send({ type: "ack", action: job.action, attempt: job.attempt });
        w.impostor.send({ type: "report", action: job.action, attempt: job.attempt, ...lie });
      }
      if (op.t === "report") {
        link.send({
          type: "report",
          action: job.action,
          attempt: op.stale ? job.attempt - 1 : job.attempt,
          result: op.success ? "success" : "failed",
          detail: op.success ? "converged" : "rolled back",
          observed: null,
        });
      }
      await sleep(15);
    }
  }
}

/** The invariants that hold after every step. */
async function check(w: World): Promise<void> {
  const rows = await w.rows();
  const byUuid = new Map(rows.map((r) => [r.uuid, r]));
  for (const link of w.links) {
    for (const job of link.jobs()) {
      const key = `${job.action}#${job.attempt}`;
      if (w.seen.has(key)) continue;
      w.seen.add(key);
      const row = byUuid.get(job.action);
      expect(row, "a job names an action of the namespace").toBeDefined();
      if (!row) continue;
      expect(w.canceled.has(job.action), "a canceled action is never delivered").toBe(false);
      const earlier = rows.filter((r) => r.service_uuid === row.service_uuid && r.seq < row.seq);
      for (const e of earlier) expect(["Success", "Failed", "Canceled"], "earlier actions finished").toContain(e.state);
      if (w.applied.has(job.action)) expect(job.applied, "applied is remembered").toBe(true);
    }
  }
  for (const svc of w.services) {
    const running = rows.filter((r) => r.service_uuid === svc && r.state === "In progress");
    expect(running.length).toBeLessThanOrEqual(1);
  }
  for (const r of rows) {
    expect(r.attempts, "deliveries never pass MAX_ATTEMPTS").toBeLessThanOrEqual(MAX_ATTEMPTS);
    const told = {
      lines: TOLD_PER_DELIVERY.lines * (r.attempts + 1),
      bytes: TOLD_PER_DELIVERY.bytes * (r.attempts + 1),
    };
    expect(r.log_lines, "the log's lines within budget").toBeLessThanOrEqual(ACTION_LOG_BUDGET.lines + told.lines);
    expect(r.log_bytes, "the log's bytes within budget").toBeLessThanOrEqual(ACTION_LOG_BUDGET.bytes + told.bytes);
  }
  const jobs = await runInDurableObject(w.ns(), (_o: NamespaceObject, state) =>
    state.storage.sql
      .exec<{ delivery_lines: number; delivery_bytes: number }>("SELECT delivery_lines, delivery_bytes FROM agent_jobs")
      .toArray(),
  );
  for (const j of jobs) {
    expect(j.delivery_lines, "an agent's lines within a delivery's budget").toBeLessThanOrEqual(
      DELIVERY_LOG_BUDGET.lines,
    );
    expect(j.delivery_bytes).toBeLessThanOrEqual(DELIVERY_LOG_BUDGET.bytes);
  }
}

/**
 * Connects and reports every job until every action has finished; when a
 * round moves nothing (a delivery past its cap waits for its deadline), the
 * deadlines pass.
 */
async function drain(w: World): Promise<void> {
  await apply(w, { t: "connect" });
  for (let round = 0; round < 200; round++) {
    const open = (await w.rows()).filter((r) => r.state === "Pending" || r.state === "In progress");
    if (open.length === 0) return;
    for (const s of [0, 1]) await apply(w, { t: "report", s, success: true, stale: false });
    if (round % 3 === 2) await apply(w, { t: "deadline" });
    await check(w);
  }
  throw new Error("actions left unfinished after the agent reported every job");
}

describe("agent jobs: order, at-most-one, applied and nothing lost (model)", () => {
  it("holds for random interleavings", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(OP, { minLength: 1, maxLength: 25 }), async (ops) => {
        const user = await createUser();
        const agent = await createAgent(user);
        const services: string[] = [];
        const calls: World["calls"] = [];
        for (const s of [0, 1]) {
          const svc = await createService(user, {
            name: `svc-${s}`,
            target: { type: "agent", agent: agent.uuid, swarm_service: `svc-${s}` },
            target_num_containers: 1,
            max_num_containers: 1000,
          });
          services.push(svc.uuid);
          const redeploy = await createTrigger(user, svc, { operation: "REDEPLOY" });
          const scaleup = await createTrigger(user, svc, { operation: "SCALEUP" });
          calls.push({ redeploy: redeploy.url, scaleup: scaleup.url });
        }
        const impostor = await connect((await createAgent(user, "impostor")).token);
        await impostor.hello();
        const w = new World(user, agent.token, impostor, services, calls);
        try {
          for (const op of ops) {
            await apply(w, op);
            await check(w);
          }
          await drain(w);
        } finally {
          for (const link of [...w.links, impostor]) if (link.closed() === null) link.ws.close(1000, "done");
        }
      }),
      { numRuns: NUM_RUNS },
    );
  }, 600_000);
});
