import { z } from "@hono/zod-openapi";
import { randomHex } from "./crypto";
import { rfc1123 } from "./dates";

/**
 * Agents: processes that run next to a user's orchestrator, dial out to this
 * service and perform operations there. An agent is a resource of a
 * namespace; its token, shown once, is what it connects with.
 */

export const AGENT_STATES = ["Connected", "Disconnected"] as const;
export type AgentState = (typeof AGENT_STATES)[number];

/** Agents a namespace may hold: each is a credential to keep track of. */
export const MAX_AGENTS_PER_NAMESPACE = 100;

const AGENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const agentName = z.string({ error: "name must be a string" }).regex(AGENT_NAME, {
  error: "name must be 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit",
});

export const AgentCreate = z.object({ name: agentName }).openapi("AgentCreate");
export type AgentCreate = z.infer<typeof AgentCreate>;
export const AgentPatch = z.object({ name: agentName.optional() }).openapi("AgentPatch");
export type AgentPatch = z.infer<typeof AgentPatch>;

export type AgentFilters = { name?: string; state?: string };

/**
 * An agent must show a sign of life (a ping, any message) at least this often;
 * past it, its connection is presumed dead (a NAT or a firewall may drop an
 * idle connection without either end hearing of it) and is closed. The agent
 * program pings every 15 s by default, at most every 60 s.
 */
export const AGENT_SILENCE_MS = 90_000;

/** What the agent's process reported when it connected. */
export type AgentReport = {
  agent_version: string | null;
  orchestrator: string | null;
  engine_version: string | null;
  node_id: string | null;
};

export type AgentRow = {
  seq: number;
  uuid: string;
  name: string;
  token_hash: string;
  created_at: number;
  connected_since: number | null;
  last_seen: number | null;
  /** JSON of the last AgentReport, or null before the first connection. */
  report: string | null;
  /** The remote address of the last connection that said hello, as the edge saw it. */
  address: string | null;
  /** JSON of the last AgentReplacement, or null if no connection ever took another's place. */
  replaced: string | null;
};

/** Where a connection of an agent came from. */
export type AgentEndpoint = { address: string | null; node_id: string | null };

/**
 * A connection that said hello while another of the same agent was open
 * took its place: the token is the agent's identity, so whoever holds it
 * becomes the agent. Kept, and shown, so that a stolen token cannot take
 * over unseen.
 */
export type AgentReplacement = { at: number; previous: AgentEndpoint; current: AgentEndpoint };

/** A replacement in a sentence, for the connection that is closed and for the events stream. */
export function replacementNote(r: AgentReplacement): string {
  const where = (e: AgentEndpoint) => `node ${e.node_id ?? "(not reported)"}, address ${e.address ?? "(unknown)"}`;
  if (r.previous.node_id !== null && r.previous.node_id === r.current.node_id) {
    return `replaced by a newer connection from the same node (${where(r.current)})`;
  }
  return `replaced by a connection from another node (${where(r.current)}; this one was ${where(r.previous)}): whoever holds this agent's token is the agent now; if that is not yours, rotate the token (POST <agent>/token/)`;
}

/**
 * An agent's token: "dca_", the namespace it belongs to, "_", then 160
 * random bits in hex. The namespace in clear lets a connection find the
 * agent's object without a lookup; only the token's SHA-256 is stored.
 */
export const newAgentToken = (namespace: string): string => `dca_${namespace}_${randomHex(20)}`;

/** The namespace a token names, or null when it is not a token's shape. */
export function tokenNamespace(token: string): string | null {
  const match = /^dca_([a-z0-9]{4,30})_[0-9a-f]{40}$/.exec(token);
  return match?.[1] ?? null;
}

export const agentUri = (namespace: string, uuid: string) => `/api/agent/v1/${namespace}/agent/${uuid}/`;

export function serializeAgent(namespace: string, row: AgentRow) {
  const report: Partial<AgentReport> = row.report ? JSON.parse(row.report) : {};
  const state: AgentState = row.connected_since === null ? "Disconnected" : "Connected";
  const replaced: AgentReplacement | null = row.replaced ? JSON.parse(row.replaced) : null;
  return {
    uuid: row.uuid,
    name: row.name,
    resource_uri: agentUri(namespace, row.uuid),
    state,
    created: rfc1123(row.created_at),
    connected_since: rfc1123(row.connected_since),
    last_seen: rfc1123(row.last_seen),
    agent_version: report.agent_version ?? null,
    orchestrator: report.orchestrator ?? null,
    engine_version: report.engine_version ?? null,
    node_id: report.node_id ?? null,
    address: row.address,
    replaced_at: replaced ? rfc1123(replaced.at) : null,
    replacement: replaced ? { previous: replaced.previous, current: replaced.current } : null,
  };
}
export type AgentJson = ReturnType<typeof serializeAgent>;
