import {
  type ActionFilters,
  type ActionJson,
  type ActionKind,
  type ActionRow,
  actionUri,
  FINISHED_STATES,
  type RequestMeta,
  serializeAction,
} from "../../domain/action";
import { newUuid } from "../../domain/ids";
import type { Listing, Page } from "../../domain/pagination";
import { fail, ok, type Result } from "../../domain/result";
import { type ServiceRow, serviceUri } from "../../domain/service";
import { streamEvent } from "../../domain/stream-event";
import { quote } from "../../domain/text";
import { ACTION_LOG_BUDGET, ActionLogs, byteLength } from "./action-logs";
import { keptTotal } from "./action-totals";
import { OPEN_STATES_SQL, releaseHead } from "./dispatch";
import { asciiPrefix, atLeast, atMost, equals, selectPage } from "./listing";
import type { Scheduler } from "./scheduler";
import type { Publisher } from "./streams";

export const ACTION_NOT_FOUND = fail("not_found", "Action not found");

/**
 * The audit trail's order: newest first, by start, then by call order. Each
 * list index ends in `start_at` (and the row id), so none needs sorting.
 */
export const ACTION_ORDER = "start_at DESC, seq DESC";

/** An action to record, as the call, a service operation or a retry describes it. */
export type NewAction = {
  service: ServiceRow;
  kind: ActionKind;
  trigger: { uuid: string; name: string; uri: string } | null;
  user: string | null;
  meta: RequestMeta;
  scaleBy: number | null;
  body: string | null;
  reuseVolumes: boolean | null;
  retryOf: string | null;
  hops: number;
  /** JSON of the registry push an autoredeploy action deploys (PushedImage), if it is one. */
  push?: string | null;
};

/**
 * The audit trail of a namespace: the `actions` table. Actions are recorded
 * here, in call order per service; their logs grow here; they end here, which
 * lets the next action of their service go.
 */
export class Actions {
  private readonly logs: ActionLogs;

  constructor(
    private readonly sql: SqlStorage,
    private readonly ns: () => string,
    private readonly scheduler: Scheduler,
    /** How long a claimed action may take to start before the alarm hands it out again. */
    private readonly leaseMs: () => number,
    private readonly streams: Publisher,
  ) {
    this.logs = new ActionLogs(sql);
  }

  row(uuid: string): ActionRow | undefined {
    return this.sql.exec<ActionRow>("SELECT * FROM actions WHERE uuid = ?", uuid).toArray()[0];
  }

  /** The kind of the service's action in progress, or null. */
  runningKind(serviceUuid: string): ActionKind | null {
    return (
      this.sql
        .exec<{ kind: ActionKind }>(
          "SELECT kind FROM actions WHERE service_uuid = ? AND state = 'In progress' LIMIT 1",
          serviceUuid,
        )
        .toArray()[0]?.kind ?? null
    );
  }

  json(row: ActionRow): ActionJson {
    return serializeAction(this.ns(), row);
  }

  /**
   * Records a Pending action. Only the first unfinished action of a service is
   * handed to the queue (due now); the others wait their turn.
   */
  insert(a: NewAction): ActionRow {
    const now = Date.now();
    // Whether an earlier action of the service is still open decides, in the same statement, whether
    // this one waits behind it or is ready to go when due.
    const inserted = this.sql
      .exec<ActionRow>(
        `INSERT INTO actions (uuid, service_uuid, object, trigger_uuid, trigger_name, trigger_uri, kind, method, path,
         user, user_agent, ip, location, start_at, state, is_user_action, scale_by, body, dispatch, touched_at,
         reuse_volumes, retry_of, due_at, hops, push)
       SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'Pending', ?, ?, ?,
         CASE WHEN busy THEN 'waiting' ELSE 'ready' END, ?, ?, ?, CASE WHEN busy THEN NULL ELSE ? END, ?, ?
       FROM (SELECT EXISTS (SELECT 1 FROM actions WHERE service_uuid = ? AND state IN ${OPEN_STATES_SQL}) AS busy)
       RETURNING *`,
        newUuid(),
        a.service.uuid,
        serviceUri(this.ns(), a.service.uuid),
        a.trigger?.uuid ?? null,
        a.trigger?.name ?? null,
        a.trigger?.uri ?? null,
        a.kind,
        a.meta.method,
        a.meta.path,
        a.user,
        a.meta.user_agent,
        a.meta.ip,
        a.meta.location,
        now,
        a.user === null ? 0 : 1,
        a.scaleBy,
        a.body,
        now,
        a.reuseVolumes === null ? null : a.reuseVolumes ? 1 : 0,
        a.retryOf,
        now,
        a.hops,
        a.push ?? null,
        a.service.uuid,
      )
      .one();
    if (inserted.dispatch === "ready") this.scheduler.runBy(now);
    this.changed(inserted.uuid, "create");
    return inserted;
  }

  /** Tells the events streams an action was created or changed state (built only if one listens). */
  changed(uuid: string, action: "create" | "update" = "update"): void {
    this.streams.publish(() => {
      const row = this.row(uuid);
      return streamEvent({
        type: "action",
        action,
        uuid,
        resource_uri: actionUri(this.ns(), uuid),
        state: row?.state ?? "",
        parents: row ? [row.object] : [],
      });
    });
  }

  /**
   * Adds a line to an action's log whatever its budget (and, when given,
   * makes `error` its last error): for the lines that tell how the action
   * went, which are few. `extra` sets more columns in the same write.
   */
  appendLog(uuid: string, line: string, error: string | null, extra?: { sets: string; args: SqlStorageValue[] }): void {
    const row = this.sql
      .exec<{ log_lines: number }>(
        `UPDATE actions SET log_lines = log_lines + 1, log_bytes = log_bytes + ?, last_error = COALESCE(?, last_error),
           touched_at = ?${extra ? `, ${extra.sets}` : ""} WHERE uuid = ? RETURNING log_lines`,
        byteLength(line),
        error,
        Date.now(),
        ...(extra?.args ?? []),
        uuid,
      )
      .toArray()[0];
    if (!row) return;
    this.logs.insert(uuid, row.log_lines, line);
    this.streams.logLine(uuid, line);
  }

  /**
   * Adds an optional line (an agent's, a late report, a joined call) if the
   * log's budget allows it; past the budget it is counted as dropped.
   * Returns whether it was written.
   */
  appendWithinBudget(uuid: string, line: string): boolean {
    const bytes = byteLength(line);
    const row = this.sql
      .exec<{ log_lines: number }>(
        `UPDATE actions SET log_lines = log_lines + 1, log_bytes = log_bytes + ?, touched_at = ?
         WHERE uuid = ? AND log_lines < ? AND log_bytes + ? <= ? RETURNING log_lines`,
        bytes,
        Date.now(),
        uuid,
        ACTION_LOG_BUDGET.lines,
        bytes,
        ACTION_LOG_BUDGET.bytes,
      )
      .toArray()[0];
    if (!row) {
      this.dropped(uuid);
      return false;
    }
    this.logs.insert(uuid, row.log_lines, line);
    this.streams.logLine(uuid, line);
    return true;
  }

  /** Counts a line that was not written, and returns how many were so far. */
  countDropped(uuid: string): number {
    const row = this.sql
      .exec<{ log_dropped: number }>(
        "UPDATE actions SET log_dropped = log_dropped + 1 WHERE uuid = ? RETURNING log_dropped",
        uuid,
      )
      .toArray()[0];
    return row?.log_dropped ?? 0;
  }

  /** A line past the budget: counted; the first one of an action says so in its log. */
  private dropped(uuid: string): void {
    if (this.countDropped(uuid) !== 1) return;
    const { lines, bytes } = ACTION_LOG_BUDGET;
    this.appendLog(
      uuid,
      `${new Date().toISOString()} this log reached its budget (${lines} lines or ${bytes / 1024} KiB): later lines from agents, late reports and joined calls are dropped and counted`,
      null,
    );
  }

  /** The last `count` lines of an action's log, oldest first. */
  logTail(uuid: string, count: number): string[] {
    return this.logs.tail(uuid, count);
  }

  /**
   * Ends an action and lets the next action of its service go if it is now
   * the head: handed to the queue by the alarm or, with `claimNext`, claimed
   * by the caller (its uuid is returned) so it runs without a queue round trip.
   */
  finish(
    a: { uuid: string; service_uuid: string },
    state: "Success" | "Failed" | "Canceled",
    reason: string | null,
    claimNext = false,
  ): string | null {
    const now = Date.now();
    // The action ends first: nothing about its log may keep it, and its service, from going on.
    const ended = this.sql
      .exec<{ log_dropped: number }>(
        `UPDATE actions SET state = ?, end_at = ?, dispatch = 'done', due_at = NULL, attempt_started_at = NULL,
           last_error = COALESCE(?, last_error) WHERE uuid = ? RETURNING log_dropped`,
        state,
        now,
        reason,
        a.uuid,
      )
      .toArray()[0];
    const claimed = releaseHead(this.sql, a.service_uuid, now, claimNext ? { leaseMs: this.leaseMs() } : null);
    this.scheduler.reschedule();
    try {
      if (reason) this.appendLog(a.uuid, `${new Date(now).toISOString()} ${reason}`, null);
      if (ended?.log_dropped) {
        const dropped = `${ended.log_dropped} line(s) were not written: past the log's budgets, or repeats of a late report`;
        this.appendLog(a.uuid, `${new Date(now).toISOString()} ${dropped}`, null);
      }
    } catch {
      // A line that cannot be written is lost; the action has ended all the same.
    }
    this.changed(a.uuid);
    this.streams.finished(a.uuid);
    return claimed;
  }

  /** Fails every unfinished action of a service (it is being terminated). */
  failOpen(serviceUuid: string, reason: string): void {
    const open = this.sql
      .exec<{ uuid: string; service_uuid: string }>(
        `SELECT uuid, service_uuid FROM actions WHERE service_uuid = ? AND state IN ${OPEN_STATES_SQL}`,
        serviceUuid,
      )
      .toArray();
    for (const a of open) this.finish(a, "Failed", reason);
  }

  /**
   * A page of the audit trail, newest first. Every filter the clients use has
   * an index that also gives this order (schema.ts, migration 13), so a page
   * costs the same at any size; so do the totals of the lists the clients ask
   * for, kept by triggers (action-totals.ts).
   */
  list(filters: ActionFilters, page: Page): Listing<ActionJson> {
    const { total, rows } = selectPage<ActionRow>(this.sql, {
      columns: "*",
      table: "actions",
      where: [
        equals("uuid", filters.uuid?.toLowerCase()),
        asciiPrefix("uuid", filters.uuid__startswith?.toLowerCase()),
        equals("state", filters.state),
        equals("object", filters.object),
        atLeast("start_at", filters.start_date__gte),
        atMost("start_at", filters.start_date__lte),
        atLeast("end_at", filters.end_date__gte),
        atMost("end_at", filters.end_date__lte),
      ],
      order: ACTION_ORDER,
      page,
      knownTotal: keptTotal(this.sql, filters),
    });
    return { total, objects: rows.map((r) => this.json(r)) };
  }

  get(uuid: string): Result<ActionJson> {
    const row = this.row(uuid);
    return row ? ok(this.json(row)) : ACTION_NOT_FOUND;
  }

  /** Cancels a Pending action; one already In progress cannot be stopped (409). */
  cancel(uuid: string, caller: string): Result<ActionJson> {
    const a = this.row(uuid);
    if (!a) return ACTION_NOT_FOUND;
    if (a.state !== "Pending") {
      return fail("conflict", `only a Pending action can be canceled; this one is ${a.state}`);
    }
    this.finish(a, "Canceled", `canceled by ${quote(caller)}`);
    return ok(this.json(this.row(uuid) as ActionRow));
  }

  /**
   * Repeats a finished action as a new one (the way to replay what went to the
   * dead-letter queue). The new action runs through the same queue and order.
   */
  retry(uuid: string, caller: string, meta: RequestMeta, service: (uuid: string) => ServiceRow | undefined) {
    const a = this.row(uuid);
    if (!a) return ACTION_NOT_FOUND;
    if (!FINISHED_STATES.includes(a.state)) {
      return fail("conflict", `only a Success, Failed or Canceled action can be retried; this one is ${a.state}`);
    }
    const svc = service(a.service_uuid);
    if (!svc) return fail("conflict", "the action's service no longer exists");
    const retried = this.insert({
      service: svc,
      kind: a.kind,
      trigger: a.trigger_uuid ? { uuid: a.trigger_uuid, name: a.trigger_name ?? "", uri: a.trigger_uri ?? "" } : null,
      user: caller,
      meta,
      scaleBy: a.scale_by,
      body: a.body,
      reuseVolumes: a.reuse_volumes === null ? null : a.reuse_volumes === 1,
      retryOf: a.uuid,
      // A retry goes on from where the action was in a chain of targets, so retrying cannot restart a loop.
      hops: Math.max(a.hops, meta.hops),
      // A retried push deploys the same image again, not whatever the tag names now.
      push: a.push,
    });
    this.appendLog(retried.uuid, `${new Date().toISOString()} retry of action ${a.uuid}`, null);
    return ok(this.json(this.row(retried.uuid) as ActionRow));
  }
}
