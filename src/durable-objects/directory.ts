import { DurableObject } from "cloudflare:workers";
import { migrate } from "./migrations";

export type DirectoryEntry = { name: string; kind: "user" | "organization"; created_at: number };

/**
 * The list of users and organizations, for the admin API's listings. Nothing
 * on the path of ordinary requests reads it: each namespace's own object is the
 * source of truth for whether it exists.
 */
export class Directory extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage.sql, [
        {
          id: 1,
          name: "entries",
          sql: "CREATE TABLE entries (name TEXT PRIMARY KEY, kind TEXT NOT NULL, created_at INTEGER NOT NULL)",
        },
      ]);
    });
  }

  add(entry: DirectoryEntry): void {
    this.ctx.storage.sql.exec(
      "INSERT INTO entries (name, kind, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind",
      entry.name,
      entry.kind,
      entry.created_at,
    );
  }

  remove(name: string): void {
    this.ctx.storage.sql.exec("DELETE FROM entries WHERE name = ?", name);
  }

  list(kind: DirectoryEntry["kind"], limit: number, offset: number): { total: number; entries: DirectoryEntry[] } {
    const sql = this.ctx.storage.sql;
    const total = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM entries WHERE kind = ?", kind).one().n;
    const entries = sql
      .exec<DirectoryEntry>(
        "SELECT name, kind, created_at FROM entries WHERE kind = ? ORDER BY name LIMIT ? OFFSET ?",
        kind,
        limit,
        offset,
      )
      .toArray();
    return { total, entries };
  }
}

export const directoryStub = (env: Env): DurableObjectStub<Directory> => env.DIRECTORY.getByName("directory");
