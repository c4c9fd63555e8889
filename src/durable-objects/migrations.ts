/**
 * Schema migrations for SQLite-backed Durable Objects, recorded in
 * `_sql_schema_migrations` (SQLite DOs have no PRAGMA user_version). Run from
 * the constructor inside `blockConcurrencyWhile`, so no request ever sees a
 * half-migrated object.
 */
export type Migration = { id: number; name: string; sql: string };

export function migrate(sql: SqlStorage, migrations: readonly Migration[]): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS _sql_schema_migrations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const applied = new Set(
    sql
      .exec<{ id: number }>("SELECT id FROM _sql_schema_migrations")
      .toArray()
      .map((r) => r.id),
  );
  for (const m of migrations) {
    if (applied.has(m.id)) continue;
    sql.exec(m.sql);
    sql.exec("INSERT INTO _sql_schema_migrations (id, name, applied_at) VALUES (?, ?, ?)", m.id, m.name, Date.now());
  }
}
