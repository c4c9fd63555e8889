import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app";

/** The API describes itself at GET /api/openapi.json. */
export function registerOpenApi(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "basicAuth", {
    type: "http",
    scheme: "basic",
    description: "username and API key",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "adminToken", {
    type: "http",
    scheme: "bearer",
    description: "the ADMIN_TOKEN secret",
  });
  app.doc31("/api/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Docker Cloud service triggers",
      version: "1.0.0",
      description:
        "A Docker Cloud-compatible API for services and their triggers: secret URLs that redeploy or scale up a service when POSTed to. " +
        "Every route but a trigger call refuses a POST, PUT, PATCH or DELETE that a browser marks as sent by another site " +
        "(Origin, Sec-Fetch-Site) with 403, and a body declared as a form type (text/plain, form-urlencoded, multipart) with 415: " +
        "send JSON, with Content-Type: application/json or none.",
    },
  });
}
