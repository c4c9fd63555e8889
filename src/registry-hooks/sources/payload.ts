/**
 * What every source does with a payload: read it as JSON, check its shape,
 * check each value it states, and gather pushes and ignored events into one
 * answer, the first wrong field making the whole call a 400.
 */
import type { z } from "zod";
import { unsafeTextProblem } from "../../domain/text";
import {
  attachedArtifact,
  DIGEST_RULE,
  isDigest,
  isRegistry,
  isRepository,
  isTag,
  REGISTRY_RULE,
  REPOSITORY_RULE,
  TAG_RULE,
} from "./reference";
import type { Ignored, Parsed, Push } from "./source";

export const NOT_JSON = "the body is not JSON";

type Read<T> = { ok: true; value: T } | { ok: false; error: string };

/** One event of a payload, settled: a push, a thing left alone, or the field that makes the call wrong. */
export type Outcome = { push: Push } | { ignored: Ignored } | { error: string };

export const ignored = (kind: string, reason: string): Outcome => ({ ignored: { kind, reason } });

/** The answer for a whole call: its pushes and ignored events in order, or the first error. */
export function collect(outcomes: Iterable<Outcome>): Parsed {
  const pushes: Push[] = [];
  const left: Ignored[] = [];
  for (const outcome of outcomes) {
    if ("error" in outcome) return { ok: false, error: outcome.error };
    if ("push" in outcome) pushes.push(outcome.push);
    else left.push(outcome.ignored);
  }
  return { ok: true, pushes, ignored: left };
}

/**
 * A parse that cannot throw: a payload the checks did not foresee (however
 * deep or odd) becomes a 400, never an exception in the route.
 */
export function guarded(parse: (headers: Headers, body: string) => Parsed): (headers: Headers, body: string) => Parsed {
  return (headers, body) => {
    try {
      return parse(headers, body);
    } catch {
      return { ok: false, error: "the body cannot be read" };
    }
  };
}

export function readJson(body: string): Read<unknown> {
  try {
    return { ok: true, value: JSON.parse(body) };
  } catch {
    return { ok: false, error: NOT_JSON };
  }
}

/** The body as JSON, checked against a source's shape; unknown extra fields pass. */
export function readBody<T>(body: string, shape: z.ZodType<T>): Read<T> {
  const json = readJson(body);
  return json.ok ? readShape(shape, json.value) : json;
}

export function readShape<T>(shape: z.ZodType<T>, value: unknown): Read<T> {
  const result = shape.safeParse(value, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  return { ok: false, error: issue ? describeIssue(issue) : "the body is not a payload of this registry" };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const field = fieldName(issue.path);
  if ((issue.code === "invalid_type" || issue.code === "invalid_union") && issue.input === undefined) {
    return `${field} is missing`;
  }
  if (issue.code === "invalid_type") return `${field} must be ${withArticle(issue.expected)}`;
  return `${field} ${issue.message}`;
}

/** ["events", 0, "target", "tag"] -> "events[0].target.tag" */
export function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "the body";
  let name = "";
  for (const key of path) {
    if (typeof key === "number") name += `[${key}]`;
    else name += name === "" ? String(key) : `.${String(key)}`;
  }
  return name;
}

const withArticle = (expected: string) =>
  expected === "record" ? "an object" : `${/^[aeiou]/.test(expected) ? "an" : "a"} ${expected}`;

/** The values of one push, as a payload states them, and the fields they come from (for the 400). */
export type Stated = Push;
export type Fields = { id?: string; registry?: string; repository: string; tag: string; digest?: string };

/**
 * A push of a tagged image, or why it is not one: an empty tag is an untagged
 * push, a cosign or referrers tag is left alone, and every other value must
 * fit Docker's grammar.
 */
export function pushOf(stated: Stated, fields: Fields): Outcome {
  if (stated.tag === "") return ignored("untagged", "a manifest pushed without a tag (by digest)");
  const attached = attachedArtifact(stated.tag);
  if (attached) return { ignored: attached };
  const problem = problemOf(stated, fields);
  if (problem) return { error: problem };
  return { push: { ...stated, registry: stated.registry === null ? null : stated.registry.toLowerCase() } };
}

function problemOf(stated: Stated, fields: Fields): string | null {
  if (stated.id !== null) {
    const problem = idProblem(fields.id ?? "id", stated.id);
    if (problem) return problem;
  }
  if (stated.registry !== null && !isRegistry(stated.registry)) {
    return `${fields.registry ?? "registry"} must name a registry: ${REGISTRY_RULE}`;
  }
  if (!isRepository(stated.repository)) return `${fields.repository} must be a repository name: ${REPOSITORY_RULE}`;
  if (!isTag(stated.tag)) return `${fields.tag} must be a tag: ${TAG_RULE}`;
  if (stated.digest !== null && !isDigest(stated.digest)) return `${fields.digest ?? "digest"} must be ${DIGEST_RULE}`;
  return null;
}

const ID_MAX_LENGTH = 255;

/** An id kept for de-duplication is stored and logged: short, and free of characters that could forge a line. */
function idProblem(field: string, id: string): string | null {
  if (id.length > ID_MAX_LENGTH) return `${field} must be at most ${ID_MAX_LENGTH} characters`;
  return unsafeTextProblem(field, id);
}

/** An empty id states none. */
export const idOf = (value: string | null | undefined): string | null => (value ? value : null);

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
// Earlier times are placeholders, not pushes: Go's zero time ("0001-01-01T00:00:00Z"), or 0.
const EARLIEST_MS = Date.UTC(2000, 0, 1);
const LATEST_MS = Date.UTC(9999, 11, 31);

/** Milliseconds from an RFC 3339 timestamp; null when absent or a placeholder. */
export function timeOfIso(field: string, value: string | null | undefined): Read<number | null> {
  if (value === undefined || value === null || value === "") return { ok: true, value: null };
  const ms = ISO_8601.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) return { ok: false, error: `${field} must be an RFC 3339 date and time` };
  return { ok: true, value: plausible(ms) };
}

/** Milliseconds from seconds since the epoch; null when absent or a placeholder. */
export function timeOfSeconds(field: string, value: number | null | undefined): Read<number | null> {
  if (value === undefined || value === null) return { ok: true, value: null };
  if (!Number.isFinite(value) || value < 0) return { ok: false, error: `${field} must be seconds since the epoch` };
  return { ok: true, value: plausible(Math.round(value * 1000)) };
}

const plausible = (ms: number): number | null => (ms < EARLIEST_MS || ms > LATEST_MS ? null : ms);
