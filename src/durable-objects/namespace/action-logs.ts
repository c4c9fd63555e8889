/**
 * The lines of the actions' logs: the `action_logs` table, a line per row
 * numbered from 1 per action, so that adding a line costs the same at any
 * log size and reading an action reads none of them. The counters that keep
 * a log within its budget are on the action's row (actions.ts).
 */

/**
 * What one action's log may hold. Lines past it that are optional (an
 * agent's progress, a late report, a joined call) are dropped and counted;
 * the lines that tell how the action went are written whatever the budget,
 * and there are few of them (a handful per delivery, deliveries are capped).
 */
export const ACTION_LOG_BUDGET = { lines: 1_000, bytes: 256 * 1024 } as const;

const utf8 = new TextEncoder();
export const byteLength = (text: string): number => utf8.encode(text).byteLength;

export class ActionLogs {
  constructor(private readonly sql: SqlStorage) {}

  /** Stores line `n` of an action's log (the caller counted it on the action's row). */
  insert(action: string, n: number, line: string): void {
    this.sql.exec("INSERT INTO action_logs (action_uuid, n, line) VALUES (?, ?, ?)", action, n, line);
  }

  /** The last `count` lines of an action's log, oldest first. */
  tail(action: string, count: number): string[] {
    return this.sql
      .exec<{ line: string }>(
        "SELECT line FROM action_logs WHERE action_uuid = ? ORDER BY n DESC LIMIT ?",
        action,
        count,
      )
      .toArray()
      .map((r) => r.line)
      .reverse();
  }
}
