import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { rfc1123 } from "../domain/dates";
import { namespaceNameProblem } from "../domain/names";
import type { NamespaceKind } from "../domain/namespace";
import { envelope } from "../domain/pagination";
import { type DirectoryEntry, directoryStub } from "../durable-objects/directory";
import { namespaceStub } from "../durable-objects/namespace";
import { requireAdmin } from "../http/auth";
import { ApiError, unwrap } from "../http/errors";
import { type Ctx, errorResponses, jsonBody, jsonResponse, PageQuery, pageOf } from "./common";
import { KeyCreate } from "./schemas";

const security = [{ adminToken: [] }];
const tags = ["admin"];

const nameField = (field: string) =>
  z.string({ error: `${field} must be a string` }).superRefine((v, ctx) => {
    const problem = namespaceNameProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

const UserCreate = z.object({ username: nameField("username") }).openapi("AdminUserCreate");
const OrgCreate = z.object({ name: nameField("name") }).openapi("AdminOrganizationCreate");
const MemberAdd = z.object({ username: nameField("username") }).openapi("AdminMemberAdd");
const NameParam = (name: string) => z.object({ [name]: z.string() });

function entryJson(kind: NamespaceKind, e: { name: string; created_at: number }) {
  const base = kind === "user" ? "user" : "organization";
  return {
    [kind === "user" ? "username" : "name"]: e.name,
    created: rfc1123(e.created_at),
    resource_uri: `/api/admin/v1/${base}/${e.name}/`,
  };
}

function pathName(c: Ctx, param: string, what: string): string {
  const name = c.req.param(param) ?? "";
  if (namespaceNameProblem(name) !== null) throw new ApiError("not_found", `${what} not found`);
  return name;
}

async function createNamespace(c: Ctx, name: string, kind: NamespaceKind) {
  const info = unwrap(await namespaceStub(c.env, name).claim(name, kind));
  await directoryStub(c.env).add({ name, kind, created_at: info.created_at } satisfies DirectoryEntry);
  return c.json(entryJson(kind, info), 201);
}

async function listNamespaces(c: Ctx, kind: NamespaceKind) {
  const page = pageOf(c);
  const { total, entries } = await directoryStub(c.env).list(kind, page.limit, page.offset);
  return c.json(
    envelope(
      c.req.path,
      new URLSearchParams(),
      page,
      total,
      entries.map((e) => entryJson(kind, e)),
    ),
    200,
  );
}

/**
 * The admin API (Bearer ADMIN_TOKEN): the one way to create users,
 * organizations, memberships and a user's first API key.
 */
export function registerAdminRoutes(app: OpenAPIHono<AppEnv>): void {
  app.use("/api/admin/*", requireAdmin);

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/admin/v1/user/",
      tags,
      security,
      summary: "Create a user",
      request: { body: jsonBody(UserCreate) },
      responses: { 201: jsonResponse("The user"), ...errorResponses(400, 401, 409, 503) },
    }),
    async (c) => createNamespace(c, c.req.valid("json").username, "user") as never,
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/admin/v1/user/",
      tags,
      security,
      summary: "List users",
      request: { query: z.object(PageQuery) },
      responses: { 200: jsonResponse("Users"), ...errorResponses(400, 401, 503) },
    }),
    async (c) => listNamespaces(c, "user") as never,
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/admin/v1/user/{username}/",
      tags,
      security,
      summary: "Delete a user, its keys, services, triggers and actions",
      request: { params: NameParam("username") },
      responses: { 200: jsonResponse("The deleted user"), ...errorResponses(401, 404, 503) },
    }),
    async (c) => {
      const name = pathName(c, "username", "user");
      const gone = unwrap(await namespaceStub(c.env, name).destroy("user"));
      await Promise.all(gone.memberships.map((org) => namespaceStub(c.env, org).removeMember(name)));
      await directoryStub(c.env).remove(name);
      return c.json({ username: name, deleted: true }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/admin/v1/user/{username}/apikey/",
      tags,
      security,
      summary: "Create an API key for a user (the key is shown only in this answer)",
      request: { params: NameParam("username"), body: jsonBody(KeyCreate) },
      responses: { 201: jsonResponse("The key"), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const name = pathName(c, "username", "user");
      const key = unwrap(await namespaceStub(c.env, name).createApiKey(c.req.valid("json").label ?? ""));
      return c.json(key, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/admin/v1/organization/",
      tags,
      security,
      summary: "Create an organization",
      request: { body: jsonBody(OrgCreate) },
      responses: { 201: jsonResponse("The organization"), ...errorResponses(400, 401, 409, 503) },
    }),
    async (c) => createNamespace(c, c.req.valid("json").name, "organization") as never,
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/admin/v1/organization/",
      tags,
      security,
      summary: "List organizations",
      request: { query: z.object(PageQuery) },
      responses: { 200: jsonResponse("Organizations"), ...errorResponses(400, 401, 503) },
    }),
    async (c) => listNamespaces(c, "organization") as never,
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/admin/v1/organization/{name}/",
      tags,
      security,
      summary: "Get an organization and its members",
      request: { params: NameParam("name") },
      responses: { 200: jsonResponse("The organization"), ...errorResponses(401, 404, 503) },
    }),
    async (c) => {
      const name = pathName(c, "name", "organization");
      const info = await namespaceStub(c.env, name).info();
      if (info?.kind !== "organization") throw new ApiError("not_found", "organization not found");
      return c.json({ ...entryJson("organization", info), members: info.members }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/admin/v1/organization/{name}/",
      tags,
      security,
      summary: "Delete an organization with its services, triggers and actions",
      request: { params: NameParam("name") },
      responses: { 200: jsonResponse("The deleted organization"), ...errorResponses(401, 404, 503) },
    }),
    async (c) => {
      const name = pathName(c, "name", "organization");
      const gone = unwrap(await namespaceStub(c.env, name).destroy("organization"));
      await Promise.all(gone.members.map((u) => namespaceStub(c.env, u).recordMembership(name, false)));
      await directoryStub(c.env).remove(name);
      return c.json({ name, deleted: true }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/admin/v1/organization/{name}/member/",
      tags,
      security,
      summary: "Add a user to an organization",
      request: { params: NameParam("name"), body: jsonBody(MemberAdd) },
      responses: { 201: jsonResponse("The membership"), ...errorResponses(400, 401, 404, 409, 503) },
    }),
    async (c) => {
      const org = pathName(c, "name", "organization");
      const { username } = c.req.valid("json");
      const user = await namespaceStub(c.env, username).info();
      if (user?.kind !== "user") throw new ApiError("not_found", `user '${username}' not found`);
      unwrap(await namespaceStub(c.env, org).addMember(username));
      await namespaceStub(c.env, username).recordMembership(org, true);
      return c.json({ organization: org, username }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/admin/v1/organization/{name}/member/{username}/",
      tags,
      security,
      summary: "Remove a user from an organization",
      request: { params: z.object({ name: z.string(), username: z.string() }) },
      responses: { 200: jsonResponse("The removed membership"), ...errorResponses(401, 404, 503) },
    }),
    async (c) => {
      const org = pathName(c, "name", "organization");
      const username = pathName(c, "username", "member");
      unwrap(await namespaceStub(c.env, org).removeMember(username));
      await namespaceStub(c.env, username).recordMembership(org, false);
      return c.json({ organization: org, username, removed: true }, 200);
    },
  );
}
