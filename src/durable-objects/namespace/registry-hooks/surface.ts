import { actionUri, type RequestMeta } from "../../../domain/action";
import type { Listing, Page } from "../../../domain/pagination";
import {
  type DeliveryJson,
  type PushedImage,
  type RegistryHookJson,
  type RegistryHookRow,
  type RegistrySource,
  registryHookUri,
} from "../../../domain/registry-hook";
import { ok, type Result } from "../../../domain/result";
import { streamEvent } from "../../../domain/stream-event";
import { rateLimited, recordWindowCall } from "../call-guards";
import { NamespaceCore } from "../core";
import type { Delivery } from "./deliveries";
import { type CalledHook, HOOK_NOT_FOUND, type HookCredentials } from "./hooks";

/** Calls a hook takes per minute: registries send bursts (one push, many events), so the bound is wide. */
export const HOOK_RATE_LIMIT = 6_000;

/** What the Worker made of a call: refused before its payload was read, or the payload's pushes and noise. */
export type HookCall =
  | { kind: "refused"; status: 400 | 401; reason: string; pushes?: Delivery["pushes"] }
  | { kind: "parsed"; pushes: PushedImage[]; ignored: { kind: string; reason: string }[] };

/** The answer to a registry: only what its own payload said, never another service's name. */
export type HookAnswer = { status: 200 | 202 | 400 | 401 | 404 | 429; body: Record<string, unknown> };

/**
 * The registry hooks' part of the namespace object's RPC surface: the hooks
 * as a resource of the namespace (members only), and a registry's call,
 * whose URL token is its credential (with a signature, where the source
 * signs; the Worker checks it).
 */
export abstract class NamespaceHooks extends NamespaceCore {
  createRegistryHook(
    caller: string,
    asked: string,
    input: { name: string; source: RegistrySource },
    credentials: HookCredentials,
  ): Result<RegistryHookJson> {
    return this.as(caller, asked, () => this.r.registryHooks.create(input.name, input.source, credentials, Date.now()));
  }

  listRegistryHooks(caller: string, asked: string, page: Page): Result<Listing<RegistryHookJson>> {
    return this.as(caller, asked, () => ok(this.r.registryHooks.list(page)));
  }

  getRegistryHook(caller: string, asked: string, uuid: string): Result<RegistryHookJson> {
    return this.as(caller, asked, () => this.r.registryHooks.get(uuid));
  }

  /** Deletes a hook: its URLs are dead from this answer on. */
  deleteRegistryHook(caller: string, asked: string, uuid: string): Result<RegistryHookJson> {
    return this.as(caller, asked, () => this.r.registryHooks.remove(uuid));
  }

  rotateRegistryHook(
    caller: string,
    asked: string,
    uuid: string,
    credentials: HookCredentials,
    graceSeconds: number,
  ): Result<RegistryHookJson> {
    return this.as(caller, asked, () => this.r.registryHooks.rotate(uuid, credentials, graceSeconds, Date.now()));
  }

  listHookDeliveries(caller: string, asked: string, uuid: string, page: Page): Result<Listing<DeliveryJson>> {
    return this.as(caller, asked, () => {
      const hook = this.r.registryHooks.row(uuid);
      return hook ? ok(this.r.deliveries.list(uuid, hook.source, page)) : HOOK_NOT_FOUND;
    });
  }

  /** The hook a call's URL names (its token), with its sealed secret for the Worker to check the call. */
  registryHookOf(token: string): CalledHook | null {
    if (!this.r.members.namespace()) return null;
    return this.r.registryHooks.byToken(token, Date.now());
  }

  /** A call's verdict: its pushes become actions; whatever it was, it is recorded and published. */
  registryCall(hookUuid: string, viaPrevious: boolean, call: HookCall, meta: RequestMeta): HookAnswer {
    const hook = this.migrated ? this.r.registryHooks.row(hookUuid) : undefined;
    if (!hook) return { status: 404, body: { error: "Registry hook not found" } };
    const now = Date.now();
    const record = (d: Omit<Delivery, "viaPrevious">) => {
      this.r.deliveries.record(hook.uuid, { ...d, viaPrevious }, now);
      this.r.streams.publish(() =>
        streamEvent({
          type: "registryhook",
          action: "update",
          uuid: hook.uuid,
          resource_uri: registryHookUri(this.r.members.name, hook.uuid),
          state: d.verdict,
          data: { verdict: d.verdict, reason: d.reason, status: d.status, actions: d.actions.length },
        }),
      );
    };
    const window = `hook:${hook.uuid}`;
    const retryAfter = rateLimited(this.sql, window, HOOK_RATE_LIMIT, now);
    if (retryAfter === null) recordWindowCall(this.sql, window, now);
    else {
      const reason = `this hook takes at most ${HOOK_RATE_LIMIT} calls per minute; retry in ${retryAfter} s`;
      record({ verdict: "refused", reason, pushes: [], actions: [], status: 429 });
      return { status: 429, body: { error: reason } };
    }
    if (call.kind === "refused") {
      record({ verdict: "refused", reason: call.reason, pushes: call.pushes ?? [], actions: [], status: call.status });
      return { status: call.status, body: { error: call.reason } };
    }
    return this.applyPushes(hook, call, meta, now, record);
  }

  private applyPushes(
    hook: RegistryHookRow,
    call: Extract<HookCall, { kind: "parsed" }>,
    meta: RequestMeta,
    now: number,
    record: (d: Omit<Delivery, "viaPrevious">) => void,
  ): HookAnswer {
    const pushes = [
      ...call.pushes.map((p) => ({ repository: p.repository, tag: p.tag, digest: p.digest, kind: "push" })),
      ...call.ignored.map((i) => ({ repository: "", tag: "", digest: null, kind: i.kind })),
    ];
    const outcome = this.r.autoredeploy.apply(hook, call.pushes, meta, now);
    const uris = outcome.actions.map((a) => actionUri(this.r.members.name, a.uuid));
    const noise = call.ignored.map((i) => i.reason);
    if (uris.length > 0) {
      const reason = [...outcome.ignored, ...noise].join("; ") || null;
      record({ verdict: "redeployed", reason, pushes, actions: uris, status: 202 });
      return { status: 202, body: { actions: uris } };
    }
    // Only what the payload itself said goes back to the caller; the deliveries list says the rest.
    const said =
      call.pushes.length === 0 ? noise.join("; ") || "the payload holds no push" : "no service was redeployed";
    const reason = [...outcome.ignored, ...noise].join("; ") || said;
    record({ verdict: "ignored", reason, pushes, actions: [], status: 200 });
    return { status: 200, body: { ignored: said } };
  }
}
