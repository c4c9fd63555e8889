import { newUuid } from "../../domain/ids";
import type { Listing, Page } from "../../domain/pagination";
import { fail, ok, type Result } from "../../domain/result";
import { type ServiceRow, serviceUri } from "../../domain/service";
import { streamEvent } from "../../domain/stream-event";
import {
  DEFAULT_RATE_LIMIT,
  type Operation,
  serializeTrigger,
  type TriggerFilters,
  type TriggerJson,
  type TriggerRow,
  triggerUri,
} from "../../domain/trigger";
import { equals, selectPage, startsWith } from "./listing";
import type { Publisher } from "./streams";

const TRIGGER_COLUMNS =
  "uuid, service_uuid, name, operation, created_at, rate_limit, call_count, rejected_count, last_called_at";
const PREFIXED_TRIGGER_COLUMNS = TRIGGER_COLUMNS.split(", ")
  .map((c) => `t.${c} AS t_${c}`)
  .join(", ");
export const TRIGGER_NOT_FOUND = fail("not_found", "Trigger not found");

export type NewTrigger = { name: string | null; operation: Operation; rate_limit: number | null };

/**
 * A namespace's triggers: the `triggers` table, and the rows the call guards
 * keep per trigger (`trigger_calls`, `idempotency_keys`), which go with it.
 */
export class Triggers {
  constructor(
    private readonly sql: SqlStorage,
    private readonly ns: () => string,
    private readonly streams: Publisher,
  ) {}

  /**
   * A trigger and its service in one read (a call needs both): the trigger's columns come back
   * prefixed `t_`, the service's as they are.
   */
  rowWithService(serviceUuid: string, uuid: string): { trigger: TriggerRow; service: ServiceRow } | undefined {
    const row = this.sql
      .exec<Record<string, SqlStorageValue>>(
        `SELECT ${PREFIXED_TRIGGER_COLUMNS}, s.* FROM triggers t JOIN services s ON s.uuid = t.service_uuid
         WHERE t.uuid = ? AND t.service_uuid = ?`,
        uuid,
        serviceUuid,
      )
      .toArray()[0];
    if (!row) return undefined;
    const trigger: Record<string, SqlStorageValue> = {};
    const service: Record<string, SqlStorageValue> = {};
    for (const [key, value] of Object.entries(row)) {
      if (key.startsWith("t_")) trigger[key.slice(2)] = value;
      else service[key] = value;
    }
    return { trigger: trigger as unknown as TriggerRow, service: service as unknown as ServiceRow };
  }

  row(serviceUuid: string, uuid: string): TriggerRow | undefined {
    return this.sql
      .exec<TriggerRow>(
        `SELECT ${TRIGGER_COLUMNS} FROM triggers WHERE uuid = ? AND service_uuid = ?`,
        uuid,
        serviceUuid,
      )
      .toArray()[0];
  }

  list(svc: ServiceRow, filters: TriggerFilters, page: Page): Listing<TriggerJson> {
    const filtered = filters.uuid !== undefined || filters.uuid__startswith !== undefined || filters.name !== undefined;
    const { total, rows } = selectPage<TriggerRow>(this.sql, {
      columns: TRIGGER_COLUMNS,
      table: "triggers",
      where: [
        equals("service_uuid", svc.uuid),
        equals("uuid", filters.uuid?.toLowerCase()),
        startsWith("uuid", filters.uuid__startswith?.toLowerCase()),
        equals("name", filters.name),
      ],
      order: "seq",
      page,
      // The unfiltered count is kept on the service row, so the first page never scans.
      knownTotal: filtered ? undefined : svc.trigger_count,
    });
    const ns = this.ns();
    return { total, objects: rows.map((r) => serializeTrigger(ns, r)) };
  }

  create(svc: ServiceRow, input: NewTrigger, quota: number): Result<TriggerJson> {
    if (svc.trigger_count >= quota) {
      return fail("quota_exceeded", `a service may hold at most ${quota} triggers; revoke one before creating another`);
    }
    const uuid = newUuid();
    this.sql.exec(
      "INSERT INTO triggers (uuid, service_uuid, name, operation, created_at, rate_limit) VALUES (?, ?, ?, ?, ?, ?)",
      uuid,
      svc.uuid,
      input.name || input.operation.toLowerCase(),
      input.operation,
      Date.now(),
      input.rate_limit ?? DEFAULT_RATE_LIMIT,
    );
    this.sql.exec("UPDATE services SET trigger_count = trigger_count + 1 WHERE uuid = ?", svc.uuid);
    const row = this.row(svc.uuid, uuid) as TriggerRow;
    this.announce(row, "create");
    return ok(this.json(row));
  }

  get(serviceUuid: string, uuid: string): Result<TriggerJson> {
    const row = this.row(serviceUuid, uuid);
    return row ? ok(this.json(row)) : TRIGGER_NOT_FOUND;
  }

  update(serviceUuid: string, uuid: string, changes: { name?: string; rate_limit?: number }): Result<TriggerJson> {
    const row = this.row(serviceUuid, uuid);
    if (!row) return TRIGGER_NOT_FOUND;
    this.sql.exec(
      "UPDATE triggers SET name = ?, rate_limit = ? WHERE uuid = ?",
      changes.name === undefined ? row.name : changes.name || row.operation.toLowerCase(),
      changes.rate_limit ?? row.rate_limit,
      uuid,
    );
    return ok(this.json(this.row(serviceUuid, uuid) as TriggerRow));
  }

  /** Revokes a trigger: once this returns, a call to it finds nothing. */
  revoke(serviceUuid: string, uuid: string): Result<TriggerJson> {
    const row = this.row(serviceUuid, uuid);
    if (!row) return TRIGGER_NOT_FOUND;
    this.drop("uuid = ?", uuid);
    this.sql.exec("UPDATE services SET trigger_count = trigger_count - 1 WHERE uuid = ?", serviceUuid);
    this.announce(row, "delete");
    return ok(this.json(row));
  }

  /** Revokes every trigger of a service (it is being terminated). */
  revokeAll(serviceUuid: string): void {
    this.drop("service_uuid = ?", serviceUuid);
  }

  private json(row: TriggerRow): TriggerJson {
    return serializeTrigger(this.ns(), row);
  }

  private announce(row: TriggerRow, action: "create" | "delete"): void {
    const ns = this.ns();
    this.streams.publish(
      streamEvent({
        type: "trigger",
        action,
        uuid: row.uuid,
        resource_uri: triggerUri(ns, row.service_uuid, row.uuid),
        state: "",
        parents: [serviceUri(ns, row.service_uuid)],
      }),
    );
  }

  /** Deletes triggers with their rate windows and idempotency keys; a service's go with it (announced). */
  private drop(where: "uuid = ?" | "service_uuid = ?", value: string): void {
    const rows = this.sql.exec<TriggerRow>(`SELECT ${TRIGGER_COLUMNS} FROM triggers WHERE ${where}`, value).toArray();
    for (const { uuid } of rows) {
      this.sql.exec("DELETE FROM trigger_calls WHERE trigger_uuid = ?", uuid);
      this.sql.exec("DELETE FROM idempotency_keys WHERE trigger_uuid = ?", uuid);
    }
    this.sql.exec(`DELETE FROM triggers WHERE ${where}`, value);
    if (where === "service_uuid = ?") for (const row of rows) this.announce(row, "delete");
  }
}
