/**
 * Property-based pass over the API (fast-check): arbitrary paths under /api/
 * (segments mixing real uuids and names, API words, random and unicode
 * strings, %2F, dot segments, empty segments, numbers), arbitrary methods,
 * bodies (fc.json(), fc.string(), random bytes, one over the limit), query
 * strings, content types and credentials. For every request:
 *   - the answer is below 500;
 *   - a 4xx is JSON, exactly {"error": "<non-empty string>"};
 *   - a 4xx changed no Durable Object's storage (every namespace object,
 *     every locator shard, the directory).
 * On failure fast-check prints the seed and path of the counterexample; to
 * replay it, put them in REPLAY below.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, basic, call } from "./helpers/api";
import {
  type Answer,
  answerOf,
  BODY_LIMIT,
  buildWorld,
  diffSnapshots,
  expectErrorAnswer,
  fillFromWorld,
  type Ignore,
  loadApi,
  REJECTED_CALL_COLUMNS,
  type Snapshot,
  snapshotStorage,
  summarize,
  type World,
  waitQuiet,
  worldValues,
} from "./helpers/bad-input";

/** Set to { seed, path } from a failure report to replay that counterexample. */
const REPLAY: { seed: number; path: string } | undefined = undefined;
const NUM_RUNS = 300;

const api = await loadApi();

const WORDS = [
  "api",
  "app",
  "audit",
  "admin",
  "account",
  "v1",
  "v2",
  "service",
  "trigger",
  "call",
  "action",
  "cancel",
  "retry",
  "redeploy",
  "scale",
  "apikey",
  "user",
  "organization",
  "member",
  "openapi.json",
  "health",
];
const ODD_SEGMENTS = ["%2F", "..", ".", "", "%2E%2E", "%2e", "..%2F", "a%2Fb", "%252F", "%00", "%zz", "%", "?", "#"];
const NUMBERS = ["0", "-1", "1", "1.5", "1e3", "10", "11", "99999999999999999999", "NaN"];
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const QUERY_KEYS = ["limit", "offset", "state", "uuid", "uuid__startswith", "name", "reuse_volumes", "start_date__gte"];

/** A JSON object over the body limit. */
const OVER_LIMIT = `{"pad":"${"a".repeat(BODY_LIMIT)}"}`;

type Body = { kind: "none" } | { kind: "text"; text: string } | { kind: "bytes"; bytes: Uint8Array };
type Mutation = { op: "replace" | "insert" | "delete"; at: number; seg: string };

function arbitraries(w: World) {
  const segment = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...worldValues(w)) },
    { weight: 4, arbitrary: fc.constantFrom(...WORDS) },
    { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 6 }) },
    { weight: 2, arbitrary: fc.constantFrom(...ODD_SEGMENTS) },
    { weight: 1, arbitrary: fc.constantFrom(...NUMBERS) },
  );
  const anyMethod = fc.constantFrom(...METHODS);
  const randomPath = fc
    .tuple(fc.array(segment, { maxLength: 8 }), fc.boolean(), anyMethod)
    .map(([segs, slash, method]) => ({ path: `/api/${segs.join("/")}${slash ? "/" : ""}`, method }));
  // A real route, each {param} kept or swapped for any segment, sent with its own method or another.
  const routeWithParams = fc
    .tuple(
      fc.constantFrom(...api.routes),
      fc.constantFrom("user" as const, "org" as const),
      fc.array(fc.option(segment, { freq: 2 }), { minLength: 4, maxLength: 4 }),
      fc.nat(9),
      anyMethod,
    )
    .map(([route, scope, swaps, pick, other]) => {
      const override: Record<string, string> = {};
      route.params.forEach((p, i) => {
        const v = swaps[i];
        if (v !== null && v !== undefined) override[p] = v;
      });
      // Its own method half the time (a DELETE with real values less often: it would really delete).
      const own = route.method === "DELETE" ? pick < 2 : pick < 5;
      return { path: fillFromWorld(route.template, w, w.scopes[scope], override), method: own ? route.method : other };
    });
  // A real route with real values, then changed structurally: a segment replaced, inserted or removed.
  const mutation: fc.Arbitrary<Mutation> = fc.record({
    op: fc.constantFrom("replace", "insert", "delete"),
    at: fc.nat(),
    seg: segment,
  });
  const mutatedRoute = fc
    .tuple(
      fc.constantFrom(...api.routes.map((r) => r.template)),
      fc.constantFrom("user" as const, "org" as const),
      fc.array(mutation, { minLength: 1, maxLength: 2 }),
      anyMethod,
    )
    .map(([template, scope, mutations, method]) => {
      const segs = fillFromWorld(template, w, w.scopes[scope]).split("/");
      for (const m of mutations) {
        const at = 2 + (m.at % Math.max(1, segs.length - 2)); // keep the leading "" and "api"
        if (m.op === "replace") segs[at] = m.seg;
        else if (m.op === "insert") segs.splice(at, 0, m.seg);
        else segs.splice(at, 1);
      }
      return { path: segs.join("/"), method };
    });
  const query = fc.option(
    fc
      .array(
        fc.tuple(fc.constantFrom(...QUERY_KEYS), fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(...NUMBERS))),
        {
          minLength: 1,
          maxLength: 3,
        },
      )
      .map((kv) => `?${kv.map(([k, v]) => `${k}=${v}`).join("&")}`),
    { nil: "" },
  );
  // Objects with the API's own field names and values of any type: reaches the field validators.
  const fields = [...new Set(api.routes.flatMap((r) => Object.keys(r.body?.properties ?? {})))];
  const fieldValue = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.constantFrom("", "REDEPLOY", "SCALEUP", "tutum/hello-world", "a".repeat(300)),
    fc.integer({ min: -5, max: 2000 }),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.jsonValue({ maxDepth: 2 }),
  );
  const body: fc.Arbitrary<Body> = fc.oneof(
    fc.constant<Body>({ kind: "none" }),
    fc
      .dictionary(fc.constantFrom(...fields), fieldValue, { maxKeys: 3 })
      .map<Body>((o) => ({ kind: "text", text: JSON.stringify(o) })),
    fc.json({ maxDepth: 3 }).map<Body>((text) => ({ kind: "text", text })),
    fc.string({ maxLength: 40 }).map<Body>((text) => ({ kind: "text", text })),
    fc.uint8Array({ maxLength: 64 }).map<Body>((bytes) => ({ kind: "bytes", bytes })),
    fc.constant<Body>({ kind: "text", text: OVER_LIMIT }),
  );
  return {
    target: fc.oneof(
      { weight: 2, arbitrary: randomPath },
      { weight: 4, arbitrary: routeWithParams },
      { weight: 2, arbitrary: mutatedRoute },
    ),
    query,
    body,
    // The credentials a route wants, mostly; the others now and then.
    auth: fc.oneof(
      { weight: 6, arbitrary: fc.constant("route") },
      { weight: 1, arbitrary: fc.constantFrom("user", "admin", "none", "unknown user") },
    ),
    contentType: fc.constantFrom("application/json", "text/plain", "application/json; charset=utf-16", undefined),
  };
}

function describeBody(b: Body): string {
  if (b.kind === "none") return "no body";
  if (b.kind === "bytes") return `bytes [${[...b.bytes].map((x) => x.toString(16).padStart(2, "0")).join(" ")}]`;
  return b.text.length > 200 ? `${b.text.length} chars` : JSON.stringify(b.text);
}

describe("property: arbitrary requests under /api/", () => {
  let w: World;
  /** Storage as it is now, between runs. */
  let current: Snapshot;

  beforeAll(async () => {
    w = await buildWorld();
    await waitQuiet();
    current = await snapshotStorage();
  }, 60_000);

  it(`${NUM_RUNS} runs: below 500, a 4xx is {"error"} and changes no storage`, async () => {
    const a = arbitraries(w);
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        a.target,
        a.query,
        a.body,
        a.auth,
        a.contentType,
        async ({ path: p, method }, q, body, how, ct) => {
          const auth =
            how === "route" ? (p.startsWith("/api/admin/") ? "admin" : /\/call\//.test(p) ? "none" : "user") : how;
          const headers = new Headers();
          if (auth === "user") headers.set("authorization", w.user.auth);
          if (auth === "admin") headers.set("authorization", `Bearer ${ADMIN_TOKEN}`);
          if (auth === "unknown user") headers.set("authorization", basic("nosuchuser", "0".repeat(40)));
          if (ct) headers.set("content-type", ct);
          const bodiless = method === "GET" || method === "HEAD";
          // Text goes as bytes when no type is chosen: a string body would be declared text/plain.
          const text = body.kind === "text" ? (ct ? body.text : new TextEncoder().encode(body.text)) : undefined;
          const sentBody = bodiless || body.kind === "none" ? undefined : body.kind === "text" ? text : body.bytes;
          const url = `${p}${q}`;
          const what = `${method} ${url.slice(0, 300)} (${auth}, ${ct ?? "no content-type"}, ${bodiless ? "no body" : describeBody(body)})`;
          try {
            new Request(`https://api.test${url}`, { method, headers, body: sentBody });
          } catch {
            return; // not a request a client can send (the URL does not parse)
          }
          const before = current;
          let refreshed = false;
          try {
            const answer: Answer = await answerOf(await call(url, { method, headers, body: sentBody }));
            statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
            expect(answer.status, `${what}\n  answered: ${answer.status} ${answer.text.slice(0, 300)}`).toBeLessThan(
              500,
            );
            if (answer.status >= 400) {
              expectErrorAnswer(answer, what, method === "HEAD");
              const after = await snapshotStorage();
              current = after;
              refreshed = true;
              // A refused trigger call (409, 429) is counted on its trigger, as documented.
              const refusedCall = /\/call\//.test(url) && (answer.status === 409 || answer.status === 429);
              const ignore: Ignore = refusedCall ? REJECTED_CALL_COLUMNS : {};
              // A registry hook keeps every call it is sent, refused ones included (and counts it in its rate window).
              const hookCall = /\/registryhook\/call\//.test(url);
              const kept = (line: string) =>
                hookCall &&
                (/ registry_deliveries: [+-] /.test(line) ||
                  /sqlite_sequence: [+-] \{"name":"registry_deliveries"/.test(line) ||
                  /trigger_calls: [+-] \{"trigger_uuid":"hook:/.test(line));
              expect(
                summarize(diffSnapshots(before, after, ignore).filter((line) => !kept(line))),
                `${what}\n  answered ${answer.status}: storage changed`,
              ).toEqual([]);
            }
          } finally {
            if (!refreshed) {
              // An accepted request may start work on the queue; let it finish before the next run.
              await waitQuiet();
              current = await snapshotStorage();
            }
          }
        },
      ),
      { numRuns: NUM_RUNS, ...(REPLAY ?? {}), verbose: 1 },
    );
    console.log(
      "statuses seen:",
      [...statuses]
        .sort(([x], [y]) => x - y)
        .map(([s, n]) => `${s}×${n}`)
        .join(" "),
    );
    // The pass must reach past the router: some answers are the handlers' own.
    expect([...statuses.keys()].some((s) => s === 400 || s === 403 || s === 413)).toBe(true);
  }, 120_000);
});
