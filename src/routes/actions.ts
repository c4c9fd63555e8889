import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { ACTION_STATES, type ActionFilters } from "../domain/action";
import { parseDateFilter } from "../domain/dates";
import { normalizeUuid } from "../domain/ids";
import { namespaceStub } from "../durable-objects/namespace";
import { ApiError } from "../http/errors";
import {
  askedNamespace,
  type Ctx,
  dual,
  Envelope,
  errorResponses,
  jsonResponse,
  listResponse,
  PageQuery,
  pageOf,
  settle,
  valid,
} from "./common";
import { requestMeta } from "./meta";

const tags = ["actions"];

const ActionQuery = z.object({
  ...PageQuery,
  uuid: z.string().optional(),
  uuid__startswith: z.string().max(36).optional().openapi({ description: "a uuid prefix (the CLI's short ids)" }),
  state: z.enum(ACTION_STATES, { error: `state must be one of: ${ACTION_STATES.join(", ")}` }).optional(),
  object: z.string().optional().openapi({ description: "resource URI of the service" }),
  start_date__gte: z.string().optional(),
  start_date__lte: z.string().optional(),
  end_date__gte: z.string().optional(),
  end_date__lte: z.string().optional(),
});

function dateFilter(field: string, value: string | undefined, upper = false): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDateFilter(value);
  if (ms === null) throw new ApiError("bad_request", `${field} must be a date (RFC 1123, ISO 8601 or epoch seconds)`);
  // Dates are shown to the second: a whole-second upper bound covers that whole second.
  return upper && ms % 1000 === 0 ? ms + 999 : ms;
}

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
      responses: { 200: jsonResponse("Actions", Envelope), ...errorResponses(400, 401, 403) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const page = pageOf(c);
      const q = valid<z.infer<typeof ActionQuery>>(c, "query");
      const filters: ActionFilters = {
        uuid: q.uuid,
        uuid__startswith: q.uuid__startswith,
        state: q.state,
        object: q.object,
        start_date__gte: dateFilter("start_date__gte", q.start_date__gte),
        start_date__lte: dateFilter("start_date__lte", q.start_date__lte, true),
        end_date__gte: dateFilter("end_date__gte", q.end_date__gte),
        end_date__lte: dateFilter("end_date__lte", q.end_date__lte, true),
      };
      return listResponse(
        c,
        page,
        settle(await namespaceStub(c.env, ns).listActions(c.get("user"), ns, filters, page)),
      );
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
      responses: { 200: jsonResponse("The action"), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const { ns, uuid } = await actionScope(c);
      return c.json(settle(await namespaceStub(c.env, ns).getAction(c.get("user"), ns, uuid)), 200);
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
      responses: { 200: jsonResponse("The canceled action"), ...errorResponses(401, 403, 404, 409) },
    },
    async (c) => {
      const { ns, uuid } = await actionScope(c);
      return c.json(settle(await namespaceStub(c.env, ns).cancelAction(c.get("user"), ns, uuid)), 200);
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
      responses: { 202: jsonResponse("The new action"), ...errorResponses(401, 403, 404, 409) },
    },
    async (c) => {
      const { ns, uuid } = await actionScope(c);
      const meta = requestMeta(c, c.req.path);
      const action = settle(await namespaceStub(c.env, ns).retryAction(c.get("user"), ns, uuid, meta));
      return c.json(action, 202, { "X-DockerCloud-Action-URI": action.resource_uri });
    },
  );
}

const ActionParam = z.object({ uuid: z.string() });

/**
 * The namespace holding an action: the one named in the path, else the first
 * of the caller's namespaces (own, then organizations) that has it.
 */
async function actionScope(c: Ctx): Promise<{ ns: string; uuid: string }> {
  const uuid = normalizeUuid(c.req.param("uuid") ?? "");
  if (!uuid) throw new ApiError("not_found", "Action not found");
  if (c.req.param("namespace") !== undefined) return { ns: askedNamespace(c), uuid };
  const user = c.get("user");
  for (const ns of await callerNamespaces(c)) {
    if ((await namespaceStub(c.env, ns).getAction(user, ns, uuid)).ok) return { ns, uuid };
  }
  throw new ApiError("not_found", "Action not found");
}
