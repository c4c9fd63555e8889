import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { namespaceStub } from "../durable-objects/namespace";
import { MAX_API_KEYS_PER_USER } from "../durable-objects/namespace/api-keys";
import { unwrap } from "../http/errors";
import { errorResponses, jsonBody, jsonResponse, requireUser } from "./common";
import { KeyCreate } from "./schemas/bodies";
import { uuidParam } from "./schemas/inputs";
import { ApiKeyObject, listOf, NewApiKeyObject } from "./schemas/objects";

const security = [{ basicAuth: [] }];
const tags = ["account"];
const ApiKeyList = listOf("ApiKeyList", ApiKeyObject);
const KeyParam = z.object({ uuid: uuidParam("the API key uuid", () => "API key not found") });
const NamespaceEntry = z
  .object({
    name: z.string(),
    kind: z.enum(["user", "organization"]).openapi({ description: "your own namespace, or an organization's" }),
    resource_uri: z.string().openapi({ description: "the namespace's services: /api/app/v1/<name>/service/" }),
  })
  .openapi("Namespace");
const NamespaceList = listOf("NamespaceList", NamespaceEntry);

/**
 * Self-service: a user lists, creates and revokes their own API keys, and lists the namespaces
 * they may act in.
 */
export function registerAccountRoutes(app: OpenAPIHono<AppEnv>): void {
  app.use("/api/account/*", requireUser);

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/account/v1/namespace/",
      tags,
      security,
      summary: "The namespaces you may act in: your own, then the organizations you belong to",
      responses: { 200: jsonResponse("Namespaces, all on one page", NamespaceList), ...errorResponses(401) },
    }),
    async (c) => {
      const user = c.get("user");
      const orgs = await namespaceStub(c.env, user).memberships();
      const objects = [
        { name: user, kind: "user" as const },
        ...orgs.map((name) => ({ name, kind: "organization" as const })),
      ].map((ns) => ({ ...ns, resource_uri: `/api/app/v1/${ns.name}/service/` }));
      const meta = { limit: objects.length, next: null, offset: 0, previous: null, total_count: objects.length };
      return c.json({ meta, objects }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/account/v1/apikey/",
      tags,
      security,
      summary: "List your API keys (never the keys themselves)",
      responses: { 200: jsonResponse("Keys, all on one page", ApiKeyList), ...errorResponses(401) },
    }),
    async (c) => {
      const objects = await namespaceStub(c.env, c.get("user")).listApiKeys();
      return c.json(
        {
          meta: { limit: objects.length, next: null, offset: 0, previous: null, total_count: objects.length },
          objects,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/account/v1/apikey/",
      tags,
      security,
      summary: `Create an API key (shown only in this answer); a user holds at most ${MAX_API_KEYS_PER_USER}`,
      request: { body: jsonBody(KeyCreate) },
      responses: { 201: jsonResponse("The key", NewApiKeyObject), ...errorResponses(400, 401, 403) },
    }),
    async (c) => {
      const key = unwrap(await namespaceStub(c.env, c.get("user")).createApiKey(c.req.valid("json").label ?? ""));
      return c.json(key, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/account/v1/apikey/{uuid}/",
      tags,
      security,
      summary: "Revoke an API key; it stops working at once",
      request: { params: KeyParam },
      responses: { 200: jsonResponse("The revoked key", ApiKeyObject), ...errorResponses(401, 404) },
    }),
    async (c) => {
      const { uuid } = c.req.valid("param");
      return c.json(unwrap(await namespaceStub(c.env, c.get("user")).revokeApiKey(uuid)), 200);
    },
  );
}
