import type { ActionRow, RequestMeta } from "../../../domain/action";
import { decidePush } from "../../../domain/image-ref";
import type { DeployedPush, PushedImage, RegistryHookRow } from "../../../domain/registry-hook";
import type { ServiceRow } from "../../../domain/service";
import { quote } from "../../../domain/text";
import type { Actions } from "../actions";

/** What a push did: the actions it started or joined, and why it redeployed nothing when it did not. */
export type PushOutcome = { actions: ActionRow[]; ignored: string[] };

/** The host that may offer an agent's job at once (agents/jobs.ts). */
export type Offer = (svc: ServiceRow, now: number) => void;

/**
 * Docker Cloud's autoredeploy: a registry push redeploys every service of
 * the namespace with `autoredeploy` on whose image the push is (its policy
 * decides: the tag it runs, or a greater semver tag), with exactly the
 * pushed image. Registries are noisy and at-least-once, so:
 *   - the same push told again (a retry, several events of one push) joins
 *     the action it made, never a second one;
 *   - a newer push of a tag whose action has not started replaces that
 *     action's image instead of queuing a second rollout; an older one is
 *     ignored, so the service ends on the later digest;
 *   - a service gone from its orchestrator takes none.
 */
export class Autoredeploy {
  constructor(
    private readonly sql: SqlStorage,
    private readonly actions: Actions,
    private readonly offer: Offer,
  ) {}

  apply(hook: RegistryHookRow, pushes: PushedImage[], meta: RequestMeta, now: number): PushOutcome {
    const services = this.sql.exec<ServiceRow>("SELECT * FROM services WHERE autoredeploy = 1 ORDER BY seq").toArray();
    const outcome: PushOutcome = { actions: [], ignored: [] };
    for (const push of pushes) {
      let matched = false;
      for (const svc of services) {
        const decision = decidePush(svc.image_name, svc.autoredeploy_policy, push);
        if (!decision.redeploy) continue;
        matched = true;
        if (svc.present === 0) {
          outcome.ignored.push(`service '${svc.name}' is not on its orchestrator (its agent reported it gone)`);
          continue;
        }
        const deployed: DeployedPush = { ...push, hook: hook.name, deploy_tag: decision.tag };
        const action = this.redeploy(svc, deployed, meta, now);
        if (typeof action === "string") outcome.ignored.push(action);
        else if (!outcome.actions.some((a) => a.uuid === action.uuid)) outcome.actions.push(action);
      }
      if (!matched) outcome.ignored.push(`no service with autoredeploy runs ${pushName(push)}`);
    }
    return outcome;
  }

  /** The action that deploys `push` on `svc`: a new one, the one this push made before, or a pending one updated. */
  private redeploy(svc: ServiceRow, push: DeployedPush, meta: RequestMeta, now: number): ActionRow | string {
    const earlier = this.lastPushAction(svc.uuid);
    const before = earlier?.push ? (JSON.parse(earlier.push) as DeployedPush) : null;
    if (earlier && before && samePush(before, push)) return earlier;
    // Pushes are told out of order (Distribution's notifications are): an older push never follows a newer one.
    if (before && before.deploy_tag === push.deploy_tag && isOlder(push, before)) {
      return `${pushName(push)} is older than the push the service's last autoredeploy deploys`;
    }
    if (earlier && before && earlier.state === "Pending" && before.deploy_tag === push.deploy_tag) {
      this.sql.exec("UPDATE actions SET push = ? WHERE uuid = ?", JSON.stringify(push), earlier.uuid);
      this.actions.appendLog(
        earlier.uuid,
        `${new Date(now).toISOString()} a newer push replaced the image: ${describe(push)}`,
        null,
      );
      return this.actions.row(earlier.uuid) as ActionRow;
    }
    const action = this.actions.insert({
      service: svc,
      kind: "redeploy",
      trigger: null,
      user: null,
      meta,
      scaleBy: null,
      body: null,
      reuseVolumes: null,
      retryOf: null,
      hops: meta.hops,
      push: JSON.stringify(push),
    });
    this.actions.appendLog(action.uuid, `${new Date(now).toISOString()} ${describe(push)}`, null);
    this.offer(svc, now);
    return this.actions.row(action.uuid) as ActionRow;
  }

  /** The service's latest action that deploys a push (one index walk over its actions). */
  private lastPushAction(serviceUuid: string): ActionRow | undefined {
    return this.sql
      .exec<ActionRow>(
        "SELECT * FROM actions WHERE service_uuid = ? AND push IS NOT NULL ORDER BY seq DESC LIMIT 1",
        serviceUuid,
      )
      .toArray()[0];
  }
}

/** The same push, told again: the same digest of the same tag, or, without a digest, the same event. */
function samePush(a: DeployedPush, b: DeployedPush): boolean {
  if (a.repository !== b.repository || a.tag !== b.tag) return false;
  if (a.digest !== null && b.digest !== null) return a.digest === b.digest;
  if (a.id !== null && b.id !== null) return a.id === b.id;
  return a.pushedAt !== null && a.pushedAt === b.pushedAt;
}

/** Pushes are ordered by the registry's own timestamp; without one, the later call is the later push. */
const isOlder = (push: PushedImage, than: PushedImage): boolean =>
  push.pushedAt !== null && than.pushedAt !== null && push.pushedAt < than.pushedAt;

const pushName = (p: PushedImage) => `${p.registry ? `${p.registry}/` : ""}${p.repository}:${p.tag}`;

function describe(p: DeployedPush): string {
  const image = quote(`${pushName(p)}${p.digest ? `@${p.digest}` : ""}`);
  const unpinned = p.digest ? "" : " (no digest in the payload: the tag's digest is resolved in the registry)";
  return `registry push of ${image} via hook ${quote(p.hook)}${unpinned}`;
}
