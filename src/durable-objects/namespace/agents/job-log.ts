import type { ActionRow } from "../../../domain/action";
import { type AgentMessage, DELIVERY_LOG_BUDGET } from "../../../domain/agent-protocol";
import { quote } from "../../../domain/text";
import { byteLength } from "../action-logs";
import type { Actions } from "../actions";

/**
 * What an agent causes to be written to an action's log: its progress
 * lines, a refused observed state, reports of other deliveries. Each counts
 * against the current delivery's budget (`agent_jobs.delivery_*`, reset by
 * each delivery) and the action's (action-logs.ts); past either, lines are
 * dropped and counted, said once. A report of another delivery is logged
 * the first time only: an agent may send it again and again.
 */
export class JobLog {
  constructor(
    private readonly sql: SqlStorage,
    private readonly actions: Actions,
  ) {}

  /** Writes a line the agent caused, within the budgets of the current delivery and of the action. */
  line(a: ActionRow, line: string): void {
    const bytes = byteLength(line);
    const { lines, bytes: most } = DELIVERY_LOG_BUDGET;
    const within = this.sql
      .exec(
        `UPDATE agent_jobs SET delivery_lines = delivery_lines + 1, delivery_bytes = delivery_bytes + ?
         WHERE action_uuid = ? AND delivery_lines < ? AND delivery_bytes + ? <= ? RETURNING 1`,
        bytes,
        a.uuid,
        lines,
        bytes,
        most,
      )
      .toArray();
    if (within.length > 0) {
      this.actions.appendWithinBudget(a.uuid, line);
      return;
    }
    const dropped = this.sql
      .exec<{ delivery_dropped: number }>(
        "UPDATE agent_jobs SET delivery_dropped = delivery_dropped + 1 WHERE action_uuid = ? RETURNING delivery_dropped",
        a.uuid,
      )
      .one().delivery_dropped;
    this.actions.countDropped(a.uuid);
    if (dropped === 1) {
      const why = `delivery ${a.attempts}: the agent's lines past ${lines} lines or ${most / 1024} KiB are dropped and counted`;
      this.actions.appendLog(a.uuid, `${new Date().toISOString()} ${why}`, null);
    }
  }

  /** A report of another delivery than the current one: it changes nothing; the first is logged, the rest counted. */
  staleReport(a: ActionRow, before: number, m: Extract<AgentMessage, { type: "report" }>, now: number): void {
    this.sql.exec("UPDATE agent_jobs SET stale_reports = stale_reports + 1 WHERE action_uuid = ?", a.uuid);
    if (before > 0) {
      this.actions.countDropped(a.uuid);
      return;
    }
    this.line(
      a,
      `${new Date(now).toISOString()} attempt ${m.attempt}: ${quote(m.detail)} [a report of delivery ${m.attempt}, not of the current one (${a.attempts}); ignored, and later ones are only counted]`,
    );
  }
}
