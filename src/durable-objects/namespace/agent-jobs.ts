import { type ActionRow, FINISHED_STATES } from "../../domain/action";
import { type AgentJob, type AgentMessage, MAX_PROGRESS_LINES } from "../../domain/agent-protocol";
import type { ServiceRow } from "../../domain/service";
import { quote } from "../../domain/text";
import { type AgentTargetView, agentTargetOf } from "../../targets/agent";
import type { Actions } from "./actions";
import type { JobsDesk } from "./agent-links";
import type { Agents } from "./agents";
import type { Attempts } from "./attempts";
import { headOf } from "./dispatch";
import type { Scheduler } from "./scheduler";
import type { Services } from "./services";

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

type JobRow = {
  action_uuid: string;
  agent_uuid: string;
  waiting_since: number | null;
  /** The reason last logged for the wait. */
  waiting_note: string | null;
  applied: number;
  progress_lines: number;
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
    const job = this.jobRow(uuid, target.agent);
    const agent = this.agents.row(target.agent);
    const ws = agent ? this.links.socketOf(agent.uuid) : null;
    const name = agent ? `agent '${agent.name}'` : `agent ${target.agent}`;
    if (!agent || !ws) {
      const why = agent ? "to connect" : "(it was deleted: set the service's target to another agent)";
      this.wait(a, job, name, why, now);
      return;
    }
    if (a.attempt_started_at !== null && !force && a.attempts >= this.settings().maxDeliveries) {
      this.actions.finish(a, "Failed", `${name} did not report on the operation after ${a.attempts} deliveries`);
      this.forget(uuid);
      return;
    }
    this.deliver(a, svc, target, job, name, ws, now);
  }

  /** A message about a job, from the agent `agentUuid`; one about a job it does not hold is ignored. */
  received(agentUuid: string, agentName: string, m: AgentMessage, now: number): void {
    const job = this.sql
      .exec<JobRow>("SELECT * FROM agent_jobs WHERE action_uuid = ? AND agent_uuid = ?", m.action, agentUuid)
      .toArray()[0];
    const a = job && this.actions.row(m.action);
    if (!job || !a || FINISHED_STATES.includes(a.state) || a.attempt_started_at === null) return;
    if (m.type === "ack") {
      if (m.attempt !== a.attempts) return;
      const reportBy = now + this.settings().convergeSeconds * 1000 + REPORT_MARGIN_MS;
      this.sql.exec("UPDATE actions SET due_at = ? WHERE uuid = ?", reportBy, a.uuid);
      this.scheduler.reschedule();
    } else if (m.type === "applied") {
      this.sql.exec("UPDATE agent_jobs SET applied = 1 WHERE action_uuid = ?", a.uuid);
    } else if (m.type === "progress") {
      if (job.progress_lines >= MAX_PROGRESS_LINES) return;
      // What an agent says is written as a JSON string literal: one line, whatever it holds.
      this.actions.appendLog(a.uuid, `${new Date(now).toISOString()} agent '${agentName}': ${quote(m.line)}`, null);
      this.sql.exec("UPDATE agent_jobs SET progress_lines = progress_lines + 1 WHERE action_uuid = ?", a.uuid);
    } else {
      this.report(a, m, now);
    }
  }

  /**
   * The agent's verdict: Success means the orchestrator converged. The
   * registry then shows what the orchestrator reported, and the service's
   * next action goes out at once.
   */
  private report(a: ActionRow, m: Extract<AgentMessage, { type: "report" }>, now: number): void {
    const current = m.attempt === a.attempts;
    this.attempts.finish(
      a.uuid,
      m.attempt,
      { result: m.result, detail: quote(m.detail), durationMs: now - (a.attempt_started_at ?? now) },
      false,
    );
    if (!current) return;
    if (m.observed) this.services.mirror(a.service_uuid, m.observed);
    this.forget(a.uuid);
    this.offerHead(a.service_uuid, now);
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
      args: [attempt, now, newTarget, now + ACK_MS],
    });
    this.sql.exec(
      "UPDATE agent_jobs SET waiting_since = NULL, waiting_note = NULL, progress_lines = 0 WHERE action_uuid = ?",
      a.uuid,
    );
    const message: AgentJob = {
      action: a.uuid,
      attempt,
      kind: a.kind,
      service: target.swarm_service,
      scale_by: a.kind === "scaleup" ? (a.scale_by ?? 1) : null,
      replicas: a.kind === "scale" ? newTarget : null,
      max_replicas: svc.max_num_containers,
      body: a.kind === "redeploy" ? a.body : null,
      converge_seconds: this.settings().convergeSeconds,
      applied: job.applied === 1,
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
    if (job.waiting_note !== note) {
      // Said once per reason, not on every offer.
      this.actions.appendLog(a.uuid, `${new Date(now).toISOString()} ${note}`, null, { sets, args: [since + waitMs] });
      this.sql.exec(
        "UPDATE agent_jobs SET waiting_since = ?, waiting_note = ? WHERE action_uuid = ?",
        since,
        note,
        a.uuid,
      );
    } else {
      this.sql.exec(`UPDATE actions SET ${sets} WHERE uuid = ?`, since + waitMs, a.uuid);
    }
    this.scheduler.reschedule();
  }

  /** The job row of an action for the agent its service targets now (a new target moves it). */
  private jobRow(uuid: string, agentUuid: string): JobRow {
    return this.sql
      .exec<JobRow>(
        `INSERT INTO agent_jobs (action_uuid, agent_uuid) VALUES (?, ?)
         ON CONFLICT (action_uuid) DO UPDATE SET agent_uuid = excluded.agent_uuid RETURNING *`,
        uuid,
        agentUuid,
      )
      .one();
  }

  private forget(uuid: string): void {
    this.sql.exec("DELETE FROM agent_jobs WHERE action_uuid = ?", uuid);
  }
}
