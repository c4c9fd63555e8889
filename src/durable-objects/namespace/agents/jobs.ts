import { type ActionRow, FINISHED_STATES } from "../../../domain/action";
import { type AgentJob, type AgentMessage, firstProblem, Observed } from "../../../domain/agent-protocol";
import { imageToDeploy } from "../../../domain/registry-hook";
import type { ServiceRow } from "../../../domain/service";
import { quote } from "../../../domain/text";
import { type AgentTargetView, agentTargetOf, orchestratorServiceOf } from "../../../targets/agent";
import type { Actions } from "../actions";
import type { Attempts } from "../attempts";
import { headOf } from "../dispatch";
import type { Scheduler } from "../scheduler";
import type { Services } from "../services";
import type { Agents } from "./agents";
import { JobLog } from "./job-log";
import type { JobsDesk } from "./links";

export type AgentJobSettings = {
  /** How long an operation waits for its agent to connect before it fails. */
  waitMs: number;
  /** How long the orchestrator may take to converge; the agent reports Failed past it. */
  convergeSeconds: number;
  /** Deliveries of one action that went unreported before it fails. */
  maxDeliveries: number;
};

/** A delivered job must be acknowledged this soon, or it is delivered again. */
export const ACK_MS = 10_000;
/** Past the convergence deadline, how long the agent has to send its report. */
export const REPORT_MARGIN_MS = 30_000;

/**
 * The hard end of an action of an agent target, from when it is first
 * offered: the wait for the agent, then every delivery it may have, each
 * with the longest it may take. No message of the agent moves it.
 */
export const hardEndMs = (s: AgentJobSettings): number =>
  s.waitMs + s.maxDeliveries * (ACK_MS + s.convergeSeconds * 1000 + REPORT_MARGIN_MS);

type JobRow = {
  action_uuid: string;
  agent_uuid: string;
  waiting_since: number | null;
  /** The reason last logged for the wait. */
  waiting_note: string | null;
  applied: number;
  /** Whether the current delivery was acknowledged: only the first ack sets its deadline. */
  acked: number;
  /** Reports of other deliveries than the current one (job-log.ts, with the delivery's log budget). */
  stale_reports: number;
  /** The action's hard end (hardEndMs after it was first offered). */
  ends_at: number;
};

/** The modules whose tables an agent's job reads and writes. */
export type JobRooms = { actions: Actions; attempts: Attempts; services: Services; agents: Agents };

/**
 * Operations of services whose target is an agent: the namespace's object
 * pushes the head action of such a service to the agent's connection (no
 * queue hop) and waits for the agent's report, with a deadline, so a long
 * rollout holds nothing open. The order and the deadlines are the actions'
 * own (dispatch.ts): only a service's head goes out, and the alarm comes back
 * to an action whose deadline passed (no acknowledgement, no report, or an
 * agent that never connected).
 *
 * `agent_jobs` keeps, per action, which agent has it, since when it waits for
 * that agent to connect, and whether the agent said it applied the change
 * (`applied`): every later delivery carries that, so the agent only waits for
 * the orchestrator to converge and never applies a job twice.
 */
export class AgentJobs implements JobsDesk {
  private readonly actions: Actions;
  private readonly attempts: Attempts;
  private readonly services: Services;
  private readonly agents: Agents;
  private readonly log: JobLog;

  constructor(
    private readonly sql: SqlStorage,
    rooms: JobRooms,
    private readonly scheduler: Scheduler,
    /** An open connection of an agent, or null: it is not connected. */
    private readonly links: { socketOf(agentUuid: string): WebSocket | null },
    private readonly settings: () => AgentJobSettings,
  ) {
    this.actions = rooms.actions;
    this.attempts = rooms.attempts;
    this.services = rooms.services;
    this.agents = rooms.agents;
    this.log = new JobLog(sql, rooms.actions);
  }

  /** An agent said hello on a new connection. */
  connected(agentUuid: string, now: number): void {
    this.offerAll(agentUuid, now);
  }

  /** Whether the action's service has an agent target (so the queue must not perform it): one indexed read. */
  isAgentAction(uuid: string): boolean {
    return (
      this.sql
        .exec(
          `SELECT 1 FROM actions a JOIN services s ON s.uuid = a.service_uuid
           WHERE a.uuid = ? AND json_extract(s.target_public, '$.type') = 'agent'`,
          uuid,
        )
        .toArray().length > 0
    );
  }

  /** Offers every action of an agent target whose deadline has passed (the alarm). */
  offerDue(now: number): void {
    const due = this.sql
      .exec<{ uuid: string }>(
        `SELECT a.uuid FROM actions a JOIN services s ON s.uuid = a.service_uuid
         WHERE a.dispatch IN ('ready', 'queued') AND a.due_at <= ? AND json_extract(s.target_public, '$.type') = 'agent'
         ORDER BY a.due_at, a.seq LIMIT 100`,
        now,
      )
      .toArray();
    for (const { uuid } of due) this.offer(uuid, now, false);
  }

  /**
   * Offers at once, in call order, the head actions of every service whose
   * target is this agent: it connected (what went to an earlier connection is
   * delivered again), was deleted, or a service was pointed at it.
   */
  offerAll(agentUuid: string, now: number): void {
    const heads = this.sql
      .exec<{ uuid: string }>(
        `SELECT a.uuid FROM actions a JOIN services s ON s.uuid = a.service_uuid
         WHERE a.dispatch IN ('ready', 'queued') AND json_extract(s.target_public, '$.type') = 'agent'
           AND json_extract(s.target_public, '$.agent') = ?
         ORDER BY a.seq`,
        agentUuid,
      )
      .toArray();
    for (const { uuid } of heads) this.offer(uuid, now, true);
  }

  /**
   * After a call or an operation of the API: an agent target's head goes out
   * now. Any other target is the queue's, and costs nothing more here.
   */
  offerIfAgent(svc: ServiceRow, now: number): void {
    if (agentTargetOf(svc.target_public)) this.offerHead(svc.uuid, now);
  }

  /** Offers the head action of a service if it is ready to go out (after a call, a finish, a change of target). */
  offerHead(serviceUuid: string, now: number): void {
    const head = headOf(this.sql, serviceUuid);
    // Only one not yet out: one delivered has its deadline, and its agent the job.
    if (head?.dispatch === "ready") this.offer(head.uuid, now, true);
  }

  /**
   * Sends an action to its agent, or keeps it waiting for the agent. Only a
   * service's head goes out; unless `now` is forced (a new connection, a new
   * target), only when its deadline has passed.
   */
  offer(uuid: string, now: number, force: boolean): void {
    const a = this.actions.row(uuid);
    if (!a || FINISHED_STATES.includes(a.state)) {
      this.forget(uuid);
      return;
    }
    if (a.dispatch === "waiting" || headOf(this.sql, a.service_uuid)?.uuid !== uuid) return;
    if (!force && (a.due_at ?? 0) > now) return;
    const svc = this.services.row(a.service_uuid);
    if (!svc) {
      this.actions.finish(a, "Failed", "the service no longer exists");
      this.forget(uuid);
      return;
    }
    const target = agentTargetOf(svc.target_public);
    if (!target) {
      // The service no longer targets an agent: the queue takes the action, now, not when its wait ends.
      if (a.dispatch === "ready" && (a.due_at ?? 0) > now) {
        this.sql.exec("UPDATE actions SET due_at = ? WHERE uuid = ?", now, uuid);
        this.scheduler.runBy(now);
      }
      this.forget(uuid);
      return;
    }
    const job = this.jobRow(uuid, target.agent, now);
    if (now >= job.ends_at) {
      const minutes = Math.round(hardEndMs(this.settings()) / 60_000);
      this.actions.finish(a, "Failed", `the operation did not finish within ${minutes} min (its hard end)`);
      this.forget(uuid);
      return;
    }
    const agent = this.agents.row(target.agent);
    const name = agent ? `agent '${agent.name}'` : `agent ${target.agent}`;
    if (a.attempts >= this.settings().maxDeliveries) {
      // The last delivery may still report; a new connection does not earn another.
      if (a.attempt_started_at !== null && (a.due_at ?? 0) > now) return;
      this.actions.finish(a, "Failed", `${name} did not report on the operation after ${a.attempts} deliveries`);
      this.forget(uuid);
      return;
    }
    const ws = agent ? this.links.socketOf(agent.uuid) : null;
    if (!agent || !ws) {
      const why = agent ? "to connect" : "(it was deleted: set the service's target to another agent)";
      this.wait(a, job, name, why, now);
      return;
    }
    this.deliver(a, svc, target, job, name, ws, now);
  }

  /**
   * A message about a job, from the agent `agentUuid`; one about a job it
   * does not hold is ignored. Returns a problem to tell the agent, or null.
   */
  received(agentUuid: string, agentName: string, m: AgentMessage, now: number): string | null {
    const job = this.sql
      .exec<JobRow>("SELECT * FROM agent_jobs WHERE action_uuid = ? AND agent_uuid = ?", m.action, agentUuid)
      .toArray()[0];
    const a = job && this.actions.row(m.action);
    if (!job || !a || FINISHED_STATES.includes(a.state) || a.attempt_started_at === null) return null;
    if (m.type === "ack") {
      // Only the first ack of a delivery sets its deadline: acking again cannot hold the action open.
      if (m.attempt !== a.attempts || job.acked === 1) return null;
      const reportBy = Math.min(now + this.settings().convergeSeconds * 1000 + REPORT_MARGIN_MS, job.ends_at);
      this.sql.exec("UPDATE actions SET due_at = ? WHERE uuid = ?", reportBy, a.uuid);
      this.sql.exec("UPDATE agent_jobs SET acked = 1 WHERE action_uuid = ?", a.uuid);
      this.scheduler.reschedule();
    } else if (m.type === "applied") {
      this.sql.exec("UPDATE agent_jobs SET applied = 1 WHERE action_uuid = ?", a.uuid);
    } else if (m.type === "progress") {
      // What an agent says is written as a JSON string literal: one line, whatever it holds.
      this.log.line(a, `${new Date(now).toISOString()} agent '${agentName}': ${quote(m.line)}`);
    } else if (m.attempt !== a.attempts) {
      this.log.staleReport(a, job.stale_reports, m, now);
    } else {
      return this.report(a, m, now);
    }
    return null;
  }

  /**
   * The agent's verdict: Success means the orchestrator converged. The
   * registry then shows what the orchestrator reported (checked as a user's
   * values are; refused, it changes nothing), and the service's next action
   * goes out at once.
   */
  private report(a: ActionRow, m: Extract<AgentMessage, { type: "report" }>, now: number): string | null {
    const observed = m.observed === null ? null : Observed.safeParse(m.observed);
    const problem =
      observed && !observed.success ? `report refused its observed state: ${firstProblem(observed.error)}` : null;
    if (problem) this.log.line(a, `${new Date(now).toISOString()} the agent's ${problem}`);
    const durationMs = now - (a.attempt_started_at ?? now);
    this.attempts.finish(a.uuid, m.attempt, { result: m.result, detail: quote(m.detail), durationMs }, false);
    if (observed?.success) this.services.mirror(a.service_uuid, observed.data);
    this.forget(a.uuid);
    this.offerHead(a.service_uuid, now);
    return problem;
  }

  private deliver(
    a: ActionRow,
    svc: ServiceRow,
    target: AgentTargetView,
    job: JobRow,
    name: string,
    ws: WebSocket,
    now: number,
  ): void {
    const newTarget = this.attempts.newTarget(a, svc);
    if (typeof newTarget === "string") {
      this.actions.finish(a, "Failed", newTarget);
      this.forget(a.uuid);
      return;
    }
    const attempt = a.attempts + 1;
    const line = `${new Date(now).toISOString()} sent to ${name} (delivery ${attempt})`;
    this.actions.appendLog(a.uuid, line, null, {
      sets: `state = 'In progress', attempts = ?, attempt_started_at = ?, new_target = ?, dispatch = 'queued', due_at = ?`,
      args: [attempt, now, newTarget, Math.min(now + ACK_MS, job.ends_at)],
    });
    this.sql.exec(
      `UPDATE agent_jobs SET waiting_since = NULL, waiting_note = NULL, acked = 0, delivery_lines = 0,
         delivery_bytes = 0, delivery_dropped = 0 WHERE action_uuid = ?`,
      a.uuid,
    );
    const message: AgentJob = {
      action: a.uuid,
      attempt,
      kind: a.kind,
      service: orchestratorServiceOf(target),
      scale_by: a.kind === "scaleup" ? (a.scale_by ?? 1) : null,
      replicas: a.kind === "scale" ? newTarget : null,
      max_replicas: svc.max_num_containers,
      body: a.kind === "redeploy" ? a.body : null,
      converge_seconds: this.settings().convergeSeconds,
      applied: job.applied === 1,
      image: a.kind === "redeploy" ? imageToDeploy(svc.image_name, a.push) : null,
    };
    this.scheduler.reschedule();
    if (a.state !== "In progress") this.actions.changed(a.uuid);
    try {
      ws.send(JSON.stringify({ type: "job", job: message }));
    } catch {
      // The socket closed under us: the acknowledgement deadline brings the job back.
    }
  }

  /** The agent is not connected (or was deleted): the action waits, up to the wait limit, then fails. */
  private wait(a: ActionRow, job: JobRow, name: string, why: string, now: number): void {
    const since = job.waiting_since ?? now;
    const { waitMs } = this.settings();
    if (now - since >= waitMs) {
      this.actions.finish(a, "Failed", `${name} did not connect within ${Math.round(waitMs / 1000)} s`);
      this.forget(a.uuid);
      return;
    }
    const sets = "attempt_started_at = NULL, dispatch = 'ready', due_at = ?";
    const note = `waiting for ${name} ${why}`;
    const due = Math.min(since + waitMs, job.ends_at);
    if (job.waiting_note !== note) {
      // Said once per reason, not on every offer.
      this.actions.appendLog(a.uuid, `${new Date(now).toISOString()} ${note}`, null, { sets, args: [due] });
      this.sql.exec(
        "UPDATE agent_jobs SET waiting_since = ?, waiting_note = ? WHERE action_uuid = ?",
        since,
        note,
        a.uuid,
      );
    } else {
      this.sql.exec(`UPDATE actions SET ${sets} WHERE uuid = ?`, due, a.uuid);
    }
    this.scheduler.reschedule();
  }

  /** The job row of an action for the agent its service targets now (a new target moves it, not its end). */
  private jobRow(uuid: string, agentUuid: string, now: number): JobRow {
    return this.sql
      .exec<JobRow>(
        `INSERT INTO agent_jobs (action_uuid, agent_uuid, ends_at) VALUES (?, ?, ?)
         ON CONFLICT (action_uuid) DO UPDATE SET agent_uuid = excluded.agent_uuid,
           ends_at = COALESCE(agent_jobs.ends_at, excluded.ends_at) RETURNING *`,
        uuid,
        agentUuid,
        now + hardEndMs(this.settings()),
      )
      .one();
  }

  private forget(uuid: string): void {
    this.sql.exec("DELETE FROM agent_jobs WHERE action_uuid = ?", uuid);
  }
}
