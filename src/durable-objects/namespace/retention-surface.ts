import { config } from "../../config";
import type { NamespaceKind } from "../../domain/namespace";
import { fail, ok, type Result } from "../../domain/result";
import { NamespaceHooks } from "./registry-hooks/surface";
import { Retention, type RetentionJson } from "./retention";

/**
 * The retention's part of the namespace object's RPC surface: the admin API
 * reads and shortens a namespace's retention of finished actions. The passes
 * themselves run from the alarm (scheduler.ts), wired here.
 */
export abstract class NamespaceRetention extends NamespaceHooks {
  protected readonly retention: Retention;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.retention = new Retention(ctx.storage, () => config(this.env).ACTION_RETENTION_DAYS);
    this.r.scheduler.attach(this.retention);
    // An object that holds finished actions but no alarm (it held them before retention existed)
    // gets one when it wakes; one with an alarm needs nothing: the alarm looks again when it runs.
    ctx.blockConcurrencyWhile(async () => {
      if (this.r.members.namespace() && (await ctx.storage.getAlarm()) === null) this.r.scheduler.reschedule();
    });
  }

  /**
   * A namespace's retention of finished actions; with `days`, sets it first
   * (null: the Worker's ACTION_RETENTION_DAYS). It can shorten that, never
   * lengthen it: a longer one is refused and nothing changes.
   */
  actionRetention(kind: NamespaceKind, days?: number | null): Result<RetentionJson> {
    const ns = this.r.members.namespace();
    if (ns?.kind !== kind) return fail("not_found", `${kind} not found`);
    if (days !== undefined) {
      const refused = this.retention.set(days);
      if (refused) return fail("bad_request", refused);
      // A shorter retention may make actions due now: the alarm comes at once for them.
      this.r.scheduler.recheck();
    }
    return ok(this.retention.json());
  }
}
