import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Every way a request can fail, mapped to the status Docker Cloud used for it. */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  quota_exceeded: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** A failure a Durable Object reports over RPC (RPC keeps no custom error classes). */
export type Failure = { ok: false; code: ErrorCode; message: string; headers?: Record<string, string> };
export type Result<T> = { ok: true; value: T } | Failure;

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = (code: ErrorCode, message: string, headers?: Record<string, string>): Failure =>
  headers ? { ok: false, code, message, headers } : { ok: false, code, message };

/** The one error type of the API; `onError` turns it into `{"error": message}`. */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = ERROR_STATUS[code];
    this.headers = headers;
  }
}

/** Unwraps an RPC result, throwing its failure as an ApiError. */
export function unwrap<T>(result: Result<T>): T {
  if (!result.ok) throw new ApiError(result.code, result.message, result.headers);
  return result.value;
}

/** Headers every answer carries: JSON that is never sniffed nor cached. */
export const SAFE_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-store",
} as const;

export function errorResponse(status: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error: message }), {
    status,
    headers: { "Content-Type": "application/json", ...SAFE_HEADERS, ...headers },
  });
}
