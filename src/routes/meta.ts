import { config } from "../config";
import type { RequestMeta } from "../domain/action";
import { hideIds } from "../domain/ids";
import { ApiError } from "../http/errors";
import { HOPS_HEADER, parseHops } from "../targets/loops";
import type { Ctx } from "./common";

function location(cf: Request["cf"]): string | null {
  if (!cf) return null;
  const parts = [cf.city, cf.region, cf.country].filter((p): p is string => typeof p === "string" && p !== "");
  return parts.length ? parts.join(", ") : null;
}

/**
 * The hop count of a request that would create an action (X-DockerCloud-Hops,
 * sent by Docker Cloud targets). Past MAX_TARGET_HOPS the request is refused
 * with 409: it is well-formed (a malformed count is the 400), but targets have
 * passed this operation on so many times that they must lead back to where it
 * started. 409, not the 5xx 508 Loop Detected, so the target that sent it fails
 * at once instead of retrying; the people to act are those who set the targets.
 */
function inboundHops(c: Ctx): number {
  const raw = c.req.header(HOPS_HEADER);
  const hops = parseHops(raw);
  if (hops === null) {
    throw new ApiError(
      "bad_request",
      `${HOPS_HEADER} must be a whole number of 0 or more, not '${hideIds(raw ?? "").slice(0, 20)}'`,
    );
  }
  const limit = config(c.env).MAX_TARGET_HOPS;
  if (hops > limit) {
    throw new ApiError(
      "conflict",
      `a loop of Docker Cloud targets was detected: this request is hop ${hops === Number.MAX_SAFE_INTEGER ? "1000000000 or more" : hops}, past the limit of ${limit} (MAX_TARGET_HOPS); a service's target leads back to it, through this or another deployment`,
    );
  }
  return hops;
}

/** What the audit log keeps of a request that creates an action: who, from where, with what. */
export function requestMeta(c: Ctx, path: string): RequestMeta {
  return {
    method: c.req.method.toUpperCase(),
    path,
    user_agent: c.req.header("user-agent")?.slice(0, 512) ?? null,
    ip: c.req.header("cf-connecting-ip") ?? null,
    location: location(c.req.raw.cf),
    hops: inboundHops(c),
  };
}
