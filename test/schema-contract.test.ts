/**
 * What the namespace tables hold agrees with the code. Kinds are spelled once
 * in TypeScript (trigger operations, action kinds); the SQL CHECKs of the
 * tables freeze the same lists, so a new kind is a constant plus a
 * table-rebuild migration (docs/storage.md), and this fails until both agree.
 * Migrations carry what older rows hold into the new shape.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { ACTION_KIND_NAMES, ACTION_KINDS } from "../src/domain/action";
import { OPERATION_NAMES, OPERATIONS } from "../src/domain/trigger";
import { migrate } from "../src/durable-objects/migrations";
import { NAMESPACE_MIGRATIONS } from "../src/durable-objects/namespace/schema";
import { createUser } from "./helpers/api";

/** The values a table's CHECK (column IN (...)) allows, read from the schema SQLite keeps. */
async function checkedValues(namespace: string, table: string, column: string): Promise<string[]> {
  const sql = await runInDurableObject(env.NAMESPACES.getByName(namespace), (_o, state) =>
    state.storage.sql
      .exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", table)
      .one(),
  );
  const match = new RegExp(`CHECK \\(${column} IN \\(([^)]*)\\)\\)`).exec(sql.sql);
  if (!match?.[1]) throw new Error(`no CHECK on ${table}.${column}`);
  return match[1].split(",").map((v) => v.trim().replace(/^'|'$/g, ""));
}

it("the triggers table allows exactly the trigger operations", async () => {
  const user = await createUser();
  expect(await checkedValues(user.username, "triggers", "operation")).toEqual([...OPERATION_NAMES]);
  expect(Object.keys(OPERATIONS)).toEqual([...OPERATION_NAMES]);
});

it("the actions table allows exactly the action kinds, and every operation creates one of them", async () => {
  const user = await createUser();
  expect(await checkedValues(user.username, "actions", "kind")).toEqual([...ACTION_KIND_NAMES]);
  expect(Object.keys(ACTION_KINDS)).toEqual([...ACTION_KIND_NAMES]);
  for (const op of OPERATION_NAMES) expect(ACTION_KIND_NAMES).toContain(OPERATIONS[op].action);
});

it("migration 5 keeps a Docker Cloud SCALEUP's remote count as the adapter's JSON state", async () => {
  const stub = env.NAMESPACES.getByName(`migrate${crypto.randomUUID().slice(0, 8)}`);
  const after = await runInDurableObject(stub, (_o, state) => {
    const sql = state.storage.sql;
    migrate(
      sql,
      NAMESPACE_MIGRATIONS.filter((m) => m.id < 5),
    );
    const row = (uuid: string, remote: number | null) =>
      sql.exec(
        `INSERT INTO actions (uuid, service_uuid, object, kind, method, path, start_at, state, is_user_action,
           dispatch, touched_at, remote_target) VALUES (?, 's', 'o', 'scaleup', 'POST', '/', 0, 'Pending', 0, 'ready', 0, ?)`,
        uuid,
        remote,
      );
    row("kept", 7);
    row("none", null);
    migrate(sql, NAMESPACE_MIGRATIONS);
    const columns = sql
      .exec<{ name: string }>("SELECT name FROM pragma_table_info('actions')")
      .toArray()
      .map((c) => c.name);
    const states = sql
      .exec<{ uuid: string; target_state: string | null }>("SELECT uuid, target_state FROM actions ORDER BY seq")
      .toArray();
    return { columns, states };
  });
  expect(after.columns).not.toContain("remote_target");
  expect(after.states).toEqual([
    { uuid: "kept", target_state: '{"remote_count":7}' },
    { uuid: "none", target_state: null },
  ]);
});
