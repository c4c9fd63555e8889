import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { hideIds } from "./domain/ids";
import type { AuthVars } from "./http/auth";
import { ApiError, errorResponse, SAFE_HEADERS } from "./http/errors";
import { RouteTable } from "./http/method-not-allowed";
import { validationError } from "./http/validation";

/**
 * `body` is a request's JSON body as read before validation, on routes that check their path
 * after their body (see routes/common.ts).
 */
export type AppEnv = { Bindings: Env; Variables: AuthVars & { body?: unknown } };

/**
 * A Hono app with the API's error handling: every failure leaves through
 * `onError` as `{"error": "..."}`; validation failures come through the same
 * place, as 400s or as a schema's own refusal (http/validation.ts); unknown routes are 404 and known paths with another method 405.
 */
export function createApp(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.target, result.error.issues);
    },
  });

  app.use(async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(SAFE_HEADERS)) c.res.headers.set(k, v);
  });

  const table = new RouteTable(() => app.routes);

  app.notFound((c) => {
    const allowed = table.allowed(c.req.path);
    if (allowed.length) {
      return errorResponse(405, `method ${c.req.method} is not allowed here; use ${allowed.join(", ")}`, {
        Allow: allowed.join(", "),
      });
    }
    // A mistyped trigger URL must not echo the trigger uuid (the URL's only secret), whatever its shape.
    return errorResponse(404, `no API route at ${hideIds(c.req.path)}`);
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(err.status, err.message, err.headers);
    if (err instanceof HTTPException) {
      const message = err.status === 400 ? `invalid request body: ${err.message}` : err.message;
      return errorResponse(err.status, message || "request refused");
    }
    console.error(`unhandled error on ${c.req.method} ${hideIds(c.req.path)}`, err);
    return errorResponse(500, "internal error; the request may be retried");
  });

  return app;
}
