import { createRoute, type OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
import type { Context, Handler } from "hono";
import type { AppEnv } from "../app";
import { hideIds, normalizeUuid } from "../domain/ids";
import { namespaceNameProblem } from "../domain/names";
import { envelope, type Page, parsePage } from "../domain/pagination";
import type { Result } from "../domain/result";
import { locateService } from "../durable-objects/locator";
import { type NamespaceObject, namespaceStub } from "../durable-objects/namespace";
import { userAuth } from "../http/auth";
import { ApiError, unwrap } from "../http/errors";

export type Ctx = Context<AppEnv>;

/** Basic auth of a user, checked by the user's own namespace object. */
export const requireUser = userAuth((env, username, apikey) => namespaceStub(env, username).authenticate(apikey));

export const ErrorBody = z.object({ error: z.string() }).openapi("Error");
export const errorResponses = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((code) => [code, { description: "Error", content: { "application/json": { schema: ErrorBody } } }]),
  );
export const jsonResponse = (description: string, schema: z.ZodType = z.looseObject({})) => ({
  description,
  content: { "application/json": { schema } },
});
export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  content: { "application/json": { schema } },
  required: true,
});

export const Envelope = z
  .object({
    meta: z.object({
      limit: z.number().int(),
      next: z.string().nullable(),
      offset: z.number().int(),
      previous: z.string().nullable(),
      total_count: z.number().int(),
    }),
    objects: z.array(z.looseObject({})),
  })
  .openapi("ListEnvelope");

export const PageQuery = {
  limit: z.string().optional().openapi({ description: "page size, 1 to 100 (default 25)" }),
  offset: z.string().optional().openapi({ description: "index of the first object (default 0)" }),
};

type DualSpec = Omit<RouteConfig, "path" | "request"> & {
  /** The path after /api/<subsystem>/v1[/<namespace>], starting with a slash. */
  path: string;
  subsystem: "app" | "audit";
  request?: Omit<NonNullable<RouteConfig["request"]>, "params"> & { params?: z.ZodObject };
  /** Basic auth is required unless this is false (trigger calls need none). */
  auth?: boolean;
};

const NamespaceParam = z.object({
  namespace: z.string().openapi({ description: "a user or organization name; absent means the caller's own" }),
});

/**
 * Registers a namespaced endpoint twice, as Docker Cloud served it:
 * /api/<subsystem>/v1/<path> (the caller's own namespace, or wherever the
 * service lives) and /api/<subsystem>/v1/{namespace}/<path>.
 */
export function dual(app: OpenAPIHono<AppEnv>, spec: DualSpec, handler: Handler<AppEnv>): void {
  const { path, subsystem, request, auth = true, ...rest } = spec;
  for (const namespaced of [false, true]) {
    const params = namespaced ? (request?.params ?? z.object({})).extend(NamespaceParam.shape) : request?.params;
    const route = createRoute({
      ...rest,
      path: `/api/${subsystem}/v1${namespaced ? "/{namespace}" : ""}${path}`,
      request: { ...request, ...(params ? { params } : {}) },
      operationId: rest.operationId ? `${rest.operationId}${namespaced ? "Namespaced" : ""}` : undefined,
      ...(auth ? { middleware: [requireUser] as const, security: [{ basicAuth: [] }] } : {}),
    });
    // biome-ignore lint/suspicious/noExplicitAny: the same handler serves both typed variants
    app.openapi(route, handler as any);
  }
}

/** Validated input of a target, typed by the caller (both variants of a dual route share a handler). */
export function valid<T>(c: Ctx, target: "json" | "query"): T {
  return (c.req.valid as (t: string) => unknown)(target) as T;
}

export function pageOf(c: Ctx): Page {
  const page = parsePage({ limit: c.req.query("limit"), offset: c.req.query("offset") });
  if ("error" in page) throw new ApiError("bad_request", page.error);
  return page;
}

/** The list envelope for this request's path, keeping its filters in next/previous. */
export function listResponse<T>(c: Ctx, page: Page, listing: { total: number; objects: T[] }) {
  const params = new URL(c.req.url).searchParams;
  params.delete("limit");
  params.delete("offset");
  return c.json(envelope(c.req.path, params, page, listing.total, listing.objects), 200);
}

/** The namespace a request names, or the caller's own. */
export function askedNamespace(c: Ctx): string {
  const ns = c.req.param("namespace") ?? c.get("user");
  if (namespaceNameProblem(ns) !== null) {
    throw new ApiError(
      "forbidden",
      `namespace '${hideIds(ns).slice(0, 40)}' does not exist or you are not a member of it`,
    );
  }
  return ns;
}

export function serviceUuidParam(c: Ctx, name = "uuid"): string {
  const raw = c.req.param(name) ?? "";
  const uuid = normalizeUuid(raw);
  if (!uuid) throw new ApiError("not_found", `Service not found: '${hideIds(raw).slice(0, 40)}' is not a service uuid`);
  return uuid;
}

export type ServiceScope = { ns: string; stub: DurableObjectStub<NamespaceObject>; located: boolean };

/**
 * Where a service-scoped request goes. A namespaced path must name the
 * service's namespace; a non-namespaced one finds the service wherever it
 * lives (the Go SDK never namespaces trigger paths).
 */
export async function serviceScope(c: Ctx, serviceUuid: string): Promise<ServiceScope> {
  if (c.req.param("namespace") !== undefined) {
    const ns = askedNamespace(c);
    return { ns, stub: namespaceStub(c.env, ns), located: false };
  }
  const ns = await locateService(c.env, serviceUuid);
  if (!ns) throw new ApiError("not_found", "Service not found");
  return { ns, stub: namespaceStub(c.env, ns), located: true };
}

/**
 * Unwraps a namespace object's answer. When the namespace was found through
 * the service, a caller without access learns nothing: the service is not found.
 */
export function settle<T>(result: Result<T>, scope?: ServiceScope): T {
  return unwrap(result, (f) =>
    scope?.located && f.code === "forbidden" ? new ApiError("not_found", "Service not found") : null,
  );
}
