/**
 * Docker Cloud targets that lead back to where they started. A service whose
 * target is itself is refused when the target is set; chains that loop some
 * other way (two services, two deployments) are bounded at run time by a hop
 * count that every outbound request carries and every inbound operation reads.
 */

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
