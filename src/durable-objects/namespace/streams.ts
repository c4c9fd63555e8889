import { type LogMessage, logMessage } from "../../domain/log-lines";
import { type EventFilters, eventMatches, type StreamEvent } from "../../domain/stream-event";
import { closeQuietly, sendQuietly } from "./quiet-socket";

/**
 * Open streams (events and followed action logs) a namespace holds at most, one
 * user in it at most (whatever keys they use), and one API key at most. The
 * user's bound is what keeps one member from taking every slot of an
 * organization: keys are self-service, so the key's bound alone does not.
 */
export const MAX_STREAMS_PER_NAMESPACE = 200;
export const MAX_STREAMS_PER_USER = 40;
export const MAX_STREAMS_PER_KEY = 20;

/** Why the object closes a stream, for the client to read (4000–4999 are the application's). */
export const STREAM_CLOSE = {
  finished: { code: 1000, reason: "the action finished" },
  sent: { code: 1000, reason: "that was the last line" },
  revoked: { code: 4401, reason: "the API key or the membership was revoked" },
  namespaceDeleted: { code: 4402, reason: "the namespace was deleted" },
} as const;

/** What the modules that change the namespace tell the streams. */
export type Publisher = Pick<Streams, "publish" | "logLine" | "finished">;

/** Who opened a stream: the user, and the SHA-256 of the key it authenticated with. */
export type StreamCaller = { user: string; keyHash: string };

const STREAM = "stream";
const EVENTS = "events";
const logsTag = (action: string) => `logs:${action}`;
const userTag = (user: string) => `u:${user}`;
const keyTag = (hash: string) => `k:${hash}`;

/**
 * The namespace's live streams: the events stream and action logs, held as
 * hibernatable WebSockets (`ctx.acceptWebSocket`), so an idle listener costs
 * nothing; the runtime answers the clients' pings. Each socket is tagged
 * with who opened it (user, key), so revoking either closes it at once. The
 * modules that change the namespace publish here as they write.
 */
export class Streams {
  constructor(private readonly ctx: DurableObjectState) {}

  /** Whether a socket is a stream's (the others are agents'). */
  static isStream(ctx: DurableObjectState, ws: WebSocket): boolean {
    return ctx.getTags(ws).includes(STREAM);
  }

  /**
   * Why another stream may not open now, naming the cap, or null. The user's
   * cap is told first and the key's last: a refusal for the key then means
   * another key of the caller's would be served.
   */
  full(caller: StreamCaller): string | null {
    if (this.ctx.getWebSockets(userTag(caller.user)).length >= MAX_STREAMS_PER_USER) {
      return `per-user cap: you have ${MAX_STREAMS_PER_USER} streams open in this namespace, the most one user may hold with all their keys; close one first`;
    }
    if (this.ctx.getWebSockets(STREAM).length >= MAX_STREAMS_PER_NAMESPACE) {
      return `per-namespace cap: this namespace has ${MAX_STREAMS_PER_NAMESPACE} streams open, the most its members may hold together; close one first`;
    }
    if (this.ctx.getWebSockets(keyTag(caller.keyHash)).length >= MAX_STREAMS_PER_KEY) {
      return `per-key cap: this API key has ${MAX_STREAMS_PER_KEY} streams open, the most one key may hold; close one first or use another of your keys`;
    }
    return null;
  }

  /** The events stream: every change from now on that passes `filters`. */
  openEvents(caller: StreamCaller, filters: EventFilters): Response {
    const [client, server] = pair();
    this.ctx.acceptWebSocket(server, [STREAM, EVENTS, userTag(caller.user), keyTag(caller.keyHash)]);
    server.serializeAttachment(filters);
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * An action's log: its last lines now, then (with `follow`, while the
   * action runs) each line as it is written; closed once the action
   * finishes, or at once after the last line without `follow`.
   */
  openLogs(caller: StreamCaller, action: string, lines: LogMessage[], follow: boolean): Response {
    const [client, server] = pair();
    if (!follow) {
      // Nothing will follow: a plain socket of this request, sent its lines and closed at once. (A
      // socket handed to the hibernation API and closed before the handshake reached the client
      // was seen to stay open for the client behind wrangler's dev proxy.)
      server.accept();
      for (const m of lines) server.send(JSON.stringify(m));
      server.close(STREAM_CLOSE.sent.code, STREAM_CLOSE.sent.reason);
      return new Response(null, { status: 101, webSocket: client });
    }
    this.ctx.acceptWebSocket(server, [STREAM, logsTag(action), userTag(caller.user), keyTag(caller.keyHash)]);
    for (const m of lines) server.send(JSON.stringify(m));
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Sends a change to the events streams whose filters it passes; built only when one is open. */
  publish(change: StreamEvent | (() => StreamEvent)): void {
    const sockets = this.ctx.getWebSockets(EVENTS);
    if (sockets.length === 0) return;
    const event = typeof change === "function" ? change() : change;
    const text = JSON.stringify(event);
    for (const ws of sockets) {
      const filters = ws.deserializeAttachment() as EventFilters | null;
      if (!filters || eventMatches(event, filters)) sendQuietly(ws, text);
    }
  }

  /** A line was added to an action's log. */
  logLine(action: string, line: string): void {
    const sockets = this.ctx.getWebSockets(logsTag(action));
    if (sockets.length === 0) return;
    const text = JSON.stringify(logMessage(line, Date.now()));
    for (const ws of sockets) sendQuietly(ws, text);
  }

  /** An action finished: its followers have had its last line. */
  finished(action: string): void {
    for (const ws of this.ctx.getWebSockets(logsTag(action))) closeQuietly(ws, STREAM_CLOSE.finished);
  }

  /** A member left, or an API key was revoked: its streams close now. */
  closeUser(user: string): void {
    for (const ws of this.ctx.getWebSockets(userTag(user))) closeQuietly(ws, STREAM_CLOSE.revoked);
  }

  /** The namespace was deleted: every stream closes, with the streams' own code. */
  closeAll(): void {
    for (const ws of this.ctx.getWebSockets(STREAM)) closeQuietly(ws, STREAM_CLOSE.namespaceDeleted);
  }

  closeKey(hash: string): void {
    for (const ws of this.ctx.getWebSockets(keyTag(hash))) closeQuietly(ws, STREAM_CLOSE.revoked);
  }
}

function pair(): [WebSocket, WebSocket] {
  return Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
}
