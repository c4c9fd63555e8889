import { readAtMost } from "../domain/bytes";
import { hideIds } from "../domain/ids";
import { refuseCrossSite, refuseFormBody } from "./browser";
import { ApiError } from "./errors";

/** Bodies over this are refused with 413, on every route. */
export const MAX_BODY_BYTES = 64 * 1024;
/** A registry's call may carry many events (a distribution registry's batch, a Harbor payload). */
export const HOOK_BODY_BYTES = 1024 * 1024;

/**
 * Collapses repeated slashes (the Python SDK sends `.../<S>//trigger/`, the Go
 * SDK `//api/...`) and adds the trailing slash every route is declared with.
 */
export function normalizePath(pathname: string): string {
  let path = pathname.replace(/\/{2,}/g, "/");
  // Every API route ends in a slash; documents (/api/openapi.json) do not.
  if (!path.endsWith("/") && !/\.[a-z]+$/.test(path)) path += "/";
  return path;
}

/** Reads a body up to the limit, refusing a larger one without reading it all. */
export async function readBody(request: Request, limit = MAX_BODY_BYTES): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  if (!request.body) return new Uint8Array(0);
  // One byte past the limit is enough to know the body is too large.
  const { bytes } = await readAtMost(request.body, limit + 1);
  if (bytes.byteLength > limit) throw tooLarge(limit);
  return bytes;
}

const tooLarge = (limit: number) =>
  new ApiError("payload_too_large", `request body is larger than ${limit / 1024} KiB`);

/**
 * Calls that keep their raw body, read by their route: a trigger's (it travels with the
 * operation) and a registry hook's (its signature is over the exact bytes, in whatever type).
 */
export const isCallPath = (path: string) =>
  /\/trigger\/[^/]+\/call\/(?:[^/]+\/)?$/.test(path) ||
  /^\/api\/app\/v1\/[^/]+\/registryhook\/call\/[^/]+\/$/.test(path);

/**
 * Prepares a request for routing. Clients disagree on headers and bodies
 * (Python sends Content-Type everywhere and empty POSTs, Go sends JSON with no
 * Content-Type and `{}` on GET and DELETE), so: bodies on GET/DELETE are
 * dropped; other bodies are read (bounded) and declared JSON, an empty one
 * being `{}`. Trigger calls keep their raw body: it travels with the operation.
 * Before any of that, other routes refuse what a page on another site can make a browser send
 * (browser.ts): a state-changing request marked cross-site (403), a form-type body (415).
 */
export async function normalizeRequest(request: Request): Promise<Request> {
  const url = new URL(request.url);
  const path = normalizePath(url.pathname);
  const method = request.method.toUpperCase();
  const pathChanged = path !== url.pathname;
  url.pathname = path;

  if (isCallPath(path)) return pathChanged ? new Request(url, request) : request;
  await refuseCrossSite(request);
  refuseFormBody(request);
  if (method === "GET" || method === "HEAD" || method === "DELETE" || method === "OPTIONS") {
    // A DELETE's body is ignored (the Go SDK sends {}), but like every body it is held to the limit.
    if (method === "DELETE" && request.body) await readBody(request);
    if (!pathChanged && !request.body) return request;
    return new Request(url, { method, headers: request.headers, cf: request.cf });
  }
  const body = await readBody(request);
  // Routes that declare no body (redeploy/, scale/, cancel/, retry/) get the same check as the
  // others: empty, or a JSON object in UTF-8.
  if (body.byteLength) checkJsonObject(body);
  const headers = new Headers(request.headers);
  headers.set("content-type", "application/json");
  headers.delete("content-length");
  // `cf` goes along: the audit log's `location` of user actions comes from it.
  return new Request(url, { method, headers, body: body.byteLength ? body : "{}", cf: request.cf });
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Decodes UTF-8, refusing bytes that are not (a lossy decode would store U+FFFD in their place). */
export function utf8Body(bytes: Uint8Array, what = "request body"): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new ApiError("bad_request", `invalid ${what}: not valid UTF-8`);
  }
}

function checkJsonObject(bytes: Uint8Array): void {
  let value: unknown;
  const text = utf8Body(bytes);
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError("bad_request", "invalid request body: Malformed JSON in request body");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const got = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
    throw new ApiError("bad_request", `invalid request body: expected a JSON object, received ${got}`);
  }
  // Only a \uD800-\uDFFF escape can make a lone surrogate: UTF-8 cannot (utf8Body refuses it).
  const where = /\\u[dD][89a-fA-F]/.test(text) ? loneSurrogate(value) : null;
  if (where !== null) {
    throw new ApiError(
      "bad_request",
      `invalid request body: ${hideIds(where)}: holds a lone UTF-16 surrogate (an unpaired \\uD800-\\uDFFF escape), ` +
        "which is not text; send the character in UTF-8, or escaped as a surrogate pair",
    );
  }
}

/**
 * The field (dotted path, as in validation messages) of a string or key holding a lone
 * UTF-16 surrogate, or null. JSON.parse accepts `"\ud800"`, but such a string has no UTF-8 form:
 * stored, it would come back as U+FFFD. Walked without recursion: bodies may nest deeply.
 */
function loneSurrogate(root: object): string | null {
  const stack: [unknown, string][] = [[root, ""]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [value, path] = next;
    if (typeof value === "string") {
      if (!value.isWellFormed()) return path;
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    const entries = Object.entries(value);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i] as [string, unknown];
      const at = path ? `${path}.${key}` : key;
      if (!key.isWellFormed()) return `the key ${JSON.stringify(at)}`;
      stack.push([child, at]);
    }
  }
  return null;
}
