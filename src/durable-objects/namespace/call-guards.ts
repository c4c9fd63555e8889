import type { ActionKind } from "../../domain/action";

/**
 * The guard rails a leaked or noisy trigger URL needs, as queries on the
 * namespace's storage. Each runs inside the same synchronous block as the
 * call it guards, so check and write are one atomic step.
 */

const WINDOW_MS = 60_000;
/** Idempotency keys are remembered this long per trigger. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Sliding one-minute window of accepted calls per trigger. Returns null when
 * the call may go ahead, else the seconds until a slot frees.
 */
export function rateLimited(sql: SqlStorage, trigger: string, limit: number, now: number): number | null {
  const window = sql
    .exec<{ n: number; oldest: number | null }>(
      "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM trigger_calls WHERE trigger_uuid = ? AND at > ?",
      trigger,
      now - WINDOW_MS,
    )
    .one();
  if (window.n < limit) return null;
  return Math.max(1, Math.ceil(((window.oldest ?? now) + WINDOW_MS - now) / 1000));
}

export function recordAcceptedCall(sql: SqlStorage, trigger: { uuid: string; call_count: number }, now: number): void {
  // Calls older than the window go in bounded sweeps every 16th call, so the table stays about
  // the size of one window and most calls pay no sweep.
  countInWindow(sql, trigger.uuid, now, trigger.call_count % 16 === 0);
  sql.exec("UPDATE triggers SET call_count = call_count + 1, last_called_at = ? WHERE uuid = ?", now, trigger.uuid);
}

/** A call counted in a rate-limit window that is not a trigger's (a registry hook's): it keeps no counter, so it sweeps each time. */
export function recordWindowCall(sql: SqlStorage, key: string, now: number): void {
  countInWindow(sql, key, now, true);
}

/** One call in `key`'s window, after a bounded sweep of the calls that left it, if asked. */
function countInWindow(sql: SqlStorage, key: string, now: number, sweep: boolean): void {
  if (sweep) {
    sql.exec(
      `DELETE FROM trigger_calls WHERE rowid IN
         (SELECT rowid FROM trigger_calls WHERE trigger_uuid = ? AND at <= ? LIMIT 64)`,
      key,
      now - WINDOW_MS,
    );
  }
  sql.exec("INSERT INTO trigger_calls (trigger_uuid, at) VALUES (?, ?)", key, now);
}

export function recordRejectedCall(sql: SqlStorage, trigger: string, now: number): void {
  sql.exec("UPDATE triggers SET rejected_count = rejected_count + 1, last_called_at = ? WHERE uuid = ?", now, trigger);
}

/** The action a call with this Idempotency-Key already created for this trigger in the last 24 h. */
export function idempotentAction(sql: SqlStorage, trigger: string, key: string, now: number): string | null {
  const row = sql
    .exec<{ action_uuid: string }>(
      "SELECT action_uuid FROM idempotency_keys WHERE trigger_uuid = ? AND key = ? AND created_at > ?",
      trigger,
      key,
      now - IDEMPOTENCY_TTL_MS,
    )
    .toArray()[0];
  return row?.action_uuid ?? null;
}

export function rememberIdempotencyKey(sql: SqlStorage, trigger: string, key: string, action: string, now: number) {
  // Expired keys go a few at a time, so no call pays for a large sweep.
  sql.exec(
    "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE created_at <= ? LIMIT 20)",
    now - IDEMPOTENCY_TTL_MS,
  );
  sql.exec(
    `INSERT INTO idempotency_keys (trigger_uuid, key, action_uuid, created_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (trigger_uuid, key) DO UPDATE SET action_uuid = excluded.action_uuid, created_at = excluded.created_at`,
    trigger,
    key,
    action,
    now,
  );
}

/** Containers that SCALEUP actions not yet finished will add to a service. */
export function pendingScaleUp(sql: SqlStorage, service: string): number {
  return sql
    .exec<{ n: number }>(
      `SELECT COALESCE(SUM(COALESCE(scale_by, 1)), 0) AS n FROM actions
       WHERE service_uuid = ? AND kind = 'scaleup' AND state IN ('Pending', 'In progress')`,
      service,
    )
    .one().n;
}

/** The action of this kind of a service still waiting to start, which a new call of the same kind joins. */
export function pendingOfKind(sql: SqlStorage, service: string, kind: ActionKind): string | null {
  const row = sql
    .exec<{ uuid: string }>(
      "SELECT uuid FROM actions WHERE service_uuid = ? AND kind = ? AND state = 'Pending' ORDER BY seq LIMIT 1",
      service,
      kind,
    )
    .toArray()[0];
  return row?.uuid ?? null;
}
