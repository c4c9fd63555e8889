import { FINISHED_STATES } from "../../domain/action";
import { DEFAULT_TAIL, logMessages } from "../../domain/log-lines";
import type { EventFilters } from "../../domain/stream-event";
import type { Actions } from "./actions";
import type { AgentLinks } from "./agents/links";
import type { Members } from "./members";
import type { Streams } from "./streams";

/** The paths the Worker forwards upgrades to (an upgrade cannot travel over RPC). */
export const SOCKET_DOORS = {
  agent: "/agent/connect/",
  events: "/streams/events",
  logs: "/streams/logs",
} as const;

/** What the Worker tells the object about a stream it forwards (it has authenticated the caller). */
export const STREAM_HEADERS = {
  user: "x-stream-user",
  key: "x-stream-key",
  namespace: "x-stream-namespace",
  filters: "x-stream-filters",
  action: "x-stream-action",
  follow: "x-stream-follow",
  tail: "x-stream-tail",
} as const;

/** What the Worker tells the object about an agent's connection. */
export const AGENT_HEADERS = { token: "x-agent-token", address: "x-agent-address" } as const;

/** The edge's word for the caller's address, kept only if it reads as one (it is shown to members). */
const remoteAddress = (text: string): string | null => (/^[0-9A-Fa-f:.]{2,45}$/.test(text) ? text : null);

export type SocketRooms = { links: AgentLinks; streams: Streams; members: Members; actions: Actions };

/** Every refused upgrade is a 401 (the Python SDK re-dials for ever on any other status). */
export const refuseSocket = (error: string): Response => Response.json({ error }, { status: 401 });

/**
 * The upgrades that reach the namespace's object: an agent's connection (its
 * token), and the events and action-log streams of a caller the Worker
 * authenticated, whose membership is checked here.
 */
export async function openSocket(request: Request, r: SocketRooms): Promise<Response> {
  const door = new URL(request.url).pathname;
  const h = (name: string) => request.headers.get(name) ?? "";
  if (door === SOCKET_DOORS.agent)
    return r.links.accept(h(AGENT_HEADERS.token), remoteAddress(h(AGENT_HEADERS.address)));
  const caller = { user: h(STREAM_HEADERS.user), keyHash: h(STREAM_HEADERS.key) };
  const denied = r.members.denied(caller.user, h(STREAM_HEADERS.namespace));
  if (denied) return refuseSocket(denied.message);
  const full = r.streams.full(caller);
  if (full) return refuseSocket(full);
  if (door === SOCKET_DOORS.events) return r.streams.openEvents(caller, parseFilters(h(STREAM_HEADERS.filters)));
  if (door !== SOCKET_DOORS.logs) return refuseSocket("no such stream");
  const a = r.actions.row(h(STREAM_HEADERS.action));
  if (!a) return refuseSocket("Action not found");
  const tail = Number(h(STREAM_HEADERS.tail)) || DEFAULT_TAIL;
  // A finished action has no line to come: its stream closes after the last one, follow or not.
  const follow = h(STREAM_HEADERS.follow) === "true" && !FINISHED_STATES.includes(a.state);
  return r.streams.openLogs(caller, a.uuid, logMessages(r.actions.logTail(a.uuid, tail), a.touched_at), follow);
}

function parseFilters(text: string): EventFilters {
  try {
    const f = JSON.parse(text) as Partial<EventFilters>;
    return { object: f.object ?? null, type: f.type ?? null, parents: Array.isArray(f.parents) ? f.parents : [] };
  } catch {
    return { object: null, type: null, parents: [] };
  }
}
