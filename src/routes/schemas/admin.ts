import { z } from "@hono/zod-openapi";

/** What the admin API answers with. Its handlers build these objects themselves, typed by these schemas. */

const created = z.string().nullable().openapi({ example: "Mon, 13 Oct 2014 11:01:43 +0000" });

export const AdminUser = z.object({ username: z.string(), created, resource_uri: z.string() }).openapi("AdminUser");

export const AdminOrganization = z
  .object({ name: z.string(), created, resource_uri: z.string() })
  .openapi("AdminOrganization");

export const AdminOrganizationDetail = z
  .object({ name: z.string(), created, resource_uri: z.string(), members: z.array(z.string()) })
  .openapi("AdminOrganizationDetail");

export const AdminUserDeleted = z
  .object({ username: z.string(), deleted: z.literal(true) })
  .openapi("AdminUserDeleted");

export const AdminOrganizationDeleted = z
  .object({ name: z.string(), deleted: z.literal(true) })
  .openapi("AdminOrganizationDeleted");

export const AdminMembership = z.object({ organization: z.string(), username: z.string() }).openapi("AdminMembership");

export const AdminMembershipRemoved = z
  .object({ organization: z.string(), username: z.string(), removed: z.literal(true) })
  .openapi("AdminMembershipRemoved");
