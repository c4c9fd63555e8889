import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { TriggerCreate, TriggerPatch } from "../domain/trigger";
import { unwrap } from "../http/errors";
import { dual, errorResponses, hideFromStrangers, jsonBody, jsonResponse, listResponse, serviceScope } from "./common";
import { PageQuery, serviceUuid, uuidParam } from "./schemas/inputs";
import { listOf, TriggerObject } from "./schemas/objects";

const tags = ["triggers"];
const ServiceParam = z.object({ uuid: serviceUuid() });
const TriggerParam = ServiceParam.extend({ trigger_uuid: uuidParam("the trigger uuid", () => "Trigger not found") });
const TriggerFilters = z.object({
  ...PageQuery,
  uuid: z.string().optional(),
  uuid__startswith: z.string().max(36).optional(),
  name: z.string().optional(),
});
const TriggerList = listOf("TriggerList", TriggerObject);

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
      responses: { 200: jsonResponse("Triggers", TriggerList), ...errorResponses(400, 401, 403, 404) },
    },
    async (c) => {
      const { uuid } = c.req.valid("param");
      const { limit, offset, ...filters } = c.req.valid("query");
      const page = { limit, offset };
      const scope = await serviceScope(c, uuid);
      const listing = unwrap(
        await scope.stub.listTriggers(c.get("user"), scope.ns, uuid, filters, page),
        hideFromStrangers(scope),
      );
      return c.json(listResponse(c, TriggerObject, page, listing), 200);
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
      const { uuid } = c.req.valid("param");
      const input = c.req.valid("json");
      const scope = await serviceScope(c, uuid);
      const created = unwrap(
        await scope.stub.createTrigger(c.get("user"), scope.ns, uuid, {
          name: input.name ?? null,
          operation: input.operation,
          rate_limit: input.rate_limit ?? null,
        }),
        hideFromStrangers(scope),
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
      const { uuid, trigger_uuid: trigger } = c.req.valid("param");
      const scope = await serviceScope(c, uuid);
      const found = unwrap(
        await scope.stub.getTrigger(c.get("user"), scope.ns, uuid, trigger),
        hideFromStrangers(scope),
      );
      return c.json(found, 200);
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
      const { uuid, trigger_uuid: trigger } = c.req.valid("param");
      const input = c.req.valid("json");
      const scope = await serviceScope(c, uuid);
      const updated = unwrap(
        await scope.stub.updateTrigger(c.get("user"), scope.ns, uuid, trigger, input),
        hideFromStrangers(scope),
      );
      return c.json(updated, 200);
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
      const { uuid, trigger_uuid: trigger } = c.req.valid("param");
      const scope = await serviceScope(c, uuid);
      const revoked = unwrap(
        await scope.stub.deleteTrigger(c.get("user"), scope.ns, uuid, trigger),
        hideFromStrangers(scope),
      );
      return c.json(revoked, 200);
    },
  );
}
