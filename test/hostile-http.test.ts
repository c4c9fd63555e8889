/**
 * Requests a hostile party can make someone else send, or read the answers of:
 *   - a browser made to act by a page on another site (cross-site requests riding credentials the
 *     browser holds; form, text/plain and type-less bodies a page sends without a CORS preflight);
 *   - mistyped trigger URLs, whose error answers end up in CI logs and chat rooms: they must not
 *     repeat the trigger uuid, the URL's only secret, in any case or encoding;
 *   - JSON text that is not text: lone UTF-16 surrogates (`"\ud800"`), refused like malformed UTF-8.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  as,
  asGo,
  asPython,
  call,
  createService,
  createTrigger,
  createUser,
  type ServiceJson,
  type TriggerJson,
  type User,
  uniqueName,
} from "./helpers/api";

type Envelope<T> = { meta: { total_count: number }; objects: T[] };

/** The origin the tests' requests are addressed to (see helpers/api.ts). */
const SELF = "https://api.test";
const EVIL = "https://evil.example";

/** An error answer: the status, JSON, and exactly `{"error": "<non-empty string>"}`. */
async function expectError(res: Response, status: number, message?: RegExp): Promise<string> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(typeof body.error).toBe("string");
  expect((body.error as string).length).toBeGreaterThan(0);
  if (message) expect(body.error).toMatch(message);
  return body.error as string;
}

/** A request with the user's credentials, as a browser holding them would attach them. */
function withCreds(
  user: User,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: BodyInit,
): Promise<Response> {
  return call(path, { method, headers: { authorization: user.auth, ...headers }, body });
}

let owner: User;
let svc: ServiceJson;

async function serviceState(s: ServiceJson): Promise<string> {
  const r = await as(owner, "GET", s.resource_uri);
  expect(r.status).toBe(200);
  return (await r.json<{ state: string }>()).state;
}

async function triggerCount(s: ServiceJson): Promise<number> {
  const r = await as(owner, "GET", `${s.resource_uri}trigger/`);
  expect(r.status).toBe(200);
  return (await r.json<Envelope<unknown>>()).meta.total_count;
}

async function actionCount(): Promise<number> {
  const r = await as(owner, "GET", "/api/audit/v1/action/");
  expect(r.status).toBe(200);
  return (await r.json<Envelope<unknown>>()).meta.total_count;
}

async function keyCount(): Promise<number> {
  const r = await as(owner, "GET", "/api/account/v1/apikey/");
  expect(r.status).toBe(200);
  return (await r.json<Envelope<unknown>>()).meta.total_count;
}

async function triggerName(t: TriggerJson): Promise<string> {
  const r = await as(owner, "GET", t.resource_uri);
  expect(r.status).toBe(200);
  return (await r.json<TriggerJson>()).name;
}

beforeAll(async () => {
  owner = await createUser();
  svc = await createService(owner);
});

// ---------------------------------------------------------------------------
// 1. Browsers made to act
// ---------------------------------------------------------------------------

/** What a page on another site makes a browser send: Origin and, in current browsers, Sec-Fetch-Site. */
const CROSS_SITE_MARKS: [string, Record<string, string>][] = [
  ["Origin of another site", { origin: EVIL }],
  ["Origin of another site and Sec-Fetch-Site: cross-site", { origin: EVIL, "sec-fetch-site": "cross-site" }],
  ["Sec-Fetch-Site: cross-site alone", { "sec-fetch-site": "cross-site" }],
  ["Sec-Fetch-Site: same-site (a sibling subdomain)", { "sec-fetch-site": "same-site" }],
  ["Origin: null (a sandboxed frame, a data: page)", { origin: "null" }],
  ["the same host over http", { origin: "http://api.test" }],
  ["the same host on another port", { origin: "https://api.test:8443" }],
];

/** The bodies a page can send without a CORS preflight, and a JSON one (which would need one). */
const BODIES: [string, Record<string, string>, string][] = [
  ["a form", { "content-type": "application/x-www-form-urlencoded" }, "x=1"],
  ["text/plain JSON", { "content-type": "text/plain;charset=UTF-8" }, "{}"],
  ["multipart", { "content-type": "multipart/form-data; boundary=b" }, "--b--\r\n"],
  ["no Content-Type", {}, ""],
  ["application/json", { "content-type": "application/json" }, "{}"],
];

describe("cross-site requests are refused (403) on every state-changing management route", () => {
  it.each(CROSS_SITE_MARKS)(
    "terminating a service, marked by %s: 403, the service keeps running",
    async (_w, marks) => {
      const s = await createService(owner);
      for (const [what, type, body] of BODIES) {
        const r = await withCreds(owner, "DELETE", s.resource_uri, { ...marks, ...type }, body || undefined);
        await expectError(r, 403, /cross-site|another site/i);
        expect(await serviceState(s), what).not.toMatch(/Terminat/);
      }
    },
  );

  it.each(CROSS_SITE_MARKS)(
    "revoking a trigger, marked by %s: 403, the trigger still answers calls",
    async (_w, marks) => {
      const t = await createTrigger(owner, svc);
      for (const [, type, body] of BODIES) {
        const r = await withCreds(owner, "DELETE", t.resource_uri, { ...marks, ...type }, body || undefined);
        await expectError(r, 403, /cross-site|another site/i);
      }
      expect((await as(owner, "GET", t.resource_uri)).status).toBe(200);
      expect((await call(t.url, { method: "POST" })).status).toBe(202);
    },
  );

  it("a cross-site form POST to redeploy/, scale/, trigger create, PATCH and API key create: 403, nothing changes", async () => {
    const t = await createTrigger(owner, svc, { name: "before" });
    const actions = await actionCount();
    const triggers = await triggerCount(svc);
    const keys = await keyCount();
    const posts: [string, string, string][] = [
      ["POST", `${svc.resource_uri}redeploy/`, ""],
      ["POST", `${svc.resource_uri}scale/`, ""],
      ["POST", `${svc.resource_uri}trigger/`, "name=evil&operation=SCALEUP"],
      ["POST", "/api/app/v1/service/", "image=evil%2Fminer"],
      ["POST", "/api/account/v1/apikey/", "label=evil"],
      ["PATCH", t.resource_uri, "name=evil"],
    ];
    for (const [method, path, body] of posts) {
      for (const [, marks] of CROSS_SITE_MARKS) {
        const r = await withCreds(
          owner,
          method,
          path,
          { ...marks, "content-type": "application/x-www-form-urlencoded" },
          body,
        );
        await expectError(r, 403, /cross-site|another site/i);
      }
    }
    expect(await actionCount()).toBe(actions);
    expect(await triggerCount(svc)).toBe(triggers);
    expect(await keyCount()).toBe(keys);
    expect(await triggerName(t)).toBe("before");
  });

  it("the refusal comes before authentication: no credentials, or wrong ones, are not even looked at", async () => {
    const r = await call(`${svc.resource_uri}redeploy/`, { method: "POST", headers: { origin: EVIL } });
    await expectError(r, 403, /cross-site|another site/i);
    expect(r.headers.get("www-authenticate")).toBeNull();
  });

  it("the admin API refuses cross-site requests too", async () => {
    const r = await call("/api/admin/v1/user/", {
      method: "POST",
      headers: { origin: EVIL, authorization: "Bearer whatever", "content-type": "text/plain" },
      body: '{"username":"evilusr1"}',
    });
    await expectError(r, 403);
  });

  it("reads stay open: a cross-site GET is not refused (it changes nothing, and its answer is not readable by the page)", async () => {
    const r = await withCreds(owner, "GET", svc.resource_uri, { origin: EVIL, "sec-fetch-site": "cross-site" });
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("a CORS preflight is never granted, so a page cannot send JSON, PATCH or DELETE in the first place", async () => {
    for (const method of ["DELETE", "PATCH", "POST"]) {
      const r = await call(svc.resource_uri, {
        method: "OPTIONS",
        headers: {
          origin: EVIL,
          "access-control-request-method": method,
          "access-control-request-headers": "authorization, content-type",
        },
      });
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
      expect(r.headers.get("access-control-allow-methods")).toBeNull();
    }
  });
});

describe("requests that are not cross-site are served as before", () => {
  it("same-origin: Origin of the API itself, or Sec-Fetch-Site: same-origin", async () => {
    const t = await createTrigger(owner, svc);
    const marks: Record<string, string>[] = [
      { origin: SELF },
      { "sec-fetch-site": "same-origin" },
      { origin: SELF, "sec-fetch-site": "same-origin" },
    ];
    for (const [i, m] of marks.entries()) {
      const r = await withCreds(
        owner,
        "PATCH",
        t.resource_uri,
        { ...m, "content-type": "application/json" },
        `{"name":"same${i}"}`,
      );
      expect(r.status, JSON.stringify(m)).toBe(200);
      expect(await triggerName(t)).toBe(`same${i}`);
    }
    const del = await withCreds(owner, "DELETE", t.resource_uri, { origin: SELF, "content-type": "application/json" });
    expect(del.status).toBe(200);
  });

  it("no Origin and no Sec-Fetch-Site (the SDKs, the CLI, curl): served, with or without Content-Type", async () => {
    // Python: Content-Type JSON everywhere, Content-Length 0 on body-less requests.
    const py = await asPython(owner, "POST", `${svc.resource_uri}trigger/`);
    expect(py.status).toBe(201);
    const pyTrigger = await py.json<TriggerJson>();
    expect((await asPython(owner, "DELETE", pyTrigger.resource_uri)).status).toBe(200);
    // Go: no Content-Type at all, a {} body.
    const go = await asGo(owner, "POST", `${svc.resource_uri}trigger/`, { name: "go", operation: "" });
    expect(go.status).toBe(201);
    const goTrigger = await go.json<TriggerJson>();
    expect((await asGo(owner, "PATCH", goTrigger.resource_uri, { name: "go2" })).status).toBe(200);
    expect((await asGo(owner, "DELETE", goTrigger.resource_uri)).status).toBe(200);
    // curl -X POST with nothing: no Content-Type, no body.
    const redeploy = await call(`${svc.resource_uri}redeploy/`, {
      method: "POST",
      headers: { authorization: owner.auth },
    });
    expect(redeploy.status).toBe(202);
  });

  it("a trigger call may come from a page on any site: it carries no ambient credentials, the URL is the secret", async () => {
    const t = await createTrigger(owner, svc);
    for (const [what, marks] of CROSS_SITE_MARKS) {
      const r = await call(t.url, {
        method: "POST",
        headers: { ...marks, "content-type": "text/plain" },
        body: "built main@abc123",
      });
      expect(r.status, what).toBe(202);
      // The page cannot read the answer: no CORS header grants it.
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
    }
    const form = await call(`${t.url.replace(/\/$/, "")}`, {
      method: "POST",
      headers: { origin: EVIL, "content-type": "application/x-www-form-urlencoded" },
      body: "ref=main",
    });
    expect(form.status).toBe(202);
  });
});

describe("management routes take JSON: a form type a page can post is 415, naming application/json", () => {
  const FORM_TYPES = [
    "text/plain",
    "text/plain;charset=UTF-8",
    "TEXT/PLAIN; charset=utf-8",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "multipart/form-data; boundary=----x",
  ];

  it.each(FORM_TYPES)(
    "%s on service create, trigger create, PATCH, redeploy/ and revoke: 415, nothing changes",
    async (type) => {
      const t = await createTrigger(owner, svc, { name: "kept" });
      const services = (await (await as(owner, "GET", "/api/app/v1/service/")).json<Envelope<unknown>>()).meta
        .total_count;
      const triggers = await triggerCount(svc);
      const actions = await actionCount();
      const requests: [string, string, string][] = [
        ["POST", "/api/app/v1/service/", '{"image":"tutum/hello-world"}'],
        ["POST", `${svc.resource_uri}trigger/`, '{"name":"x"}'],
        ["PATCH", t.resource_uri, '{"name":"changed"}'],
        ["PATCH", svc.resource_uri, '{"target_num_containers":3}'],
        ["POST", `${svc.resource_uri}redeploy/`, ""],
        ["DELETE", t.resource_uri, ""],
      ];
      for (const [method, path, body] of requests) {
        const r = await withCreds(owner, method, path, { "content-type": type }, body || undefined);
        const message = await expectError(r, 415, /application\/json/);
        expect(message, `${method} ${path}`).toMatch(/Content-Type/i);
      }
      expect((await (await as(owner, "GET", "/api/app/v1/service/")).json<Envelope<unknown>>()).meta.total_count).toBe(
        services,
      );
      expect(await triggerCount(svc)).toBe(triggers);
      expect(await actionCount()).toBe(actions);
      expect(await triggerName(t)).toBe("kept");
    },
  );

  it("application/json, with or without a charset, and no Content-Type at all are accepted", async () => {
    const types: (string | undefined)[] = [
      "application/json",
      "application/json; charset=utf-8",
      "application/json;charset=UTF-8",
      undefined,
    ];
    for (const type of types) {
      const r = await withCreds(
        owner,
        "POST",
        `${svc.resource_uri}trigger/`,
        type ? { "content-type": type } : {},
        new TextEncoder().encode('{"name":"typed"}'),
      );
      expect(r.status, String(type)).toBe(201);
    }
  });

  it("GET with a form type is still served (it has no body to misread)", async () => {
    const r = await withCreds(owner, "GET", svc.resource_uri, { "content-type": "text/plain" });
    expect(r.status).toBe(200);
  });
});

describe("401 carries no Basic challenge (a browser would prompt, then attach the credentials to every request)", () => {
  it("missing, malformed and wrong credentials: 401 JSON, and no WWW-Authenticate a browser acts on", async () => {
    const cases: Record<string, string>[] = [
      {},
      { authorization: "Basic !!!" },
      { authorization: `Basic ${btoa(`${owner.username}:nope`)}` },
    ];
    for (const headers of cases) {
      for (const [method, path] of [
        ["GET", "/api/app/v1/service/"],
        ["DELETE", svc.resource_uri],
        ["POST", `${svc.resource_uri}trigger/`],
      ] as const) {
        const r = await call(path, { method, headers: { ...headers, "content-type": "application/json" } });
        await expectError(r, 401, /Authorization|API key/);
        const challenge = r.headers.get("www-authenticate") ?? "";
        expect(challenge, `${method} ${path}`).not.toMatch(/\b(basic|digest|negotiate|ntlm)\b/i);
      }
    }
  });
});

// ---------------------------------------------------------------------------
// 2. Mistyped trigger URLs do not echo the trigger uuid
// ---------------------------------------------------------------------------

/** Fully percent-decodes ASCII escapes (%2561 -> %61 -> a), the way a reader of the answer could. */
function decodeAll(text: string): string {
  let out = text;
  for (;;) {
    const next = out.replace(/%([0-7][0-9a-f])/gi, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    if (next === out) return out;
    out = next;
  }
}

/** Whether `text` holds `uuid` in any case, with or without dashes (or any separator), encoded or not. */
function holdsUuid(text: string, uuid: string): boolean {
  const hexOnly = (s: string) =>
    decodeAll(s)
      .toLowerCase()
      .replace(/[^0-9a-f]/g, "");
  return hexOnly(text).includes(hexOnly(uuid));
}

async function answerText(res: Response): Promise<string> {
  const headers = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join("\n");
  return `${headers}\n\n${await res.text()}`;
}

/** Every character of a uuid as a reader could be made to type it. */
function encodeChar(ch: string, how: number): string {
  const hex = ch.charCodeAt(0).toString(16).padStart(2, "0");
  switch (how) {
    case 1:
      return `%${hex.toUpperCase()}`;
    case 2:
      return `%${hex.toLowerCase()}`;
    case 3:
      return `%25${hex}`;
    default:
      return ch;
  }
}

describe("a mistyped trigger URL: no answer repeats the trigger uuid", () => {
  let t: TriggerJson;
  let T: string;
  let S: string;

  beforeAll(async () => {
    t = await createTrigger(owner, svc);
    T = t.uuid;
    S = svc.uuid;
  });

  const shapes = (): [string, string][] => {
    const ns = owner.username;
    const bare = T.replace(/-/g, "");
    return [
      ["triggers (plural)", `/api/app/v1/service/${S}/triggers/${T}/call/`],
      ["Trigger (capital)", `/api/app/v1/service/${S}/Trigger/${T}/call/`],
      ["trigger%2F<T>", `/api/app/v1/service/${S}/trigger%2F${T}/call/`],
      ["trigger%2f<T> (lower-case escape)", `/api/app/v1/${ns}/service/${S}/trigger%2f${T}/call/`],
      ["services (plural)", `/api/app/v1/services/${S}/trigger/${T}/call/`],
      ["v2", `/api/app/v2/service/${S}/trigger/${T}/call/`],
      ["no /api", `/app/v1/service/${S}/trigger/${T}/call/`],
      ["calls", `/api/app/v1/service/${S}/trigger/${T.toUpperCase()}/calls/`],
      ["call/ then more", `/api/app/v1/service/${S}/trigger/${T}/call/1/extra/`],
      ["the uuid where the count goes", `/api/app/v1/service/${S}/trigger/${T}/call/${T}/`],
      ["the uuid where the count goes, no dashes", `/api/app/v1/service/${S}/trigger/x/call/${bare}/`],
      ["service and trigger swapped, no dashes", `/api/app/v1/service/${bare}/trigger/${S}/call/`],
      ["the uuid as the service, no dashes", `/api/app/v1/service/${bare}/trigger/`],
      ["the uuid as a namespace", `/api/app/v1/${bare}/service/${S}/trigger/`],
      [
        "percent-encoded letters",
        `/api/app/v1/service/${S}/triggers/${[...T].map((c) => encodeChar(c, 1)).join("")}/call/`,
      ],
      ["double-encoded", `/api/app/v1/service/${S}/trigger%252F${[...T].map((c) => encodeChar(c, 3)).join("")}/call/`],
      ["the uuid in the action path", `/api/audit/v1/action/${T}/cancel/x/`],
    ];
  };

  it("each shape, without credentials and with the owner's, by POST and GET: the uuid is in no body or header", async () => {
    const leaks: string[] = [];
    for (const [what, path] of shapes()) {
      for (const authorization of [undefined, owner.auth]) {
        for (const method of ["POST", "GET"]) {
          const headers: Record<string, string> = { "content-type": "application/json" };
          if (authorization) headers.authorization = authorization;
          const res = await call(path, { method, headers, body: method === "POST" ? "{}" : undefined });
          expect(res.status, `${what}: ${method} ${path}`).toBeLessThan(500);
          const text = await answerText(res);
          if (holdsUuid(text, T)) leaks.push(`${what} (${method}${authorization ? ", owner" : ""}): ${text}`);
        }
      }
    }
    expect(leaks).toEqual([]);
  });

  it("the 404 still says which path had no route, with the ids hidden", async () => {
    const res = await call(`/api/app/v1/service/${S}/triggers/${T}/call/`, { method: "POST" });
    const message = await expectError(res, 404, /no API route/);
    expect(message).toMatch(/\/api\/app\/v1\/service\/.+\/triggers\/.+\/call\//);
    // Shorter hex runs (a date in a name, a count) stay as typed.
    const dated = await call("/api/app/v1/team20240101/servce/12345/", { method: "GET" });
    expect(await expectError(dated, 404, /no API route/)).toContain("/api/app/v1/team20240101/servce/12345/");
  });

  it("property: random paths holding a uuid in random case, dashes and percent-encodings never echo it", async () => {
    const WORDS = [
      "api",
      "app",
      "audit",
      "v1",
      "v2",
      "service",
      "services",
      "trigger",
      "triggers",
      "Trigger",
      "TRIGGER",
      "call",
      "calls",
      "action",
      "cancel",
      "retry",
      "redeploy",
      "apikey",
      "account",
      owner.username,
      S,
      "1",
      "x",
    ];
    const encodedUuid = fc
      .tuple(
        fc.uuid({ version: 4 }),
        fc.boolean(),
        fc.array(fc.nat(3), { minLength: 36, maxLength: 36 }),
        fc.array(fc.boolean(), { minLength: 36, maxLength: 36 }),
        fc.nat(4),
      )
      .map(([uuid, dashes, encodings, upper, density]) => {
        const chars = [...(dashes ? uuid : uuid.replace(/-/g, ""))];
        const text = chars
          .map((c, i) => {
            const cased = upper[i] ? c.toUpperCase() : c;
            // density 0: plain; otherwise about one character in `5 - density` is encoded.
            const how = density > 0 && i % (5 - density) === 0 ? (encodings[i] ?? 0) : 0;
            return encodeChar(cased, how);
          })
          .join("");
        return { uuid, text };
      });
    const joiner = fc.constantFrom("/", "/", "/", "%2F", "%2f", "%252F", "-", "");
    const shape = fc.tuple(
      fc.array(fc.constantFrom(...WORDS), { maxLength: 7 }),
      fc.nat(7),
      joiner,
      joiner,
      fc.constantFrom("", "/", "/call/", "/call/1/", ".json"),
      fc.constantFrom("POST", "GET", "DELETE", "PATCH"),
      fc.boolean(),
      encodedUuid,
    );
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(shape, async ([words, at, before, after, tail, method, withAuth, { uuid, text }]) => {
        const i = at % (words.length + 1);
        const head = words.slice(0, i).join("/");
        const rest = words.slice(i).join("/");
        const path = `/${head}${head ? before : ""}${text}${rest ? after : ""}${rest}${tail}`;
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (withAuth) headers.authorization = owner.auth;
        const res = await call(path, { method, headers, body: method === "GET" ? undefined : "{}" });
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        const answer = await answerText(res);
        if (res.status >= 500) throw new Error(`${method} ${path}: ${answer}`);
        if (holdsUuid(answer, uuid)) throw new Error(`${method} ${path} echoes the uuid: ${answer}`);
      }),
      { numRuns: 200 },
    );
    // The property reached the 404 handler, not only other answers.
    expect(seen.get(404) ?? 0).toBeGreaterThan(20);
  });
});

// ---------------------------------------------------------------------------
// 3. Lone UTF-16 surrogates are not text
// ---------------------------------------------------------------------------

/** A JSON body as text, with `\u` escapes kept as written (JSON.stringify would write them for us). */
function jsonText(user: User, method: string, path: string, text: string): Promise<Response> {
  return withCreds(user, method, path, { "content-type": "application/json" }, text);
}

const LONE: [string, string][] = [
  ["a lone high surrogate", "\\ud800"],
  ["a lone low surrogate", "\\udc00"],
  ["a high surrogate followed by a letter", "\\uD83Dx"],
  ["two high surrogates", "\\ud83d\\ud83d"],
  ["a pair in the wrong order", "\\ude00\\ud83d"],
  ["a high surrogate at the end of a longer string", "deploy \\udbff"],
];

describe("lone UTF-16 surrogates in JSON strings: 400 naming the field, nothing stored", () => {
  it.each(LONE)("%s in a trigger name (create): 400 naming name", async (_w, escaped) => {
    const before = await triggerCount(svc);
    const r = await jsonText(owner, "POST", `${svc.resource_uri}trigger/`, `{"name":"${escaped}"}`);
    const message = await expectError(r, 400, /\bname\b/);
    expect(message).toMatch(/surrogate/i);
    expect(await triggerCount(svc)).toBe(before);
  });

  it.each(LONE)("%s in a trigger name (PATCH): 400 naming name, the name unchanged", async (_w, escaped) => {
    const t = await createTrigger(owner, svc, { name: "unchanged" });
    const r = await jsonText(owner, "PATCH", t.resource_uri, `{"name":"${escaped}"}`);
    const message = await expectError(r, 400, /\bname\b/);
    expect(message).toMatch(/surrogate/i);
    expect(await triggerName(t)).toBe("unchanged");
  });

  it.each(LONE)("%s in a service's target (create and PATCH): 400 naming target.username", async (_w, escaped) => {
    const target = (username: string) =>
      `{"type":"dockercloud","url":"https://remote.example","username":"${username}","apikey":"k"}`;
    const before = (await (await as(owner, "GET", "/api/app/v1/service/")).json<Envelope<unknown>>()).meta.total_count;
    const created = await jsonText(
      owner,
      "POST",
      "/api/app/v1/service/",
      `{"image":"tutum/hello-world","name":"${uniqueName("svc")}","target":${target(`bob${escaped}`)}}`,
    );
    expect(await expectError(created, 400, /target\.username/)).toMatch(/surrogate/i);
    expect((await (await as(owner, "GET", "/api/app/v1/service/")).json<Envelope<unknown>>()).meta.total_count).toBe(
      before,
    );
    const patched = await jsonText(owner, "PATCH", svc.resource_uri, `{"target":${target(`bob${escaped}`)}}`);
    expect(await expectError(patched, 400, /target\.username/)).toMatch(/surrogate/i);
    const after = await (await as(owner, "GET", svc.resource_uri)).json<{ target: unknown }>();
    expect(after.target).toBeNull();
  });

  it("anywhere in the body, keys and unknown fields included: 400", async () => {
    for (const text of ['{"\\ud800":1}', '{"pad":["ok","\\udfff"]}', '{"name":"ok","x":{"y":"\\ud800"}}']) {
      const r = await jsonText(owner, "POST", `${svc.resource_uri}trigger/`, text);
      expect(await expectError(r, 400), text).toMatch(/surrogate/i);
    }
  });

  it("a valid surrogate pair (an emoji, escaped or in UTF-8) is accepted and stored as written", async () => {
    const escaped = await jsonText(owner, "POST", `${svc.resource_uri}trigger/`, '{"name":"ship \\ud83d\\ude00"}');
    expect(escaped.status).toBe(201);
    expect((await escaped.json<TriggerJson>()).name).toBe("ship \u{1F600}");
    const utf8 = await jsonText(owner, "POST", `${svc.resource_uri}trigger/`, '{"name":"ship \u{1F680}"}');
    expect(utf8.status).toBe(201);
    const t = await utf8.json<TriggerJson>();
    expect(await triggerName(t)).toBe("ship \u{1F680}");
    const patched = await jsonText(owner, "PATCH", t.resource_uri, '{"name":"\\uD83D\\uDE80 again"}');
    expect(patched.status).toBe(200);
    expect(await triggerName(t)).toBe("\u{1F680} again");
    const svcCreated = await jsonText(
      owner,
      "POST",
      "/api/app/v1/service/",
      `{"image":"tutum/hello-world","name":"${uniqueName("svc")}","target":{"type":"dockercloud","url":"https://remote.example","username":"bob\\ud83d\\ude00","apikey":"k"}}`,
    );
    expect(svcCreated.status).toBe(201);
    expect((await svcCreated.json<{ target: { username: string } }>()).target.username).toBe("bob\u{1F600}");
  });
});
