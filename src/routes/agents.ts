import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { AGENT_STATES, AgentCreate, AgentPatch } from "../domain/agent";
import { namespaceStub } from "../durable-objects/namespace";
import { unwrap } from "../http/errors";
import { askedNamespace, dual, errorResponses, jsonBody, jsonResponse, listResponse } from "./common";
import { PageQuery, uuidParam } from "./schemas/inputs";
import { AgentObject, listOf, NewAgentObject } from "./schemas/objects";

const tags = ["agents"];
const AgentParam = z.object({ uuid: uuidParam("the agent uuid", () => "Agent not found") });
const AgentFilters = z.object({
  ...PageQuery,
  name: z.string().optional(),
  state: z.enum(AGENT_STATES, { error: `state must be one of: ${AGENT_STATES.join(", ")}` }).optional(),
});
const AgentList = listOf("AgentList", AgentObject);

/**
 * Agents of a namespace (Basic auth): the processes that run next to an
 * orchestrator and perform operations there. A token is shown once, on create.
 */
export function registerAgentRoutes(app: OpenAPIHono<AppEnv>): void {
  dual(
    app,
    {
      method: "get",
      subsystem: "agent",
      path: "/agent/",
      tags,
      operationId: "listAgents",
      summary: "List agents",
      request: { query: AgentFilters },
      responses: { 200: jsonResponse("Agents", AgentList), ...errorResponses(400, 401, 403) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { limit, offset, ...filters } = c.req.valid("query");
      const page = { limit, offset };
      const listing = unwrap(await namespaceStub(c.env, ns).listAgents(c.get("user"), ns, filters, page));
      return c.json(listResponse(c, AgentObject, page, listing), 200);
    },
  );

  dual(
    app,
    {
      method: "post",
      subsystem: "agent",
      path: "/agent/",
      tags,
      operationId: "createAgent",
      summary: "Create an agent; its token is in this answer only",
      request: { body: jsonBody(AgentCreate) },
      responses: {
        201: jsonResponse("The agent and its token", NewAgentObject),
        ...errorResponses(400, 401, 403, 409),
      },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { name } = c.req.valid("json");
      return c.json(unwrap(await namespaceStub(c.env, ns).createAgent(c.get("user"), ns, name)), 201);
    },
  );

  dual(
    app,
    {
      method: "get",
      subsystem: "agent",
      path: "/agent/{uuid}/",
      tags,
      operationId: "getAgent",
      summary: "Get an agent",
      request: { params: AgentParam },
      responses: { 200: jsonResponse("The agent", AgentObject), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { uuid } = c.req.valid("param");
      return c.json(unwrap(await namespaceStub(c.env, ns).getAgent(c.get("user"), ns, uuid)), 200);
    },
  );

  dual(
    app,
    {
      method: "patch",
      subsystem: "agent",
      path: "/agent/{uuid}/",
      tags,
      operationId: "updateAgent",
      summary: "Rename an agent",
      request: { params: AgentParam, body: jsonBody(AgentPatch) },
      responses: { 200: jsonResponse("The agent", AgentObject), ...errorResponses(400, 401, 403, 404, 409) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { uuid } = c.req.valid("param");
      const changes = c.req.valid("json");
      return c.json(unwrap(await namespaceStub(c.env, ns).updateAgent(c.get("user"), ns, uuid, changes)), 200);
    },
  );

  dual(
    app,
    {
      method: "post",
      subsystem: "agent",
      path: "/agent/{uuid}/token/",
      tags,
      operationId: "rotateAgentToken",
      summary:
        "Give an agent a new token, shown in this answer only; the old one is refused, and its connection closed, from this answer on",
      request: { params: AgentParam },
      responses: {
        201: jsonResponse("The agent and its new token", NewAgentObject),
        ...errorResponses(401, 403, 404),
      },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { uuid } = c.req.valid("param");
      return c.json(unwrap(await namespaceStub(c.env, ns).rotateAgentToken(c.get("user"), ns, uuid)), 201);
    },
  );

  dual(
    app,
    {
      method: "delete",
      subsystem: "agent",
      path: "/agent/{uuid}/",
      tags,
      operationId: "deleteAgent",
      summary: "Delete an agent; its token is refused from this answer on",
      request: { params: AgentParam },
      responses: { 200: jsonResponse("The deleted agent", AgentObject), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { uuid } = c.req.valid("param");
      return c.json(unwrap(await namespaceStub(c.env, ns).deleteAgent(c.get("user"), ns, uuid)), 200);
    },
  );
}
