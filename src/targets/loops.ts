/**
 * Docker Cloud targets that lead back to where they started. A service whose
 * target is itself is refused when the target is set; chains that loop some
 * other way (two services, two deployments) are bounded at run time by a hop
 * count that every outbound request carries and every inbound operation reads.
 */

import { canonicalOrigin } from "../domain/origins";

/** The hop count of a request sent by a target: 1 + the hop count of the action that sent it. */
export const HOPS_HEADER = "X-DockerCloud-Hops";

/**
 * The hop count a request carries: 0 without the header, a whole number with it,
 * or null when the header is malformed. A number too long to be exact is still
 * well-formed: it is past any limit.
 */
export function parseHops(raw: string | undefined): number | null {
  if (raw === undefined) return 0;
  if (!/^[0-9]{1,64}$/.test(raw)) return null;
  return raw.length > 9 ? Number.MAX_SAFE_INTEGER : Number(raw);
}

/** This deployment and the service a target is set on. */
export type SelfRef = {
  /** Every origin that reaches this deployment: the request's own, and SELF_ORIGINS. */
  origins: readonly string[];
  namespace: string;
  serviceUuid: string;
};

/**
 * Why a Docker Cloud target designates the very service it is set on, or null.
 * It does when it reaches this deployment and names the service's namespace (or
 * none: a non-namespaced path finds the service wherever it lives) and its uuid
 * (or none: the adapter then uses the service's own).
 */
export function selfTargetProblem(
  target: { url: string; namespace?: string | null; service_uuid?: string | null },
  self: SelfRef,
): string | null {
  const origin = canonicalOrigin(target.url);
  if (origin === null || !self.origins.some((o) => canonicalOrigin(o) === origin)) return null;
  const namespace = target.namespace ?? null;
  if (namespace !== null && namespace !== self.namespace) return null;
  const uuid = target.service_uuid?.toLowerCase() ?? null;
  if (uuid !== null && uuid !== self.serviceUuid.toLowerCase()) return null;
  return (
    "target is this service itself (this deployment's URL, " +
    (namespace === null ? "no namespace" : `namespace '${namespace}'`) +
    ", " +
    (uuid === null ? "no service_uuid" : "this service's uuid") +
    "): every operation would perform itself again, in a loop; " +
    "give target.service_uuid (or target.namespace) of another service, or another deployment's url"
  );
}
