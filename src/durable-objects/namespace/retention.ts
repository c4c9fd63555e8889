import { IDEMPOTENCY_TTL_MS } from "./call-guards";
import type { Housekeeping } from "./scheduler";

/**
 * Retention of the audit trail: finished actions (Success, Failed, Canceled)
 * go, with their log lines, the idempotency keys that point at them and their
 * agent job rows, a set number of days after they ended. The Worker's
 * ACTION_RETENTION_DAYS says how many; a namespace may be set shorter, never
 * longer. Without it a namespace's object grows for ever, towards the storage
 * limit of one object.
 *
 * It runs from the object's alarm (scheduler.ts), after the outbox, in passes
 * of a bounded number of rows; each pass is one transaction, so a crash
 * between two of its statements deletes nothing, and the next pass starts
 * over from the tables. What a pass deletes per table, and why:
 *   - actions: the finished ones past the retention, oldest end first;
 *   - action_logs: their lines (read by nothing once the action is gone);
 *   - idempotency_keys: keys that point at them (all expired: see `candidates`);
 *   - agent_jobs: rows an action that ended without its agent left behind;
 *   - registry_deliveries keep their `actions` (URIs, as the hook's history
 *     told them): a delivery's record stays true, and is itself capped at 100
 *     per hook; a URI of a deleted action answers 404, as a deleted service's;
 *   - an action kept whose `retry_of` names a deleted one keeps the URI, as above.
 */

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/**
 * What one pass deletes at most: actions, and rows in all (an action and its
 * log lines), so that a request waits well under 50 ms behind one. Actions are what
 * cost: each one rewrites a page of the uuid index and one of the logs, at
 * random places, so at a million actions a pass of 1,000 held the object over
 * 100 ms and one of 250 about 36 ms; one of 100 about 13 ms, which leaves room
 * for SQLite's WAL checkpoint that some commits pay. Lines of one log sit
 * together and cost little (4,000 take about 4 ms). bench/audit-phase.mjs
 * measures it; docs/storage.md has the figures.
 */
export type RetentionLimits = { actionsPerPass: number; rowsPerPass: number };
export const RETENTION_LIMITS: RetentionLimits = { actionsPerPass: 100, rowsPerPass: 4_000 };

/** While old actions remain: the next pass comes this soon, and requests run in between. */
export const NEXT_PASS_MS = 100;
/**
 * Once none remains, the next look: when the oldest finished action comes due,
 * but at least an hour later (a busy namespace then prunes an hour's worth in
 * one pass, not one action at a time) and at most a day (a lowered Worker
 * setting takes effect within a day).
 */
export const RECHECK_MIN_MS = HOUR_MS;
export const RECHECK_MAX_MS = DAY_MS;

/** The finished states, as the partial index `actions_finished` (schema.ts, migration 13) spells them. */
const FINISHED_SQL = "('Success', 'Failed', 'Canceled')";

export type PassResult = {
  /** Actions deleted. */
  actions: number;
  /** Rows deleted: the actions and their log lines (keys and job rows besides, a few per action at most). */
  rows: number;
  /** Whether more is due now: the pass stopped at its bounds. */
  more: boolean;
};

export type RetentionJson = { action_retention_days: number | null; action_retention_days_in_effect: number };

type Candidate = { uuid: string; log_lines: number };

export class Retention implements Housekeeping {
  constructor(
    private readonly storage: DurableObjectStorage,
    /** ACTION_RETENTION_DAYS, read when used (tests swap the object's settings). */
    private readonly workerDays: () => number,
    private readonly limits: RetentionLimits = RETENTION_LIMITS,
  ) {}

  private get sql(): SqlStorage {
    return this.storage.sql;
  }

  /** The namespace's own setting; null when it follows the Worker's. */
  setting(): number | null {
    const row = this.sql
      .exec<{ d: number | null }>("SELECT action_retention_days AS d FROM namespace WHERE id = 1")
      .toArray()[0];
    return row?.d ?? null;
  }

  /** The retention in force, in days: the namespace's setting can only shorten the Worker's. */
  days(): number {
    const own = this.setting();
    return own === null ? this.workerDays() : Math.min(own, this.workerDays());
  }

  json(): RetentionJson {
    return { action_retention_days: this.setting(), action_retention_days_in_effect: this.days() };
  }

  /** Sets the namespace's retention (null: the Worker's). Returns why it cannot, or null; a refusal writes nothing. */
  set(days: number | null): string | null {
    const most = this.workerDays();
    if (days !== null && days > most) {
      return `action_retention_days can only shorten the retention of this deployment: at most ${most} (its ACTION_RETENTION_DAYS)`;
    }
    this.sql.exec("UPDATE namespace SET action_retention_days = ? WHERE id = 1", days);
    return null;
  }

  /** When the oldest finished action comes due, bounded by a day; now if one is overdue; null if none. */
  nextAt(now: number): number | null {
    const due = this.oldestDue();
    return due === null ? null : Math.min(Math.max(due, now), now + RECHECK_MAX_MS);
  }

  /** One pass, and when the next should come. */
  run(now: number): number | null {
    if (this.pass(now).more) return now + NEXT_PASS_MS;
    const due = this.oldestDue();
    return due === null ? null : Math.min(Math.max(due, now + RECHECK_MIN_MS), now + RECHECK_MAX_MS);
  }

  /**
   * Deletes the oldest actions due at `now`, within the pass's bounds (always
   * at least one, whatever its log), in one transaction.
   */
  pass(now: number): PassResult {
    const cutoff = now - this.days() * DAY_MS;
    return this.storage.transactionSync(() => {
      // One more than a pass takes, to know whether another pass is due.
      const found = this.candidates(cutoff, now - IDEMPOTENCY_TTL_MS, this.limits.actionsPerPass + 1);
      const chosen: string[] = [];
      let rows = 0;
      for (const c of found.slice(0, this.limits.actionsPerPass)) {
        const cost = 1 + c.log_lines;
        if (chosen.length > 0 && rows + cost > this.limits.rowsPerPass) break;
        chosen.push(c.uuid);
        rows += cost;
      }
      if (chosen.length > 0) this.remove(chosen);
      return { actions: chosen.length, rows, more: chosen.length < found.length };
    });
  }

  /**
   * Finished actions that ended before `cutoff`, oldest end first, but none
   * that something still waits on: an unfinished retry of it (its service's
   * queue goes on from it), or an idempotency key that still answers with it
   * (created after `keysFrom`). A key is written while its action is open, so
   * with a retention of a day or more (the least there is) every key of an
   * action due has expired; the check keeps that true whatever the tables hold.
   * The index is named: the planner would otherwise walk the state index and sort.
   */
  private candidates(cutoff: number, keysFrom: number, limit: number): Candidate[] {
    return this.sql
      .exec<Candidate>(
        `SELECT a.uuid, a.log_lines FROM actions a INDEXED BY actions_finished
         WHERE a.state IN ${FINISHED_SQL} AND a.end_at < ? AND a.dispatch = 'done'
           AND NOT EXISTS (SELECT 1 FROM actions r WHERE r.retry_of = a.uuid AND r.state IN ('Pending', 'In progress'))
           AND NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.action_uuid = a.uuid AND k.created_at > ?)
         ORDER BY a.end_at LIMIT ?`,
        cutoff,
        keysFrom,
        limit,
      )
      .toArray();
  }

  /**
   * Deletes actions and what belongs to them, one statement per table, and
   * takes them off the list totals. The totals are kept by triggers on insert
   * and update only: a trigger on delete would make the namespace's deletion
   * (members.ts, `DELETE FROM actions`) go row by row, seconds at a million
   * actions, where SQLite otherwise drops the table's pages at once.
   */
  private remove(uuids: string[]): void {
    const list = JSON.stringify(uuids);
    const gone = "SELECT * FROM actions WHERE uuid IN (SELECT value FROM json_each(?))";
    this.sql.exec(
      `UPDATE action_counts SET n = n - g.k FROM (
         SELECT 'all' AS f, '' AS v, COUNT(*) AS k FROM (${gone})
         UNION ALL SELECT 'state', state, COUNT(*) FROM (${gone}) GROUP BY state
         UNION ALL SELECT 'object', object, COUNT(*) FROM (${gone}) GROUP BY object
       ) AS g WHERE action_counts.filter = g.f AND action_counts.value = g.v`,
      list,
      list,
      list,
    );
    this.sql.exec(
      `UPDATE action_hours SET n = n - g.k FROM (
         SELECT CAST(start_at / 3600000 AS INTEGER) AS h, COUNT(*) AS k FROM (${gone}) GROUP BY 1
       ) AS g WHERE action_hours.hour = g.h`,
      list,
    );
    for (const [table, column] of [
      ["action_logs", "action_uuid"],
      ["idempotency_keys", "action_uuid"],
      ["agent_jobs", "action_uuid"],
      ["actions", "uuid"],
    ] as const) {
      this.sql.exec(`DELETE FROM ${table} WHERE ${column} IN (SELECT value FROM json_each(?))`, list);
    }
  }

  /** When the oldest finished action comes due under the retention in force, or null. */
  private oldestDue(): number | null {
    const oldest = this.sql
      .exec<{ t: number | null }>(
        `SELECT MIN(end_at) AS t FROM actions INDEXED BY actions_finished WHERE state IN ${FINISHED_SQL}`,
      )
      .one().t;
    return oldest === null ? null : oldest + this.days() * DAY_MS;
  }
}
