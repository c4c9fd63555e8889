import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { newUuid } from "../domain/ids";
import {
  DEFAULT_MAX_CONTAINERS,
  defaultServiceName,
  type NewService,
  type PublicTarget,
  parseImage,
  SERVICE_STATES,
  type ServiceChanges,
} from "../domain/service";
import { locatorStub } from "../durable-objects/locator";
import { namespaceStub } from "../durable-objects/namespace";
import { ApiError, unwrap } from "../http/errors";
import { prepareTarget } from "../targets";
import {
  askedNamespace,
  type Ctx,
  dual,
  errorResponses,
  hideFromStrangers,
  jsonBody,
  jsonResponse,
  listResponse,
  serviceScope,
} from "./common";
import { requestMeta } from "./meta";
import { ServiceCreate, ServicePatch } from "./schemas/bodies";
import { booleanQuery, PageQuery, serviceUuid } from "./schemas/inputs";
import { listOf, ServiceObject } from "./schemas/objects";

const tags = ["services"];
const UuidParam = z.object({ uuid: serviceUuid() });
const ServiceList = listOf("ServiceList", ServiceObject);

const ServiceFilters = z.object({
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
      responses: { 200: jsonResponse("Services", ServiceList), ...errorResponses(400, 401, 403) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { limit, offset, ...filters } = c.req.valid("query");
      const page = { limit, offset };
      const listing = unwrap(await namespaceStub(c.env, ns).listServices(c.get("user"), ns, filters, page));
      return c.json(listResponse(c, ServiceObject, page, listing), 200);
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
      responses: {
        201: jsonResponse("The service; a webhook target's secret is shown in this answer only", ServiceObject),
        ...errorResponses(400, 401, 403, 409),
      },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const input = c.req.valid("json");
      const image = input.image_name ?? input.image ?? null;
      const name = input.name ?? (image ? defaultServiceName(image) : null);
      if (!name) throw new ApiError("bad_request", "invalid request body: give image_name (or image), name, or both");
      const parsed = image ? parseImage(image) : null;
      const uuid = newUuid();
      const target = unwrap(
        await prepareTarget(c.env, input.target ?? null, {
          origin: new URL(c.req.url).origin,
          namespace: ns,
          serviceUuid: uuid,
        }),
      );
      const service: NewService = {
        uuid,
        name,
        image_name: parsed?.image_name ?? null,
        image_tag: parsed?.image_tag ?? null,
        stack: input.stack ?? null,
        target_num_containers: input.target_num_containers ?? 1,
        max_num_containers:
          input.max_num_containers ?? Math.max(DEFAULT_MAX_CONTAINERS, input.target_num_containers ?? 1),
        target_public: target.target_public,
        target_sealed: target.target_sealed,
        autoredeploy: input.autoredeploy ?? false,
        autoredeploy_policy: input.autoredeploy_policy ?? "tag",
      };
      // The pointer is written first, so the service is found by uuid the moment it exists.
      const locator = locatorStub(c.env, service.uuid);
      await locator.put(service.uuid, ns);
      const result = await namespaceStub(c.env, ns).createService(c.get("user"), ns, service);
      // A refused create leaves nothing behind; its uuid was never handed out, so no cache holds it.
      if (!result.ok) await locator.remove(service.uuid);
      const created = unwrap(result);
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
      responses: { 200: jsonResponse("The service", ServiceObject), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const { uuid } = c.req.valid("param");
      const scope = await serviceScope(c, uuid);
      return c.json(unwrap(await scope.stub.getService(c.get("user"), scope.ns, uuid), hideFromStrangers(scope)), 200);
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
      responses: {
        200: jsonResponse(
          "The service; a webhook target's secret is shown in the answer that sets it only",
          ServiceObject,
        ),
        ...errorResponses(400, 401, 403, 404, 409),
      },
    },
    async (c) => {
      const { uuid } = c.req.valid("param");
      const input = c.req.valid("json");
      const scope = await serviceScope(c, uuid);
      const image = input.image_name ?? input.image;
      const parsed = image ? parseImage(image) : null;
      const target =
        input.target === undefined
          ? null
          : unwrap(
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
        autoredeploy: input.autoredeploy,
        autoredeploy_policy: input.autoredeploy_policy,
        ...(parsed ? { image_name: parsed.image_name, image_tag: parsed.image_tag } : {}),
        ...(target ? { target_public: target.target_public, target_sealed: target.target_sealed } : {}),
      };
      const updated = unwrap(
        await scope.stub.updateService(c.get("user"), scope.ns, uuid, changes),
        hideFromStrangers(scope),
      );
      return c.json(withRevealed(updated, target?.revealed ?? null), 200);
    },
  );

  dual(
    app,
    {
      ...operation("redeploy", "Redeploy a service (through the same queue and target as trigger calls)"),
      request: { params: UuidParam, query: z.object({ reuse_volumes: booleanQuery("reuse_volumes") }) },
    },
    async (c) => operate(c, "redeploy", c.req.valid("param").uuid, c.req.valid("query").reuse_volumes),
  );

  dual(
    app,
    {
      ...operation("scale", "Scale a service to its target_num_containers (set it first with PATCH)"),
      request: { params: UuidParam },
    },
    async (c) => operate(c, "scale", c.req.valid("param").uuid, null),
  );

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
      responses: { 202: jsonResponse("The terminated service", ServiceObject), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const { uuid } = c.req.valid("param");
      const scope = await serviceScope(c, uuid);
      const terminated = unwrap(
        await scope.stub.terminateService(c.get("user"), scope.ns, uuid),
        hideFromStrangers(scope),
      );
      return c.json(terminated, 202);
    },
  );
}

/** POST .../redeploy/ and .../scale/, but for their request. */
const operation = (kind: "redeploy" | "scale", summary: string) =>
  ({
    method: "post",
    subsystem: "app",
    path: `/service/{uuid}/${kind}/`,
    tags,
    operationId: `${kind}Service`,
    summary,
    responses: {
      202: jsonResponse("The service; the action's URI is in X-DockerCloud-Action-URI", ServiceObject),
      ...errorResponses(400, 401, 403, 404),
    },
  }) as const;

/** Redeploys or scales a service as an action of the caller, through the same queue as trigger calls. */
async function operate(c: Ctx, kind: "redeploy" | "scale", uuid: string, reuse: boolean | null) {
  const scope = await serviceScope(c, uuid);
  const { service, action } = unwrap(
    await scope.stub.operateService(c.get("user"), scope.ns, uuid, {
      kind,
      reuse_volumes: reuse,
      meta: requestMeta(c, c.req.path),
    }),
    hideFromStrangers(scope),
  );
  return c.json(service, 202, { "X-DockerCloud-Action-URI": action.resource_uri });
}

/** A generated or given webhook secret is shown in the answer that set it, and never again. */
function withRevealed<T extends { target: PublicTarget | null }>(
  service: T,
  revealed: Record<string, string> | null,
): T {
  if (!revealed || !service.target) return service;
  return { ...service, target: { ...service.target, ...revealed } };
}
