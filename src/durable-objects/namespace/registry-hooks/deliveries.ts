import type { Listing, Page } from "../../../domain/pagination";
import {
  DELIVERIES_KEPT,
  type DeliveryJson,
  type DeliveryRow,
  type DeliveryVerdict,
  type RegistrySource,
  serializeDelivery,
} from "../../../domain/registry-hook";
import { selectPage } from "../listing";

/** One call to a hook, as it is kept. */
export type Delivery = {
  verdict: DeliveryVerdict;
  reason: string | null;
  pushes: { repository: string; tag: string; digest: string | null; kind: string }[];
  actions: string[];
  status: number;
  viaPrevious: boolean;
};

/**
 * The last deliveries of each registry hook (`registry_deliveries`): every
 * call is kept, whatever its verdict, so nothing a registry sends is ignored
 * in silence; past DELIVERIES_KEPT, the oldest go.
 */
export class Deliveries {
  constructor(private readonly sql: SqlStorage) {}

  record(hookUuid: string, d: Delivery, now: number): void {
    this.sql.exec(
      `INSERT INTO registry_deliveries (hook_uuid, received_at, verdict, reason, pushes, actions, status, via_previous)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      hookUuid,
      now,
      d.verdict,
      d.reason,
      JSON.stringify(d.pushes),
      JSON.stringify(d.actions),
      d.status,
      d.viaPrevious ? 1 : 0,
    );
    this.sql.exec(
      `DELETE FROM registry_deliveries WHERE hook_uuid = ? AND seq <= (
         SELECT seq FROM registry_deliveries WHERE hook_uuid = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
      hookUuid,
      hookUuid,
      DELIVERIES_KEPT,
    );
  }

  /** Newest first, as an audit list reads. */
  list(hookUuid: string, source: RegistrySource, page: Page): Listing<DeliveryJson> {
    const { total, rows } = selectPage<DeliveryRow>(this.sql, {
      columns: "*",
      table: "registry_deliveries",
      where: [{ sql: "hook_uuid = ?", args: [hookUuid] }],
      order: "seq DESC",
      page,
    });
    return { total, objects: rows.map((r) => serializeDelivery(r, source)) };
  }
}
