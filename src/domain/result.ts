/**
 * Every way an operation can be refused. The storage objects answer with
 * these codes (RPC keeps no custom error classes); `http/errors.ts` maps each
 * to the status Docker Cloud used for it.
 */
export const ERROR_CODES = [
  "bad_request",
  "unauthorized",
  "forbidden",
  "quota_exceeded",
  "not_found",
  "conflict",
  "payload_too_large",
  "unsupported_media_type",
  "upgrade_required",
  "rate_limited",
  "unavailable",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** A refusal; `retryAfterSeconds` is set when trying again later can succeed (a rate limit). */
export type Failure = { ok: false; code: ErrorCode; message: string; retryAfterSeconds?: number };
export type Result<T> = { ok: true; value: T } | Failure;

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = (code: ErrorCode, message: string, retryAfterSeconds?: number): Failure =>
  retryAfterSeconds === undefined ? { ok: false, code, message } : { ok: false, code, message, retryAfterSeconds };

/** Goes on with a result's value, or passes its refusal on. */
export const andThen = <T, U>(r: Result<T>, then: (value: T) => Result<U>): Result<U> => (r.ok ? then(r.value) : r);
