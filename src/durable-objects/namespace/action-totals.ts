import type { ActionFilters } from "../../domain/action";

/**
 * Totals of the audit list that count no rows: the number of actions in all,
 * per state, per object (`action_counts`) and per hour of start
 * (`action_hours`), kept by triggers on the inserts and updates of `actions`
 * (schema.ts, migration 13), by retention for what it deletes (retention.ts),
 * and reset when the namespace is deleted. A COUNT(*) reads every row it
 * counts, index or not: at a million actions, far more than the page it comes with.
 */

const HOUR_MS = 3_600_000;

/** The total of a list with these filters, when it is kept; undefined when the list must count. */
export function keptTotal(sql: SqlStorage, f: ActionFilters): number | undefined {
  const given = (Object.keys(f) as (keyof ActionFilters)[]).filter((k) => f[k] !== undefined);
  if (given.length === 0) return counter(sql, "all", "");
  const [only] = given;
  if (given.length === 1 && (only === "state" || only === "object")) return counter(sql, only, String(f[only]));
  if (given.every((k) => k === "start_date__gte" || k === "start_date__lte")) {
    return startedBetween(sql, f.start_date__gte, f.start_date__lte);
  }
  return undefined;
}

function counter(sql: SqlStorage, filter: string, value: string): number {
  const row = sql
    .exec<{ n: number }>("SELECT n FROM action_counts WHERE filter = ? AND value = ?", filter, value)
    .toArray()[0];
  return row?.n ?? 0;
}

/**
 * Actions started from `from` to `to` (either open): the kept counts of the
 * whole hours between, and the rows of the one or two hours at the ends,
 * counted through the start index. Its cost is that of two hours of actions
 * at most, at any size.
 */
function startedBetween(sql: SqlStorage, from: number | undefined, to: number | undefined): number {
  const first = from === undefined ? null : Math.floor(from / HOUR_MS);
  const last = to === undefined ? null : Math.floor(to / HOUR_MS);
  const rows = (lo: number, hi: number) =>
    sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM actions WHERE start_at >= ? AND start_at <= ?", lo, hi).one().n;
  if (first !== null && last !== null && first >= last) return first > last ? 0 : rows(from as number, to as number);
  let n =
    sql
      .exec<{ n: number | null }>(
        "SELECT SUM(n) AS n FROM action_hours WHERE hour > ? AND hour < ?",
        first ?? Number.MIN_SAFE_INTEGER,
        last ?? Number.MAX_SAFE_INTEGER,
      )
      .one().n ?? 0;
  if (first !== null) n += rows(from as number, (first + 1) * HOUR_MS - 1e-3);
  if (last !== null) n += rows(last * HOUR_MS, to as number);
  return n;
}
