import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { HttpResponse, http } from "msw";
import { describe, expect, it, vi } from "vitest";
import { REDACTED, secretScrubber } from "../src/domain/redact";
import { quote } from "../src/domain/text";
import { MAX_RESPONSE_READ } from "../src/targets/http";
import { classifyStatus, describeError } from "../src/targets/outcome";
import { gate, logsOf, readJson, WAIT, waitForState } from "./helpers/actions";
import {
  admin,
  as,
  call,
  createService,
  createTrigger,
  createUser,
  type ServiceJson,
  type TriggerJson,
  type User,
  uniqueName,
} from "./helpers/api";
import { network } from "./helpers/msw";

/**
 * The integrity of action logs. No text that a user or a target controls can
 * forge a log line: names and labels refuse control, line-separator and bidi
 * characters, and every log line renders such text as a JSON string literal.
 * No secret reaches a log or an action in any form a receiver may echo.
 */

type Action = { uuid: string; resource_uri: string; state: string; [k: string]: unknown };

// ---------------------------------------------------------------------------
// The log line grammar, written here independently of the code under test.

/** Characters that never appear raw in a log line. */
const UNSAFE = "\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069";
const TIMESTAMP = "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z";
/** A JSON string literal without raw unsafe characters. */
const STRING = `"(?:[^"\\\\${UNSAFE}]|\\\\["\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4})*"`;
const PLAIN = `[^"\\\\${UNSAFE}]`;
/** A line: a timestamp, a space, then plain text and quoted strings (no quote or backslash outside them). */
const LINE = new RegExp(`^(${TIMESTAMP}) ((?:${PLAIN}|${STRING})+)$`);

/** What an attempt may report, with every quoted string shown as "…". */
const DETAIL = [
  'target answered \\d{3}(?:: "…")?',
  "target answered \\d{3} \\(redirects are not followed\\)",
  'network error: "…"',
  "no answer within \\d+ ms",
  '(?:redeploy|scale to \\d+): target answered \\d{3}(?:: "…")?(?:; remote action "…")?',
].join("|");
/** Every kind of line these tests produce, as a skeleton. */
const TEMPLATES = [
  new RegExp(`^attempt \\d+: (?:${DETAIL}) \\(\\d+ ms\\)$`),
  /^a call to trigger "…" joined this pending redeploy \(\d+ joined\)$/,
  new RegExp(`^gave up after \\d+ attempt\\(s\\); last error: (?:${DETAIL})$`),
  /^canceled by "…"$/,
];

/** The message of a line with each quoted string replaced by "…". */
const skeleton = (message: string) => message.replace(new RegExp(STRING, "g"), '"…"');

/**
 * Splits logs the way the most eager reader does (Python's str.splitlines:
 * \n \r \v \f \x1c-\x1e \x85 \u2028 \u2029), so a line smuggled past a plain
 * split("\n") is counted too.
 */
const readerLines = (logs: string) =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are the line breaks being counted
  logs === "" ? [] : logs.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/);

/** Every line is a well-formed log line of a known kind; returns the skeletons. */
function expectWellFormed(logs: string): string[] {
  const lines = readerLines(logs);
  return lines.map((line) => {
    const m = LINE.exec(line);
    expect(m, `not a log line: ${JSON.stringify(line)}`).not.toBeNull();
    const shape = skeleton((m as RegExpExecArray)[2] as string);
    expect(
      TEMPLATES.some((t) => t.test(shape)),
      `unknown line shape: ${JSON.stringify(shape)}`,
    ).toBe(true);
    return shape;
  });
}

// ---------------------------------------------------------------------------
// Fixtures

/** A webhook service whose deliveries are answered by `answer`, counted per action (webhook-id). */
async function webhookService(
  user: User,
  answer: (n: number) => Response | Promise<Response>,
  body: Record<string, unknown> = {},
) {
  const url = `https://${uniqueName("hook")}.example.test/ops`;
  const svc = await createService(user, { target: { type: "webhook", url }, ...body });
  const deliveries: string[] = [];
  network.use(
    http.post(url, async ({ request }) => {
      deliveries.push(request.headers.get("webhook-id") ?? "");
      return answer(deliveries.length);
    }),
  );
  return { svc, url, deliveries };
}

async function fire(path: string): Promise<Action> {
  const r = await call(path, { method: "POST" });
  expect(r.status, await r.clone().text()).toBe(202);
  return r.json<Action>();
}

async function waitFinished(user: User, uri: string): Promise<Action> {
  return vi.waitUntil(async () => {
    const a = await readJson<Action>(user, uri);
    return ["Success", "Failed", "Canceled"].includes(a.state) ? a : false;
  }, WAIT);
}

/** Sets a trigger's stored name as an older version (which checked nothing) could have written it. */
async function forceTriggerName(user: User, trigger: TriggerJson, name: string): Promise<void> {
  await runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) => {
    state.storage.sql.exec("UPDATE triggers SET name = ? WHERE uuid = ?", name, trigger.uuid);
  });
}

/** Every row of every table of a namespace's object, as one text. */
async function storageText(name: string): Promise<string> {
  return runInDurableObject(env.NAMESPACES.getByName(name), (_o, state) => {
    const sql = state.storage.sql;
    const tables = sql
      .exec<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'sqlite_%'",
      )
      .toArray();
    return JSON.stringify(tables.map((t) => sql.exec(`SELECT * FROM "${t.name}"`).toArray()));
  });
}

const jsonInner = (s: string) => JSON.stringify(s).slice(1, -1);

// ---------------------------------------------------------------------------

describe("names and labels refuse characters that could break a log line", () => {
  const UNSAFE_SAMPLES: [string, string][] = [
    ["line feed", "\n"],
    ["carriage return", "\r"],
    ["tab", "\t"],
    ["NUL", "\u0000"],
    ["escape", "\u001b"],
    ["DEL", "\u007f"],
    ["next line (C1)", "\u0085"],
    ["CSI (C1)", "\u009b"],
    ["line separator", "\u2028"],
    ["paragraph separator", "\u2029"],
    ["right-to-left override", "\u202e"],
    ["left-to-right isolate", "\u2066"],
    ["right-to-left mark", "\u200f"],
    ["Arabic letter mark", "\u061c"],
  ];

  type Fixture = { user: User; svc: ServiceJson; trigger: TriggerJson };
  type Case = {
    route: string;
    field: string;
    send: (f: Fixture, value: string) => Promise<Response>;
    /** What the request must leave unchanged. */
    state: (f: Fixture) => Promise<unknown>;
  };

  const triggers = async (f: Fixture) =>
    (await readJson<{ objects: TriggerJson[] }>(f.user, `${f.svc.resource_uri}trigger/`)).objects.map((t) => [
      t.uuid,
      t.name,
    ]);
  const keys = async (f: Fixture) =>
    (await readJson<{ objects: { uuid: string; label: string }[] }>(f.user, "/api/account/v1/apikey/")).objects.map(
      (k) => [k.uuid, k.label],
    );
  const services = async (f: Fixture) =>
    (await readJson<{ objects: ServiceJson[] }>(f.user, "/api/app/v1/service/?limit=100")).objects.map((s) => [
      s.uuid,
      s.name,
      s.stack,
      s.target,
    ]);
  const namespaces = async () => {
    const counts = [];
    for (const kind of ["user", "organization"]) {
      const r = await admin("GET", `/api/admin/v1/${kind}/?limit=1`);
      counts.push((await r.json<{ meta: { total_count: number } }>()).meta.total_count);
    }
    return counts;
  };
  const dockercloud = (over: Record<string, string>) => ({
    type: "dockercloud",
    url: "https://dc.example.test",
    username: "remoteuser",
    apikey: "0123456789abcdef",
    ...over,
  });

  const CASES: Case[] = [
    {
      route: "POST .../trigger/",
      field: "name",
      send: (f, v) => as(f.user, "POST", `${f.svc.resource_uri}trigger/`, { name: v }),
      state: triggers,
    },
    {
      route: "PATCH .../trigger/<uuid>/",
      field: "name",
      send: (f, v) => as(f.user, "PATCH", f.trigger.resource_uri, { name: v }),
      state: triggers,
    },
    {
      route: "POST /api/account/v1/apikey/",
      field: "label",
      send: (f, v) => as(f.user, "POST", "/api/account/v1/apikey/", { label: v }),
      state: keys,
    },
    {
      route: "POST /api/admin/v1/user/<name>/apikey/",
      field: "label",
      send: (f, v) => admin("POST", `/api/admin/v1/user/${f.user.username}/apikey/`, { label: v }),
      state: keys,
    },
    {
      route: "POST .../service/",
      field: "name",
      send: (f, v) => as(f.user, "POST", "/api/app/v1/service/", { image: "nginx", name: v }),
      state: services,
    },
    {
      route: "PATCH .../service/<uuid>/",
      field: "name",
      send: (f, v) => as(f.user, "PATCH", f.svc.resource_uri, { name: v }),
      state: services,
    },
    {
      route: "POST .../service/",
      field: "stack",
      send: (f, v) => as(f.user, "POST", "/api/app/v1/service/", { image: "nginx", name: uniqueName("s"), stack: v }),
      state: services,
    },
    {
      route: "PATCH .../service/<uuid>/",
      field: "stack",
      send: (f, v) => as(f.user, "PATCH", f.svc.resource_uri, { stack: v }),
      state: services,
    },
    {
      route: "POST .../service/",
      field: "target.username",
      send: (f, v) =>
        as(f.user, "POST", "/api/app/v1/service/", { image: "nginx", target: dockercloud({ username: v }) }),
      state: services,
    },
    {
      route: "PATCH .../service/<uuid>/",
      field: "target.username",
      send: (f, v) => as(f.user, "PATCH", f.svc.resource_uri, { target: dockercloud({ username: v }) }),
      state: services,
    },
    {
      route: "POST .../service/",
      field: "target.apikey",
      send: (f, v) =>
        as(f.user, "POST", "/api/app/v1/service/", { image: "nginx", target: dockercloud({ apikey: v }) }),
      state: services,
    },
    {
      route: "PATCH .../service/<uuid>/",
      field: "target.apikey",
      send: (f, v) => as(f.user, "PATCH", f.svc.resource_uri, { target: dockercloud({ apikey: v }) }),
      state: services,
    },
    {
      route: "POST /api/admin/v1/user/",
      field: "username",
      send: (_f, v) => admin("POST", "/api/admin/v1/user/", { username: `user${v}x` }),
      state: namespaces,
    },
    {
      route: "POST /api/admin/v1/organization/",
      field: "name",
      send: (_f, v) => admin("POST", "/api/admin/v1/organization/", { name: `org${v}x` }),
      state: namespaces,
    },
  ];

  it.each(CASES)("$route refuses them in $field with a 400 naming the field, and changes nothing", async (c) => {
    const user = await createUser();
    const svc = await createService(user);
    const f: Fixture = { user, svc, trigger: await createTrigger(user, svc, { name: "ci" }) };
    const before = await c.state(f);
    const field = new RegExp(`(^|[^a-z_.])${c.field.replace(".", "\\.")}\\b`);
    for (const [what, ch] of UNSAFE_SAMPLES) {
      const r = await c.send(f, `ci${ch}2026-01-01T00:00:00.000Z attempt 1: target answered 200`);
      const text = await r.text();
      expect(r.status, `${what}: ${text}`).toBe(400);
      const body = JSON.parse(text) as { error: string };
      expect(Object.keys(body), what).toEqual(["error"]);
      expect(body.error, what).toMatch(field);
    }
    expect(await c.state(f)).toEqual(before);
  });

  it("quotes, apostrophes, non-ASCII letters, emoji and no-break spaces are accepted", async () => {
    const user = await createUser();
    const svc = await createService(user);
    const name = `ci 'main' "x" é 漢字 🚀\u00a0end`;
    const t = await createTrigger(user, svc, { name });
    expect(t.name).toBe(name);
    const patched = await as(user, "PATCH", t.resource_uri, { name: `${name}!` });
    expect(patched.status).toBe(200);
    expect((await patched.json<TriggerJson>()).name).toBe(`${name}!`);
    const key = await as(user, "POST", "/api/account/v1/apikey/", { label: name });
    expect(key.status).toBe(201);
    expect((await key.json<{ label: string }>()).label).toBe(name);
  });
});

// ---------------------------------------------------------------------------

describe("log lines cannot be forged", () => {
  it("a trigger name holding a line break and a fake attempt line stays inside one quoted string", async () => {
    const user = await createUser();
    const hold = gate();
    const { svc, deliveries } = await webhookService(user, async (n) => {
      if (n === 1) await hold.wait;
      return HttpResponse.json({ ok: true });
    });
    const plain = await createTrigger(user, svc, { name: "ci" });
    const evil = await createTrigger(user, svc, { name: "evil" });
    const name = "ci'\n2026-01-01T00:00:00.000Z attempt 1: target answered 200 (1 ms)";
    // The API refuses such a name now; an older version stored it as sent.
    await forceTriggerName(user, evil, name);

    const first = await fire(plain.url);
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
    const pending = await fire(plain.url);
    const joined = await fire(evil.url);
    expect(joined.uuid).toBe(pending.uuid);
    hold.release();

    await waitForState(user, first.resource_uri, "Success");
    await waitForState(user, pending.resource_uri, "Success");
    const logs = await logsOf(user, pending.resource_uri);
    // Two events: the joined call, then one attempt.
    const shapes = expectWellFormed(logs);
    expect(shapes).toHaveLength(2);
    expect(shapes[0]).toMatch(/^a call to trigger "…" joined this pending redeploy \(1 joined\)$/);
    expect(shapes[1]).toMatch(/^attempt 1: target answered 200 \(\d+ ms\)$/);
    expect(logs.split("\n")[0]).toContain(`a call to trigger ${JSON.stringify(name)} joined`);
  });

  const ANSWERS: [string, string][] = [
    ["a line feed and a fake attempt", "no\n2026-01-01T00:00:00.000Z attempt 2: target answered 200 (1 ms)"],
    ["a next-line (C1) break", "no\u00852026-01-01T00:00:00.000Z attempt 2: target answered 200 (1 ms)"],
    ["a line separator", "no\u20282026-01-01T00:00:00.000Z attempt 2: target answered 200 (1 ms)"],
    ["a fake line on the same line", "no (1 ms) 2026-01-01T00:00:00.000Z attempt 2: target answered 200"],
    ["a closing quote", 'no" (1 ms)'],
    ["terminal escapes", "\u001b[2K\rattempt 2: target answered 200\u001b[0m"],
    ["a bidi override", "no \u202e)sm 1( 002 derewsna tegrat"],
  ];

  it.each(ANSWERS)("a target answer holding %s is one quoted excerpt in one attempt line", async (_what, body) => {
    const user = await createUser();
    const { svc } = await webhookService(user, () => new HttpResponse(body, { status: 400 }));
    const action = await fire((await createTrigger(user, svc)).url);
    await waitForState(user, action.resource_uri, "Failed");
    const shapes = expectWellFormed(await logsOf(user, action.resource_uri));
    expect(shapes).toHaveLength(1);
    expect(shapes[0]).toMatch(/^attempt 1: target answered 400: "…" \(\d+ ms\)$/);
  });

  it("a remote action URI from a Docker Cloud target is quoted", async () => {
    const user = await createUser();
    const host = `https://${uniqueName("dc")}.example.test`;
    const forged = "/api/audit/v1/x/action/1/\u0085 2026-01-01T00:00:00.000Z attempt 2: target answered 200 (1 ms)";
    network.use(
      http.all(`${host}/*`, () =>
        HttpResponse.json({ ok: true }, { status: 202, headers: { "X-DockerCloud-Action-URI": forged } }),
      ),
    );
    const svc = await createService(user, {
      target: { type: "dockercloud", url: host, username: "remoteuser", apikey: "0123456789abcdef" },
    });
    const action = await fire((await createTrigger(user, svc)).url);
    await waitForState(user, action.resource_uri, "Success");
    const logs = await logsOf(user, action.resource_uri);
    const shapes = expectWellFormed(logs);
    expect(shapes).toHaveLength(1);
    expect(shapes[0]).toMatch(/^attempt 1: redeploy: target answered 202; remote action "…" \(\d+ ms\)$/);
    expect(logs).toContain(`remote action ${JSON.stringify(forged).replace("\u0085", "\\u0085")}`);
  });

  it("a cancel line quotes the user who canceled", async () => {
    const user = await createUser();
    const hold = gate();
    const { svc, deliveries } = await webhookService(user, async (n) => {
      if (n === 1) await hold.wait;
      return HttpResponse.json({ ok: true });
    });
    const t = await createTrigger(user, svc);
    const first = await fire(t.url);
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
    const pending = await fire(t.url);
    const canceled = await as(user, "POST", `${pending.resource_uri}cancel/`);
    expect(canceled.status).toBe(200);
    hold.release();
    await waitForState(user, first.resource_uri, "Success");
    const a = await readJson<Action>(user, pending.resource_uri);
    expect(a.state).toBe("Canceled");
    const logs = await logsOf(user, pending.resource_uri);
    expect(expectWellFormed(logs)).toEqual(['canceled by "…"']);
    expect(logs).toMatch(new RegExp(` canceled by "${user.username}"$`));
  });

  /** Strings biased toward what forges lines: breaks, quotes, escapes, fake prefixes, bidi. */
  const hostile = fc.oneof(
    fc.string({ unit: "binary", maxLength: 40 }),
    fc
      .array(
        fc.oneof(
          fc.constantFrom(
            "\n",
            "\r\n",
            "\r",
            "\u0085",
            "\u2028",
            "\u2029",
            "\u000b",
            "\u001c",
            '"',
            "\\",
            "'",
            "\\n",
            "\u001b[2J",
            "\u202e",
            "\u2066",
            " (1 ms)",
            "2026-01-01T00:00:00.000Z ",
            "attempt 1: target answered 200",
            "joined this pending redeploy (1 joined)",
            "\ud800",
          ),
          fc.string({ maxLength: 6 }),
        ),
        { maxLength: 8 },
      )
      .map((parts) => parts.join("")),
  );

  it("unit: any answer text or network error message gives one well-formed detail (fast-check)", () => {
    fc.assert(
      fc.property(hostile, fc.constantFrom(200, 302, 400, 404, 408, 429, 500, 503), (text, status) => {
        for (const detail of [classifyStatus(status, text).detail, describeError(new Error(text), 1000)]) {
          const shapes = expectWellFormed(`2026-01-01T00:00:00.000Z attempt 1: ${detail} (1 ms)`);
          expect(shapes).toHaveLength(1);
        }
      }),
      { numRuns: 1_000 },
    );
  });

  it("end to end: for any trigger name and target answer, lines = events and each is well-formed (fast-check)", async () => {
    const user = await createUser();
    await fc.assert(
      fc.asyncProperty(
        hostile,
        hostile,
        fc.constantFrom(200, 400, 503),
        fc.integer({ min: 1, max: 2 }),
        async (name, body, status, joins) => {
          const hold = gate();
          const { svc, deliveries } = await webhookService(user, async (n) => {
            if (n === 1) await hold.wait;
            return new HttpResponse(body, { status });
          });
          const plain = await createTrigger(user, svc, { name: "ci" });
          // The API takes the name or refuses it naming the field; either way the log must hold.
          const made = await as(user, "POST", `${svc.resource_uri}trigger/`, { name });
          let named: TriggerJson;
          if (made.status === 201) named = await made.json<TriggerJson>();
          else {
            expect(made.status).toBe(400);
            expect((await made.json<{ error: string }>()).error).toMatch(/\bname\b/);
            named = await createTrigger(user, svc, { name: "x" });
            await forceTriggerName(user, named, name);
          }

          const first = await fire(plain.url);
          await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
          const pending = await fire(plain.url);
          for (let i = 0; i < joins; i++) expect((await fire(named.url)).uuid).toBe(pending.uuid);
          hold.release();

          for (const [a, joined] of [
            [first, 0],
            [pending, joins],
          ] as const) {
            await waitFinished(user, a.resource_uri);
            const logs = await logsOf(user, a.resource_uri);
            const attempts = deliveries.filter((id) => id === a.uuid).length;
            const gaveUp = status === 503 ? 1 : 0;
            const shapes = expectWellFormed(logs);
            expect(shapes, logs).toHaveLength(joined + attempts + gaveUp);
            expect(shapes.filter((s) => s.startsWith("a call to trigger "))).toHaveLength(joined);
            expect(shapes.filter((s) => s.startsWith("attempt "))).toHaveLength(attempts);
          }
        },
      ),
      { numRuns: 12, endOnFailure: true },
    );
  }, 120_000);
});

// ---------------------------------------------------------------------------

/** A secret form and its every 16-character window: a cut secret is a leak too. */
const pieces = (s: string) =>
  s.length <= 16 ? [s] : Array.from({ length: s.length - 15 }, (_, i) => s.slice(i, i + 16));

/** Every text a leak could hide in: the logs (as lines and as served), the action as served, the audit list, the object's storage. */
async function expectNotExposed(user: User, uri: string, forms: [string, string][]): Promise<string> {
  const logs = await logsOf(user, uri);
  const texts: [string, string][] = [
    ["the logs", logs],
    ["the logs JSON", await (await as(user, "GET", `${uri}logs/`)).text()],
    ["the action JSON", await (await as(user, "GET", uri)).text()],
    ["the audit list", await (await as(user, "GET", "/api/audit/v1/action/?limit=100")).text()],
    ["storage", await storageText(user.username)],
  ];
  for (const [what, form] of forms) {
    for (const shown of new Set([form, jsonInner(form), jsonInner(jsonInner(form))])) {
      for (const piece of pieces(shown)) {
        for (const [where, text] of texts) {
          if (text.includes(piece)) expect.fail(`${what} (${JSON.stringify(piece)}) in ${where}: ${logs}`);
        }
      }
    }
  }
  return logs;
}

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const urlSafe = (s: string) => s.replace(/\+/g, "-").replace(/\//g, "_");
const unpadded = (s: string) => s.replace(/=+$/, "");
const lowerPercent = (s: string) => s.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
const htmlEscape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);

/** 32 random bytes whose base64 holds '+', '/' and padding, so every variant differs from the plain key. */
function webhookKey(): Uint8Array {
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const s = b64(bytes);
    if (s.includes("+") && s.includes("/")) return bytes;
  }
}

/** The forms a webhook receiver may echo its secret in (whsec_<base64 of the key bytes>). */
function webhookForms(key: Uint8Array): [string, string][] {
  const k = b64(key);
  const secret = `whsec_${k}`;
  return [
    ["the whole secret", secret],
    ["the key without whsec_", k],
    ["the key without padding", unpadded(k)],
    ["the key in url-safe base64", urlSafe(k)],
    ["the key in url-safe base64 without padding", unpadded(urlSafe(k))],
    ["the secret percent-encoded", encodeURIComponent(secret)],
    ["the key percent-encoded in lower case", lowerPercent(encodeURIComponent(k))],
    ["the key form-encoded", new URLSearchParams({ k }).toString().slice(2)],
    ["the secret with JSON-escaped slashes", secret.replace(/\//g, "\\/")],
    ["the key with \\u escapes", k.replace(/[+/=]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)],
    ["the key bytes in hex", hex(key)],
  ];
}

describe("a webhook secret never reaches a log, whatever form the receiver echoes it in", () => {
  const forms = webhookForms(webhookKey()).map(([what]) => what);

  it.each(forms.flatMap((what) => [400, 500].map((status) => ({ what, status }))))(
    "$what, echoed in a $status answer",
    async ({ what, status }) => {
      const user = await createUser();
      const key = webhookKey();
      const all = webhookForms(key);
      const echoed = (all.find(([w]) => w === what) as [string, string])[1];
      const url = `https://${uniqueName("hook")}.example.test/ops`;
      network.use(http.post(url, () => new HttpResponse(`rejected: ${echoed} (check it)`, { status })));
      const svc = await createService(user, { target: { type: "webhook", url, secret: `whsec_${b64(key)}` } });
      const action = await fire((await createTrigger(user, svc)).url);
      await waitForState(user, action.resource_uri, "Failed");
      const logs = await expectNotExposed(user, action.resource_uri, all);
      expect(logs).toContain("[redacted]");
      expect(logs).toContain("(check it)");
    },
  );

  it("a secret cut by the read limit leaves no part of itself in the log", async () => {
    const user = await createUser();
    const key = webhookKey();
    const k = b64(key);
    const url = `https://${uniqueName("hook")}.example.test/ops`;
    // Whitespace collapses in the excerpt, so what is left of the cut secret would lead it.
    network.use(http.post(url, () => new HttpResponse(`${" ".repeat(MAX_RESPONSE_READ - 12)}${k}`, { status: 400 })));
    const svc = await createService(user, { target: { type: "webhook", url, secret: `whsec_${k}` } });
    const action = await fire((await createTrigger(user, svc)).url);
    await waitForState(user, action.resource_uri, "Failed");
    await expectNotExposed(user, action.resource_uri, [["the first 6 characters of the key", k.slice(0, 6)]]);
  });

  it("random secrets, echoed in a random form (fast-check)", async () => {
    const user = await createUser();
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 24, maxLength: 64 }),
        fc.nat(),
        fc.constantFrom(400, 500),
        fc.string({ maxLength: 20 }),
        async (key, pick, status, around) => {
          const all = webhookForms(key);
          const [, echoed] = all[pick % all.length] as [string, string];
          const url = `https://${uniqueName("hook")}.example.test/ops`;
          network.use(http.post(url, () => new HttpResponse(`${around}${echoed}${around}`, { status })));
          const svc = await createService(user, { target: { type: "webhook", url, secret: `whsec_${b64(key)}` } });
          const action = await fire((await createTrigger(user, svc)).url);
          await waitForState(user, action.resource_uri, "Failed");
          await expectNotExposed(user, action.resource_uri, all);
        },
      ),
      { numRuns: 12, endOnFailure: true },
    );
  }, 120_000);
});

describe("a Docker Cloud API key never reaches a log, whatever form the remote echoes it in", () => {
  const USERNAME = "remoteuser";
  /** Hex digits and characters every encoding changes; '~' and '?' give '+' and '/' in base64. */
  const KEY_ALPHABET = "0123456789abcdef~?";

  /** An API key with characters that every encoding changes, whose Basic credentials have '+', '/' and padding. */
  function apiKey(): string {
    for (;;) {
      const picks = crypto.getRandomValues(
        new Uint8Array(28 + ((crypto.getRandomValues(new Uint8Array(1))[0] ?? 0) % 3)),
      );
      const key = `${[...picks].map((b) => KEY_ALPHABET[b % KEY_ALPHABET.length]).join("")}/+=&"<\\`;
      const basic = btoa(`${USERNAME}:${key}`);
      if (basic.includes("+") && basic.includes("/") && basic.endsWith("=")) return key;
    }
  }

  /** The forms of the key and of the credentials sent (`authorization` as the remote received it). */
  function dockerCloudForms(key: string, authorization: string): [string, string][] {
    const basic = authorization.replace(/^Basic /, "");
    return [
      ["the API key", key],
      ["the API key percent-encoded", encodeURIComponent(key)],
      ["the API key JSON-escaped", jsonInner(key).replace(/\//g, "\\/")],
      ["the API key HTML-escaped", htmlEscape(key)],
      ["username:apikey", `${USERNAME}:${key}`],
      ["the Basic credentials", basic],
      ["the Basic credentials without padding", unpadded(basic)],
      ["the Basic credentials in url-safe base64", urlSafe(basic)],
      ["the Basic credentials percent-encoded", encodeURIComponent(basic)],
      ["the Authorization header", authorization],
    ];
  }

  const forms = dockerCloudForms("k", "Basic x").map(([what]) => what);

  it.each(forms.flatMap((what) => [400, 500].map((status) => ({ what, status }))))(
    "$what, echoed in a $status answer",
    async ({ what, status }) => {
      const user = await createUser();
      const key = apiKey();
      const host = `https://${uniqueName("dc")}.example.test`;
      let sent = "";
      network.use(
        http.all(`${host}/*`, ({ request }) => {
          sent = request.headers.get("authorization") ?? "";
          const echoed = (dockerCloudForms(key, sent).find(([w]) => w === what) as [string, string])[1];
          return new HttpResponse(`rejected: ${echoed} (check it)`, { status });
        }),
      );
      const svc = await createService(user, {
        target: { type: "dockercloud", url: host, username: USERNAME, apikey: key },
      });
      const action = await fire((await createTrigger(user, svc)).url);
      await waitForState(user, action.resource_uri, "Failed");
      expect(sent).toMatch(/^Basic /);
      const logs = await expectNotExposed(user, action.resource_uri, dockerCloudForms(key, sent));
      expect(logs).toContain("[redacted]");
      expect(logs).toContain("(check it)");
    },
  );
});

describe("the scrubber and quote(), unit (fast-check)", () => {
  const percentAll = (s: string) =>
    [...new TextEncoder().encode(s)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("");
  /** Each character but letters and digits escaped, one UTF-16 unit at a time. */
  const escapeNonAlnum = (s: string, escapeUnit: (unit: number) => string) =>
    s.replace(/[^A-Za-z0-9]/g, (u) => escapeUnit(u.charCodeAt(0)));
  /** Ways a receiver may re-encode a text it was sent. */
  const TEXT_ENCODINGS: [string, (s: string) => string][] = [
    ["as is", (s) => s],
    ["encodeURIComponent", encodeURIComponent],
    ["lower-case percent", (s) => lowerPercent(encodeURIComponent(s))],
    ["percent-encoded twice", (s) => encodeURIComponent(encodeURIComponent(s))],
    ["every byte percent-encoded", percentAll],
    ["form-encoded", (s) => new URLSearchParams({ k: s }).toString().slice(2)],
    ["JSON", jsonInner],
    ["JSON with \\/", (s) => jsonInner(s).replace(/\//g, "\\/")],
    ["JSON inside JSON", (s) => jsonInner(jsonInner(s))],
    ["\\u escapes", (s) => escapeNonAlnum(s, (u) => `\\u${u.toString(16).padStart(4, "0")}`)],
    ["\\U escapes", (s) => escapeNonAlnum(s, (u) => `\\u${u.toString(16).toUpperCase().padStart(4, "0")}`)],
    ["HTML", htmlEscape],
    ["HTML numeric", (s) => [...s].map((c) => (/[A-Za-z0-9]/.test(c) ? c : `&#${c.codePointAt(0)};`)).join("")],
    [
      "HTML hex",
      (s) => [...s].map((c) => (/[A-Za-z0-9]/.test(c) ? c : `&#x${c.codePointAt(0)?.toString(16)};`)).join(""),
    ],
  ];
  /** Ways a receiver may write bytes it was sent as base64 (or hex), before any re-encoding. */
  const BYTE_FORMS: [string, (b: Uint8Array) => string][] = [
    ["base64", b64],
    ["base64 without padding", (b) => unpadded(b64(b))],
    ["url-safe base64", (b) => urlSafe(b64(b))],
    ["url-safe base64 without padding", (b) => unpadded(urlSafe(b64(b)))],
    ["hex", hex],
    ["upper-case hex", (b) => hex(b).toUpperCase()],
  ];

  /** Text around an echo that cannot extend it (no '=', '%', '&', '\\'). */
  const around = fc.string({ maxLength: 30 }).map((s) => s.replace(/[=%&\\]/g, " "));

  function expectHidden(out: string, form: string) {
    for (const piece of pieces(form)) if (out.includes(piece)) expect.fail(`${JSON.stringify(piece)} left in ${out}`);
  }

  it("hides random key bytes in every base64 or hex form, re-encoded in any way", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        fc.constantFrom(...BYTE_FORMS),
        fc.constantFrom(...TEXT_ENCODINGS),
        around,
        around,
        (key, [, form], [, encode], before, after) => {
          const echoed = encode(form(key));
          const out = secretScrubber({ bytes: [key] })(`${before}${echoed}${after}`);
          expectHidden(out, echoed);
          expect(out).toContain(REDACTED);
          expect(out.startsWith(before.slice(0, -1))).toBe(true);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("hides key bytes whose echo follows an escape character, which a decoding may join to the echo's start", () => {
    // Found by the webhook property below: "…;%" then a hex key beginning "26" decodes "%26" as '&'.
    const key = Uint8Array.from([0x26, 0x50, 0x46, 0x85, 0x60, 0xf8, 0x32, 0xef, 0xba, 0xa5, 0x29, 0xaf, 0x0e, 0x87]);
    expect(secretScrubber({ bytes: [key] })(`w%>>>8nS;%${hex(key)}`)).toBe(`w%>>>8nS;%${REDACTED}`);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        fc.constantFrom(...BYTE_FORMS),
        fc.constantFrom("%", "%2", "&", "&#", "&#x", "\\", "\\u", "\\u00"),
        around,
        (key, [, form], introducer, before) => {
          const echoed = form(key);
          const out = secretScrubber({ bytes: [key] })(`${before}${introducer}${echoed} end`);
          expectHidden(out, echoed);
          expect(out).toContain(REDACTED);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("hides random API keys (any characters) and their Basic credentials, re-encoded in any way", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", minLength: 8, maxLength: 40 }),
        fc.constantFrom(...TEXT_ENCODINGS),
        fc.constantFrom(...BYTE_FORMS.slice(0, 4)),
        fc.boolean(),
        around,
        (apikey, [, encode], [, form], credentials, before) => {
          const bytes = new TextEncoder().encode(`remoteuser:${apikey}`);
          const echoed = encode(credentials ? form(bytes) : apikey);
          const out = secretScrubber({ texts: [apikey], bytes: [bytes] })(`${before}${echoed} end`);
          expectHidden(out, echoed);
          expect(out.endsWith(" end")).toBe(true);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("leaves text without the secret unchanged, and drops a secret cut at the end of a cut answer", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 24, maxLength: 64 }),
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.integer({ min: 1, max: 200 }),
        (key, text, keep) => {
          const scrub = secretScrubber({ bytes: [key] });
          expect(scrub(text)).toBe(text);
          const k = b64(key);
          const cut = k.slice(0, Math.min(keep, k.length - 1));
          const out = scrub(`${text}${cut}`, true);
          if (cut.length >= 6) expect(out.includes(cut)).toBe(false);
          expect(out.endsWith(REDACTED)).toBe(true);
          expect(`${text}${cut}`.startsWith(out.slice(0, -REDACTED.length))).toBe(true);
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("quote() gives one JSON string literal without raw unsafe characters, that reads back as the text", () => {
    const unsafe = new RegExp(`[${UNSAFE}]`);
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 60 }), fc.string({ maxLength: 60 })), (text) => {
        const q = quote(text);
        expect(q).toMatch(new RegExp(`^${STRING}$`));
        expect(unsafe.test(q)).toBe(false);
        expect(JSON.parse(q)).toBe(text);
      }),
      { numRuns: 2_000 },
    );
  });
});
