import { AGENT_SILENCE_MS, type AgentReplacement, agentUri, replacementNote } from "../../../domain/agent";
import { AgentMessage, firstProblem, Hello } from "../../../domain/agent-protocol";
import { sha256Hex } from "../../../domain/crypto";
import { newUuidsInOneShard } from "../../../domain/ids";
import { Inventory } from "../../../domain/inventory";
import { streamEvent } from "../../../domain/stream-event";
import { closeQuietly, sendQuietly } from "../quiet-socket";
import { type Publisher, Streams } from "../streams";
import type { Agents } from "./agents";
import type { InventoryAgent, InventoryDesk } from "./inventory";

/** How stale the stored last_seen may get while an agent keeps talking (its pings are kept in memory too). */
const SEEN_WRITE_MS = 5_000;

/** Close codes of an agent's connection, for the agent to act on (4000–4999 are the application's). */
export const CLOSE = {
  replaced: { code: 4000, reason: "replaced by a newer connection of this agent" },
  deleted: { code: 4001, reason: "the agent was deleted; its token is refused from now on" },
  namespaceDeleted: { code: 4002, reason: "the namespace was deleted" },
  silent: { code: 4003, reason: "no sign of the agent for 90 s; dial again" },
  rotated: { code: 4004, reason: "the agent's token was replaced; start the agent with the new one" },
  helloRefused: { code: 4005, reason: "the hello was refused; see the error message before this close" },
  noHello: { code: 4006, reason: "no hello within 10 s, or a newer connection came first; dial again" },
} as const;

/** A connection must say hello this soon after it opens, or it is closed. */
export const HELLO_MS = 10_000;

/** A heartbeat the runtime answers without waking the object (hibernation); its time is the agent's last sign. */
export const PING = '{"type":"ping"}';
export const PONG = '{"type":"pong"}';

/** What the jobs' desk (agent-jobs.ts) does with the agents' messages. */
export type JobsDesk = {
  /** An agent said hello on a new connection: what it has to do goes out now. */
  connected(agentUuid: string, now: number): void;
  /** A message about one of its jobs; returns a problem to tell the agent, or null. */
  received(agentUuid: string, agentName: string, message: AgentMessage, now: number): string | null;
};

/** What a connection keeps across the object's hibernation. */
type Attachment = { opened: number; address: string | null; hello: boolean; node_id: string | null };

/**
 * Agents' connections: WebSockets held by the namespace's object with the
 * hibernation API (`acceptWebSocket`), tagged with the agent's uuid, so an
 * idle agent costs nothing and the object that holds the namespace's actions
 * can reach the agent directly.
 *
 * A connection is the agent only once it has said hello: before that it gets
 * no job and takes no one's place. Its hello then replaces the agent's
 * previous connection, which is told why and by whom (a stolen token cannot
 * take over unseen), and the replacement is recorded and published. Whether an
 * agent is connected is kept in its row (`connected_since`), so it survives
 * the object's hibernation.
 */
/** Writes the pointers of new services' uuids (the locator), before the services exist. */
export type ReservePointers = (uuids: string[]) => Promise<void>;

export class AgentLinks {
  /** Messages that wait behind an inventory still applying, and how many. */
  private inbox: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly agents: Agents,
    private readonly jobs: () => JobsDesk,
    private readonly streams: Publisher,
    private readonly inventory: { desk: InventoryDesk; reserve: ReservePointers },
  ) {}

  /** The upgrade of an agent's connection, authenticated by its token (the Worker checked its shape). */
  async accept(token: string, address: string | null): Promise<Response> {
    const row = this.agents.byTokenHash(await sha256Hex(token));
    // The Worker answers the refusal (one 401 for every refused token).
    if (!row) return new Response(null, { status: 401 });
    const now = Date.now();
    // One connection of an agent may wait for its hello: a newer one takes its place, not the agent's.
    for (const ws of this.sockets(row.uuid)) if (!attachment(ws).hello) closeQuietly(ws, CLOSE.noHello);
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, [row.uuid]);
    server.serializeAttachment({ opened: now, address, hello: false, node_id: null } satisfies Attachment);
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * A message from an agent: the first is its hello, which makes the
   * connection the agent's and sends its jobs; then messages about jobs go to
   * the jobs' desk. Anything else is answered with an error.
   */
  message(ws: WebSocket, data: string | ArrayBuffer): Promise<void> | undefined {
    const uuid = this.agentOf(ws);
    if (!uuid) return;
    const message = parseMessage(typeof data === "string" ? data : new TextDecoder().decode(data));
    const seen = attachment(ws);
    if (!seen.hello) {
      this.hello(ws, uuid, seen, message, Date.now());
      return;
    }
    if (this.waiting === 0 && message?.type !== "inventory") {
      void this.handle(ws, uuid, message);
      return;
    }
    // An inventory awaits its pointers: it, and whatever comes after it, apply in the order they came.
    this.waiting += 1;
    const next = () => this.handle(ws, uuid, message).finally(() => (this.waiting -= 1));
    this.inbox = this.inbox.then(next, next);
    return this.inbox;
  }

  /** A message of a connection that said hello. Only an inventory awaits anything (its pointers). */
  private async handle(ws: WebSocket, uuid: string, message: Message | null): Promise<void> {
    const row = this.agents.row(uuid);
    if (!row || ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    // A job's messages come several a second: last_seen is written at most every few seconds (a row
    // write each is most of what an agent's job costs), well within the 90 s an agent may stay silent.
    if (row.last_seen === null || now - row.last_seen >= SEEN_WRITE_MS) this.agents.seen(uuid, now);
    if (message?.type === "hello") {
      // Jobs went out on the first hello; a second one redelivers nothing.
      tell(ws, "hello was already said on this connection; it is said once, first");
      return;
    }
    if (message?.type === "inventory") return this.takeInventory(ws, row, message);
    const parsed = AgentMessage.safeParse(message);
    const problem = parsed.success
      ? this.jobs().received(uuid, row.name, parsed.data, now)
      : typeof message?.type === "string" && ["ack", "progress", "applied", "report"].includes(message.type)
        ? `${message.type}: ${firstProblem(parsed.error)}`
        : "unknown message: send a JSON object with a known type";
    if (problem) tell(ws, problem);
  }

  /**
   * An inventory message: checked whole (refused whole, never half
   * applied), then applied once the pointers of the services it brings in
   * are written.
   */
  private async takeInventory(ws: WebSocket, agent: InventoryAgent, message: Message): Promise<void> {
    const parsed = Inventory.safeParse(message);
    if (!parsed.success) {
      tell(ws, `inventory: ${firstProblem(parsed.error)}; nothing of this message was applied`);
      return;
    }
    const newcomers = this.inventory.desk.newcomers(agent, parsed.data);
    const reserved = newUuidsInOneShard(newcomers.length);
    const uuids = new Map(newcomers.map((i, n) => [i.id, reserved[n] as string]));
    if (uuids.size > 0) {
      await this.inventory.reserve([...uuids.values()]);
      // Read again after the await: the agent may have been deleted, or its connection replaced.
      if (!this.agents.row(agent.uuid) || ws.readyState !== WebSocket.OPEN) return;
    }
    for (const problem of this.inventory.desk.apply(agent, parsed.data, uuids, Date.now())) tell(ws, problem);
  }

  /** An open connection of the agent that said hello, or null. An agent silent past its limit is not one. */
  socketOf(uuid: string): WebSocket | null {
    this.reap(Date.now());
    return this.sockets(uuid).find((ws) => ws.readyState === WebSocket.OPEN && attachment(ws).hello) ?? null;
  }

  /** A connection ended: the agent is Disconnected unless another connection of it said hello. */
  closed(ws: WebSocket): void {
    const uuid = this.agentOf(ws);
    if (!uuid || !attachment(ws).hello) return;
    if (this.welcomed(uuid, ws).length > 0) return;
    const now = Date.now();
    if (this.agents.disconnected(uuid, now)) this.publish(uuid, "Disconnected", {});
  }

  /**
   * Closes the connections of agents silent for longer than AGENT_SILENCE_MS
   * and marks them Disconnected, so that `state` says whether an agent can be
   * reached now; and the connections that never said hello. Run before agents
   * are read.
   */
  reap(now: number): void {
    for (const { uuid, last_seen } of this.agents.connectedRows()) {
      const ping = this.lastPing(uuid);
      const sign = Math.max(last_seen ?? 0, ping ?? 0);
      if (now - sign <= AGENT_SILENCE_MS) continue;
      this.drop(uuid, CLOSE.silent);
      if (this.agents.disconnected(uuid, sign)) this.publish(uuid, "Disconnected", {});
    }
  }

  /** Before agents are read: silent connections, and those that did not say hello in time, are closed. */
  tidy(now: number): void {
    this.reap(now);
    for (const ws of this.agentSockets()) {
      const a = attachment(ws);
      if (!a.hello && now - a.opened > HELLO_MS) closeQuietly(ws, CLOSE.noHello);
    }
  }

  /** Closes an agent's connections (it was deleted, or its token replaced). */
  drop(uuid: string, why: { code: number; reason: string }): void {
    for (const ws of this.sockets(uuid)) closeQuietly(ws, why);
  }

  /** Closes every agent's connection (the namespace was deleted); the streams close their own. */
  dropAll(): void {
    for (const ws of this.agentSockets()) closeQuietly(ws, CLOSE.namespaceDeleted);
  }

  /** The last heartbeat the runtime answered for an agent, or null. */
  lastPing(uuid: string): number | null {
    let last: number | null = null;
    for (const ws of this.sockets(uuid)) {
      const at = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? null;
      if (at !== null && (last === null || at > last)) last = at;
    }
    return last;
  }

  /** The first message of a connection: a valid hello makes it the agent's; anything else is refused. */
  private hello(ws: WebSocket, uuid: string, seen: Attachment, message: Message | null, now: number): void {
    const parsed = Hello.safeParse(message);
    if (!parsed.success) {
      const said = message?.type === "hello" ? `hello: ${firstProblem(parsed.error)}` : "say hello first";
      tell(ws, `${said} (the first message of a connection is {"type":"hello", ...})`);
      if (message?.type === "hello") closeQuietly(ws, CLOSE.helloRefused);
      return;
    }
    const { type: _, ...report } = parsed.data;
    const current = { address: seen.address, node_id: report.node_id };
    let replaced: AgentReplacement | null = null;
    for (const old of this.welcomed(uuid, ws)) {
      const was = attachment(old);
      replaced = { at: now, previous: { address: was.address, node_id: was.node_id }, current };
      tell(old, replacementNote(replaced));
      closeQuietly(old, CLOSE.replaced);
    }
    ws.serializeAttachment({ ...seen, hello: true, node_id: report.node_id } satisfies Attachment);
    this.agents.welcomed(uuid, report, seen.address, replaced, now);
    this.publish(uuid, "Connected", replacedData(replaced));
    ws.send(JSON.stringify({ type: "welcome" }));
    this.jobs().connected(uuid, now);
  }

  /** Tells the events streams an agent connected, was replaced, or disconnected. */
  private publish(uuid: string, state: string, data: Record<string, string | boolean | null>): void {
    this.streams.publish(() =>
      streamEvent({ type: "agent", action: "update", uuid, resource_uri: agentUri(this.ns(), uuid), state, data }),
    );
  }

  private ns(): string {
    return this.agents.namespace();
  }

  /** The agent's open connections that said hello, but `except`. */
  private welcomed(uuid: string, except: WebSocket): WebSocket[] {
    return this.sockets(uuid).filter((s) => s !== except && s.readyState === WebSocket.OPEN && attachment(s).hello);
  }

  /** Every agent's connection (the streams' sockets are the others). */
  private agentSockets(): WebSocket[] {
    return this.ctx.getWebSockets().filter((ws) => !Streams.isStream(this.ctx, ws));
  }

  private sockets(uuid: string): WebSocket[] {
    return this.ctx.getWebSockets(uuid);
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

/** A connection accepted before connections kept their state is taken as one that said hello. */
function attachment(ws: WebSocket): Attachment {
  return (ws.deserializeAttachment() as Attachment | null) ?? { opened: 0, address: null, hello: true, node_id: null };
}

function replacedData(r: AgentReplacement | null): Record<string, string | boolean | null> {
  if (!r) return { replaced: false };
  return {
    replaced: true,
    previous_address: r.previous.address,
    previous_node_id: r.previous.node_id,
    address: r.current.address,
    node_id: r.current.node_id,
    note: replacementNote(r),
  };
}

/** An error message for the agent to print. */
const tell = (ws: WebSocket, error: string) => sendQuietly(ws, JSON.stringify({ type: "error", error }));
