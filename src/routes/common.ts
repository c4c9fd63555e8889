import { type OpenAPIHono, type RouteConfig, type RouteHandler, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler, ValidationTargets } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app";
import { hideIds } from "../domain/ids";
import { NAMESPACE_NAME, namespaceNameProblem } from "../domain/names";
import { envelope, type Page } from "../domain/pagination";
import type { ErrorCode } from "../domain/result";
import { locateService } from "../durable-objects/locator";
import { type NamespaceObject, namespaceStub } from "../durable-objects/namespace";
import { userAuth } from "../http/auth";
import { ApiError } from "../http/errors";
import { onlyRefusals, validationError } from "../http/validation";

export type Ctx = Context<AppEnv>;

/** Basic auth of a user, checked by the user's own namespace object. */
export const requireUser = userAuth((env, username, apikey) => namespaceStub(env, username).authenticate(apikey));

export const ErrorBody = z.object({ error: z.string() }).openapi("Error");
const errorResponse = { description: "Error", content: { "application/json": { schema: ErrorBody } } };
/** The error answers a route documents, by status. */
export const errorResponses = (...codes: number[]) => Object.fromEntries(codes.map((code) => [code, errorResponse]));
export const jsonResponse = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { "application/json": { schema } },
});
export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  content: { "application/json": { schema } },
  required: true,
});

/**
 * The list envelope for this request's path, keeping its filters in next/previous. `item` is the
 * schema the route documents its objects with; the objects must be of its type.
 */
export function listResponse<T extends z.ZodType>(
  c: Ctx,
  _item: T,
  page: Page,
  listing: { total: number; objects: z.output<T>[] },
) {
  const params = new URL(c.req.url).searchParams;
  params.delete("limit");
  params.delete("offset");
  return envelope(c.req.path, params, page, listing.total, listing.objects);
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
 * The `hide` of `unwrap` for a service-scoped answer: when the namespace was found through the
 * service, a caller without access learns nothing, the service is not found.
 */
export const hideFromStrangers =
  (scope: ServiceScope) =>
  (failure: { code: ErrorCode }): ApiError | null =>
    scope.located && failure.code === "forbidden" ? new ApiError("not_found", "Service not found") : null;

type DualSpec = Omit<RouteConfig, "path" | "middleware" | "security" | "parameters"> & {
  /** The path after /api/<subsystem>/v1[/<namespace>], starting with a slash. */
  path: string;
  subsystem: "app" | "audit" | "agent";
  /**
   * Basic auth is required unless this is false (trigger calls need none);
   * "handler": the handler authenticates (also from the query), the document still says Basic.
   */
  auth?: boolean | "handler";
};

/**
 * Both registrations of a dual route have this one type: `{namespace}` is declared as a plain
 * OpenAPI parameter, not in the params schema, so the handler is typed once, by the route's own
 * schemas (`c.req.valid("param")` has no namespace; `askedNamespace` and `serviceScope` read it).
 */
type DualRoute<S extends DualSpec> = Omit<S, "path" | "subsystem" | "auth"> & {
  path: string;
  middleware?: MiddlewareHandler<AppEnv>[];
  security?: RouteConfig["security"];
  parameters?: RouteConfig["parameters"];
};

/** `{namespace}`, declared for the document; askedNamespace and serviceScope check it. */
const NAMESPACE_PARAMETERS: RouteConfig["parameters"] = [
  {
    name: "namespace",
    in: "path",
    required: true,
    description: "a user or organization name; absent means the caller's own",
    schema: { type: "string", pattern: NAMESPACE_NAME.source },
  },
];

/**
 * Registers a namespaced endpoint twice, as Docker Cloud served it:
 * /api/<subsystem>/v1/<path> (the caller's own namespace, or wherever the
 * service lives) and /api/<subsystem>/v1/{namespace}/<path>.
 */
export function dual<S extends DualSpec>(
  app: OpenAPIHono<AppEnv>,
  spec: S,
  handler: RouteHandler<DualRoute<S>, AppEnv>,
): void {
  const { path, subsystem, auth = true, ...rest } = spec;
  const middleware = [...(auth === true ? [requireUser] : []), ...(bodySchema(spec) ? [readBodyFirst] : [])];
  const hook = inHandlerOrder(spec);
  for (const namespaced of [false, true]) {
    const route: DualRoute<S> = {
      ...rest,
      path: `/api/${subsystem}/v1${namespaced ? "/{namespace}" : ""}${path}`,
      operationId: rest.operationId ? `${rest.operationId}${namespaced ? "Namespaced" : ""}` : undefined,
      ...(namespaced ? { parameters: NAMESPACE_PARAMETERS } : {}),
      ...(middleware.length ? { middleware } : {}),
      ...(auth ? { security: [{ basicAuth: [] }] } : {}),
    };
    app.openapi(route, handler, hook);
  }
}

function bodySchema(spec: DualSpec): z.ZodType | undefined {
  const media = spec.request?.body?.content["application/json"];
  return media && "schema" in media && media.schema instanceof z.ZodType ? media.schema : undefined;
}

/** Reads the JSON body before validation, so that `inHandlerOrder` can check it before the path. */
const readBodyFirst = createMiddleware<AppEnv>(async (c, next) => {
  try {
    c.set("body", await c.req.json());
  } catch {
    // Not JSON: the body's validator answers it, as it did before.
  }
  await next();
});

type Validated = { target: keyof ValidationTargets } & ({ success: true } | { success: false; error: z.ZodError });

/**
 * Validation failures of a dual route, answered in the order the handlers found them before
 * their checks moved into schemas. The validators run query, path, body. A refusal (a malformed
 * uuid, a bad limit) stands for a check a handler made once every validator had passed: so a
 * faulty body comes first, then the path's ids, then, on routes without ids of their own, the
 * namespace, then the query's values.
 */
function inHandlerOrder(spec: DualSpec) {
  const params = spec.request?.params;
  const body = bodySchema(spec);
  return (result: Validated, c: Ctx): undefined => {
    if (result.success) return undefined;
    const { issues } = result.error;
    if (!onlyRefusals(issues)) throw validationError(result.target, issues);
    const json = body && c.var.body !== undefined ? body.safeParse(c.var.body) : undefined;
    if (json && !json.success) throw validationError("json", json.error.issues);
    if (result.target === "query") {
      const path = params?.safeParse(c.req.param());
      if (path && !path.success) throw validationError("param", path.error.issues);
      if (!params) askedNamespace(c);
    }
    throw validationError(result.target, issues);
  };
}
