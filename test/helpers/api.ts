import { env, exports } from "cloudflare:workers";

export const ADMIN_TOKEN = env.ADMIN_TOKEN;

/** A request to the Worker under test, through its real fetch handler. */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`https://api.test${path}`, init));
}

export function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return call(path, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export const basic = (username: string, apikey: string) => `Basic ${btoa(`${username}:${apikey}`)}`;

let counter = 0;
/** Namespace names are 4-30 of a-z0-9 and unique per test file run. */
export function uniqueName(prefix = "user"): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}${Math.floor(Math.random() * 1e4)}`.slice(0, 30);
}

export type User = { username: string; apikey: string; auth: string };

/** Creates a user and an API key through the admin API. */
export async function createUser(username = uniqueName()): Promise<User> {
  const u = await admin("POST", "/api/admin/v1/user/", { username });
  if (u.status !== 201) throw new Error(`user create failed: ${u.status} ${await u.text()}`);
  const k = await admin("POST", `/api/admin/v1/user/${username}/apikey/`, { label: "test" });
  if (k.status !== 201) throw new Error(`key create failed: ${k.status} ${await k.text()}`);
  const { key } = await k.json<{ key: string }>();
  return { username, apikey: key, auth: basic(username, key) };
}

export async function createOrg(name = uniqueName("org"), members: string[] = []): Promise<string> {
  const r = await admin("POST", "/api/admin/v1/organization/", { name });
  if (r.status !== 201) throw new Error(`org create failed: ${r.status} ${await r.text()}`);
  for (const username of members) {
    const m = await admin("POST", `/api/admin/v1/organization/${name}/member/`, { username });
    if (m.status !== 201) throw new Error(`member add failed: ${m.status} ${await m.text()}`);
  }
  return name;
}

/** A JSON request as the Python SDK sends it: Content-Type and Accept on everything. */
export function asPython(user: User, method: string, path: string, body?: unknown): Promise<Response> {
  return call(path, {
    method,
    headers: {
      authorization: user.auth,
      accept: "*/*",
      "content-type": "application/json",
      ...(body === undefined && method !== "GET" ? { "content-length": "0" } : {}),
    },
    body: body === undefined ? (method === "GET" ? undefined : "") : JSON.stringify(body),
  });
}

/**
 * A request as the Go SDK sends it: Accept JSON, no Content-Type, `{}` on
 * bodiless calls. The body goes as bytes: a string body would make the Request
 * add `Content-Type: text/plain;charset=UTF-8`, which Go never sends. (A Request
 * object cannot carry a body on GET; the e2e suite sends Go's `{}` GET bodies
 * over real HTTP.)
 */
export function asGo(user: User, method: string, path: string, body: unknown = {}): Promise<Response> {
  return call(path, {
    method,
    headers: { authorization: user.auth, accept: "application/json" },
    body: method === "GET" || method === "HEAD" ? undefined : new TextEncoder().encode(JSON.stringify(body)),
  });
}

/** A JSON request with the user's Basic credentials. */
export function as(user: User, method: string, path: string, body?: unknown): Promise<Response> {
  return call(path, {
    method,
    headers: { authorization: user.auth, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export type ServiceJson = { uuid: string; resource_uri: string; name: string; [k: string]: unknown };

export async function createService(user: User, body: Record<string, unknown> = {}, ns?: string): Promise<ServiceJson> {
  const path = ns ? `/api/app/v1/${ns}/service/` : "/api/app/v1/service/";
  const r = await as(user, "POST", path, { image: "tutum/hello-world", name: uniqueName("svc"), ...body });
  if (r.status !== 201) throw new Error(`service create failed: ${r.status} ${await r.text()}`);
  return r.json<ServiceJson>();
}

export type TriggerJson = { uuid: string; name: string; operation: string; url: string; resource_uri: string };

export async function createTrigger(
  user: User,
  service: ServiceJson,
  body: Record<string, unknown> = {},
): Promise<TriggerJson> {
  const r = await as(user, "POST", `${service.resource_uri}trigger/`, body);
  if (r.status !== 201) throw new Error(`trigger create failed: ${r.status} ${await r.text()}`);
  return r.json<TriggerJson>();
}

/** An agent as the API shows it. */
export type AgentJson = {
  uuid: string;
  name: string;
  resource_uri: string;
  state: string;
  created: string;
  connected_since: string | null;
  last_seen: string | null;
  agent_version: string | null;
  orchestrator: string | null;
  engine_version: string | null;
  node_id: string | null;
  address: string | null;
  replaced_at: string | null;
  replacement: { previous: AgentEndpoint; current: AgentEndpoint } | null;
};
export type AgentEndpoint = { address: string | null; node_id: string | null };
/** The answer to an agent's create: the agent and its token, shown this once. */
export type NewAgentJson = AgentJson & { token: string };

export async function createAgent(user: User, name = "edge", ns?: string): Promise<NewAgentJson> {
  const r = await as(user, "POST", `/api/agent/v1/${ns ? `${ns}/` : ""}agent/`, { name });
  if (r.status !== 201) throw new Error(`agent create failed: ${r.status} ${await r.text()}`);
  return r.json<NewAgentJson>();
}
