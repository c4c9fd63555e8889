import { AGENT_SILENCE_MS, type AgentReport, MAX_REPORT_FIELD } from "../../domain/agent";
import { AgentMessage } from "../../domain/agent-protocol";
import { sha256Hex } from "../../domain/crypto";
import type { Agents } from "./agents";

/** Close codes of an agent's connection, for the agent to act on (4000–4999 are the application's). */
export const CLOSE = {
  replaced: { code: 4000, reason: "replaced by a newer connection of this agent" },
  deleted: { code: 4001, reason: "the agent was deleted; its token is refused from now on" },
  namespaceDeleted: { code: 4002, reason: "the namespace was deleted" },
  silent: { code: 4003, reason: "no sign of the agent for 90 s; dial again" },
} as const;

/** A heartbeat the runtime answers without waking the object (hibernation); its time is the agent's last sign. */
export const PING = '{"type":"ping"}';
export const PONG = '{"type":"pong"}';

/**
 * Agents' connections: WebSockets held by the namespace's object with the
 * hibernation API (`acceptWebSocket`), tagged with the agent's uuid, so an
 * idle agent costs nothing and the object that holds the namespace's actions
 * can reach the agent directly. One connection per agent: a new one replaces
 * the old. Whether an agent is connected is kept in its row
 * (`connected_since`), so it survives the object's hibernation.
 */
/** What the agents' messages lead to (agent-jobs.ts). */
export type JobsDesk = {
  /** An agent said hello on a new connection: what it has to do goes out now. */
  connected(agentUuid: string, now: number): void;
  /** A message about one of its jobs. */
  received(agentUuid: string, agentName: string, message: AgentMessage, now: number): void;
};

export class AgentLinks {
  constructor(
    private readonly ctx: DurableObjectState,
    private readonly agents: Agents,
    private readonly jobs: () => JobsDesk,
  ) {}

  /** The upgrade of an agent's connection, authenticated by its token (the Worker checked its shape). */
  async accept(token: string): Promise<Response> {
    const row = this.agents.byTokenHash(await sha256Hex(token));
    // The Worker answers the refusal (one 401 for every refused token).
    if (!row) return new Response(null, { status: 401 });
    for (const old of this.ctx.getWebSockets(row.uuid)) old.close(CLOSE.replaced.code, CLOSE.replaced.reason);
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, [row.uuid]);
    this.agents.connected(row.uuid, Date.now());
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * A message from an agent: `hello` reports what it runs, and the jobs it
   * has go out; a message about a job goes to the jobs' desk; anything else
   * is answered with an error.
   */
  message(ws: WebSocket, data: string | ArrayBuffer): void {
    const uuid = this.agentOf(ws);
    if (!uuid) return;
    const now = Date.now();
    const text = typeof data === "string" ? data : new TextDecoder().decode(data);
    const message = parseMessage(text);
    if (message?.type === "hello") {
      this.agents.reported(uuid, helloReport(message), now);
      ws.send(JSON.stringify({ type: "welcome" }));
      this.jobs().connected(uuid, now);
      return;
    }
    const row = this.agents.row(uuid);
    if (!row) return;
    const parsed = AgentMessage.safeParse(message);
    if (parsed.success) {
      this.jobs().received(uuid, row.name, parsed.data, now);
      return;
    }
    this.agents.seen(uuid, now);
    ws.send(JSON.stringify({ type: "error", error: "unknown message: send a JSON object with a known type" }));
  }

  /** An open connection of the agent, or null. An agent silent past its limit is not one to hand a job to. */
  socketOf(uuid: string): WebSocket | null {
    this.reap(Date.now());
    return this.ctx.getWebSockets(uuid).find((ws) => ws.readyState === WebSocket.OPEN) ?? null;
  }

  /** A connection ended: the agent is Disconnected unless a newer connection of it is open. */
  closed(ws: WebSocket): void {
    const uuid = this.agentOf(ws);
    if (!uuid) return;
    const others = this.ctx.getWebSockets(uuid).filter((s) => s !== ws && s.readyState === WebSocket.OPEN);
    if (others.length === 0) this.agents.disconnected(uuid, Date.now());
  }

  /**
   * Closes the connections of agents silent for longer than AGENT_SILENCE_MS
   * and marks them Disconnected, so that `state` says whether an agent can be
   * reached now. Run before agents are read.
   */
  reap(now: number): void {
    for (const { uuid, last_seen } of this.agents.connectedRows()) {
      const ping = this.lastPing(uuid);
      const sign = Math.max(last_seen ?? 0, ping ?? 0);
      if (now - sign <= AGENT_SILENCE_MS) continue;
      this.drop(uuid, CLOSE.silent);
      this.agents.disconnected(uuid, sign);
    }
  }

  /** Closes an agent's connection (it was deleted). */
  drop(uuid: string, why: { code: number; reason: string }): void {
    for (const ws of this.ctx.getWebSockets(uuid)) ws.close(why.code, why.reason);
  }

  /** Closes every connection (the namespace was deleted). */
  dropAll(): void {
    for (const ws of this.ctx.getWebSockets()) ws.close(CLOSE.namespaceDeleted.code, CLOSE.namespaceDeleted.reason);
  }

  /** The last heartbeat the runtime answered for an agent, or null. */
  lastPing(uuid: string): number | null {
    let last: number | null = null;
    for (const ws of this.ctx.getWebSockets(uuid)) {
      const at = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? null;
      if (at !== null && (last === null || at > last)) last = at;
    }
    return last;
  }

  private agentOf(ws: WebSocket): string | undefined {
    return this.ctx.getTags(ws)[0];
  }
}

type Message = { type?: unknown; [field: string]: unknown };

function parseMessage(text: string): Message | null {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Message) : null;
  } catch {
    return null;
  }
}

/** What a hello reports, each field a short string or null: it is shown to users as is. */
function helloReport(m: Message): AgentReport {
  const field = (v: unknown) => (typeof v === "string" && v !== "" ? v.slice(0, MAX_REPORT_FIELD) : null);
  return {
    agent_version: field(m.agent_version),
    orchestrator: field(m.orchestrator),
    engine_version: field(m.engine_version),
    node_id: field(m.node_id),
  };
}
