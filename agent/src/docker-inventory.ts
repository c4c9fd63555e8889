import { createHash } from "node:crypto";
import {
  type ContainerSummaryJson,
  commonLabels,
  isGoing,
  keyOfLabels,
  nameOf,
  numberOf,
  PROJECT_LABEL,
  type ServiceKey,
  STANDALONE_LABEL,
  slotOf,
  temporaryOf,
} from "./containers.ts";
import type { InventoryEntry, InventorySource, Watch } from "./inventory.ts";
import type { InventoryItem } from "./protocol.ts";
import { followEvents, MAX_CONTAINERS_LABEL, maxContainersOf } from "./swarm-inventory.ts";

/**
 * A plain Docker host's side of the inventory (inventory.ts): its Compose services and labelled
 * standalone containers, read with one container listing (GET /containers/json) however many
 * there are, and the engine's container events, which say which service may have changed.
 */

/** What the inventory uses of the engine (dockerode's Docker has these). */
export interface ContainerEngine {
  listContainers(options?: { all?: boolean; filters?: { label?: string[] } }): Promise<unknown[]>;
  getEvents(options?: { filters?: { type?: "container"[] } }): Promise<NodeJS.ReadableStream>;
}

/** A summary's image pinned when the engine says which digest (Compose writes `repo:tag` only). */
type Summary = ContainerSummaryJson & { Image?: string };

/**
 * The id the API keeps for a service of a docker host: a hash of its reference, since Compose
 * gives services no id of their own (64 hex digits, as the API takes ids).
 */
export const serviceIdOf = (ref: string) => createHash("sha256").update(`docker-service:${ref}`).digest("hex");

const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]{0,254}$/;

/**
 * One service's item from its containers. A replacement under way (its old container set aside, the
 * new one not yet under the name) counts once and as running if either runs: the service does not
 * seem to shrink, or to go, for the second a rollout takes.
 */
export function itemOfContainers(key: ServiceKey, containers: readonly Summary[]): InventoryItem {
  const slots = new Map<string, Summary[]>();
  for (const c of containers) {
    if (isGoing(nameOf(c))) continue;
    const slot = slotOf(nameOf(c));
    slots.set(slot, [...(slots.get(slot) ?? []), c]);
  }
  const running = [...slots.values()].filter((cs) => cs.some((c) => c.State === "running")).length;
  const holders = containers.filter((c) => temporaryOf(nameOf(c)) === null);
  const image = [...holders, ...containers].find((c) => c.Image && IMAGE.test(c.Image))?.Image ?? null;
  const created = Math.max(0, ...containers.map((c) => c.Created ?? 0));
  const labels = commonLabels(containers.map((c) => c.Labels));
  return {
    id: serviceIdOf(key.ref),
    name: key.service,
    container_service: key.ref,
    image,
    mode: "replicated",
    replicas: slots.size,
    desired: slots.size,
    running,
    update: { state: null, message: null },
    stack: key.project,
    max_num_containers: maxContainersOf(labels[MAX_CONTAINERS_LABEL]),
    updated_at: created ? new Date(created * 1000).toISOString() : null,
  };
}

/** Every service of the host's containers, each with its own containers sorted by Compose's number. */
export function entriesOfContainers(listed: readonly Summary[]): InventoryEntry[] {
  const groups = new Map<string, { key: ServiceKey; containers: Summary[] }>();
  for (const c of listed) {
    const key = keyOfLabels(c.Labels);
    if (!key) continue;
    const group = groups.get(key.ref) ?? { key, containers: [] };
    group.containers.push(c);
    groups.set(key.ref, group);
  }
  return [...groups.values()].map(({ key, containers }) => {
    containers.sort((a, b) => numberOf(a.Labels) - numberOf(b.Labels));
    return {
      item: itemOfContainers(key, containers),
      labels: commonLabels(containers.map((c) => c.Labels)),
      unfit: null,
    };
  });
}

/** The service a container event is about, as its id in the inventory, or null. */
export function serviceOfContainerEvent(event: unknown): string | null {
  const e = (event ?? {}) as { Type?: string; Action?: string; Actor?: { Attributes?: Record<string, string> } };
  // A health check's exec comes every few seconds and changes nothing the inventory shows.
  if (e.Type !== "container" || e.Action?.startsWith("exec_")) return null;
  const key = keyOfLabels(e.Actor?.Attributes);
  return key ? serviceIdOf(key.ref) : null;
}

/** The inventory's source on a plain Docker host. */
export class DockerInventorySource implements InventorySource {
  private readonly engine: ContainerEngine;

  constructor(engine: ContainerEngine) {
    this.engine = engine;
  }

  async read(ids: readonly string[] | null): Promise<InventoryEntry[]> {
    // Two listings (Compose's label, the standalone label): the engine ORs nothing, it ANDs filters.
    const [compose, standalone] = await Promise.all(
      [PROJECT_LABEL, STANDALONE_LABEL].map(
        (label) => this.engine.listContainers({ all: true, filters: { label: [label] } }) as Promise<Summary[]>,
      ),
    );
    const seen = new Set<string>();
    const listed = [...(compose ?? []), ...(standalone ?? [])].filter((c) => !seen.has(c.Id) && seen.add(c.Id));
    const entries = entriesOfContainers(listed);
    if (ids === null) return entries;
    const wanted = new Set(ids);
    return entries.filter((e) => wanted.has(e.item.id));
  }

  async watch(changed: (id: string) => void): Promise<Watch> {
    const stream = await this.engine.getEvents({ filters: { type: ["container"] } });
    return {
      ended: followEvents(stream, changed, serviceOfContainerEvent),
      close: () => (stream as { destroy?: () => void }).destroy?.(),
    };
  }
}
