import { Context } from "hono";
import { csrf } from "hono/csrf";
import { HTTPException } from "hono/http-exception";
import { ApiError } from "./errors";

/**
 * What a page on another site can make a visitor's browser send to this API.
 *
 * Management requests are authenticated by an Authorization header, which a browser attaches on
 * its own only after a Basic prompt (401 answers offer none: see auth.ts). These checks hold even
 * for a browser that has the credentials anyway (typed into a URL, or a challenge from before).
 * Trigger calls are not checked: they carry no credentials (the URL is the secret), so a page can
 * make a browser do nothing with them that the page's author cannot do with curl; and a "deploy"
 * button or a browser-based tool on another site is a legitimate caller.
 */

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Hono's check: the Origin is the API's own, or the browser says Sec-Fetch-Site: same-origin. */
const sameOriginOnly = csrf({
  origin: (origin, c) => origin === new URL(c.req.url).origin,
  secFetchSite: "same-origin",
});

/**
 * Refuses (403) a state-changing request that a browser marks as sent by another site.
 *
 * Current browsers send `Origin` on every POST, PUT, PATCH and DELETE, and most add `Sec-Fetch-Site`;
 * the SDKs, the CLI and curl send neither, so a request with neither is not a browser's and
 * passes. Hono's csrf looks only at the bodies a page can send without a CORS preflight (forms,
 * text/plain, no type), since a browser asks before sending anything else and this API grants no
 * preflight. It is run here on the marks alone, so that a request a browser marks as cross-site is
 * refused whatever its body type, without leaning on that.
 */
export async function refuseCrossSite(request: Request): Promise<void> {
  if (!STATE_CHANGING.has(request.method.toUpperCase())) return;
  const origin = request.headers.get("origin");
  const site = request.headers.get("sec-fetch-site");
  if (origin === null && site === null) return;
  const marks = new Headers();
  if (origin !== null) marks.set("origin", origin);
  if (site !== null) marks.set("sec-fetch-site", site);
  try {
    await sameOriginOnly(new Context(new Request(request.url, { method: request.method, headers: marks })), noop);
  } catch (err) {
    if (!(err instanceof HTTPException) || err.status !== 403) throw err;
    throw new ApiError(
      "forbidden",
      "cross-site request refused: a browser sent it from a page of another site " +
        "(Origin / Sec-Fetch-Site). Call the API from a program (the SDKs, the CLI, curl send neither header) " +
        "or from a page of the API's own origin",
    );
  }
}

const noop = async () => {};

/** The body types a page can send without a CORS preflight (Hono's csrf list, text/ping included). */
const FORM_TYPES = new Set(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "text/ping"]);

/**
 * Refuses (415) a state-changing request whose declared Content-Type is one a page can post to
 * another site: the API's bodies are JSON. No Content-Type (the Go SDK) or any other type is
 * still read as JSON, as the clients need.
 */
export function refuseFormBody(request: Request): void {
  if (!STATE_CHANGING.has(request.method.toUpperCase())) return;
  const declared = request.headers.get("content-type");
  if (declared === null) return;
  const types = declared.split(",").map((part) => (part.split(";")[0] ?? "").trim().toLowerCase());
  const form = types.find((t) => FORM_TYPES.has(t));
  if (form === undefined) return;
  throw new ApiError(
    "unsupported_media_type",
    `Content-Type ${form} is not accepted here: send the body as JSON with Content-Type: application/json ` +
      "(or with no Content-Type)",
  );
}
