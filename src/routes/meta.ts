import type { RequestMeta } from "../durable-objects/namespace";
import type { Ctx } from "./common";

function location(cf: Request["cf"]): string | null {
  if (!cf) return null;
  const parts = [cf.city, cf.region, cf.country].filter((p): p is string => typeof p === "string" && p !== "");
  return parts.length ? parts.join(", ") : null;
}

/** What the audit log keeps of a request: who, from where, with what. */
export function requestMeta(c: Ctx, path: string): RequestMeta {
  return {
    method: c.req.method.toUpperCase(),
    path,
    user_agent: c.req.header("user-agent")?.slice(0, 512) ?? null,
    ip: c.req.header("cf-connecting-ip") ?? null,
    location: location(c.req.raw.cf),
  };
}
