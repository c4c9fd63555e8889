/**
 * Shared by test/bad-input.test.ts and test/property.test.ts: the API's route
 * table read from GET /api/openapi.json, a small world of real objects to aim
 * bad requests at, the error-body check, and a storage snapshot of every
 * Durable Object this test file's storage holds.
 */
import { listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import {
  ADMIN_TOKEN,
  as,
  call,
  createAgent,
  createOrg,
  createService,
  createTrigger,
  createUser,
  type User,
} from "./api";

export const KiB = 1024;
/** The body limit the API documents ("Bodies over this are refused with 413, on every route"). */
export const BODY_LIMIT = 64 * KiB;

// ---------------------------------------------------------------------------
// The route table
// ---------------------------------------------------------------------------

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is walked as plain JSON
export type Json = any;

export type Route = {
  /** Upper case, as sent. */
  method: string;
  /** The OpenAPI path, with {params}. */
  template: string;
  auth: "user" | "admin" | "none";
  params: string[];
  /** Query parameters the route declares. */
  query: string[];
  /** The resolved JSON schema of the request body, if the route declares one. */
  body: Json | null;
  /** The component name of that schema (ServiceCreate, ...). */
  bodyName: string | null;
};

export type Api = { doc: Json; routes: Route[]; paths: string[] };

/** Documents the API serves that its OpenAPI document does not list (the document itself). */
export const UNDOCUMENTED_ROUTES: Route[] = [
  { method: "GET", template: "/api/openapi.json", auth: "none", params: [], query: [], body: null, bodyName: null },
];

function resolveRef(doc: Json, schema: Json): Json {
  if (schema?.$ref) return doc.components.schemas[String(schema.$ref).replace("#/components/schemas/", "")];
  return schema;
}

/** Every path x method of GET /api/openapi.json, plus the document itself. */
export async function loadApi(): Promise<Api> {
  const res = await call("/api/openapi.json");
  if (res.status !== 200) throw new Error(`GET /api/openapi.json answered ${res.status}`);
  const doc = await res.json<Json>();
  const routes: Route[] = [];
  for (const [template, ops] of Object.entries<Json>(doc.paths)) {
    for (const [method, op] of Object.entries<Json>(ops)) {
      const security: string[] = (op.security ?? []).flatMap((s: Json) => Object.keys(s));
      const auth = security.includes("adminToken") ? "admin" : security.includes("basicAuth") ? "user" : "none";
      const parameters: Json[] = op.parameters ?? [];
      const ref = op.requestBody?.content?.["application/json"]?.schema;
      routes.push({
        method: method.toUpperCase(),
        template,
        auth,
        params: [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string),
        query: parameters.filter((p) => p.in === "query").map((p) => p.name as string),
        body: ref ? resolveRef(doc, ref) : null,
        bodyName: ref?.$ref ? String(ref.$ref).replace("#/components/schemas/", "") : null,
      });
    }
  }
  routes.push(...UNDOCUMENTED_ROUTES);
  return { doc, routes, paths: [...new Set(routes.map((r) => r.template))] };
}

export const isCallRoute = (r: Route) => /\/call\/(\{count\}\/)?$/.test(r.template);

/** The segments of a path, ignoring repeated slashes (the Worker collapses them). */
const segments = (path: string) => path.split("/").filter(Boolean);

/** The params of `template` if `path` matches it (as the Worker routes: a {param} is one non-empty segment). */
export function matchTemplate(template: string, path: string): Record<string, string> | null {
  const t = segments(template);
  const p = segments(path);
  if (t.length !== p.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < t.length; i++) {
    const ts = t[i] as string;
    const ps = p[i] as string;
    const param = /^\{(.+)\}$/.exec(ts);
    if (param) params[param[1] as string] = ps;
    else if (ts !== ps) return null;
  }
  return params;
}

/** The methods the document allows on a concrete path (over every template that matches it). */
export function allowedMethods(routes: Route[], path: string): string[] {
  return [...new Set(routes.filter((r) => matchTemplate(r.template, path)).map((r) => r.method))].sort();
}

// ---------------------------------------------------------------------------
// The world: real objects to aim bad requests at
// ---------------------------------------------------------------------------

/** A namespace with a service, a REDEPLOY and a SCALEUP trigger, and a finished action. */
export type Scope = {
  label: "user" | "org";
  namespace: string;
  service: string;
  trigger: string;
  scaleTrigger: string;
  action: string;
  /** An agent of the namespace. */
  agent: string;
  /** A registry hook of the namespace, and the token of its URL. */
  hook: string;
  hookToken: string;
};

export type World = {
  /** The caller of every request with user credentials. */
  user: User;
  /** Another user: exists, shares nothing with `user`. */
  stranger: User;
  /** A user the admin routes aim at (DELETE /user/{username}/, its apikey/). */
  target: User;
  /** A member of `adminOrg`, for the member routes. */
  member: User;
  /** An organization `user` belongs to. */
  org: string;
  /** An organization the admin routes aim at; `user` is not a member. */
  adminOrg: string;
  /** An extra API key of `user`, for DELETE /api/account/v1/apikey/{uuid}/. */
  key: string;
  scopes: { user: Scope; org: Scope };
};

async function scopeIn(user: User, label: Scope["label"], namespace: string): Promise<Scope> {
  const svc = await createService(user, {}, namespace);
  const trg = await createTrigger(user, svc, { name: "ci", operation: "REDEPLOY" });
  const scale = await createTrigger(user, svc, { name: "bump", operation: "SCALEUP" });
  const r = await call(trg.url, { method: "POST", body: "fixture" });
  if (r.status !== 202) throw new Error(`fixture call failed: ${r.status} ${await r.text()}`);
  const action = await r.json<{ uuid: string }>();
  const agent = (await createAgent(user, "fixture", namespace)).uuid;
  const h = await as(user, "POST", `/api/app/v1/${namespace}/registryhook/`, { name: "fixture", source: "dockerhub" });
  if (h.status !== 201) throw new Error(`fixture hook failed: ${h.status} ${await h.text()}`);
  const hook = await h.json<{ uuid: string; url: string }>();
  return {
    label,
    namespace,
    service: svc.uuid,
    trigger: trg.uuid,
    scaleTrigger: scale.uuid,
    action: action.uuid,
    agent,
    hook: hook.uuid,
    hookToken: hook.url.split("/").at(-2) as string,
  };
}

export async function buildWorld(): Promise<World> {
  const user = await createUser();
  const stranger = await createUser();
  const target = await createUser();
  const member = await createUser();
  const org = await createOrg(undefined, [user.username]);
  const adminOrg = await createOrg(undefined, [member.username]);
  const k = await as(user, "POST", "/api/account/v1/apikey/", { label: "extra" });
  if (k.status !== 201) throw new Error(`key create failed: ${k.status} ${await k.text()}`);
  const key = (await k.json<{ uuid: string }>()).uuid;
  const scopes = { user: await scopeIn(user, "user", user.username), org: await scopeIn(user, "org", org) };
  await waitQuiet();
  for (const s of Object.values(scopes)) {
    const a = await as(user, "GET", `/api/audit/v1/${s.namespace}/action/${s.action}/`);
    const state = (await a.json<{ state: string }>()).state;
    if (state !== "Success") throw new Error(`fixture action of ${s.label} is ${state}, not Success`);
  }
  return { user, stranger, target, member, org, adminOrg, key, scopes };
}

/** The value a route's {param} takes in the world (a new param must be given one here). */
export function paramValue(template: string, param: string, w: World, s: Scope): string {
  switch (param) {
    case "namespace":
      return s.namespace;
    case "uuid":
      if (template.includes("/service/{uuid}")) return s.service;
      if (template.includes("/action/{uuid}")) return s.action;
      if (template.includes("/apikey/{uuid}")) return w.key;
      if (template.includes("/agent/{uuid}")) return s.agent;
      if (template.includes("/registryhook/{uuid}")) return s.hook;
      break;
    case "token":
      return s.hookToken;
    case "trigger_uuid":
      return template.includes("{count}") ? s.scaleTrigger : s.trigger;
    case "count":
      return "1";
    case "username":
      return template.includes("/member/") ? w.member.username : w.target.username;
    case "name":
      return w.adminOrg;
  }
  throw new Error(`the world has no value for {${param}} in ${template}`);
}

export function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{([^}]+)\}/g, (_, p: string) => {
    const v = values[p];
    if (v === undefined) throw new Error(`no value for {${p}} in ${template}`);
    return v;
  });
}

export function fillFromWorld(template: string, w: World, s: Scope, override: Record<string, string> = {}): string {
  const values: Record<string, string> = {};
  for (const m of template.matchAll(/\{([^}]+)\}/g)) {
    const p = m[1] as string;
    values[p] = override[p] ?? paramValue(template, p, w, s);
  }
  return fill(template, values);
}

/** Every uuid and name of the world, for generators that mix real values into paths. */
export function worldValues(w: World): string[] {
  const scoped = Object.values(w.scopes).flatMap((s) => [s.namespace, s.service, s.trigger, s.scaleTrigger, s.action]);
  return [...scoped, w.user.username, w.stranger.username, w.target.username, w.member.username, w.adminOrg, w.key];
}

export function authHeader(kind: Route["auth"], w: World): Record<string, string> {
  if (kind === "admin") return { authorization: `Bearer ${ADMIN_TOKEN}` };
  if (kind === "user") return { authorization: w.user.auth };
  return {};
}

// ---------------------------------------------------------------------------
// The error answer
// ---------------------------------------------------------------------------

export type Answer = { status: number; contentType: string | null; text: string; allow: string | null };

export async function answerOf(res: Response): Promise<Answer> {
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    text: await res.text(),
    allow: res.headers.get("allow"),
  };
}

export const show = (a: Answer) => `${a.status} ${a.contentType ?? "(no content-type)"} ${a.text.slice(0, 300)}`;

/**
 * The rule for a refused request: a 4xx, JSON, and exactly {"error": "<non-empty message>"}.
 * A HEAD answer carries no body (HTTP), so only its status and type are checked.
 * Returns the message.
 */
export function expectErrorAnswer(a: Answer, what: string, head = false): string {
  const seen = `${what}\n  answered: ${show(a)}`;
  expect(a.status, `${seen}\n  must be a 4xx`).toBeGreaterThanOrEqual(400);
  expect(a.status, `${seen}\n  must be a 4xx`).toBeLessThan(500);
  expect(a.contentType ?? "", `${seen}\n  must be JSON`).toMatch(/^application\/json\b/);
  if (head) {
    expect(a.text, `${seen}\n  a HEAD answer has no body`).toBe("");
    return "";
  }
  let body: unknown;
  try {
    body = JSON.parse(a.text);
  } catch {
    expect.fail(`${seen}\n  the body is not JSON`);
  }
  expect(
    body !== null && typeof body === "object" && !Array.isArray(body) ? Object.keys(body) : body,
    `${seen}\n  the body must be exactly {"error": "..."}`,
  ).toEqual(["error"]);
  const message = (body as { error: unknown }).error;
  expect(typeof message, `${seen}\n  error must be a string`).toBe("string");
  expect((message as string).trim().length, `${seen}\n  error must say something`).toBeGreaterThan(0);
  return message as string;
}

// ---------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------

type Row = Record<string, unknown>;
/** table -> rows */
export type Dump = Record<string, Row[]>;
/** object label -> its tables; objects without any table (never written) are left out. */
export type Snapshot = Map<string, Dump>;

const shardNames = new Map<string, string>();
for (let i = 0; i < 256; i++) {
  const name = `services-${i.toString(16).padStart(2, "0")}`;
  shardNames.set(env.LOCATOR.idFromName(name).toString(), name);
}

function dumpOf(stub: DurableObjectStub): Promise<Dump> {
  return runInDurableObject(stub, (_instance, state) => {
    const sql = state.storage.sql;
    const tables = sql
      .exec<{ name: string; sql: string }>(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name",
      )
      .toArray();
    const out: Dump = {};
    for (const t of tables) {
      // A WITHOUT ROWID table is ordered by its primary key, its first columns.
      const order = /WITHOUT ROWID/i.test(t.sql) ? "1, 2" : "rowid";
      out[t.name] = sql.exec(`SELECT * FROM "${t.name}" ORDER BY ${order}`).toArray() as Row[];
    }
    return out;
  });
}

/**
 * Every table of every Durable Object of this test file (storage is per file):
 * every namespace object, every locator shard, the directory.
 */
export async function snapshotStorage(): Promise<Snapshot> {
  const snap: Snapshot = new Map();
  const kinds: [string, DurableObjectNamespace][] = [
    ["namespace", env.NAMESPACES as unknown as DurableObjectNamespace],
    ["locator", env.LOCATOR as unknown as DurableObjectNamespace],
    ["directory", env.DIRECTORY as unknown as DurableObjectNamespace],
  ];
  for (const [kind, ns] of kinds) {
    const ids = await listDurableObjectIds(ns);
    const dumps = await Promise.all(ids.map((id) => dumpOf(ns.get(id))));
    ids.forEach((id, i) => {
      const dump = dumps[i] as Dump;
      if (kind === "locator") {
        // A locator shard creates its (empty) pointers table the first time anything asks it
        // about a uuid, a refused request included. The shards are a fixed set of 256, so this is
        // bounded bookkeeping, not data: a shard with no pointer counts as unwritten. (Namespace
        // objects are held to more: one that was only asked about must write nothing at all,
        // since the names that can be asked about are unbounded.)
        delete dump._sql_schema_migrations;
        if (Object.values(dump).every((rows) => rows.length === 0)) return;
      }
      if (Object.keys(dump).length === 0) return;
      const hex = id.toString();
      const name =
        kind === "namespace"
          ? ((dump.namespace?.[0]?.name as string | undefined) ?? `(unclaimed ${hex.slice(0, 12)})`)
          : kind === "locator"
            ? (shardNames.get(hex) ?? hex.slice(0, 12))
            : "directory";
      snap.set(`${kind} ${name} ${hex.slice(0, 8)}`, dump);
    });
  }
  return snap;
}

/** Columns left out of comparisons, table -> columns. */
export type Ignore = Record<string, readonly string[]>;

/**
 * api_keys.last_used_at is written by every request whose Basic credentials
 * are valid (authentication runs before the body or path is looked at), so a
 * refused request with good credentials legitimately touches it.
 */
export const ALWAYS_IGNORED: Ignore = { api_keys: ["last_used_at"] };

/**
 * A refused trigger call (409 past max_num_containers, 429 over the rate limit)
 * is counted on the trigger, as the README documents: rejected_count and
 * last_called_at. Everything else of the trigger must stay.
 */
export const REJECTED_CALL_COLUMNS: Ignore = { triggers: ["rejected_count", "last_called_at"] };

function strip(row: Row, drop: readonly string[] | undefined): string {
  if (!drop?.length) return JSON.stringify(row);
  const copy = { ...row };
  for (const c of drop) delete copy[c];
  return JSON.stringify(copy);
}

/** What changed between two snapshots, one line per row added or removed; [] when nothing did. */
export function diffSnapshots(before: Snapshot, after: Snapshot, ignore: Ignore = {}): string[] {
  const out: string[] = [];
  const drop = (table: string) => [...(ALWAYS_IGNORED[table] ?? []), ...(ignore[table] ?? [])];
  for (const obj of new Set([...before.keys(), ...after.keys()])) {
    const a = before.get(obj) ?? {};
    const b = after.get(obj) ?? {};
    if (!before.has(obj)) out.push(`${obj}: object written for the first time (tables: ${Object.keys(b).join(", ")})`);
    for (const table of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const left = (a[table] ?? []).map((r) => strip(r, drop(table)));
      const right = (b[table] ?? []).map((r) => strip(r, drop(table)));
      const counts = new Map<string, number>();
      for (const r of left) counts.set(r, (counts.get(r) ?? 0) + 1);
      const added: string[] = [];
      for (const r of right) {
        const n = counts.get(r) ?? 0;
        if (n > 0) counts.set(r, n - 1);
        else added.push(r);
      }
      for (const [r, n] of counts) for (let i = 0; i < n; i++) out.push(`${obj} ${table}: - ${r.slice(0, 400)}`);
      for (const r of added) out.push(`${obj} ${table}: + ${r.slice(0, 400)}`);
    }
  }
  return out;
}

/** A diff for a failure message: rows changed per object and table, then the first rows themselves. */
export function summarize(diff: string[], sample = 12): string[] {
  if (diff.length === 0) return [];
  const counts = new Map<string, number>();
  for (const line of diff) {
    const key = line.replace(/: [+-] .*$/, "").replace(/: object written.*$/, " (new object)");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [
    ...[...counts].map(([k, n]) => `${k}: ${n} row(s) added or removed`),
    ...diff.slice(0, sample),
    ...(diff.length > sample ? [`… ${diff.length - sample} more`] : []),
  ];
}

/** rejected_count of every trigger, by uuid. */
export function rejectedCounts(snap: Snapshot): Map<string, number> {
  const out = new Map<string, number>();
  for (const dump of snap.values()) {
    for (const t of dump.triggers ?? []) out.set(t.uuid as string, t.rejected_count as number);
  }
  return out;
}

/** Waits until no action of any namespace is still to be performed (the queue is idle for us). */
export async function waitQuiet(timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ids = await listDurableObjectIds(env.NAMESPACES as unknown as DurableObjectNamespace);
    const counts = await Promise.all(
      ids.map((id) =>
        runInDurableObject(env.NAMESPACES.get(id), (_i, state) => {
          const sql = state.storage.sql;
          const has = sql
            .exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'actions'")
            .toArray().length;
          if (!has) return 0;
          return sql
            .exec<{ n: number }>(
              "SELECT COUNT(*) AS n FROM actions WHERE dispatch != 'done' OR state IN ('Pending', 'In progress')",
            )
            .one().n;
        }),
      ),
    );
    const open = counts.reduce((a, b) => a + b, 0);
    if (open === 0) return;
    if (Date.now() > deadline) throw new Error(`${open} actions still open after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
