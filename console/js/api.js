// The API, called with the signed-in person's credentials in an Authorization header (never a
// cookie: the browser attaches nothing by itself, so another site's page can make it send nothing).

import { session } from "./session.js";

/** A refusal of the API, with its own words ({"error": "..."}), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

function basic(username, apikey) {
  const bytes = new TextEncoder().encode(`${username}:${apikey}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** One JSON request; `creds` overrides the session's (signing in checks them first). */
export async function api(method, path, { body, creds } = {}) {
  const who = creds ?? session.get();
  const headers = { accept: "application/json" };
  if (who) headers.authorization = basic(who.username, who.apikey);
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
    });
  } catch (err) {
    throw new ApiError(0, `the API could not be reached (${err.message})`);
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: the status says it.
  }
  if (!res.ok) throw new ApiError(res.status, json?.error ?? `the API answered ${res.status} ${res.statusText}`);
  return json;
}

const enc = encodeURIComponent;

/** The API's paths for the namespace `ns`. */
export const paths = {
  namespaces: () => "/api/account/v1/namespace/",
  services: (ns) => `/api/app/v1/${enc(ns)}/service/`,
  service: (ns, uuid) => `/api/app/v1/${enc(ns)}/service/${enc(uuid)}/`,
  triggers: (ns, service) => `/api/app/v1/${enc(ns)}/service/${enc(service)}/trigger/`,
  actions: (ns) => `/api/audit/v1/${enc(ns)}/action/`,
  action: (ns, uuid) => `/api/audit/v1/${enc(ns)}/action/${enc(uuid)}/`,
  agents: (ns) => `/api/agent/v1/${enc(ns)}/agent/`,
  agent: (ns, uuid) => `/api/agent/v1/${enc(ns)}/agent/${enc(uuid)}/`,
  ticket: (ns) => `/api/audit/v1/${enc(ns)}/streamticket/`,
  events: (ns) => `/api/audit/v1/${enc(ns)}/events`,
  logs: (ns, uuid) => `/api/audit/v1/${enc(ns)}/action/${enc(uuid)}/logs/`,
};

/**
 * A WebSocket to one of the namespace's streams: a single-use ticket is asked for with the
 * credentials in a header, and only the ticket goes in the URL.
 */
export async function openStream(ns, path, query = {}) {
  const { ticket } = await api("POST", paths.ticket(ns));
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  for (const [name, value] of Object.entries({ ...query, ticket })) url.searchParams.set(name, value);
  return new WebSocket(url);
}
