import type { ActionRow } from "../../domain/action";
import type { Observed } from "../../domain/agent-protocol";
import { hideIds } from "../../domain/ids";
import type { Listing, Page } from "../../domain/pagination";
import { fail, ok, type Result } from "../../domain/result";
import {
  type NewService,
  parseImage,
  type ServiceChanges,
  type ServiceFilters,
  type ServiceJson,
  type ServiceRow,
  serializeService,
  serviceUri,
} from "../../domain/service";
import { streamEvent } from "../../domain/stream-event";
import { equals, selectPage, startsWith } from "./listing";
import type { Publisher } from "./streams";

export const SERVICE_NOT_FOUND = fail("not_found", "Service not found");

/**
 * The service registry of a namespace: the `services` table. What a service
 * runs (its counts, its state) changes here when an operation succeeds.
 */
export class Services {
  constructor(
    private readonly sql: SqlStorage,
    private readonly ns: () => string,
    private readonly streams: Publisher,
  ) {}

  row(uuid: string): ServiceRow | undefined {
    return this.sql.exec<ServiceRow>("SELECT * FROM services WHERE uuid = ?", uuid).toArray()[0];
  }

  json(row: ServiceRow): ServiceJson {
    return serializeService(this.ns(), row);
  }

  list(filters: ServiceFilters, page: Page): Listing<ServiceJson> {
    const { total, rows } = selectPage<ServiceRow>(this.sql, {
      columns: "*",
      table: "services",
      where: [
        equals("uuid", filters.uuid?.toLowerCase()),
        startsWith("uuid", filters.uuid__startswith?.toLowerCase()),
        equals("name", filters.name),
        equals("stack", filters.stack__name),
        equals("state", filters.state),
      ],
      order: "seq",
      page,
    });
    return { total, objects: rows.map((r) => this.json(r)) };
  }

  create(input: NewService): Result<ServiceJson> {
    const problem = this.problem(input);
    if (problem) return problem;
    this.sql.exec(
      `INSERT INTO services (uuid, name, image_name, image_tag, stack, state, target_num_containers,
         max_num_containers, target_public, target_sealed, created_at, autoredeploy, autoredeploy_policy)
       VALUES (?, ?, ?, ?, ?, 'Not running', ?, ?, ?, ?, ?, ?, ?)`,
      input.uuid,
      input.name,
      input.image_name,
      input.image_tag,
      input.stack,
      input.target_num_containers,
      input.max_num_containers,
      input.target_public ? JSON.stringify(input.target_public) : null,
      input.target_sealed,
      Date.now(),
      input.autoredeploy ? 1 : 0,
      input.autoredeploy_policy,
    );
    return ok(this.announce(input.uuid, "create"));
  }

  update(row: ServiceRow, changes: ServiceChanges): Result<ServiceJson> {
    const renamed = changes.name !== undefined || changes.stack !== undefined;
    const problem = this.problem(
      {
        name: changes.name ?? row.name,
        stack: changes.stack === undefined ? row.stack : changes.stack,
        target_num_containers: changes.target_num_containers ?? row.target_num_containers,
        max_num_containers: changes.max_num_containers ?? row.max_num_containers,
      },
      renamed ? row.uuid : null,
      // The counts are checked when the change sets one: an orchestrator may run more than the
      // maximum set here (its inventory is the truth), and that must not refuse a rename or a target.
      changes.target_num_containers !== undefined || changes.max_num_containers !== undefined,
    );
    if (problem) return problem;
    const sets: string[] = [];
    const args: (string | number | null)[] = [];
    const set = (column: string, value: string | number | null | undefined) => {
      if (value === undefined) return;
      sets.push(`${column} = ?`);
      args.push(value);
    };
    set("name", changes.name);
    set("stack", changes.stack);
    set("image_name", changes.image_name);
    set("image_tag", changes.image_tag);
    set("target_num_containers", changes.target_num_containers);
    set("max_num_containers", changes.max_num_containers);
    set("autoredeploy", changes.autoredeploy === undefined ? undefined : changes.autoredeploy ? 1 : 0);
    set("autoredeploy_policy", changes.autoredeploy_policy);
    if (changes.target_public !== undefined) {
      set("target_public", changes.target_public ? JSON.stringify(changes.target_public) : null);
      set("target_sealed", changes.target_sealed ?? null);
      // Pointed away from the agent whose inventory brought it in: that inventory no longer touches it.
      if (row.agent_uuid !== null && changes.target_public?.agent !== row.agent_uuid) {
        sets.push("agent_uuid = NULL", "orchestrator_id = NULL", "present = NULL");
      }
    }
    if (sets.length) this.sql.exec(`UPDATE services SET ${sets.join(", ")} WHERE uuid = ?`, ...args, row.uuid);
    return ok(this.announce(row.uuid, "update"));
  }

  /** Deletes a service row; the answer shows it Terminated. */
  remove(row: ServiceRow): ServiceJson {
    this.sql.exec("DELETE FROM services WHERE uuid = ?", row.uuid);
    const gone = this.json({
      ...row,
      state: "Terminated",
      destroyed_at: Date.now(),
      current_num_containers: 0,
      running_num_containers: 0,
      stopped_num_containers: 0,
    });
    this.streams.publish(
      streamEvent({
        type: "service",
        action: "delete",
        uuid: row.uuid,
        resource_uri: gone.resource_uri,
        state: "Terminated",
      }),
    );
    return gone;
  }

  /** Tells the streams that a service was created or changed; returns it as the API shows it. */
  announce(uuid: string, action: "create" | "update"): ServiceJson {
    const svc = this.json(this.row(uuid) as ServiceRow);
    this.streams.publish(
      streamEvent({ type: "service", action, uuid, resource_uri: svc.resource_uri, state: svc.state }),
    );
    return svc;
  }

  /** A change of what a service runs, told only if someone listens (the operations' path). */
  private changed(uuid: string): void {
    this.streams.publish(() => {
      const row = this.row(uuid);
      return streamEvent({
        type: "service",
        action: "update",
        uuid,
        resource_uri: serviceUri(this.ns(), uuid),
        state: row?.state ?? "",
      });
    });
  }

  /** A successful operation, as the registry records it. */
  apply(a: ActionRow): void {
    const now = Date.now();
    if (a.kind === "redeploy") {
      this.sql.exec(
        `UPDATE services SET deployed_at = ?, started_at = ?, state = 'Running',
           current_num_containers = target_num_containers, running_num_containers = target_num_containers,
           stopped_num_containers = 0
         WHERE uuid = ?`,
        now,
        now,
        a.service_uuid,
      );
      this.changed(a.service_uuid);
      return;
    }
    // new_target was fixed when the attempt began, before `a` was read.
    const target = a.new_target;
    if (target === null) return;
    this.sql.exec(
      `UPDATE services SET target_num_containers = ?, current_num_containers = ?, running_num_containers = ?,
         state = 'Running', started_at = COALESCE(started_at, ?)
       WHERE uuid = ?`,
      target,
      target,
      target,
      now,
      a.service_uuid,
    );
    this.changed(a.service_uuid);
  }

  /**
   * What an orchestrator reported after an operation (an agent target): the
   * registry shows it, so the clients read real numbers. A replica count past
   * the service's max_num_containers (scaled outside this API) leaves
   * target_num_containers as it was, keeping target <= max.
   */
  mirror(uuid: string, seen: Observed): void {
    const state = seen.running === 0 ? "Stopped" : seen.running < seen.desired ? "Partly running" : "Running";
    this.sql.exec(
      `UPDATE services SET
         target_num_containers = CASE WHEN ? IS NOT NULL AND ? <= max_num_containers THEN ? ELSE target_num_containers END,
         current_num_containers = ?, running_num_containers = ?, stopped_num_containers = 0,
         image_name = ?, image_tag = ?, state = ?
       WHERE uuid = ?`,
      seen.replicas,
      seen.replicas,
      seen.replicas,
      seen.desired,
      seen.running,
      seen.image,
      parseImage(seen.image).image_tag,
      state,
      uuid,
    );
    this.changed(uuid);
  }

  /**
   * Why a service may not be stored so: its name (in its stack) is taken by
   * another service (checked when `except` is given, the service itself, or
   * always on create), or its count passes its maximum.
   */
  private problem(
    next: { name: string; stack: string | null; target_num_containers: number; max_num_containers: number },
    except?: string | null,
    counts = true,
  ) {
    if (except !== null && this.nameTaken(next.name, next.stack, except)) {
      return fail(
        "conflict",
        `a service named '${hideIds(next.name)}' already exists${next.stack ? ` in stack '${hideIds(next.stack)}'` : ""}`,
      );
    }
    if (counts && next.target_num_containers > next.max_num_containers) {
      return fail(
        "bad_request",
        `target_num_containers (${next.target_num_containers}) must not exceed max_num_containers (${next.max_num_containers})`,
      );
    }
    return null;
  }

  /** Whether the name (in its stack) is taken, by another service than `except`. */
  nameTaken(name: string, stack: string | null, except?: string): boolean {
    return (
      this.sql
        .exec("SELECT 1 FROM services WHERE name = ? AND stack IS ? AND uuid IS NOT ?", name, stack, except ?? null)
        .toArray().length > 0
    );
  }
}
