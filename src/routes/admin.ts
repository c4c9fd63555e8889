import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { MAX_RETENTION_DAYS } from "../config";
import { rfc1123 } from "../domain/dates";
import { hideIds } from "../domain/ids";
import { NAMESPACE_NAME, namespaceNameProblem } from "../domain/names";
import type { NamespaceKind } from "../domain/namespace";
import { envelope, type Page } from "../domain/pagination";
import { type DirectoryEntry, directoryStub } from "../durable-objects/directory";
import { namespaceStub } from "../durable-objects/namespace";
import { requireAdmin } from "../http/auth";
import { ApiError, unwrap } from "../http/errors";
import { type Ctx, errorResponses, jsonBody, jsonResponse } from "./common";
import {
  AdminMembership,
  AdminMembershipRemoved,
  AdminOrganization,
  AdminOrganizationDeleted,
  AdminOrganizationDetail,
  AdminUser,
  AdminUserDeleted,
} from "./schemas/admin";
import { KeyCreate } from "./schemas/bodies";
import { PageQuery } from "./schemas/inputs";
import { listOf, NewApiKeyObject } from "./schemas/objects";

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

/** A name in a path; one that no namespace can have is a 404, checked by the handler (`namedIn`). */
const pathName = (description: string) => z.string().openapi({ description, pattern: NAMESPACE_NAME.source });
const UserParam = z.object({ username: pathName("the user") });
const OrgParam = z.object({ name: pathName("the organization") });
const MemberParams = OrgParam.extend({ username: pathName("the member") });
const PageOnly = z.object(PageQuery);
const UserList = listOf("AdminUserList", AdminUser);
const OrgList = listOf("AdminOrganizationList", AdminOrganization);

/**
 * A namespace's retention of finished actions, its only setting. The body is optional: without
 * one, the route reads the setting and changes nothing.
 */
const badDays = { error: `action_retention_days must be whole days, 1 to ${MAX_RETENTION_DAYS}, or null` };
const RetentionPatch = z.object({
  action_retention_days: z
    .number(badDays)
    .int(badDays)
    .min(1, badDays)
    .max(MAX_RETENTION_DAYS, badDays)
    .nullable()
    .optional()
    .openapi({
      description:
        "Finished actions of the namespace are deleted this many days after they ended; it can only shorten the deployment's ACTION_RETENTION_DAYS. null follows the deployment's.",
    }),
});
const retentionFields = {
  action_retention_days: z.number().int().nullable(),
  action_retention_days_in_effect: z.number().int(),
};
const UserRetention = z.object({ username: z.string(), ...retentionFields }).openapi("AdminUserRetention");
const OrgRetention = z.object({ name: z.string(), ...retentionFields }).openapi("AdminOrganizationRetention");
const retentionBody = { content: { "application/json": { schema: RetentionPatch } }, required: false };

/** Reads a namespace's retention, or sets it when the body gives one (refused, it changes nothing). */
async function retention(c: Ctx, name: string, kind: NamespaceKind, patch: z.infer<typeof RetentionPatch>) {
  return unwrap(await namespaceStub(c.env, name).actionRetention(kind, patch.action_retention_days));
}

type Entry = { name: string; created_at: number };
const userJson = (e: Entry) => ({
  username: e.name,
  created: rfc1123(e.created_at),
  resource_uri: `/api/admin/v1/user/${e.name}/`,
});
const orgJson = (e: Entry) => ({
  name: e.name,
  created: rfc1123(e.created_at),
  resource_uri: `/api/admin/v1/organization/${e.name}/`,
});

/** A name from the path; one no namespace can have is not found. */
function namedIn(name: string, what: string): string {
  if (namespaceNameProblem(name) !== null) throw new ApiError("not_found", `${what} not found`);
  return name;
}

/** Claims a name for a new user or organization, and lists it in the directory. */
async function createNamespace(c: Ctx, name: string, kind: NamespaceKind): Promise<Entry> {
  const info = unwrap(await namespaceStub(c.env, name).claim(name, kind));
  await directoryStub(c.env).add({ name, kind, created_at: info.created_at } satisfies DirectoryEntry);
  return info;
}

/** A page of the directory's users or organizations, as the list envelope (no filters to keep). */
async function listNamespaces<T>(c: Ctx, kind: NamespaceKind, page: Page, json: (e: Entry) => T) {
  const { total, entries } = await directoryStub(c.env).list(kind, page.limit, page.offset);
  return envelope(c.req.path, new URLSearchParams(), page, total, entries.map(json));
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
      responses: { 201: jsonResponse("The user", AdminUser), ...errorResponses(400, 401, 409, 503) },
    }),
    async (c) => c.json(userJson(await createNamespace(c, c.req.valid("json").username, "user")), 201),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/admin/v1/user/",
      tags,
      security,
      summary: "List users",
      request: { query: PageOnly },
      responses: { 200: jsonResponse("Users", UserList), ...errorResponses(400, 401, 503) },
    }),
    async (c) => c.json(await listNamespaces(c, "user", c.req.valid("query"), userJson), 200),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/admin/v1/user/{username}/",
      tags,
      security,
      summary: "Delete a user, its keys, services, triggers and actions",
      request: { params: UserParam },
      responses: { 200: jsonResponse("The deleted user", AdminUserDeleted), ...errorResponses(401, 404, 503) },
    }),
    async (c) => {
      const name = namedIn(c.req.valid("param").username, "user");
      const gone = unwrap(await namespaceStub(c.env, name).destroy("user"));
      await Promise.all(gone.memberships.map((org) => namespaceStub(c.env, org).removeMember(name)));
      await directoryStub(c.env).remove(name);
      return c.json({ username: name, deleted: true as const }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/api/admin/v1/user/{username}/",
      tags,
      security,
      summary: "Read or shorten a user's retention of finished actions",
      request: { params: UserParam, body: retentionBody },
      responses: { 200: jsonResponse("The user's retention", UserRetention), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const username = namedIn(c.req.valid("param").username, "user");
      return c.json({ username, ...(await retention(c, username, "user", c.req.valid("json"))) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/admin/v1/user/{username}/apikey/",
      tags,
      security,
      summary: "Create an API key for a user (the key is shown only in this answer)",
      request: { params: UserParam, body: jsonBody(KeyCreate) },
      responses: { 201: jsonResponse("The key", NewApiKeyObject), ...errorResponses(400, 401, 403, 404, 503) },
    }),
    async (c) => {
      const name = namedIn(c.req.valid("param").username, "user");
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
      responses: { 201: jsonResponse("The organization", AdminOrganization), ...errorResponses(400, 401, 409, 503) },
    }),
    async (c) => c.json(orgJson(await createNamespace(c, c.req.valid("json").name, "organization")), 201),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/admin/v1/organization/",
      tags,
      security,
      summary: "List organizations",
      request: { query: PageOnly },
      responses: { 200: jsonResponse("Organizations", OrgList), ...errorResponses(400, 401, 503) },
    }),
    async (c) => c.json(await listNamespaces(c, "organization", c.req.valid("query"), orgJson), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/admin/v1/organization/{name}/",
      tags,
      security,
      summary: "Get an organization and its members",
      request: { params: OrgParam },
      responses: {
        200: jsonResponse("The organization", AdminOrganizationDetail),
        ...errorResponses(401, 404, 503),
      },
    }),
    async (c) => {
      const name = namedIn(c.req.valid("param").name, "organization");
      const info = await namespaceStub(c.env, name).info();
      if (info?.kind !== "organization") throw new ApiError("not_found", "organization not found");
      return c.json({ ...orgJson(info), members: info.members }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/admin/v1/organization/{name}/",
      tags,
      security,
      summary: "Delete an organization with its services, triggers and actions",
      request: { params: OrgParam },
      responses: {
        200: jsonResponse("The deleted organization", AdminOrganizationDeleted),
        ...errorResponses(401, 404, 503),
      },
    }),
    async (c) => {
      const name = namedIn(c.req.valid("param").name, "organization");
      const gone = unwrap(await namespaceStub(c.env, name).destroy("organization"));
      await Promise.all(gone.members.map((u) => namespaceStub(c.env, u).recordMembership(name, false)));
      await directoryStub(c.env).remove(name);
      return c.json({ name, deleted: true as const }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/api/admin/v1/organization/{name}/",
      tags,
      security,
      summary: "Read or shorten an organization's retention of finished actions",
      request: { params: OrgParam, body: retentionBody },
      responses: {
        200: jsonResponse("The organization's retention", OrgRetention),
        ...errorResponses(400, 401, 404, 503),
      },
    }),
    async (c) => {
      const name = namedIn(c.req.valid("param").name, "organization");
      return c.json({ name, ...(await retention(c, name, "organization", c.req.valid("json"))) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/admin/v1/organization/{name}/member/",
      tags,
      security,
      summary: "Add a user to an organization",
      request: { params: OrgParam, body: jsonBody(MemberAdd) },
      responses: { 201: jsonResponse("The membership", AdminMembership), ...errorResponses(400, 401, 404, 409, 503) },
    }),
    async (c) => {
      const org = namedIn(c.req.valid("param").name, "organization");
      const { username } = c.req.valid("json");
      const user = await namespaceStub(c.env, username).info();
      if (user?.kind !== "user") throw new ApiError("not_found", `user '${hideIds(username)}' not found`);
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
      request: { params: MemberParams },
      responses: {
        200: jsonResponse("The removed membership", AdminMembershipRemoved),
        ...errorResponses(401, 404, 503),
      },
    }),
    async (c) => {
      const params = c.req.valid("param");
      const org = namedIn(params.name, "organization");
      const username = namedIn(params.username, "member");
      unwrap(await namespaceStub(c.env, org).removeMember(username));
      await namespaceStub(c.env, username).recordMembership(org, false);
      return c.json({ organization: org, username, removed: true as const }, 200);
    },
  );
}
