import { DurableObject } from "cloudflare:workers";
import { migrate } from "./migrations";

/**
 * Write-once pointers from a service uuid to the namespace that owns it, so a
 * non-namespaced path (the Go SDK never namespaces trigger calls) finds its
 * service. Sharded by the first two hex digits of the uuid: no single object
 * carries every lookup, and a pointer never changes, so the Worker may cache it.
 */
export class ServiceLocator extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage.sql, [
        {
          id: 1,
          name: "pointers",
          sql: "CREATE TABLE pointers (uuid TEXT PRIMARY KEY, namespace TEXT NOT NULL, created_at INTEGER NOT NULL)",
        },
      ]);
    });
  }

  /** Records uuid -> namespace; an existing pointer is never overwritten. */
  put(uuid: string, namespace: string): boolean {
    const cursor = this.ctx.storage.sql.exec(
      "INSERT INTO pointers (uuid, namespace, created_at) VALUES (?, ?, ?) ON CONFLICT (uuid) DO NOTHING",
      uuid,
      namespace,
      Date.now(),
    );
    return cursor.rowsWritten > 0;
  }

  /** Records several pointers of one namespace at once (an agent's inventory brings services in by the hundred). */
  putMany(uuids: string[], namespace: string): void {
    const now = Date.now();
    for (const uuid of uuids) {
      this.ctx.storage.sql.exec(
        "INSERT INTO pointers (uuid, namespace, created_at) VALUES (?, ?, ?) ON CONFLICT (uuid) DO NOTHING",
        uuid,
        namespace,
        now,
      );
    }
  }

  /** Drops the pointer of a service whose create was refused; its uuid was never handed out. */
  remove(uuid: string): void {
    this.ctx.storage.sql.exec("DELETE FROM pointers WHERE uuid = ?", uuid);
  }

  get(uuid: string): string | null {
    const row = this.ctx.storage.sql
      .exec<{ namespace: string }>("SELECT namespace FROM pointers WHERE uuid = ?", uuid)
      .toArray()[0];
    return row?.namespace ?? null;
  }
}

export function locatorStub(env: Env, serviceUuid: string): DurableObjectStub<ServiceLocator> {
  return env.LOCATOR.getByName(`services-${serviceUuid.slice(0, 2)}`);
}

/** Writes the pointers of many services of one namespace: one RPC per shard they fall in. */
export async function putPointers(env: Env, uuids: string[], namespace: string): Promise<void> {
  const byShard = new Map<string, string[]>();
  for (const uuid of uuids) byShard.set(uuid.slice(0, 2), [...(byShard.get(uuid.slice(0, 2)) ?? []), uuid]);
  await Promise.all(
    [...byShard.values()].map((group) => locatorStub(env, group[0] as string).putMany(group, namespace)),
  );
}

/** Positive answers only: a pointer is write-once, a miss may become a hit. */
const cache = new Map<string, string>();
const CACHE_LIMIT = 50_000;

export async function locateService(env: Env, serviceUuid: string): Promise<string | null> {
  const hit = cache.get(serviceUuid);
  if (hit) return hit;
  const namespace = await locatorStub(env, serviceUuid).get(serviceUuid);
  if (namespace) {
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(serviceUuid, namespace);
  }
  return namespace;
}
