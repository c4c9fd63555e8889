import type { InventoryItem, Truth } from "../../domain/inventory";
import { DEFAULT_MAX_CONTAINERS, type ServiceRow } from "../../domain/service";
import type { Services } from "./services";

/**
 * The service whose agent target names an agent and a container_service (the
 * two parameters, in that order). Its expressions are those of the index services_by_agent_container
 * (schema.ts, migration 12), character for character: SQLite uses an
 * expression index only for the very same expression.
 */
export const BY_CONTAINER_SERVICE = `SELECT * FROM services WHERE json_extract(target_public, '$.type') = 'agent'
  AND json_extract(target_public, '$.agent') = ? AND json_extract(target_public, '$.container_service') = ?`;

/**
 * What an agent's inventory writes in the `services` table (agents/inventory.ts
 * decides): the services it brings in, the figures they follow, and their
 * being gone. Kept apart from services.ts, which holds what users and
 * operations change; both tell the streams through `Services.announce`.
 */
export class FollowedServices {
  constructor(
    private readonly sql: SqlStorage,
    private readonly services: Services,
  ) {}

  /** Whether the name (in its stack) is taken. */
  named(name: string, stack: string | null): boolean {
    return this.services.nameTaken(name, stack);
  }

  /**
   * The service an agent's inventory item is, if the API has it: the one it
   * brought in before (by the orchestrator's id), else one whose target names
   * this agent and what the item is (its container_service, or the swarm
   * service by name or id): never two for one.
   */
  linkedTo(agentUuid: string, item: InventoryItem): ServiceRow | undefined {
    return (
      this.sql
        .exec<ServiceRow>(
          `SELECT * FROM services WHERE agent_uuid = ? AND orchestrator_id = ?
             AND json_extract(target_public, '$.agent') = ?`,
          agentUuid,
          item.id,
          agentUuid,
        )
        .toArray()[0] ?? this.targeting(agentUuid, item)
    );
  }

  /** The service whose target names this agent and the item (each form read through its own index, schema.ts). */
  private targeting(agentUuid: string, item: InventoryItem): ServiceRow | undefined {
    if (item.container_service !== null) {
      return this.sql.exec<ServiceRow>(BY_CONTAINER_SERVICE, agentUuid, item.container_service).toArray()[0];
    }
    return this.sql
      .exec<ServiceRow>(
        `SELECT * FROM services WHERE json_extract(target_public, '$.type') = 'agent'
           AND json_extract(target_public, '$.agent') = ? AND json_extract(target_public, '$.swarm_service') IN (?, ?)`,
        agentUuid,
        item.name,
        item.id,
      )
      .toArray()[0];
  }

  /** Services an agent's inventory brought in and still present. */
  countBroughtBy(agentUuid: string): number {
    return this.sql
      .exec<{ n: number }>("SELECT COUNT(*) AS n FROM services WHERE agent_uuid = ? AND present = 1", agentUuid)
      .one().n;
  }

  /** A service first seen in an agent's inventory: created with that agent as its target, in one write. */
  adopt(uuid: string, agentUuid: string, item: InventoryItem, truth: Truth, now: number): void {
    const target =
      item.container_service === null
        ? { type: "agent", agent: agentUuid, swarm_service: item.name }
        : { type: "agent", agent: agentUuid, container_service: item.container_service };
    const max = item.max_num_containers ?? Math.max(DEFAULT_MAX_CONTAINERS, truth.target_num_containers);
    this.sql.exec(
      `INSERT INTO services (uuid, name, stack, state, target_num_containers, current_num_containers,
         running_num_containers, image_name, image_tag, deployed_at, started_at, max_num_containers, target_public,
         created_at, agent_uuid, orchestrator_id, present, update_state, update_message, synchronized_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
      uuid,
      item.name,
      item.stack,
      truth.state,
      truth.target_num_containers,
      truth.current_num_containers,
      truth.running_num_containers,
      truth.image_name,
      truth.image_tag,
      truth.deployed_at,
      truth.running_num_containers > 0 ? now : null,
      max,
      JSON.stringify(target),
      now,
      agentUuid,
      truth.orchestrator_id,
      truth.update_state,
      truth.update_message,
      now,
    );
    this.services.announce(uuid, "create");
  }

  /**
   * Makes a service show what its orchestrator runs. Writes (and tells the
   * streams) only when something differs: a resend of the same figures costs a read.
   */
  follow(row: ServiceRow, agentUuid: string, truth: Truth, maxFromLabel: number | null, now: number): boolean {
    const next = {
      ...truth,
      image_name: truth.image_name ?? row.image_name,
      image_tag: truth.image_tag ?? row.image_tag,
    };
    const max = maxFromLabel ?? row.max_num_containers;
    const same =
      row.agent_uuid === agentUuid &&
      row.present === 1 &&
      row.max_num_containers === max &&
      (Object.keys(next) as (keyof Truth)[]).every((k) => row[k] === next[k]);
    if (same) return false;
    this.sql.exec(
      `UPDATE services SET agent_uuid = ?, orchestrator_id = ?, present = 1, target_num_containers = ?,
         current_num_containers = ?, running_num_containers = ?, stopped_num_containers = 0, image_name = ?,
         image_tag = ?, deployed_at = ?, state = ?, update_state = ?, update_message = ?, max_num_containers = ?,
         synchronized_at = ?, started_at = COALESCE(started_at, ?)
       WHERE uuid = ?`,
      agentUuid,
      next.orchestrator_id,
      next.target_num_containers,
      next.current_num_containers,
      next.running_num_containers,
      next.image_name,
      next.image_tag,
      next.deployed_at,
      next.state,
      next.update_state,
      next.update_message,
      max,
      now,
      next.running_num_containers > 0 ? now : null,
      row.uuid,
    );
    this.services.announce(row.uuid, "update");
    return true;
  }

  /** The orchestrator no longer runs it: kept, with its triggers, as Not running until it comes back. */
  lose(row: ServiceRow, now: number): void {
    if (row.present === 0) return;
    this.sql.exec(
      `UPDATE services SET present = 0, state = 'Not running', current_num_containers = 0,
         running_num_containers = 0, update_state = NULL, update_message = NULL, synchronized_at = ?
       WHERE uuid = ?`,
      now,
      row.uuid,
    );
    this.services.announce(row.uuid, "update");
  }

  /** A full inventory confirmed every service of the agent still present: their figures are current as of now. */
  confirm(agentUuid: string, now: number): void {
    this.sql.exec("UPDATE services SET synchronized_at = ? WHERE agent_uuid = ? AND present = 1", now, agentUuid);
  }

  /** The agent's services present before a full inventory: what it does not name again is gone. */
  presentOf(agentUuid: string): ServiceRow[] {
    return this.sql
      .exec<ServiceRow>("SELECT * FROM services WHERE agent_uuid = ? AND present = 1", agentUuid)
      .toArray();
  }

  /** The agent's service the orchestrator knows by `id`. */
  byOrchestratorId(agentUuid: string, id: string): ServiceRow | undefined {
    return this.sql
      .exec<ServiceRow>("SELECT * FROM services WHERE agent_uuid = ? AND orchestrator_id = ?", agentUuid, id)
      .toArray()[0];
  }
}
