import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { jsonResponse } from "./common";
import { HealthObject } from "./schemas/objects";

/** GET /api/health/: liveness, answered without touching storage or credentials. */
export function registerHealthRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/health/",
      tags: ["meta"],
      summary: "Liveness: answers without touching storage",
      responses: { 200: jsonResponse("OK", HealthObject) },
    }),
    (c) => c.json({ status: "ok" as const }, 200),
  );
}
