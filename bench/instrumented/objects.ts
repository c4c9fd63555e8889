// The product's Durable Object classes, metered (bench build only): each is a subclass under the
// product's class name, so wrangler.jsonc's bindings and migrations name them unchanged. The
// product's constructor runs on a metered `ctx` and `env`; its RPC methods, fetch, alarm and
// WebSocket handlers are counted as events (bench/instrumented/meter.ts). `__benchState` is the
// bench's own RPC (not counted): the object's database size and pending alarm.
import { DurableObject } from "cloudflare:workers";
import { Directory as ProductDirectory } from "../../src/durable-objects/directory";
import { ServiceLocator as ProductLocator } from "../../src/durable-objects/locator";
import { NamespaceObject as ProductNamespace } from "../../src/durable-objects/namespace";
import { NamespaceCore } from "../../src/durable-objects/namespace/core";
import { attach, event, meterEnv, meterRpc } from "./meter";

export type ObjectState = { database_size: number; alarm: number | null };
export type SweepResult = { retention_days: number; passes: number; actions: number; rows: number };

/** The product's retention (src/durable-objects/namespace/retention.ts), as far as the bench uses it. */
type Retention = { days(): number; pass(now: number): { actions: number; rows: number; more: boolean } };

const DAY_MS = 86_400_000;

async function stateOf(ctx: DurableObjectState): Promise<ObjectState> {
  return { database_size: ctx.storage.sql.databaseSize, alarm: await ctx.storage.getAlarm() };
}

export class NamespaceObject extends ProductNamespace {
  constructor(ctx: DurableObjectState, env: Env) {
    super(attach(ctx, "NamespaceObject"), meterEnv(env));
  }

  override fetch(request: Request): Promise<Response> {
    return event(this.ctx, "fetch", () => super.fetch(request));
  }

  override alarm(): Promise<void> {
    return event(this.ctx, "alarm", () => super.alarm());
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    return event(this.ctx, "websocket_message", () => super.webSocketMessage(ws, message));
  }

  override webSocketClose(ws: WebSocket): void {
    event(this.ctx, "websocket_close", () => super.webSocketClose(ws));
  }

  override webSocketError(ws: WebSocket): void {
    event(this.ctx, "websocket_error", () => super.webSocketError(ws));
  }

  __benchState(): Promise<ObjectState> {
    return stateOf(this.ctx);
  }

  /**
   * The retention's passes, run as the alarm runs them (one alarm each) with the clock a day past the
   * retention: what deleting the finished actions costs. Null if the product has no retention.
   */
  __benchSweep(): SweepResult | null {
    const retention = (this as unknown as { retention?: Retention }).retention;
    if (typeof retention?.pass !== "function") return null;
    const days = retention.days();
    const at = Date.now() + (days + 1) * DAY_MS;
    const done: SweepResult = { retention_days: days, passes: 0, actions: 0, rows: 0 };
    for (;;) {
      const pass = event(this.ctx, "alarm", () => retention.pass(at));
      done.passes++;
      done.actions += pass.actions;
      done.rows += pass.rows;
      if (!pass.more || pass.actions === 0) return done;
    }
  }
}

export class ServiceLocator extends ProductLocator {
  constructor(ctx: DurableObjectState, env: Env) {
    super(attach(ctx, "ServiceLocator"), meterEnv(env));
  }

  __benchState(): Promise<ObjectState> {
    return stateOf(this.ctx);
  }
}

export class Directory extends ProductDirectory {
  constructor(ctx: DurableObjectState, env: Env) {
    super(attach(ctx, "Directory"), meterEnv(env));
  }

  __benchState(): Promise<ObjectState> {
    return stateOf(this.ctx);
  }
}

// The RPC surface: the product's public methods. The namespace object's stop at NamespaceCore, whose
// methods (access checks, the schema) are the object's own helpers, never called over RPC.
meterRpc(NamespaceObject.prototype, ProductNamespace.prototype, NamespaceCore.prototype);
meterRpc(ServiceLocator.prototype, ProductLocator.prototype, DurableObject.prototype);
meterRpc(Directory.prototype, ProductDirectory.prototype, DurableObject.prototype);
