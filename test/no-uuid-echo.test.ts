/**
 * No refusal repeats a uuid taken from the request. README: "Error messages never repeat a uuid
 * (or 16 hex digits or more) taken from the request, in any case or encoding": a trigger uuid is
 * the only secret of its URL, and answers to mistyped or refused requests end up in CI logs and
 * chat rooms.
 *
 * Every operation of GET /api/openapi.json (and the routes it does not list: the streams, an
 * agent's connection, unknown paths) gets requests built to be refused, each carrying fresh uuids
 * (as issued, in upper case, inside a longer string, as 30 hex digits in a row, percent-encoded in
 * paths) in every field it can: each path parameter, each query parameter, each JSON body field (every field of every
 * target type of the target registry), the headers the API reads (Authorization, Idempotency-Key,
 * X-DockerCloud-Hops, Origin, Content-Type), keys of the body, and trigger call paths. They are
 * sent with the caller's credentials, with a stranger's and with none. A request that is accepted
 * all the same is sent again (a second create of a name is a conflict), then with another field
 * spoiled, so that its uuids still meet a refusal.
 *
 * Every 4xx answer (body and headers) must hold none of the uuids it was sent: not as sent, not in
 * another case, not without dashes, not any 16 of its hex digits in a row. No answer is a 5xx.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TARGET_TYPES } from "../src/targets";
import { ADMIN_TOKEN, as, basic, call, createAgent, createService, createTrigger, uniqueName } from "./helpers/api";
import {
  answerOf,
  buildWorld,
  expectErrorAnswer,
  fill,
  isCallRoute,
  type Json,
  loadApi,
  paramValue,
  type Route,
  type World,
  waitQuiet,
} from "./helpers/bad-input";

const api = await loadApi();

// ---------------------------------------------------------------------------
// Uuids, and how an answer could give one back
// ---------------------------------------------------------------------------

type Form = { name: string; make: (uuid: string) => string };

const hexOf = (uuid: string) => uuid.toLowerCase().replaceAll("-", "");

const FORMS: Form[] = [
  { name: "as issued", make: (u) => u },
  { name: "in upper case", make: (u) => u.toUpperCase() },
  { name: "inside a longer string", make: (u) => `ci-${u}-main` },
  // 30 hex digits in a row: what a name of a user or an organization can hold of one.
  { name: "as 30 hex digits", make: (u) => hexOf(u).slice(0, 30) },
];
/** A path segment may also arrive percent-encoded, every character of it. */
const PATH_FORMS: Form[] = [
  ...FORMS,
  {
    name: "percent-encoded",
    make: (u) => [...u].map((ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`).join(""),
  },
];

const decodeAscii = (text: string) =>
  text.replace(/%([0-7][0-9a-f])/gi, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));

/**
 * The uuids of `sent` that `text` gives back: any 16 of its hex digits in a row, in any case, with
 * or without dashes, percent-encoded or not.
 */
function echoed(text: string, sent: readonly string[]): string[] {
  const hay = [text, decodeAscii(text)].map((t) => t.toLowerCase().replaceAll("-", ""));
  return sent.filter((uuid) => {
    const hex = hexOf(uuid);
    for (let i = 0; i + 16 <= hex.length; i++) {
      const run = hex.slice(i, i + 16);
      if (hay.some((h) => h.includes(run))) return true;
    }
    return false;
  });
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

type Obj = Record<string, unknown>;

type Probe = {
  what: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: BodyInit;
  /** Every uuid the request carries: none may come back in a refusal. */
  uuids: string[];
  /** Sent, in order, while the answers are still 2xx, so that these uuids meet a refusal. */
  whileAccepted?: Probe[];
};

/** What the world lacks: objects of a stranger to name, and objects that PATCH requests may change. */
type Extra = {
  foreign: { service: string; trigger: string; action: string; agent: string; key: string };
  /** A service of the caller that PATCH requests aim at, so the world's services keep no target. */
  patchService: string;
  /** An agent of the caller that PATCH requests aim at, so the world's agent keeps its name. */
  patchAgent: string;
};

/** A body that passes validation, for requests whose uuid is elsewhere (a new body schema must get one). */
const VALID_BODIES: Record<string, (w: World) => Obj> = {
  ServiceCreate: () => ({ image: "tutum/hello-world", name: uniqueName("svc") }),
  ServicePatch: () => ({}),
  TriggerCreate: () => ({ name: "ci" }),
  TriggerPatch: () => ({}),
  ApiKeyCreate: () => ({}),
  AdminUserCreate: () => ({ username: uniqueName("fresh") }),
  AdminOrganizationCreate: () => ({ name: uniqueName("fresh") }),
  AdminMemberAdd: (w) => ({ username: w.user.username }),
  AgentCreate: () => ({ name: uniqueName("agent") }),
  AgentPatch: () => ({}),
  RegistryHookCreate: () => ({ name: uniqueName("hook"), source: "generic" }),
  RegistryHookRotate: () => ({}),
};

/** A valid target of each type of the registry (a new target type must get one). */
const TARGET_BASES: Record<string, () => Obj> = {
  webhook: () => ({ type: "webhook", url: "https://hooks.example.test/deploy" }),
  dockercloud: () => ({
    type: "dockercloud",
    url: "https://remote.example.test",
    username: "remoteuser",
    apikey: "remote-api-key",
  }),
  // The world's agent in the caller's namespace, by name.
  agent: () => ({ type: "agent", agent: "fixture", swarm_service: "web" }),
};

/** Fields whose failure refuses a body that was accepted with a uuid elsewhere. */
const SPOILERS: Record<string, Obj> = {
  ServiceCreate: { target_num_containers: 7, max_num_containers: 2 },
  ServicePatch: { target_num_containers: 7, max_num_containers: 2 },
  TriggerCreate: { rate_limit: 0 },
  TriggerPatch: { rate_limit: 0 },
};

function validBody(r: Route, w: World): Obj | undefined {
  if (!r.bodyName) return undefined;
  const make = VALID_BODIES[r.bodyName];
  if (!make) throw new Error(`no valid body known for ${r.bodyName} (${r.method} ${r.template})`);
  return make(w);
}

function resolve(schema: Json): Json {
  const ref: unknown = schema?.$ref;
  return typeof ref === "string" ? api.doc.components.schemas[ref.replace("#/components/schemas/", "")] : schema;
}

/** The object variants of a union field, by the value of their `type`; null for other fields. */
function variantsOf(schema: Json): Map<string, Json> | null {
  const s = resolve(schema);
  const options: Json[] = s?.oneOf ?? s?.anyOf ?? [];
  const variants = new Map<string, Json>();
  for (const o of options.map(resolve)) {
    const type = o?.properties?.type;
    const value = type?.const ?? type?.enum?.[0];
    if (typeof value === "string") variants.set(value, o);
  }
  return variants.size ? variants : null;
}

/** A body field a uuid can be put in: its label (`target.url (webhook)`) and how to set it. */
type BodyField = { label: string; key: string; set: (body: Obj, value: string) => Obj };

function bodyFields(r: Route): BodyField[] {
  const out: BodyField[] = [];
  for (const [key, schema] of Object.entries<Json>(r.body?.properties ?? {})) {
    const variants = variantsOf(schema);
    if (!variants) {
      out.push({ label: key, key, set: (b, v) => ({ ...b, [key]: v }) });
      continue;
    }
    for (const [type, variant] of variants) {
      const base = TARGET_BASES[type];
      if (!base) throw new Error(`no valid ${key} of type ${type} known (${r.method} ${r.template})`);
      for (const field of Object.keys(variant.properties ?? {})) {
        if (field === "type") continue;
        out.push({
          label: `${key}.${field} (${type})`,
          key,
          // Fields of one type add up, so that one body can carry a uuid in each.
          set: (b, v) => {
            const current = b[key] as Obj | undefined;
            return { ...b, [key]: { ...(current?.type === type ? current : base()), [field]: v } };
          },
        });
      }
    }
  }
  return out;
}

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Routes that read X-DockerCloud-Hops: the ones that create an action. */
const readsHops = (r: Route) => /\/(redeploy|scale|retry)\/$|\/call\//.test(r.template);

function authFor(kind: Route["auth"], w: World): Record<string, string> {
  if (kind === "admin") return { authorization: `Bearer ${ADMIN_TOKEN}` };
  if (kind === "user") return { authorization: w.user.auth };
  return {};
}

/** The value of a path parameter in a request whose uuid is elsewhere. */
function validParam(r: Route, p: string, w: World, x: Extra): string {
  if (r.method === "PATCH" && p === "uuid" && r.template.endsWith("/service/{uuid}/")) return x.patchService;
  if (r.method === "PATCH" && p === "uuid" && r.template.endsWith("/agent/{uuid}/")) return x.patchAgent;
  return paramValue(r.template, p, w, w.scopes.user);
}

/** The stranger's object of the kind a path parameter names, or null. */
function foreignParam(r: Route, p: string, x: Extra): string | null {
  if (p === "trigger_uuid") return x.foreign.trigger;
  if (p !== "uuid") return null;
  if (r.template.includes("/service/{uuid}")) return x.foreign.service;
  if (r.template.includes("/action/{uuid}")) return x.foreign.action;
  if (r.template.includes("/agent/{uuid}")) return x.foreign.agent;
  if (r.template.includes("/apikey/{uuid}")) return x.foreign.key;
  return null;
}

type Parts = {
  params?: Record<string, string>;
  query?: string;
  headers?: Record<string, string | null>;
  /** A JSON object, or raw text sent as is. */
  body?: Obj | string;
};

/** A request to `r` that is valid but for `parts`. */
function request(r: Route, w: World, x: Extra, what: string, uuids: string[], parts: Parts = {}): Probe {
  const values = Object.fromEntries(r.params.map((p) => [p, parts.params?.[p] ?? validParam(r, p, w, x)]));
  const body = parts.body ?? validBody(r, w);
  const headers: Record<string, string> = { ...authFor(r.auth, w) };
  if (body !== undefined) headers["content-type"] = "application/json";
  for (const [k, v] of Object.entries(parts.headers ?? {})) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  return {
    what: `${r.method} ${r.template} · ${what}`,
    method: r.method,
    path: `${fill(r.template, values)}${parts.query ? `?${parts.query}` : ""}`,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    uuids,
  };
}

const fresh = () => crypto.randomUUID();

// ---------------------------------------------------------------------------
// The requests of one operation
// ---------------------------------------------------------------------------

/** A note of every field of every operation that got a uuid, for the coverage check. */
const covered = new Set<string>();

function probesFor(r: Route, w: World, x: Extra): Probe[] {
  const op = `${r.method} ${r.template}`;
  const out: Probe[] = [];
  // A namespaced route runs its twin's handler: one form per field is enough there, and what does
  // not depend on the path (the body's keys, Origin, Content-Type) is left to the twin. Elsewhere
  // a field gets the uuid as issued and one other form, each form in turn; a trigger URL's
  // segments (its secret) get every form, and so do the admin API's names, which only 30 hex digits
  // in a row get past.
  const namespaced = r.params.includes("namespace");
  const plain = !namespaced;
  const pick = (forms: Form[], i: number, every = false): Form[] =>
    namespaced
      ? [forms[i % forms.length] as Form]
      : every || r.template.startsWith("/api/admin/")
        ? forms
        : [forms[0] as Form, forms[1 + (i % (forms.length - 1))] as Form];
  const add = (field: string, probe: Probe) => {
    covered.add(`${op} ${field}`);
    out.push(probe);
  };
  const hasLimit = r.query.includes("limit");

  // Path parameters.
  r.params.forEach((p, i) => {
    for (const f of pick(PATH_FORMS, i, isCallRoute(r))) {
      const u = fresh();
      add(`path:${p}`, request(r, w, x, `{${p}} a uuid ${f.name}`, [u], { params: { [p]: f.make(u) } }));
    }
    const foreign = foreignParam(r, p, x);
    if (foreign) {
      add(`path:${p}`, request(r, w, x, `{${p}} the stranger's`, [foreign], { params: { [p]: foreign } }));
    }
  });

  // Query parameters; a filter that takes any text is refused by a bad limit, or no credentials.
  r.query.forEach((q, i) => {
    for (const f of pick(FORMS, i)) {
      const u = fresh();
      const query = `${q}=${encodeURIComponent(f.make(u))}`;
      const probe = request(r, w, x, `?${q}= a uuid ${f.name}`, [u], { query });
      probe.whileAccepted = [
        hasLimit && q !== "limit"
          ? request(r, w, x, `?${q}= a uuid ${f.name}, limit=0`, [u], { query: `${query}&limit=0` })
          : request(r, w, x, `?${q}= a uuid ${f.name}, no credentials`, [u], {
              query,
              headers: { authorization: null },
            }),
      ];
      add(`query:${q}`, probe);
    }
  });

  // Body fields, nested ones included.
  if (r.bodyName) {
    const spoiler = SPOILERS[r.bodyName];
    bodyFields(r).forEach((field, i) => {
      for (const f of pick(FORMS, i)) {
        const u = fresh();
        const v = f.make(u);
        const base = validBody(r, w) ?? {};
        const body = field.set(base, v);
        const what = `${field.label}: a uuid ${f.name}`;
        const probe = request(r, w, x, what, [u], { body });
        const spoiled =
          spoiler && !(field.key in spoiler)
            ? request(r, w, x, `${what}, with ${JSON.stringify(spoiler)}`, [u], { body: { ...body, ...spoiler } })
            : request(r, w, x, `${what}, then a control character`, [u], { body: field.set(base, `${v}\u0001`) });
        probe.whileAccepted = [request(r, w, x, `${what}, again`, [u], { body }), spoiled];
        add(`body:${field.label}`, probe);
      }
    });
  }

  // A body whose key is a uuid and whose value is not text (a lone surrogate), at the top and nested.
  if (plain && STATE_CHANGING.has(r.method) && r.method !== "DELETE" && !isCallRoute(r)) {
    const u = fresh();
    add("body:key", request(r, w, x, "a uuid as a key holding a lone surrogate", [u], { body: `{"${u}":"\\ud800"}` }));
    if (r.body?.properties?.target) {
      const n = fresh();
      add(
        "body:key",
        request(r, w, x, "a uuid as a key of target holding a lone surrogate", [n], {
          body: `{"target":{"type":"webhook","${n.toUpperCase()}":"\\ud800"}}`,
        }),
      );
    }
  }

  // Authorization: a uuid as the user name and as the key (Basic or Tutum's ApiKey), or as the admin token.
  const at = api.routes.indexOf(r);
  const f = FORMS[at % FORMS.length] as Form;
  if (r.auth === "user") {
    const [a, b] = [fresh(), fresh()];
    const [what, authorization] =
      at % 2 === 0
        ? [`Basic credentials of a user named by a uuid ${f.name}`, basic(f.make(a), b)]
        : [`ApiKey credentials of a user named by a uuid ${f.name}`, `ApiKey ${f.make(a)}:${b}`];
    add("header:authorization", request(r, w, x, what, [a, b], { headers: { authorization } }));
  }
  if (r.auth === "admin") {
    const a = fresh();
    add(
      "header:authorization",
      request(r, w, x, `a uuid ${f.name} as the admin token`, [a], {
        headers: { authorization: `Bearer ${f.make(a)}` },
      }),
    );
  }

  // Headers of the routes that read them.
  if (readsHops(r)) {
    for (const hf of pick(FORMS, at)) {
      const u = fresh();
      add(
        "header:x-dockercloud-hops",
        request(r, w, x, `X-DockerCloud-Hops: a uuid ${hf.name}`, [u], {
          headers: { "x-dockercloud-hops": hf.make(u) },
        }),
      );
    }
  }
  if (plain && STATE_CHANGING.has(r.method) && !isCallRoute(r)) {
    const o = fresh();
    add(
      "header:origin",
      request(r, w, x, `Origin: a host named by a uuid ${f.name}`, [o], {
        headers: { origin: `https://${f.make(o)}.example.test` },
      }),
    );
  }
  if (plain && r.bodyName) {
    const t = fresh();
    add(
      "header:content-type",
      request(r, w, x, "Content-Type: text/plain with a uuid parameter", [t], {
        headers: { "content-type": `text/plain; boundary=${t}` },
      }),
    );
  }
  if (isCallRoute(r)) for (const probe of callProbes(r, w, x, pick(FORMS, at))) add("header:idempotency-key", probe);

  // Every field at once: with the caller's credentials, a stranger's, and none.
  for (const who of r.auth === "user"
    ? [...(plain ? ["caller", "nobody"] : []), "stranger"]
    : r.auth === "admin"
      ? ["admin", "nobody"]
      : ["nobody"]) {
    add(`all:${who}`, everything(r, w, x, who));
  }
  return out;
}

/** Trigger calls: Idempotency-Key, the call's body, counts, extra segments. */
function callProbes(r: Route, w: World, x: Extra, forms: Form[]): Probe[] {
  const out: Probe[] = [];
  const counted = r.params.includes("count");
  for (const f of forms) {
    const u = fresh();
    const probe = request(r, w, x, `Idempotency-Key: a uuid ${f.name}`, [u], {
      headers: { "idempotency-key": f.make(u) },
    });
    // Accepted: the same key again, with a body declared JSON that is not UTF-8.
    probe.whileAccepted = [
      {
        ...request(r, w, x, `Idempotency-Key: a uuid ${f.name}, with a body that is not UTF-8`, [u], {
          headers: { "idempotency-key": f.make(u), "content-type": "application/json" },
        }),
        body: new Uint8Array([0x7b, 0xff, 0x7d]),
      },
    ];
    out.push(probe);
  }
  const [t, b, k] = [fresh(), fresh(), fresh()];
  out.push(
    request(r, w, x, "an unknown trigger, with a uuid in the body and the Idempotency-Key", [t, b, k], {
      params: { trigger_uuid: t },
      headers: { "idempotency-key": k, "content-type": "application/json" },
      body: JSON.stringify({ build: b, ref: `main@${b.toUpperCase()}` }),
    }),
  );
  if (counted) {
    const [c, d] = [fresh(), fresh()];
    out.push(
      request(r, w, x, "a count on a REDEPLOY trigger, with a uuid in the body", [c], {
        params: { trigger_uuid: w.scopes.user.trigger },
        body: `built ${c}`,
      }),
      request(r, w, x, "a count past max_num_containers, with a uuid as the Idempotency-Key", [d], {
        params: { count: "11" },
        headers: { "idempotency-key": d },
      }),
    );
  }
  const [e, g] = [fresh(), fresh()];
  const path = fill(r.template, Object.fromEntries(r.params.map((p) => [p, validParam(r, p, w, x)])));
  out.push({
    what: `POST ${r.template} · a uuid as one more segment, and one more`,
    method: "POST",
    path: `${path}${e}/${g.toUpperCase()}/`,
    headers: {},
    uuids: [e, g],
  });
  return out;
}

/** A request with a distinct uuid in every field it can carry, as `who`. */
function everything(r: Route, w: World, x: Extra, who: string): Probe {
  const uuids: string[] = [];
  const u = () => {
    const v = fresh();
    uuids.push(v);
    return v;
  };
  // A stranger aims at the caller's real objects; the others at uuids.
  const params = Object.fromEntries(r.params.map((p) => [p, who === "stranger" ? validParam(r, p, w, x) : u()]));
  const query = r.query.map((q) => `${q}=${u()}`).join("&");
  let body: Obj | undefined;
  if (r.bodyName) {
    body = { [u()]: u() };
    for (const field of bodyFields(r)) body = field.set(body, u());
  }
  const auth =
    who === "caller"
      ? w.user.auth
      : who === "stranger"
        ? w.stranger.auth
        : who === "admin"
          ? `Bearer ${ADMIN_TOKEN}`
          : null;
  return request(r, w, x, `a uuid in every field, as ${who}`, uuids, {
    params,
    query,
    body,
    headers: {
      authorization: auth,
      "idempotency-key": u(),
      "x-dockercloud-hops": u(),
    },
  });
}

// ---------------------------------------------------------------------------
// Sending and judging
// ---------------------------------------------------------------------------

let refused = 0;

/** Sends one request; its status, and what is wrong with the answer. */
async function judgeOne(probe: Probe): Promise<{ status: number; problems: string[] }> {
  const res = await call(probe.path, { method: probe.method, headers: probe.headers, body: probe.body });
  const headers = [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
  const answer = await answerOf(res);
  const status = answer.status;
  const where = `${probe.what}\n    ${probe.method} ${probe.path.slice(0, 200)}\n    answered ${status} ${answer.text.slice(0, 300)}`;
  if (status >= 500) return { status, problems: [`${where}\n    a 5xx`] };
  if (status < 400) return { status, problems: [] };
  refused += 1;
  const problems: string[] = [];
  try {
    expectErrorAnswer(answer, probe.what);
  } catch (err) {
    problems.push(`${where}\n    not {"error": "..."}: ${String(err).slice(0, 200)}`);
  }
  const back = echoed(`${headers}\n${answer.text}`, probe.uuids);
  if (back.length) problems.push(`${where}\n    repeats ${back.join(", ")}`);
  return { status, problems };
}

/** Sends a probe, then its follow-ups while it is accepted; what is wrong with the answers. */
async function judge(probe: Probe): Promise<string[]> {
  for (const p of [probe, ...(probe.whileAccepted ?? [])]) {
    const { status, problems } = await judgeOne(p);
    if (status >= 300 || problems.length) return problems;
  }
  return [];
}

async function judgeAll(probes: Probe[]): Promise<string[]> {
  const problems: string[] = [];
  for (const p of probes) problems.push(...(await judge(p)));
  return problems;
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

describe("no answer repeats a uuid taken from the request", () => {
  let w: World;
  let x: Extra;
  let strangerAgentUuid: string;

  beforeAll(async () => {
    w = await buildWorld();
    const { stranger } = w;
    const svc = await createService(stranger);
    const trg = await createTrigger(stranger, svc);
    const called = await call(trg.url, { method: "POST" });
    const action = (await called.json<{ uuid: string }>()).uuid;
    const agent = await createAgent(stranger, "elsewhere");
    strangerAgentUuid = agent.uuid;
    const k = await as(stranger, "POST", "/api/account/v1/apikey/", { label: "other" });
    const key = (await k.json<{ uuid: string }>()).uuid;
    const patchService = (await createService(w.user)).uuid;
    const patchAgent = (await createAgent(w.user, "patched")).uuid;
    x = { foreign: { service: svc.uuid, trigger: trg.uuid, action, agent: agent.uuid, key }, patchService, patchAgent };
  }, 60_000);

  afterAll(async () => {
    await waitQuiet();
  });

  for (const r of api.routes) {
    it(`${r.method} ${r.template}`, async () => {
      const before = refused;
      expect(await judgeAll(probesFor(r, w, x))).toEqual([]);
      // Not vacuous: a route that takes credentials or a path parameter refused some of them.
      if (r.auth !== "none" || r.params.length) expect(refused).toBeGreaterThan(before);
    });
  }

  it("a target naming an agent of another namespace, by its uuid", async () => {
    const probes: Probe[] = [];
    const targets = (uuid: string) => [
      { type: "agent", agent: uuid, swarm_service: "web" },
      { type: "agent", agent: uuid.toUpperCase(), swarm_service: "web" },
    ];
    for (const target of targets(strangerAgentUuid)) {
      for (const ns of ["", `${w.user.username}/`]) {
        probes.push(
          {
            what: `create a service in ${ns || "the caller's namespace"} with the stranger's agent ${target.agent}`,
            method: "POST",
            path: `/api/app/v1/${ns}service/`,
            headers: { authorization: w.user.auth, "content-type": "application/json" },
            body: JSON.stringify({ image: "tutum/hello-world", name: uniqueName("svc"), target }),
            uuids: [strangerAgentUuid],
          },
          {
            what: `point a service at the stranger's agent ${target.agent}`,
            method: "PATCH",
            path: `/api/app/v1/${ns}service/${x.patchService}/`,
            headers: { authorization: w.user.auth, "content-type": "application/json" },
            body: JSON.stringify({ target }),
            uuids: [strangerAgentUuid],
          },
        );
      }
    }
    expect(await judgeAll(probes)).toEqual([]);
  });

  it("a Docker Cloud target that is the service itself, its uuid in upper case", async () => {
    const target = {
      type: "dockercloud",
      url: "https://api.test",
      username: "remoteuser",
      apikey: "remote-api-key",
      service_uuid: x.patchService.toUpperCase(),
    };
    const problems = await judgeAll([
      {
        what: "PATCH a service to target itself",
        method: "PATCH",
        path: `/api/app/v1/service/${x.patchService}/`,
        headers: { authorization: w.user.auth, "content-type": "application/json" },
        body: JSON.stringify({ target }),
        uuids: [x.patchService],
      },
    ]);
    expect(problems).toEqual([]);
  });

  it("routes the document does not list: the streams, an agent's connection, unknown paths and methods", async () => {
    const [a, b, c, d, e, g, h] = [fresh(), fresh(), fresh(), fresh(), fresh(), fresh(), fresh()];
    const upgrade = { upgrade: "websocket" };
    const probes: Probe[] = [
      {
        what: "the events stream of a namespace named by a uuid",
        method: "GET",
        path: `/api/audit/v1/${a}/events`,
        headers: { ...upgrade, authorization: w.user.auth },
        uuids: [a],
      },
      {
        what: "the events stream, filtered by uuids, without an upgrade",
        method: "GET",
        path: `/api/audit/v1/events?object=/api/app/v1/service/${b}/&parents=${c}`,
        headers: { authorization: w.user.auth },
        uuids: [b, c],
      },
      {
        what: "the events stream, from a page whose host is a uuid",
        method: "GET",
        path: "/api/audit/v1/events",
        headers: { ...upgrade, authorization: w.user.auth, origin: `https://${d}.example.test` },
        uuids: [d],
      },
      {
        what: "an action's log stream, the action a uuid",
        method: "GET",
        path: `/api/audit/v1/action/${e.toUpperCase()}/logs/?follow=true`,
        headers: { ...upgrade, authorization: w.user.auth },
        uuids: [e],
      },
      {
        what: "an action's log stream, the credentials uuids in the query",
        method: "GET",
        path: `/api/audit/v1/action/${w.scopes.user.action}/logs/?user=${g}&token=${h}`,
        headers: upgrade,
        uuids: [g, h],
      },
    ];
    const [t1, t2, t3] = [fresh(), fresh(), fresh()];
    probes.push(
      {
        what: "an agent's connection with a uuid as its token",
        method: "GET",
        path: "/api/agent/v1/connect/",
        headers: { ...upgrade, authorization: `Bearer ${t1}` },
        uuids: [t1],
      },
      {
        what: "an agent's connection with a token of the caller's namespace holding uuid digits",
        method: "GET",
        path: "/api/agent/v1/connect/",
        headers: { ...upgrade, authorization: `Bearer dca_${w.user.username}_${hexOf(t2)}${hexOf(t3).slice(0, 8)}` },
        uuids: [t2, t3],
      },
    );
    const [n1, n2, n3, n4] = [fresh(), fresh(), fresh(), fresh()];
    probes.push(
      {
        what: "an unknown path under a service uuid",
        method: "GET",
        path: `/api/app/v1/service/${n1}/container/${n2.toUpperCase()}/`,
        headers: { authorization: w.user.auth },
        uuids: [n1, n2],
      },
      {
        what: "an unknown path, the uuid percent-encoded twice",
        method: "POST",
        path: `/api/app/v1/service/${w.scopes.user.service}/trigger/${encodeURIComponent(encodeURIComponent(n3))}/invoke/`,
        headers: {},
        uuids: [n3],
      },
      {
        what: "a method not allowed on a path holding a uuid",
        method: "PUT",
        path: `/api/app/v1/service/${n4}/trigger/`,
        headers: { authorization: w.user.auth, "content-type": "application/json" },
        body: "{}",
        uuids: [n4],
      },
    );
    expect(await judgeAll(probes)).toEqual([]);
  });

  it("the walk covers every field of every operation, and every target type, in a few hundred requests", () => {
    const probes = api.routes.flatMap((r) => probesFor(r, w, x));
    const missing: string[] = [];
    for (const r of api.routes) {
      const op = `${r.method} ${r.template}`;
      const fields = [
        ...r.params.map((p) => `path:${p}`),
        ...r.query.map((q) => `query:${q}`),
        ...(r.bodyName ? bodyFields(r).map((f) => `body:${f.label}`) : []),
        ...(r.auth !== "none" ? ["header:authorization"] : []),
        ...(readsHops(r) ? ["header:x-dockercloud-hops"] : []),
        ...(isCallRoute(r) ? ["header:idempotency-key"] : []),
      ];
      for (const field of fields) if (!covered.has(`${op} ${field}`)) missing.push(`${op} ${field}`);
    }
    expect(missing).toEqual([]);
    const create = api.routes.find((r) => r.bodyName === "ServiceCreate") as Route;
    const types = new Set(
      bodyFields(create)
        .map((f) => /\((.+)\)$/.exec(f.label)?.[1])
        .filter(Boolean),
    );
    expect([...types].sort()).toEqual([...TARGET_TYPES].sort());
    // At most this many requests, follow-ups included.
    const most = probes.reduce((n, p) => n + 1 + (p.whileAccepted?.length ?? 0), 0);
    expect(most).toBeLessThan(1_500);
  });
});
