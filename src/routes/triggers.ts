import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { normalizeUuid } from "../domain/ids";
import { OPERATION_NAMES, TriggerCreate, TriggerPatch } from "../domain/trigger";
import { ApiError } from "../http/errors";
import {
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

const tags = ["triggers"];
const ServiceParam = z.object({ uuid: z.string().openapi({ description: "the service uuid" }) });
const TriggerParam = ServiceParam.extend({
  trigger_uuid: z.string().openapi({ description: "the trigger uuid" }),
});
const TriggerFilters = z.object({
  ...PageQuery,
  uuid: z.string().optional(),
  uuid__startswith: z.string().max(36).optional(),
  name: z.string().optional(),
});

const TriggerObject = z
  .object({
    uuid: z.string(),
    name: z.string(),
    operation: z.enum(OPERATION_NAMES),
    url: z.string().openapi({ description: "root-relative call path; POST to it with no credentials" }),
    resource_uri: z.string(),
    rate_limit: z.number().int().openapi({ description: "calls accepted per minute (ours)" }),
    call_count: z.number().int().openapi({ description: "calls accepted (ours)" }),
    rejected_count: z.number().int().openapi({ description: "calls refused with 409 or 429 (ours)" }),
    last_called: z.string().nullable().openapi({ description: "RFC 1123 date of the last call (ours)" }),
  })
  .openapi("Trigger");

function triggerUuidParam(c: Parameters<typeof serviceUuidParam>[0]): string {
  const uuid = normalizeUuid(c.req.param("trigger_uuid") ?? "");
  if (!uuid) throw new ApiError("not_found", "Trigger not found");
  return uuid;
}

/** Trigger management (Basic auth): list, create, get and revoke a service's triggers. */
export function registerTriggerRoutes(app: OpenAPIHono<AppEnv>): void {
  dual(
    app,
    {
      method: "get",
      subsystem: "app",
      path: "/service/{uuid}/trigger/",
      tags,
      operationId: "listTriggers",
      summary: "List a service's triggers",
      request: { params: ServiceParam, query: TriggerFilters },
      responses: { 200: jsonResponse("Triggers", Envelope), ...errorResponses(400, 401, 403, 404) },
    },
    async (c) => {
      const uuid = serviceUuidParam(c);
      const page = pageOf(c);
      const { limit: _l, offset: _o, ...filters } = valid<z.infer<typeof TriggerFilters>>(c, "query");
      const scope = await serviceScope(c, uuid);
      return listResponse(
        c,
        page,
        settle(await scope.stub.listTriggers(c.get("user"), scope.ns, uuid, filters, page), scope),
      );
    },
  );

  dual(
    app,
    {
      method: "post",
      subsystem: "app",
      path: "/service/{uuid}/trigger/",
      tags,
      operationId: "createTrigger",
      summary: "Create a trigger",
      request: { params: ServiceParam, body: jsonBody(TriggerCreate) },
      responses: {
        201: jsonResponse("The trigger", TriggerObject),
        ...errorResponses(400, 401, 403, 404),
      },
    },
    async (c) => {
      const uuid = serviceUuidParam(c);
      const input = valid<TriggerCreate>(c, "json");
      const scope = await serviceScope(c, uuid);
      const created = settle(
        await scope.stub.createTrigger(c.get("user"), scope.ns, uuid, {
          name: input.name ?? null,
          operation: input.operation,
          rate_limit: input.rate_limit ?? null,
        }),
        scope,
      );
      return c.json(created, 201);
    },
  );

  dual(
    app,
    {
      method: "get",
      subsystem: "app",
      path: "/service/{uuid}/trigger/{trigger_uuid}/",
      tags,
      operationId: "getTrigger",
      summary: "Get a trigger",
      request: { params: TriggerParam },
      responses: { 200: jsonResponse("The trigger", TriggerObject), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const uuid = serviceUuidParam(c);
      const trigger = triggerUuidParam(c);
      const scope = await serviceScope(c, uuid);
      return c.json(settle(await scope.stub.getTrigger(c.get("user"), scope.ns, uuid, trigger), scope), 200);
    },
  );

  dual(
    app,
    {
      method: "patch",
      subsystem: "app",
      path: "/service/{uuid}/trigger/{trigger_uuid}/",
      tags,
      operationId: "updateTrigger",
      summary: "Change a trigger's name or rate_limit",
      request: { params: TriggerParam, body: jsonBody(TriggerPatch) },
      responses: { 200: jsonResponse("The trigger", TriggerObject), ...errorResponses(400, 401, 403, 404) },
    },
    async (c) => {
      const uuid = serviceUuidParam(c);
      const trigger = triggerUuidParam(c);
      const input = valid<TriggerPatch>(c, "json");
      const scope = await serviceScope(c, uuid);
      return c.json(settle(await scope.stub.updateTrigger(c.get("user"), scope.ns, uuid, trigger, input), scope), 200);
    },
  );

  dual(
    app,
    {
      method: "delete",
      subsystem: "app",
      path: "/service/{uuid}/trigger/{trigger_uuid}/",
      tags,
      operationId: "deleteTrigger",
      summary: "Revoke a trigger; calls to it get 404 from this answer on",
      request: { params: TriggerParam },
      responses: { 200: jsonResponse("The revoked trigger", TriggerObject), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const uuid = serviceUuidParam(c);
      const trigger = triggerUuidParam(c);
      const scope = await serviceScope(c, uuid);
      return c.json(settle(await scope.stub.deleteTrigger(c.get("user"), scope.ns, uuid, trigger), scope), 200);
    },
  );
}
