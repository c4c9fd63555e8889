import { rfc1123 } from "./dates";

/**
 * One change in a namespace, as the events stream carries it
 * (`/api/audit/v1/[<ns>/]events`). Every field is present in every message
 * (Go decodes them into a struct it reuses between messages): an empty
 * string, never null, and `data` always an object.
 */
export type StreamEvent = {
  /**
   * The kind of object: "service", "trigger", "action", "agent" (it connected, was replaced, or
   * disconnected) or "registryhook" (a registry called it: `state` is the verdict).
   */
  type: "service" | "trigger" | "action" | "agent" | "registryhook";
  /** What happened to it: "create", "update" or "delete". */
  action: "create" | "update" | "delete";
  uuid: string;
  resource_uri: string;
  /** The object's state after the change ("" for objects without one). */
  state: string;
  /** Resource URIs the object belongs to (an action's or a trigger's service). */
  parents: string[];
  /** When it happened (RFC 1123, like every date of the API). */
  datetime: string;
  data: Record<string, string | number | boolean | null>;
};

export const streamEvent = (
  e: Omit<StreamEvent, "datetime" | "data" | "parents"> & { parents?: string[]; data?: StreamEvent["data"] },
): StreamEvent => ({
  type: e.type,
  action: e.action,
  uuid: e.uuid,
  resource_uri: e.resource_uri,
  state: e.state,
  parents: e.parents ?? [],
  datetime: rfc1123(Date.now()) ?? "",
  data: e.data ?? {},
});

/** Go's filters (`?object=`, `?type=`, `?parents=`, the parents comma-joined); absent means any. */
export type EventFilters = { object: string | null; type: string | null; parents: string[] };

/** Whether an event passes a stream's filters: its object, its type, and every parent asked for. */
export function eventMatches(e: StreamEvent, f: EventFilters): boolean {
  if (f.object !== null && f.object !== e.resource_uri) return false;
  if (f.type !== null && f.type.toLowerCase() !== e.type) return false;
  return f.parents.every((p) => e.parents.includes(p));
}
