import { z } from "@hono/zod-openapi";
import { ERROR_CODES, type ErrorCode } from "../domain/result";
import { ApiError } from "./errors";

type Issue = z.core.$ZodIssue;

/**
 * Fails a schema with an answer of its own: `code`'s status and exactly `message`, instead of the
 * 400 "invalid <part>: ..." other validation failures get. For the checks routes made by hand
 * before they moved into schemas, whose answers clients already know: a malformed uuid in a path
 * is a 404 (it names nothing), a bad limit a 400 with its own sentence. Returns z.NEVER, so a
 * transform can `return refuse(...)`.
 */
export function refuse(ctx: z.core.$RefinementCtx, code: ErrorCode, message: string): never {
  ctx.addIssue({ code: "custom", message, params: { refusal: code } });
  return z.NEVER;
}

function refusalOf(issue: Issue): ErrorCode | null {
  if (issue.code !== "custom") return null;
  const code: unknown = issue.params?.refusal;
  return ERROR_CODES.find((c) => c === code) ?? null;
}

/** Whether every issue is a refusal: the failure stands for a check the handlers made after validation. */
export function onlyRefusals(issues: readonly Issue[]): boolean {
  return issues.every((i) => refusalOf(i) !== null);
}

/** Validation failures name the field and what is wrong with it. */
function describeIssues(issues: readonly Issue[]): string {
  return issues
    .slice(0, 3)
    .map((i) => (i.path.length ? `${i.path.map(String).join(".")}: ${i.message}` : i.message))
    .join("; ");
}

/**
 * The answer to a failed validation of one part of a request (`target` as the validator names it).
 * Ordinary issues come first, as a 400 naming up to three of them; refusals only when nothing
 * else is wrong, the first one as it is.
 */
export function validationError(target: string, issues: readonly Issue[]): ApiError {
  const plain = issues.filter((i) => refusalOf(i) === null);
  const first = issues[0];
  const code = first ? refusalOf(first) : null;
  if (plain.length === 0 && first && code) return new ApiError(code, first.message);
  const where = target === "json" ? "request body" : target === "query" ? "query" : "path";
  return new ApiError("bad_request", `invalid ${where}: ${describeIssues(plain)}`);
}
