import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { hideIds, newUuid } from "../domain/ids";
import {
  DEFAULT_MAX_CONTAINERS,
  defaultServiceName,
  type NewService,
  parseImage,
  SERVICE_STATES,
  type ServiceChanges,
} from "../domain/service";
import { locatorStub } from "../durable-objects/locator";
import { namespaceStub } from "../durable-objects/namespace";
import { ApiError } from "../http/errors";
import { prepareTarget } from "../targets";
import {
  askedNamespace,
  dual,
  Envelope,
  errorResponses,
  jsonBody,
  jsonResponse,
  listResponse,
  PageQuery,
  pageOf,
  serviceScope,
  serviceUuidParam,
  settle,
  valid,
} from "./common";
import { requestMeta } from "./meta";
import { ServiceCreate, ServicePatch } from "./schemas";

const tags = ["services"];
const UuidParam = z.object({ uuid: z.string().openapi({ description: "the service uuid" }) });

export const ServiceFilters = z.object({
  ...PageQuery,
  uuid: z.string().optional(),
  uuid__startswith: z.string().max(36).optional(),
  name: z.string().optional(),
  stack__name: z.string().optional(),
  state: z.enum(SERVICE_STATES, { error: `state must be one of: ${SERVICE_STATES.join(", ")}` }).optional(),
});

export function registerServiceRoutes(app: OpenAPIHono<AppEnv>): void {
  dual(
    app,
    {
      method: "get",
      subsystem: "app",
      path: "/service/",
      tags,
      operationId: "listServices",
      summary: "List services",
      request: { query: ServiceFilters },
      responses: { 200: jsonResponse("Services", Envelope), ...errorResponses(400, 401, 403) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const page = pageOf(c);
      const filters = valid<z.infer<typeof ServiceFilters>>(c, "query");
      const { limit: _l, offset: _o, ...rest } = filters;
      return listResponse(c, page, settle(await namespaceStub(c.env, ns).listServices(c.get("user"), ns, rest, page)));
    },
  );

  dual(
    app,
    {
      method: "post",
      subsystem: "app",
      path: "/service/",
      tags,
      operationId: "createService",
      summary: "Create a service",
      request: { body: jsonBody(ServiceCreate) },
      responses: { 201: jsonResponse("The service"), ...errorResponses(400, 401, 403, 409) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const input = valid<ServiceCreate>(c, "json");
      const image = input.image_name ?? input.image ?? null;
      if (!image && !input.name)
        throw new ApiError("bad_request", "invalid request body: give image_name (or image), name, or both");
      const parsed = image ? parseImage(image) : null;
      const uuid = newUuid();
      const target = settle(
        await prepareTarget(c.env, input.target ?? null, {
          origin: new URL(c.req.url).origin,
          namespace: ns,
          serviceUuid: uuid,
        }),
      );
      const service: NewService = {
        uuid,
        name: input.name ?? defaultServiceName(image as string),
        image_name: parsed?.image_name ?? null,
        image_tag: parsed?.image_tag ?? null,
        stack: input.stack ?? null,
        target_num_containers: input.target_num_containers ?? 1,
        max_num_containers:
          input.max_num_containers ?? Math.max(DEFAULT_MAX_CONTAINERS, input.target_num_containers ?? 1),
        target_public: target.target_public,
        target_sealed: target.target_sealed,
      };
      // The pointer is written first, so the service is found by uuid the moment it exists.
      const locator = locatorStub(c.env, service.uuid);
      await locator.put(service.uuid, ns);
      const result = await namespaceStub(c.env, ns).createService(c.get("user"), ns, service);
      // A refused create leaves nothing behind; its uuid was never handed out, so no cache holds it.
      if (!result.ok) await locator.remove(service.uuid);
      const created = settle(result);
      return c.json(withRevealed(created, target.revealed), 201);
    },
  );

  dual(
    app,
    {
      method: "get",
      subsystem: "app",
      path: "/service/{uuid}/",
      tags,
      operationId: "getService",
      summary: "Get a service",
      request: { params: UuidParam },
      responses: { 200: jsonResponse("The service"), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const uuid = serviceUuidParam(c);
      const scope = await serviceScope(c, uuid);
      return c.json(settle(await scope.stub.getService(c.get("user"), scope.ns, uuid), scope), 200);
    },
  );

  dual(
    app,
    {
      method: "patch",
      subsystem: "app",
      path: "/service/{uuid}/",
      tags,
      operationId: "updateService",
      summary: "Update a service",
      request: { params: UuidParam, body: jsonBody(ServicePatch) },
      responses: { 200: jsonResponse("The service"), ...errorResponses(400, 401, 403, 404, 409) },
    },
    async (c) => {
      const uuid = serviceUuidParam(c);
      const input = valid<ServicePatch>(c, "json");
      const scope = await serviceScope(c, uuid);
      const image = input.image_name ?? input.image;
      const parsed = image ? parseImage(image) : null;
      const target =
        input.target === undefined
          ? null
          : settle(
              await prepareTarget(c.env, input.target, {
                origin: new URL(c.req.url).origin,
                namespace: scope.ns,
                serviceUuid: uuid,
              }),
            );
      const changes: ServiceChanges = {
        name: input.name,
        stack: input.stack,
        target_num_containers: input.target_num_containers,
        max_num_containers: input.max_num_containers,
        ...(parsed ? { image_name: parsed.image_name, image_tag: parsed.image_tag } : {}),
        ...(target ? { target_public: target.target_public, target_sealed: target.target_sealed } : {}),
      };
      const updated = settle(await scope.stub.updateService(c.get("user"), scope.ns, uuid, changes), scope);
      return c.json(withRevealed(updated, target?.revealed ?? null), 200);
    },
  );

  for (const kind of ["redeploy", "scale"] as const) {
    dual(
      app,
      {
        method: "post",
        subsystem: "app",
        path: `/service/{uuid}/${kind}/`,
        tags,
        operationId: `${kind}Service`,
        summary:
          kind === "redeploy"
            ? "Redeploy a service (through the same queue and target as trigger calls)"
            : "Scale a service to its target_num_containers (set it first with PATCH)",
        request: {
          params: UuidParam,
          ...(kind === "redeploy"
            ? {
                query: z.object({
                  reuse_volumes: z.string().optional().openapi({ description: "true or false, any case" }),
                }),
              }
            : {}),
        },
        responses: {
          202: jsonResponse("The service; the action's URI is in X-DockerCloud-Action-URI"),
          ...errorResponses(400, 401, 403, 404),
        },
      },
      async (c) => {
        const uuid = serviceUuidParam(c);
        const reuse = kind === "redeploy" ? parseBoolean("reuse_volumes", c.req.query("reuse_volumes")) : null;
        const scope = await serviceScope(c, uuid);
        const { service, action } = settle(
          await scope.stub.operateService(c.get("user"), scope.ns, uuid, {
            kind,
            reuse_volumes: reuse,
            meta: requestMeta(c, c.req.path),
          }),
          scope,
        );
        return c.json(service, 202, { "X-DockerCloud-Action-URI": action.resource_uri });
      },
    );
  }

  dual(
    app,
    {
      method: "delete",
      subsystem: "app",
      path: "/service/{uuid}/",
      tags,
      operationId: "terminateService",
      summary: "Terminate a service: it leaves the registry, with its triggers",
      request: { params: UuidParam },
      responses: { 202: jsonResponse("The terminated service"), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const uuid = serviceUuidParam(c);
      const scope = await serviceScope(c, uuid);
      return c.json(settle(await scope.stub.terminateService(c.get("user"), scope.ns, uuid), scope), 202);
    },
  );
}

/** Booleans in queries, as the SDKs write them: Python `True`/`False`, Go `false`. */
function parseBoolean(field: string, raw: string | undefined): boolean | null {
  if (raw === undefined || raw === "") return null;
  const v = raw.toLowerCase();
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new ApiError("bad_request", `${field} must be true or false, not '${hideIds(raw).slice(0, 20)}'`);
}

/** A generated or given webhook secret is shown in the answer that set it, and never again. */
function withRevealed<T extends { target: unknown }>(service: T, revealed: Record<string, string> | null): T {
  if (!revealed || !service.target) return service;
  return { ...service, target: { ...(service.target as object), ...revealed } };
}
