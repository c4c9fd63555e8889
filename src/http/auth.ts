import { createMiddleware } from "hono/factory";
import { config } from "../config";
import { secretsEqual } from "../domain/crypto";
import { bearerToken, credentialsHold, parseAuthorization } from "./credentials";
import { ApiError } from "./errors";

export type AuthVars = { user: string };

/**
 * The challenge of a 401. Not `Basic`: a browser answers a Basic challenge with a password prompt,
 * then attaches what was typed to every later request to the host, whichever page makes it: the
 * ambient credential that cross-site requests ride. The SDKs send Authorization up front and look
 * only at the status (Python maps 401 to AuthError), so they need no challenge; RFC 9110 still wants
 * one, so it names `ApiKey`, the Tutum-era scheme the API accepts, which no browser acts on.
 */
const REALM = { "WWW-Authenticate": 'ApiKey realm="Docker Cloud API"' };

/** Whether `apikey` is a key of the user `username` (a well-formed namespace name). */
export type VerifyUser = (env: Env, username: string, apikey: string) => Promise<boolean>;

/**
 * HTTP Basic (or legacy ApiKey) authentication of a user, checked by
 * `verifyUser` (the user's own storage) on every request, so a revoked key
 * stops at once.
 */
export const userAuth = (verifyUser: VerifyUser) =>
  createMiddleware<{ Bindings: Env; Variables: AuthVars }>(async (c, next) => {
    const header = c.req.header("authorization");
    if (!header)
      throw new ApiError(
        "unauthorized",
        "authentication required: send Authorization: Basic base64(username:apikey)",
        REALM,
      );
    const creds = parseAuthorization(header);
    if (!creds) {
      throw new ApiError(
        "unauthorized",
        "malformed Authorization header: expected Basic base64(username:apikey)",
        REALM,
      );
    }
    const valid = await credentialsHold(creds, (username, apikey) => verifyUser(c.env, username, apikey));
    if (!valid) throw new ApiError("unauthorized", "invalid username or API key", REALM);
    c.set("user", creds.username);
    await next();
  });

/** Bearer ADMIN_TOKEN. A Worker whose token is unset or short serves no admin API at all. */
export const requireAdmin = createMiddleware<{ Bindings: Env }>(async (c, next) => {
  const token = config(c.env).adminToken;
  if (!token) {
    throw new ApiError(
      "unavailable",
      "the admin API is disabled: set the ADMIN_TOKEN secret to at least 32 characters",
    );
  }
  const given = bearerToken(c.req.header("authorization"));
  if (!given || !(await secretsEqual(given, token))) {
    throw new ApiError("unauthorized", "admin API: send Authorization: Bearer <ADMIN_TOKEN>", {
      "WWW-Authenticate": 'Bearer realm="Docker Cloud admin API"',
    });
  }
  await next();
});
