import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ErrorCode, Result } from "../domain/result";

/** Every way a request can fail, mapped to the status Docker Cloud used for it. */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  quota_exceeded: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  upgrade_required: 426,
  rate_limited: 429,
  unavailable: 503,
} as const satisfies Record<ErrorCode, ContentfulStatusCode>;

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

/**
 * Unwraps a storage object's answer, throwing its refusal as an ApiError: a
 * refusal that may succeed later tells when, in Retry-After. `hide` rewrites
 * a refusal that would tell an unauthorized caller too much.
 */
export function unwrap<T>(
  result: Result<T>,
  hide?: (failure: { code: ErrorCode; message: string }) => ApiError | null,
): T {
  if (result.ok) return result.value;
  const hidden = hide?.(result);
  if (hidden) throw hidden;
  const headers: Record<string, string> =
    result.retryAfterSeconds === undefined ? {} : { "Retry-After": String(result.retryAfterSeconds) };
  throw new ApiError(result.code, result.message, headers);
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
