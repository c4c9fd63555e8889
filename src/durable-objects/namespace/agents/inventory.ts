import { type Inventory, type InventoryItem, MAX_SERVICES_PER_AGENT, truthOf } from "../../../domain/inventory";
import type { Actions } from "../actions";
import type { FollowedServices } from "../services-followed";

/** An agent as its inventory needs it. */
export type InventoryAgent = { uuid: string; name: string };

/**
 * What an agent's inventory does to the registry: the orchestrator is the
 * truth, and the API follows it. Each service the agent may act on is a
 * service of the API, brought in on first sight with the agent as its target,
 * or linked to the one whose target already names this agent and that swarm
 * service (or that container_service, on a plain Docker host); its figures
 * and state follow the orchestrator; a service the orchestrator no longer
 * runs is kept, with its triggers, as Not running until it comes back. An agent can only bring in or change services whose
 * target is itself: a service of the same name with any other target is
 * never touched, and the agent is told why.
 *
 * Writes are proportional to what changed: an item equal to what the API
 * shows costs a read (services.ts `follow`).
 */
export class InventoryDesk {
  constructor(
    private readonly services: FollowedServices,
    private readonly actions: Actions,
  ) {}

  /** The items the API has no service for yet (each needs a uuid with its pointer before it is created). */
  newcomers(agent: InventoryAgent, m: Inventory): InventoryItem[] {
    return m.services.filter((i) => !this.services.linkedTo(agent.uuid, i) && !this.services.named(i.name, i.stack));
  }

  /**
   * Applies one inventory message; `uuids` are the ones reserved (pointers
   * written) for newcomers. Returns what to tell the agent: the items refused.
   */
  apply(agent: InventoryAgent, m: Inventory, uuids: Map<string, string>, now: number): string[] {
    const problems: string[] = [];
    const named = new Set<string>();
    let room = MAX_SERVICES_PER_AGENT - this.services.countBroughtBy(agent.uuid);
    for (const item of m.services) {
      const linked = this.services.linkedTo(agent.uuid, item);
      if (linked) {
        named.add(linked.uuid);
        this.services.follow(linked, agent.uuid, this.truth(linked.uuid, item), item.max_num_containers, now);
        continue;
      }
      const refused = this.refusal(item, room, uuids.get(item.id));
      if (refused) {
        problems.push(`inventory: service '${item.name}' not brought in: ${refused}`);
        continue;
      }
      const uuid = uuids.get(item.id) as string;
      this.services.adopt(uuid, agent.uuid, item, truthOf(item, null), now);
      named.add(uuid);
      room -= 1;
    }
    if (m.full) {
      for (const row of this.services.presentOf(agent.uuid)) if (!named.has(row.uuid)) this.services.lose(row, now);
      this.services.confirm(agent.uuid, now);
    }
    for (const id of m.gone) {
      const row = this.services.byOrchestratorId(agent.uuid, id);
      if (row) this.services.lose(row, now);
    }
    return problems;
  }

  /** Why an item the API has no service for cannot be brought in, or null. */
  private refusal(item: InventoryItem, room: number, uuid: string | undefined): string | null {
    if (this.services.named(item.name, item.stack)) {
      const [field, value] =
        item.container_service === null ? ["swarm_service", item.name] : ["container_service", item.container_service];
      return `the API has a service of that name${item.stack ? ` in stack '${item.stack}'` : ""} whose target is not this agent's ${field} '${value}'; point its target at this agent (${field} '${value}') to link them, or rename one`;
    }
    if (room <= 0) return `an agent brings in at most ${MAX_SERVICES_PER_AGENT} services; narrow its allow rules`;
    return uuid ? null : "it appeared while the message was applied; the next inventory brings it in";
  }

  /** The item's figures, with the kind of the service's action in progress (a scale shows Scaling). */
  private truth(serviceUuid: string, item: InventoryItem) {
    return truthOf(item, this.actions.runningKind(serviceUuid));
  }
}
