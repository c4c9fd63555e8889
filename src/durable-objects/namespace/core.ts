import { DurableObject } from "cloudflare:workers";
import type { Result } from "../../domain/result";
import type { ServiceRow } from "../../domain/service";
import { migrate } from "../migrations";
import { PING, PONG } from "./agents/links";
import { buildRooms, type Rooms } from "./rooms";
import { NAMESPACE_MIGRATIONS } from "./schema";
import { SERVICE_NOT_FOUND } from "./services";

/**
 * What every part of the namespace object's RPC surface stands on: its
 * modules (rooms.ts), its schema, and the access checks each method makes
 * once. The surface is split by capability (registry-hooks/surface.ts,
 * index.ts); the runtime serves the methods of the whole chain.
 */
export abstract class NamespaceCore extends DurableObject<Env> {
  protected readonly sql: SqlStorage;

  /**
   * False until the namespace is claimed. An object that was only asked about
   * (a guessed username in a Basic header) writes nothing, so it is never stored.
   */
  protected migrated = false;

  protected readonly r: Rooms;
  protected readonly keyUsedAt = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.r = buildRooms(
      ctx,
      () => this.env,
      () => this.migrated,
    );
    // Heartbeats are answered by the runtime, without waking a hibernating object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
    ctx.blockConcurrencyWhile(async () => {
      const hasSchema =
        this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sql_schema_migrations'").toArray()
          .length > 0;
      if (hasSchema) this.ensureSchema();
    });
  }

  protected ensureSchema(): void {
    if (this.migrated) return;
    migrate(this.sql, NAMESPACE_MIGRATIONS);
    this.migrated = true;
  }

  /** Runs `then` if `caller` may use the namespace it asked for by the name `asked`. */
  protected as<T>(caller: string, asked: string, then: () => Result<T>): Result<T> {
    return this.r.members.denied(caller, asked) ?? then();
  }

  /** Runs `then` with a service of the namespace, if `caller` may use it and it exists. */
  protected withService<T>(caller: string, asked: string, uuid: string, then: (svc: ServiceRow) => Result<T>) {
    return this.as(caller, asked, () => {
      const svc = this.r.services.row(uuid);
      return svc ? then(svc) : SERVICE_NOT_FOUND;
    });
  }
}
