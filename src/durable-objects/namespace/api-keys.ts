import { digestsEqual, randomHex, sha256Hex } from "../../domain/crypto";
import { rfc1123 } from "../../domain/dates";
import { newUuid } from "../../domain/ids";
import { fail, ok, type Result } from "../../domain/result";

/**
 * Keys a user may hold at once. Keys are self-service, and each one brings its
 * own allowance of streams: without a bound, one member could hold enough keys
 * to take every stream of an organization.
 */
export const MAX_API_KEYS_PER_USER = 10;

/**
 * A user's API keys, in its namespace object. A key is 160 random bits, shown
 * once; only its SHA-256 is stored (a high-entropy key needs no slow hash).
 */
export type ApiKeyJson = {
  uuid: string;
  label: string;
  created: string | null;
  last_used: string | null;
  resource_uri: string;
};

type KeyRow = { uuid: string; label: string; created_at: number; last_used_at: number | null };

const keyJson = (r: KeyRow): ApiKeyJson => ({
  uuid: r.uuid,
  label: r.label,
  created: rfc1123(r.created_at),
  last_used: rfc1123(r.last_used_at),
  resource_uri: `/api/account/v1/apikey/${r.uuid}/`,
});

export async function insertKey(sql: SqlStorage, label: string): Promise<Result<ApiKeyJson & { key: string }>> {
  const key = randomHex(20);
  const keyHash = await sha256Hex(key);
  // Counted after the await, with no await before the insert: other creates may run during one.
  const count = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM api_keys").one().n;
  if (count >= MAX_API_KEYS_PER_USER) {
    return fail(
      "quota_exceeded",
      `a user may hold at most ${MAX_API_KEYS_PER_USER} API keys; revoke one (DELETE /api/account/v1/apikey/<uuid>/) before creating another`,
    );
  }
  const row: KeyRow = { uuid: newUuid(), label, created_at: Date.now(), last_used_at: null };
  sql.exec(
    "INSERT INTO api_keys (uuid, label, key_hash, created_at) VALUES (?, ?, ?, ?)",
    row.uuid,
    row.label,
    keyHash,
    row.created_at,
  );
  return ok({ ...keyJson(row), key });
}

export function listKeys(sql: SqlStorage): ApiKeyJson[] {
  return sql
    .exec<KeyRow>("SELECT uuid, label, created_at, last_used_at FROM api_keys ORDER BY created_at, uuid")
    .toArray()
    .map(keyJson);
}

/**
 * Deletes a key; it stops working with the next request. Null when there is
 * no such key; else the key as listed and its hash (the streams it opened are
 * tagged with it).
 */
export function deleteKey(sql: SqlStorage, uuid: string): { key: ApiKeyJson; hash: string } | null {
  const row = sql
    .exec<KeyRow & { key_hash: string }>(
      "SELECT uuid, label, created_at, last_used_at, key_hash FROM api_keys WHERE uuid = ?",
      uuid,
    )
    .toArray()[0];
  if (!row) return null;
  sql.exec("DELETE FROM api_keys WHERE uuid = ?", uuid);
  return { key: keyJson(row), hash: row.key_hash };
}

/** The uuid of the key that matches, comparing against every key in constant time. */
export async function matchKey(sql: SqlStorage, key: string): Promise<string | null> {
  const hash = await sha256Hex(key);
  const keys = sql.exec<{ uuid: string; key_hash: string }>("SELECT uuid, key_hash FROM api_keys").toArray();
  let match: string | null = null;
  for (const k of keys) if (digestsEqual(k.key_hash, hash)) match = k.uuid;
  return match;
}

/**
 * Checks an API key against every key of the user, each in constant time.
 * last_used_at is kept to the minute (`usedAt` remembers the last write per
 * key), so a busy key does not make every request a write.
 */
export async function authenticateKey(sql: SqlStorage, key: string, usedAt: Map<string, number>): Promise<boolean> {
  const match = await matchKey(sql, key);
  const now = Date.now();
  if (match && (usedAt.get(match) ?? 0) < now - 60_000) {
    sql.exec("UPDATE api_keys SET last_used_at = ? WHERE uuid = ?", now, match);
    usedAt.set(match, now);
  }
  return match !== null;
}
