import { type ActionRow, actionUri, FINISHED_STATES } from "../../domain/action";
import { backoffSeconds } from "../../domain/backoff";
import { imageToDeploy } from "../../domain/registry-hook";
import { type ServiceRow, serviceUri } from "../../domain/service";
import type { AttemptReport, BeginResult, Job } from "../../targets/job";
import type { Actions } from "./actions";
import { headOf } from "./dispatch";
import type { Scheduler } from "./scheduler";
import type { Services } from "./services";

export type AttemptSettings = {
  /** How long a started attempt may run before it is presumed lost. */
  windowMs: number;
  maxAttempts: number;
  retryBaseSeconds: number;
  retryMaxSeconds: number;
};

/**
 * The queue's side of the actions: starting an attempt, recording how it
 * ended, and the dead-letter verdict. Nothing is performed out of turn, and a
 * report that comes too late changes nothing.
 */
export class Attempts {
  constructor(
    private readonly sql: SqlStorage,
    private readonly ns: () => string,
    private readonly actions: Actions,
    private readonly services: Services,
    private readonly scheduler: Scheduler,
    private readonly settings: () => AttemptSettings,
  ) {}

  /**
   * Starts one attempt of an action. An action already finished, not yet at
   * the head of its service, scheduled for a later retry, or with an attempt
   * still running is left alone (a redelivered or stale message is acked and
   * does nothing; the action's own deadline brings it back when it is due).
   */
  begin(uuid: string): BeginResult {
    const a = this.actions.row(uuid);
    if (!a) return { status: "done", reason: "the action no longer exists" };
    if (FINISHED_STATES.includes(a.state)) return { status: "done", reason: `the action is already ${a.state}` };
    const now = Date.now();
    const { windowMs } = this.settings();
    if (a.dispatch === "waiting" || headOf(this.sql, a.service_uuid)?.uuid !== a.uuid) {
      return { status: "done", reason: "an earlier action of the service has not finished" };
    }
    if (a.dispatch === "ready" && a.due_at !== null && a.due_at > now) {
      return { status: "done", reason: "the action's next attempt is not due yet" };
    }
    if (a.attempt_started_at !== null && now - a.attempt_started_at < windowMs) {
      return { status: "done", reason: "another delivery of this action is being performed" };
    }
    const svc = this.services.row(a.service_uuid);
    if (!svc) {
      this.actions.finish(a, "Failed", "the service no longer exists");
      return { status: "done", reason: "the service no longer exists" };
    }
    const newTarget = this.newTarget(a, svc);
    if (typeof newTarget === "string") {
      this.actions.finish(a, "Failed", newTarget);
      return { status: "done", reason: newTarget };
    }
    // Until the attempt reports, its deadline is the longest it can run: past that it is presumed lost.
    this.sql.exec(
      `UPDATE actions SET state = 'In progress', attempts = attempts + 1, touched_at = ?, attempt_started_at = ?,
         new_target = ?, dispatch = 'queued', due_at = ? WHERE uuid = ?`,
      now,
      now,
      newTarget,
      now + windowMs,
      uuid,
    );
    this.scheduler.reschedule();
    this.actions.changed(uuid);
    return { status: "run", job: this.job(a, svc, newTarget) };
  }

  /**
   * Records the outcome of attempt `attempt`. Success applies the operation to
   * the registry and lets the next action of the service go (with `chain`,
   * already started and returned, so the consumer runs it at once). A
   * retryable failure is scheduled here, with the capped exponential delay,
   * until the action has used its attempts. A report of an attempt that is no
   * longer the current one (it was presumed lost and started again) is logged
   * and changes nothing.
   */
  finish(uuid: string, attempt: number, report: AttemptReport, chain: boolean): BeginResult | null {
    const a = this.actions.row(uuid);
    if (!a || FINISHED_STATES.includes(a.state)) return null;
    const now = Date.now();
    const stale = attempt !== a.attempts || a.attempt_started_at === null;
    const line = `${new Date(now).toISOString()} attempt ${attempt}: ${report.detail} (${report.durationMs} ms)${stale ? " [reported after the attempt was presumed lost; ignored]" : ""}`;
    if (stale) {
      // Whoever reports may report again and again: these lines count against the log's budget.
      this.actions.appendWithinBudget(uuid, line);
      return null;
    }
    const settings = this.settings();
    const retry = report.result === "retry";
    const delayMs = retry ? backoffSeconds(a.attempts, settings.retryBaseSeconds, settings.retryMaxSeconds) * 1000 : 0;
    // One write for the attempt: its log line, its error, the end of the attempt, what the target keeps, the
    // next deadline of a retry.
    this.actions.appendLog(uuid, line, report.result === "success" ? null : report.detail, {
      sets: `attempt_started_at = NULL, target_state = COALESCE(?, target_state),
         dispatch = CASE WHEN ? THEN 'ready' ELSE dispatch END, due_at = CASE WHEN ? THEN ? ELSE due_at END`,
      args: [report.state ?? null, retry ? 1 : 0, retry ? 1 : 0, now + delayMs],
    });
    if (retry) {
      if (a.attempts >= settings.maxAttempts) {
        this.actions.finish(a, "Failed", `gave up after ${a.attempts} attempt(s); last error: ${report.detail}`);
      } else {
        this.scheduler.reschedule();
      }
      return null;
    }
    if (report.result === "success") this.services.apply(a);
    const next = this.actions.finish(a, report.result === "success" ? "Success" : "Failed", null, chain);
    // The consumer that finished an action goes on with the next one of the service, skipping a queue round trip.
    return next ? this.begin(next) : null;
  }

  /**
   * The dead-letter queue's verdict: the queue could not start the action in
   * all its deliveries. An attempt still running decides instead.
   */
  giveUp(uuid: string): void {
    const a = this.actions.row(uuid);
    if (!a || FINISHED_STATES.includes(a.state)) return;
    if (a.attempt_started_at !== null && Date.now() - a.attempt_started_at < this.settings().windowMs) return;
    const last = a.last_error ?? "no attempt completed";
    this.actions.finish(a, "Failed", `gave up after ${a.attempts} attempt(s); last error: ${last}`);
  }

  /**
   * The container count a scaling action sets: computed when the action
   * first runs (not when it was called), and kept for its retries. A string
   * is why a scale-up cannot run.
   */
  newTarget(a: ActionRow, svc: ServiceRow): number | null | string {
    if (a.new_target !== null) return a.new_target;
    if (a.kind === "scale") return svc.target_num_containers;
    if (a.kind !== "scaleup") return null;
    const target = svc.target_num_containers + (a.scale_by ?? 1);
    if (target <= svc.max_num_containers) return target;
    return `scaling up by ${a.scale_by} would take the service from ${svc.target_num_containers} to ${target} containers, past its max_num_containers of ${svc.max_num_containers}`;
  }

  private job(a: ActionRow, svc: ServiceRow, newTarget: number | null): Job {
    const ns = this.ns();
    return {
      namespace: ns,
      attempt: a.attempts + 1,
      kind: a.kind,
      action: { uuid: a.uuid, resource_uri: actionUri(ns, a.uuid) },
      service: {
        uuid: svc.uuid,
        name: svc.name,
        resource_uri: serviceUri(ns, svc.uuid),
        image_name: svc.image_name,
        target_num_containers: svc.target_num_containers,
        max_num_containers: svc.max_num_containers,
      },
      trigger: a.trigger_uuid ? { uuid: a.trigger_uuid, name: a.trigger_name ?? "" } : null,
      scale_by: a.scale_by,
      new_target_num_containers: newTarget,
      trigger_body: a.body,
      reuse_volumes: a.reuse_volumes === null ? null : a.reuse_volumes === 1,
      target: svc.target_public ? JSON.parse(svc.target_public) : null,
      target_sealed: svc.target_sealed,
      target_state: a.target_state,
      hops: a.hops,
      image: a.kind === "redeploy" ? imageToDeploy(svc.image_name, a.push) : null,
    };
  }
}
