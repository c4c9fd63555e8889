import { z } from "zod";
import type { ActionKind } from "./action";
import { containerService } from "./container-service";
import { count, imageName, parseImage, type ServiceState, serviceName, stackName } from "./service";
import { refuseUnsafeText } from "./text";

/**
 * An agent's inventory: the orchestrator's services its allow rules let it
 * act on, with their state as the orchestrator runs them (a service outside
 * the rules is never named). Sent in full on every hello and at a bounded
 * interval, and as changes in between (docs/architecture.md, "Inventory").
 * Checked with the same rules as the same fields coming from the API.
 */

/** Services (and removals) one inventory message may carry; more is refused whole, never half applied. */
export const MAX_INVENTORY_ITEMS = 1_000;
/** Services one agent may bring into the API. */
export const MAX_SERVICES_PER_AGENT = 1_000;

/** Swarm's update states (`UpdateStatus.State`), or null before the first update. */
export const UPDATE_STATES = [
  "updating",
  "paused",
  "completed",
  "rollback_started",
  "rollback_paused",
  "rollback_completed",
] as const;

const orchestratorId = z
  .string({ error: "id must be a string" })
  .regex(/^[A-Za-z0-9]{1,64}$/, { error: "id must be 1 to 64 letters or digits (the orchestrator's id)" });

export const InventoryItem = z.object({
  id: orchestratorId,
  name: serviceName,
  image: imageName("image").nullable(),
  mode: z.enum(["replicated", "global"], { error: "mode must be replicated or global" }),
  /** Replicas asked for; null for a global service. */
  replicas: count("replicas").nullable(),
  /** Tasks that should be running now. */
  desired: count("desired"),
  /** Tasks running now. */
  running: count("running"),
  update: z.object({
    state: z.enum(UPDATE_STATES, { error: `update.state must be one of ${UPDATE_STATES.join(", ")}` }).nullable(),
    message: z
      .string({ error: "update.message must be a string" })
      .max(500, { error: "update.message must be at most 500 characters" })
      .superRefine(refuseUnsafeText("update.message"))
      .nullable(),
  }),
  /** The Swarm stack (label com.docker.stack.namespace), or the Compose project, or null. */
  stack: stackName.nullable(),
  /** The label io.dockercloud.max_num_containers, or null. */
  max_num_containers: count("max_num_containers").min(1, { error: "max_num_containers must be 1 or more" }).nullable(),
  /** When the orchestrator last changed the service's spec (ISO 8601), or null. */
  updated_at: z.iso.datetime({ offset: true, error: "updated_at must be an ISO 8601 time" }).nullable(),
  /**
   * On a plain Docker host, what the agent acts on: `<project>/<service>` of
   * a Compose service (then `name` is the Compose service, `stack` the
   * project) or the io.dockercloud.service label of standalone containers.
   * Null, or absent (agents that predate it), for a Swarm service.
   */
  container_service: containerService("container_service").nullable().default(null),
});
export type InventoryItem = z.infer<typeof InventoryItem>;
/** An item as an agent sends it: `container_service` may be absent. */
export type InventoryItemSent = z.input<typeof InventoryItem>;

export const Inventory = z
  .object({
    type: z.literal("inventory"),
    /** true: every service the agent may act on (any other it brought in is gone); false: changes only. */
    full: z.boolean({ error: "full must be true or false" }),
    services: z.array(InventoryItem, { error: "services must be a list" }),
    /** Orchestrator ids of services removed since the last message (changes only). */
    gone: z.array(orchestratorId, { error: "gone must be a list of ids" }).default([]),
  })
  .refine((m) => m.services.length + m.gone.length <= MAX_INVENTORY_ITEMS, {
    error: `an inventory message carries at most ${MAX_INVENTORY_ITEMS} services and removals; nothing of this one was applied`,
  });
export type Inventory = z.infer<typeof Inventory>;

/** What the API shows of an inventoried service: its figures and state as the orchestrator runs them. */
export type Truth = {
  orchestrator_id: string;
  target_num_containers: number;
  current_num_containers: number;
  running_num_containers: number;
  image_name: string | null;
  image_tag: string | null;
  deployed_at: number | null;
  state: ServiceState;
  update_state: string | null;
  update_message: string | null;
};

/**
 * The figures and the state (Docker Cloud's words) of a service as an
 * inventory item reports it; `operation` is the kind of the service's action
 * in progress, if any, which tells a scale from a service short of tasks.
 */
export function truthOf(item: InventoryItem, operation: ActionKind | null): Truth {
  const image = item.image === null ? null : parseImage(item.image);
  return {
    orchestrator_id: item.id,
    target_num_containers: item.replicas ?? item.desired,
    current_num_containers: item.desired,
    running_num_containers: item.running,
    image_name: image?.image_name ?? null,
    image_tag: image?.image_tag ?? null,
    deployed_at: item.updated_at === null ? null : Date.parse(item.updated_at),
    state: stateOf(item, operation),
    update_state: item.update.state,
    update_message: item.update.message,
  };
}

function stateOf(item: InventoryItem, operation: ActionKind | null): ServiceState {
  if (item.update.state === "updating" || item.update.state === "rollback_started") return "Redeploying";
  if (item.desired === 0 && item.running === 0) return "Stopped";
  if (item.running !== item.desired && (operation === "scale" || operation === "scaleup")) return "Scaling";
  if (item.running >= item.desired) return "Running";
  return operation === "redeploy" ? "Redeploying" : "Partly running";
}
