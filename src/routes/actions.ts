import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { ACTION_STATES } from "../domain/action";
import { namespaceStub } from "../durable-objects/namespace";
import { ApiError, unwrap } from "../http/errors";
import { askedNamespace, type Ctx, dual, errorResponses, jsonResponse, listResponse } from "./common";
import { requestMeta } from "./meta";
import { dateQuery, PageQuery, uuidParam } from "./schemas/inputs";
import { ActionObject, listOf } from "./schemas/objects";

const tags = ["actions"];

const ActionQuery = z.object({
  ...PageQuery,
  uuid: z.string().optional(),
  uuid__startswith: z.string().max(36).optional().openapi({ description: "a uuid prefix (the CLI's short ids)" }),
  state: z.enum(ACTION_STATES, { error: `state must be one of: ${ACTION_STATES.join(", ")}` }).optional(),
  object: z.string().optional().openapi({ description: "resource URI of the service" }),
  start_date__gte: dateQuery("start_date__gte"),
  start_date__lte: dateQuery("start_date__lte", true),
  end_date__gte: dateQuery("end_date__gte"),
  end_date__lte: dateQuery("end_date__lte", true),
});
const ActionParam = z.object({ uuid: uuidParam("the action uuid", () => "Action not found") });
const ActionList = listOf("ActionList", ActionObject);

/** Namespaces a caller may read actions of, own first: a non-namespaced lookup searches them. */
async function callerNamespaces(c: Ctx): Promise<string[]> {
  const user = c.get("user");
  const info = await namespaceStub(c.env, user).memberships();
  return [user, ...info];
}

/** The audit trail (Basic auth): actions of the namespaces the caller may use. */
export function registerActionRoutes(app: OpenAPIHono<AppEnv>): void {
  dual(
    app,
    {
      method: "get",
      subsystem: "audit",
      path: "/action/",
      tags,
      operationId: "listActions",
      summary: "List actions, newest first",
      request: { query: ActionQuery },
      responses: { 200: jsonResponse("Actions", ActionList), ...errorResponses(400, 401, 403) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { limit, offset, ...filters } = c.req.valid("query");
      const page = { limit, offset };
      const listing = unwrap(await namespaceStub(c.env, ns).listActions(c.get("user"), ns, filters, page));
      return c.json(listResponse(c, ActionObject, page, listing), 200);
    },
  );

  dual(
    app,
    {
      method: "get",
      subsystem: "audit",
      path: "/action/{uuid}/",
      tags,
      operationId: "getAction",
      summary: "Get an action",
      request: { params: ActionParam },
      responses: { 200: jsonResponse("The action", ActionObject), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const { uuid } = c.req.valid("param");
      const ns = await actionNamespace(c, uuid);
      return c.json(unwrap(await namespaceStub(c.env, ns).getAction(c.get("user"), ns, uuid)), 200);
    },
  );

  dual(
    app,
    {
      method: "post",
      subsystem: "audit",
      path: "/action/{uuid}/cancel/",
      tags,
      operationId: "cancelAction",
      summary: "Cancel a Pending action (409 once it is In progress)",
      request: { params: ActionParam },
      responses: { 200: jsonResponse("The canceled action", ActionObject), ...errorResponses(401, 403, 404, 409) },
    },
    async (c) => {
      const { uuid } = c.req.valid("param");
      const ns = await actionNamespace(c, uuid);
      return c.json(unwrap(await namespaceStub(c.env, ns).cancelAction(c.get("user"), ns, uuid)), 200);
    },
  );

  dual(
    app,
    {
      method: "post",
      subsystem: "audit",
      path: "/action/{uuid}/retry/",
      tags,
      operationId: "retryAction",
      summary: "Repeat a Success, Failed or Canceled action as a new action",
      request: { params: ActionParam },
      responses: { 202: jsonResponse("The new action", ActionObject), ...errorResponses(401, 403, 404, 409) },
    },
    async (c) => {
      const { uuid } = c.req.valid("param");
      const ns = await actionNamespace(c, uuid);
      const meta = requestMeta(c, c.req.path);
      const action = unwrap(await namespaceStub(c.env, ns).retryAction(c.get("user"), ns, uuid, meta));
      return c.json(action, 202, { "X-DockerCloud-Action-URI": action.resource_uri });
    },
  );
}

/**
 * The namespace holding an action: the one named in the path, else the first
 * of the caller's namespaces (own, then organizations) that has it.
 */
async function actionNamespace(c: Ctx, uuid: string): Promise<string> {
  if (c.req.param("namespace") !== undefined) return askedNamespace(c);
  const user = c.get("user");
  for (const ns of await callerNamespaces(c)) {
    if ((await namespaceStub(c.env, ns).getAction(user, ns, uuid)).ok) return ns;
  }
  throw new ApiError("not_found", "Action not found");
}
