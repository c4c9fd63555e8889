/**
 * The order and the deadlines of a namespace's actions, as SQL over its
 * `actions` table. The object is the only scheduler: the queue only carries
 * "run this action now" messages, and every unfinished action that may run has
 * a deadline (`due_at`) by which something must have happened to it. When a
 * deadline passes, the alarm hands the action to the queue again; so a lost
 * message, a consumer that died mid-attempt or a restarted runtime delay an
 * action by one deadline, never for ever.
 *
 * Per service, only the *head* (its first unfinished action, by call order)
 * may leave `waiting`; every other unfinished action waits. That single rule
 * gives: at most one action of a service in progress, and actions start in
 * call order, whatever finishes, fails, is canceled or is redelivered.
 */

/** Unfinished states: the ones that hold a service's queue. */
export const OPEN_STATES_SQL = "('Pending', 'In progress')";

export type HeadRow = { uuid: string; dispatch: string };

/** The first unfinished action of a service, or undefined. */
export function headOf(sql: SqlStorage, service: string): HeadRow | undefined {
  return sql
    .exec<HeadRow>(
      `SELECT uuid, dispatch FROM actions WHERE service_uuid = ? AND state IN ${OPEN_STATES_SQL} ORDER BY seq LIMIT 1`,
      service,
    )
    .toArray()[0];
}

/**
 * Lets the head of a service go once the actions before it have finished:
 * `ready` (the alarm sends it when due) or, with `claim`, `queued` and
 * returned, for a consumer that runs it without a queue round trip. Returns
 * the claimed uuid, or null.
 */
export function releaseHead(
  sql: SqlStorage,
  service: string,
  now: number,
  claim: { leaseMs: number } | null,
): string | null {
  const head = headOf(sql, service);
  if (head?.dispatch !== "waiting") return null;
  if (claim) {
    sql.exec("UPDATE actions SET dispatch = 'queued', due_at = ? WHERE uuid = ?", now + claim.leaseMs, head.uuid);
    return head.uuid;
  }
  sql.exec("UPDATE actions SET dispatch = 'ready', due_at = ? WHERE uuid = ?", now, head.uuid);
  return null;
}

/**
 * Actions whose deadline has passed: `ready` ones (never sent, or a retry now
 * due) and `queued` ones whose message or attempt went missing. They are
 * marked `queued` with a fresh deadline before they are sent; `putBack`
 * undoes that if the send fails.
 */
export function takeDue(sql: SqlStorage, now: number, leaseMs: number, limit: number): string[] {
  const due = sql
    .exec<{ uuid: string }>(
      `SELECT uuid FROM actions WHERE dispatch IN ('ready', 'queued') AND due_at <= ? ORDER BY due_at, seq LIMIT ?`,
      now,
      limit,
    )
    .toArray()
    .map((r) => r.uuid);
  for (const uuid of due) {
    sql.exec("UPDATE actions SET dispatch = 'queued', due_at = ? WHERE uuid = ?", now + leaseMs, uuid);
  }
  return due;
}

/** The queue refused a batch: its actions are due again after `delayMs`. */
export function putBack(sql: SqlStorage, uuids: readonly string[], now: number, delayMs: number): void {
  for (const uuid of uuids) {
    sql.exec(
      "UPDATE actions SET dispatch = 'ready', due_at = ? WHERE uuid = ? AND dispatch = 'queued'",
      now + delayMs,
      uuid,
    );
  }
}

/** The earliest deadline of the namespace, for the alarm; null when nothing is due. */
export function nextDue(sql: SqlStorage): number | null {
  return sql
    .exec<{ t: number | null }>("SELECT MIN(due_at) AS t FROM actions WHERE dispatch IN ('ready', 'queued')")
    .one().t;
}
