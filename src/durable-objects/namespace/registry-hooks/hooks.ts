import { hideIds, newUuid } from "../../../domain/ids";
import type { Listing, Page } from "../../../domain/pagination";
import {
  MAX_HOOKS_PER_NAMESPACE,
  type RegistryHookJson,
  type RegistryHookRow,
  type RegistrySource,
  serializeRegistryHook,
} from "../../../domain/registry-hook";
import { fail, ok, type Result } from "../../../domain/result";
import { selectPage } from "../listing";

export const HOOK_NOT_FOUND = fail("not_found", "Registry hook not found");

/** What the Worker made for a new hook or a rotation: the URL's token and the sealed secret (null: unsigned). */
export type HookCredentials = { token: string; secret_sealed: string | null };

/** A hook found by the token of a call's URL, and whether that was its URL before a rotation. */
export type CalledHook = { hook: RegistryHookRow; secretSealed: string | null; viaPrevious: boolean };

/**
 * A namespace's registry hooks: the `registry_hooks` table. The token in a
 * hook's URL and its secret are made and sealed by the Worker; a rotation
 * keeps the previous ones working until `previous_until`.
 */
export class RegistryHooks {
  constructor(
    private readonly sql: SqlStorage,
    private readonly ns: () => string,
  ) {}

  row(uuid: string): RegistryHookRow | undefined {
    return this.sql.exec<RegistryHookRow>("SELECT * FROM registry_hooks WHERE uuid = ?", uuid).toArray()[0];
  }

  json(row: RegistryHookRow): RegistryHookJson {
    return serializeRegistryHook(this.ns(), row);
  }

  create(name: string, source: RegistrySource, credentials: HookCredentials, now: number): Result<RegistryHookJson> {
    const count = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM registry_hooks").one().n;
    if (count >= MAX_HOOKS_PER_NAMESPACE) {
      return fail(
        "quota_exceeded",
        `a namespace may hold at most ${MAX_HOOKS_PER_NAMESPACE} registry hooks; delete one before creating another`,
      );
    }
    if (this.sql.exec("SELECT 1 FROM registry_hooks WHERE name = ?", name).toArray().length > 0) {
      return fail("conflict", `a registry hook named '${hideIds(name)}' already exists`);
    }
    const uuid = newUuid();
    this.sql.exec(
      "INSERT INTO registry_hooks (uuid, name, source, token, secret_sealed, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      uuid,
      name,
      source,
      credentials.token,
      credentials.secret_sealed,
      now,
    );
    return ok(this.json(this.row(uuid) as RegistryHookRow));
  }

  list(page: Page): Listing<RegistryHookJson> {
    const { total, rows } = selectPage<RegistryHookRow>(this.sql, {
      columns: "*",
      table: "registry_hooks",
      where: [],
      order: "seq",
      page,
    });
    return { total, objects: rows.map((r) => this.json(r)) };
  }

  get(uuid: string): Result<RegistryHookJson> {
    const row = this.row(uuid);
    return row ? ok(this.json(row)) : HOOK_NOT_FOUND;
  }

  /** Deletes a hook: its URL, old or new, is dead from this answer on. */
  remove(uuid: string): Result<RegistryHookJson> {
    const row = this.row(uuid);
    if (!row) return HOOK_NOT_FOUND;
    this.sql.exec("DELETE FROM registry_hooks WHERE uuid = ?", uuid);
    this.sql.exec("DELETE FROM registry_deliveries WHERE hook_uuid = ?", uuid);
    return ok(this.json(row));
  }

  /** A new URL and secret; the current ones keep working for `graceSeconds`, then die. */
  rotate(uuid: string, credentials: HookCredentials, graceSeconds: number, now: number): Result<RegistryHookJson> {
    const row = this.row(uuid);
    if (!row) return HOOK_NOT_FOUND;
    this.sql.exec(
      `UPDATE registry_hooks SET previous_token = token, previous_secret_sealed = secret_sealed, previous_until = ?,
         token = ?, secret_sealed = ? WHERE uuid = ?`,
      graceSeconds > 0 ? now + graceSeconds * 1000 : null,
      credentials.token,
      credentials.secret_sealed,
      uuid,
    );
    return ok(this.json(this.row(uuid) as RegistryHookRow));
  }

  /** The hook whose URL holds `token`: its current one, or its previous one within the grace period. */
  byToken(token: string, now: number): CalledHook | null {
    const current = this.sql.exec<RegistryHookRow>("SELECT * FROM registry_hooks WHERE token = ?", token).toArray()[0];
    if (current) return { hook: current, secretSealed: current.secret_sealed, viaPrevious: false };
    const before = this.sql
      .exec<RegistryHookRow>("SELECT * FROM registry_hooks WHERE previous_token = ? AND previous_until > ?", token, now)
      .toArray()[0];
    return before ? { hook: before, secretSealed: before.previous_secret_sealed, viaPrevious: true } : null;
  }
}
