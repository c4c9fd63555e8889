/// <reference types="vite/client" />
/**
 * Property-based pass over every registry source (fast-check): whatever a
 * caller sends (random JSON, random text, a fixture with values replaced,
 * removed or swapped for the wrong type, strings of hundreds of kilobytes,
 * odd headers), `parse` answers without throwing, either an error string or
 * pushes whose every field fits Docker's grammar; and `verify` answers
 * without throwing, false for any proof it was not given by the secret's
 * owner. On failure fast-check prints the seed and path to replay.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Parsed, SOURCE_NAMES, SOURCES } from "../src/registry-hooks/sources";

const PARSE_RUNS = 300;
const VERIFY_RUNS = 100;

type Fixture = { headers: Record<string, string>; body?: unknown; rawBody?: string };
const FILES = import.meta.glob<Fixture>("./fixtures/registry/*/*.json", { eager: true, import: "default" });
const fixturesOf = (source: string) =>
  Object.entries(FILES)
    .filter(([file]) => file.split("/").at(-2) === source)
    .map(([, fixture]) => fixture);

// Docker's grammar, written out again here rather than imported from the code under test.
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const REGISTRY =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:]+\])(?::[0-9]{1,5})?$/;
// What may not reach a stored id or a log line (as src/domain/text.ts lists it); a string, for the linter's sake.
const CONTROL_CHARACTERS =
  "[\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]";
const CONTROL = new RegExp(CONTROL_CHARACTERS);

function expectWellFormed(parsed: Parsed): void {
  if (!parsed.ok) {
    expect(typeof parsed.error).toBe("string");
    expect(parsed.error).not.toBe("");
    // The sources' last resort against an exception: the checks should have answered before it.
    expect(parsed.error).not.toBe("the body cannot be read");
    return;
  }
  for (const push of parsed.pushes) {
    expect(push.repository.length).toBeLessThanOrEqual(255);
    expect(push.repository).toMatch(REPOSITORY);
    expect(push.tag).toMatch(TAG);
    if (push.digest !== null) expect(push.digest).toMatch(DIGEST);
    if (push.registry !== null) expect(push.registry).toMatch(REGISTRY);
    if (push.pushedAt !== null) expect(Number.isSafeInteger(push.pushedAt)).toBe(true);
    if (push.id !== null) {
      expect(push.id.length).toBeLessThanOrEqual(255);
      expect(push.id).not.toMatch(CONTROL);
    }
  }
  for (const left of parsed.ignored) {
    expect(left.kind).not.toBe("");
    expect(left.reason).not.toBe("");
  }
}

type Path = (string | number)[];

/** Every place in a JSON value, the value itself first. */
function pathsOf(value: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) pathsOf(v, [...at, i], out);
  } else if (value !== null && typeof value === "object") {
    for (const [key, v] of Object.entries(value)) pathsOf(v, [...at, key], out);
  }
  return out;
}

type Mutation = { pick: number; remove: boolean; value: unknown };

function mutated(value: unknown, { pick, remove, value: replacement }: Mutation): unknown {
  const paths = pathsOf(value);
  const path = paths[pick % paths.length] ?? [];
  if (path.length === 0) return replacement;
  const copy = structuredClone(value);
  let parent = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1) as string | number;
  if (remove && !Array.isArray(parent)) delete parent[last];
  else parent[last] = replacement;
  return copy;
}

const hugeString = fc
  .tuple(fc.constantFrom("a", "sha256:", "x/", "-", "é", "\u202e", "0"), fc.integer({ min: 256, max: 300_000 }))
  .map(([unit, length]) => unit.repeat(Math.ceil(length / unit.length)));

/** Values that sit near the edges of what a field accepts, or of another type altogether. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hugeString,
  fc.constantFrom(
    null,
    0,
    -1,
    1e308,
    -1e308,
    true,
    [],
    {},
    "",
    "-latest",
    ".hidden",
    "x".repeat(129),
    "Team/App",
    "team//app",
    "team/app/",
    "/team/app",
    "team___app",
    `sha256-${"0".repeat(64)}.sig`,
    `sha256:${"A".repeat(64)}`,
    "sha256:abc",
    "registry.example.com:99999999/team/app:1",
    "[::1]:5000/team/app:1",
    "ex ample.com/app:1",
    "app:1\t2",
    "app:1\u2028",
    "0001-01-01T00:00:00Z",
    "2026-13-45T99:99:99Z",
    "March 7, 2026",
    "PUSH_ARTIFACT",
    "harbor.artifact.pushed",
    "push",
    "pull",
  ),
);

const headerText = fc.string({ unit: fc.constantFrom(..."abcXYZ019 =,_-./:+\t"), maxLength: 80 });

/** Headers a caller may send, with the names the sources read. */
const oddHeaders = fc.record(
  {
    "x-github-event": fc.oneof(fc.constantFrom("package", "registry_package", "ping", "push"), headerText),
    "x-github-delivery": headerText,
    "webhook-id": headerText,
    "content-type": fc.constantFrom("application/json", "application/vnd.docker.distribution.events.v2+json"),
  },
  { requiredKeys: [] },
);

type Call = { headers: Record<string, string>; body: string };

const mutatedFixture = (source: string): fc.Arbitrary<Call> =>
  fc
    .tuple(
      fc.constantFrom(...fixturesOf(source)),
      fc.array(fc.record({ pick: fc.nat(), remove: fc.boolean(), value: oddValue }), { minLength: 1, maxLength: 4 }),
    )
    .map(([fixture, mutations]) => ({
      headers: fixture.headers,
      body:
        fixture.body === undefined
          ? (fixture.rawBody ?? "")
          : JSON.stringify(mutations.reduce<unknown>((value, m) => mutated(value, m), fixture.body)),
    }));

/** JSON nested far deeper than any payload, at the top or where a source looks first. */
const deepBody = fc
  .tuple(
    fc.constantFrom("", '{"events":', '{"event_data":{"resources":', '{"updated_tags":', '{"image":'),
    fc.integer({ min: 1_000, max: 100_000 }),
  )
  .map(
    ([prefix, depth]) =>
      `${prefix}${"[".repeat(depth)}${"]".repeat(depth)}${prefix === "" ? "" : "}".repeat(prefix.split("{").length - 1)}`,
  );

const anyCall = (source: string): fc.Arbitrary<Call> =>
  fc.oneof(
    { weight: 5, arbitrary: mutatedFixture(source) },
    { weight: 1, arbitrary: fc.tuple(oddHeaders, fc.json()).map(([headers, body]) => ({ headers, body })) },
    { weight: 1, arbitrary: fc.tuple(oddHeaders, fc.string()).map(([headers, body]) => ({ headers, body })) },
    { weight: 1, arbitrary: fc.tuple(oddHeaders, hugeString).map(([headers, body]) => ({ headers, body })) },
    { weight: 1, arbitrary: fc.tuple(oddHeaders, deepBody).map(([headers, body]) => ({ headers, body })) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(mutatedFixture(source), oddHeaders)
        .map(([call, headers]) => ({ headers: { ...call.headers, ...headers }, body: call.body })),
    },
  );

describe.each(SOURCE_NAMES.map((name) => [name, SOURCES[name]] as const))(
  "registry source properties: %s",
  (name, source) => {
    it("parse never throws, and answers an error or pushes that fit Docker's grammar", () => {
      fc.assert(
        fc.property(anyCall(name), ({ headers, body }) => {
          expectWellFormed(source.parse(new Headers(headers), body));
        }),
        { numRuns: PARSE_RUNS },
      );
    });

    it("verify never throws, and refuses a proof made without the secret", async () => {
      const secret = source.newSecret() ?? "";
      const proof = fc.record(
        {
          authorization: fc.oneof(
            headerText,
            headerText.map((t) => `Bearer ${t}`),
          ),
          "x-hub-signature-256": fc.oneof(
            headerText,
            fc.stringMatching(/^[0-9a-f]{64}$/).map((hex) => `sha256=${hex}`),
          ),
          "webhook-id": headerText,
          "webhook-timestamp": fc.oneof(headerText, fc.constant(String(Math.floor(Date.now() / 1000)))),
          "webhook-signature": fc.oneof(
            headerText,
            fc.base64String({ minLength: 44, maxLength: 44 }).map((sig) => `v1,${sig}`),
          ),
        },
        { requiredKeys: [] },
      );
      await fc.assert(
        fc.asyncProperty(anyCall(name), proof, fc.oneof(fc.constant(secret), fc.string()), async (call, sent, key) => {
          const verdict = await source.verify(key, new Headers({ ...call.headers, ...sent }), call.body);
          expect(verdict).toBe(source.auth === "none");
        }),
        { numRuns: VERIFY_RUNS },
      );
    });
  },
);
