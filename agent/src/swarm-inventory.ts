import { type InventoryEntry, type InventorySource, safeText, type Watch } from "./inventory.ts";
import type { InventoryItem, UpdateState } from "./protocol.ts";
import type { TaskJson } from "./swarm-converge.ts";
import { replicasOf, type ServiceJson } from "./swarm-spec.ts";

/**
 * Swarm's side of the inventory (inventory.ts): the services and their tasks
 * as the engine lists them (GET /services, GET /tasks: one call each, however
 * many services), turned into inventory items by pure functions; and the
 * engine's event stream, which says which service may have changed.
 */

/** What the inventory uses of the engine (dockerode's Docker has these). */
export interface SwarmEngine {
  listServices(options?: { filters?: { id?: string[] } }): Promise<unknown[]>;
  listTasks(options?: { filters?: { service?: string[]; "desired-state"?: string[] } }): Promise<unknown[]>;
  getEvents(options?: { filters?: { type?: ("service" | "container")[] } }): Promise<NodeJS.ReadableStream>;
}

export type InventoryTaskJson = TaskJson & { ServiceID?: string };
export type SwarmSnapshot = { services: ServiceJson[]; tasks: InventoryTaskJson[] };

export const STACK_LABEL = "com.docker.stack.namespace";
export const MAX_CONTAINERS_LABEL = "io.dockercloud.max_num_containers";
/** The label Swarm puts on a task's container, naming its service. */
export const SERVICE_ID_ATTRIBUTE = "com.docker.swarm.service.id";

const UPDATE_STATES: readonly UpdateState[] = [
  "updating",
  "paused",
  "completed",
  "rollback_started",
  "rollback_paused",
  "rollback_completed",
];
/** States whose message says something worth showing: why the update stopped or was undone. */
const EXPLAINED_STATES: readonly UpdateState[] = [
  "paused",
  "rollback_started",
  "rollback_paused",
  "rollback_completed",
];
const UPDATE_MESSAGE_MAX = 500;
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/;
const IMAGE_MAX = 255;
const STACK = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const SERVICE_ID = /^[A-Za-z0-9]{1,64}$/;
/** Beyond this many services changed at once, reading them all is cheaper than naming each in the query. */
const MAX_IDS_IN_QUERY = 100;
/** An event is a few hundred bytes: a line longer than this is not one, and is dropped. */
const MAX_EVENT_LINE = 1_000_000;

/** The image as the service accepts one, or null. */
const imageOf = (image: string | undefined) => (image && image.length <= IMAGE_MAX && IMAGE.test(image) ? image : null);

const stackOf = (stack: string | undefined) => (stack && STACK.test(stack) ? stack : null);

/** The label's maximum, when it is a whole number from 1 to 1,000; anything else is as if it were not set. */
export function maxContainersOf(label: string | undefined): number | null {
  if (!label || !/^\d{1,4}$/.test(label)) return null;
  const max = Number(label);
  return max >= 1 && max <= 1_000 ? max : null;
}

/** An ISO 8601 time in one form whatever precision the engine wrote (it writes nanoseconds), or null. */
function timeOf(time: unknown): string | null {
  const at = typeof time === "string" ? Date.parse(time) : Number.NaN;
  return Number.isNaN(at) ? null : new Date(at).toISOString();
}

function updateOf(service: ServiceJson): InventoryItem["update"] {
  const status = service.UpdateStatus ?? null;
  const state = UPDATE_STATES.find((s) => s === status?.State) ?? null;
  const explained = state !== null && EXPLAINED_STATES.includes(state);
  return { state, message: explained ? safeText(status?.Message, UPDATE_MESSAGE_MAX) : null };
}

/** A service as the inventory shows it; `tasks` are the service's own. */
export function itemOf(service: ServiceJson, tasks: readonly InventoryTaskJson[]): InventoryItem {
  const spec = service.Spec;
  const labels = spec.Labels ?? {};
  const replicas = replicasOf(spec);
  const active = tasks.filter((t) => t.DesiredState === "running");
  return {
    id: service.ID,
    name: spec.Name ?? "",
    image: imageOf(spec.TaskTemplate?.ContainerSpec?.Image),
    mode: replicas === null ? "global" : "replicated",
    replicas,
    desired: replicas ?? active.length,
    running: active.filter((t) => t.Status?.State === "running").length,
    update: updateOf(service),
    stack: stackOf(labels[STACK_LABEL]),
    max_num_containers: maxContainersOf(labels[MAX_CONTAINERS_LABEL]),
    updated_at: timeOf(service.UpdatedAt),
  };
}

/** Why a Swarm service cannot be an item at all, or null. */
function unfitOf(service: ServiceJson): string | null {
  const mode = service.Spec.Mode ?? {};
  if ("ReplicatedJob" in mode || "GlobalJob" in mode) return "it is a job (its tasks run to completion), not a service";
  return null;
}

/** Every service of the snapshot, each with its own tasks. */
export function entriesOf(snapshot: SwarmSnapshot): InventoryEntry[] {
  const tasksOf = new Map<string, InventoryTaskJson[]>();
  for (const task of snapshot.tasks) {
    const id = task.ServiceID ?? "";
    const list = tasksOf.get(id);
    if (list) list.push(task);
    else tasksOf.set(id, [task]);
  }
  return snapshot.services.map((service) => ({
    item: itemOf(service, tasksOf.get(service.ID) ?? []),
    labels: service.Spec.Labels ?? {},
    unfit: unfitOf(service),
  }));
}

/** Only the tasks meant to run count (desired and running both): the engine keeps a history of the others. */
const ACTIVE = { "desired-state": ["running"] };

/**
 * The services with these ids (those that still exist) and their tasks, or
 * every service for null: one listing of each, not one call per service.
 */
export async function readSwarm(engine: SwarmEngine, ids: readonly string[] | null): Promise<SwarmSnapshot> {
  if (ids?.length === 0) return { services: [], tasks: [] };
  const few = ids !== null && ids.length <= MAX_IDS_IN_QUERY;
  for (let attempt = 1; ; attempt++) {
    const listed = (await engine.listServices(few ? { filters: { id: [...ids] } } : {})) as ServiceJson[];
    // The engine's id filter matches prefixes.
    const wanted = ids === null ? null : new Set(ids);
    const services = wanted ? listed.filter((s) => wanted.has(s.ID)) : listed;
    if (services.length === 0) return { services, tasks: [] };
    try {
      const filters = few ? { ...ACTIVE, service: services.map((s) => s.ID) } : ACTIVE;
      const tasks = (await engine.listTasks({ filters })) as InventoryTaskJson[];
      return { services, tasks };
    } catch (err) {
      // A service removed between the two calls makes the engine refuse the whole task list: read both again.
      if ((err as { statusCode?: number }).statusCode !== 404 || attempt >= 3) throw err;
    }
  }
}

/** The service an event of the engine is about, or null: a service's own, or its task's container (on this node). */
export function serviceOfEvent(event: unknown): string | null {
  const e = (event ?? {}) as { Type?: string; Action?: string; Actor?: { ID?: string; Attributes?: object } };
  let id: unknown = null;
  if (e.Type === "service") id = e.Actor?.ID;
  // A health check's exec comes every few seconds and changes nothing the inventory shows.
  else if (e.Type === "container" && !e.Action?.startsWith("exec_")) {
    id = (e.Actor?.Attributes as Record<string, unknown> | undefined)?.[SERVICE_ID_ATTRIBUTE];
  }
  return typeof id === "string" && SERVICE_ID.test(id) ? id : null;
}

/** Reads the engine's event stream (one JSON object a line) and hands on the service of each event. */
export function followEvents(
  stream: NodeJS.ReadableStream,
  changed: (id: string) => void,
  serviceOf: (event: unknown) => string | null = serviceOfEvent,
): Promise<void> {
  let pending = "";
  stream.on("data", (chunk: Buffer | string) => {
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    if (pending.length > MAX_EVENT_LINE) pending = "";
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        const id = serviceOf(JSON.parse(line));
        if (id) changed(id);
      } catch {
        // Not an event: nothing to hand on.
      }
    }
  });
  return new Promise<void>((resolve) => {
    for (const end of ["end", "close", "error"]) stream.on(end, () => resolve());
  });
}

/** The inventory's source on a Swarm manager. */
export class SwarmInventorySource implements InventorySource {
  private readonly engine: SwarmEngine;

  constructor(engine: SwarmEngine) {
    this.engine = engine;
  }

  async read(ids: readonly string[] | null): Promise<InventoryEntry[]> {
    return entriesOf(await readSwarm(this.engine, ids));
  }

  async watch(changed: (id: string) => void): Promise<Watch> {
    const stream = await this.engine.getEvents({ filters: { type: ["service", "container"] } });
    return {
      ended: followEvents(stream, changed),
      close: () => (stream as { destroy?: () => void }).destroy?.(),
    };
  }
}
