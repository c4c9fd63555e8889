import type { Page } from "../../domain/pagination";

/** One condition of a list filter; null when the filter was not given. */
export type Condition = { sql: string; args: SqlStorageValue[] } | null;

export const equals = (column: string, value: SqlStorageValue | undefined): Condition =>
  value === undefined ? null : { sql: `${column} = ?`, args: [value] };

/** A prefix match that needs no LIKE escaping (uuid__startswith). */
export const startsWith = (column: string, prefix: string | undefined): Condition =>
  prefix === undefined ? null : { sql: `substr(${column}, 1, ?) = ?`, args: [prefix.length, prefix] };

/**
 * A prefix match as a range, which an index on `column` answers: for columns
 * of ASCII text (uuids), where the range is exact. A prefix holding anything
 * else is the prefix of no such value: it matches nothing.
 */
export function asciiPrefix(column: string, prefix: string | undefined): Condition {
  if (prefix === undefined || prefix === "") return null;
  if (!/^[\x20-\x7e]+$/.test(prefix)) return { sql: "0", args: [] };
  const next = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  return { sql: `${column} >= ? AND ${column} < ?`, args: [prefix, next] };
}

export const atLeast = (column: string, value: number | undefined): Condition =>
  value === undefined ? null : { sql: `${column} >= ?`, args: [value] };

export const atMost = (column: string, value: number | undefined): Condition =>
  value === undefined ? null : { sql: `${column} <= ?`, args: [value] };

/**
 * One page of a table under the given filters, and how many rows match.
 * `knownTotal` skips the count when the caller keeps it (a service's trigger
 * count), so the first page of an unfiltered list never scans.
 */
export function selectPage<T extends Record<string, SqlStorageValue>>(
  sql: SqlStorage,
  q: { columns: string; table: string; where: Condition[]; order: string; page: Page; knownTotal?: number },
): { total: number; rows: T[] } {
  const conditions = q.where.filter((c): c is NonNullable<Condition> => c !== null);
  const clause = conditions.length ? `WHERE ${conditions.map((c) => c.sql).join(" AND ")}` : "";
  const args = conditions.flatMap((c) => c.args);
  const total =
    q.knownTotal ?? sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${q.table} ${clause}`, ...args).one().n;
  const rows = sql
    .exec<T>(
      `SELECT ${q.columns} FROM ${q.table} ${clause} ORDER BY ${q.order} LIMIT ? OFFSET ?`,
      ...args,
      q.page.limit,
      q.page.offset,
    )
    .toArray();
  return { total, rows };
}
