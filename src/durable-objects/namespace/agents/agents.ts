import {
  type AgentFilters,
  type AgentJson,
  type AgentReplacement,
  type AgentReport,
  type AgentRow,
  MAX_AGENTS_PER_NAMESPACE,
  newAgentToken,
  serializeAgent,
} from "../../../domain/agent";
import { sha256Hex } from "../../../domain/crypto";
import { hideIds, newUuid } from "../../../domain/ids";
import type { Listing, Page } from "../../../domain/pagination";
import { fail, ok, type Result } from "../../../domain/result";
import type { PublicTarget } from "../../../domain/service";
import { agentTargetOf } from "../../../targets/agent";
import { type Condition, equals, selectPage } from "../listing";

export const AGENT_NOT_FOUND = fail("not_found", "Agent not found");

/** Connected or not is whether the agent holds a connection now. */
const stateIs = (state: string | undefined): Condition => {
  if (state === undefined) return null;
  return { sql: state === "Connected" ? "connected_since IS NOT NULL" : "connected_since IS NULL", args: [] };
};

/**
 * A namespace's agents: the `agents` table. A token is shown once, in the
 * answer to the create; only its SHA-256 is kept.
 */
export class Agents {
  constructor(
    private readonly sql: SqlStorage,
    private readonly ns: () => string,
    /** The last heartbeat of an agent's connection, answered by the runtime without a write. */
    private readonly lastPing: (uuid: string) => number | null,
  ) {}

  byTokenHash(hash: string): AgentRow | undefined {
    return this.sql.exec<AgentRow>("SELECT * FROM agents WHERE token_hash = ?", hash).toArray()[0];
  }

  /** The agents that hold a connection, as their rows say. */
  connectedRows(): { uuid: string; last_seen: number | null }[] {
    return this.sql
      .exec<{ uuid: string; last_seen: number | null }>(
        "SELECT uuid, last_seen FROM agents WHERE connected_since IS NOT NULL",
      )
      .toArray();
  }

  /** The namespace's name. */
  namespace(): string {
    return this.ns();
  }

  /**
   * A connection of the agent said hello: it is the agent now, with what it
   * reported, where it came from, and whom it replaced (kept until the next replacement).
   */
  welcomed(
    uuid: string,
    report: AgentReport,
    address: string | null,
    replaced: AgentReplacement | null,
    now: number,
  ): void {
    this.sql.exec(
      `UPDATE agents SET connected_since = ?, last_seen = ?, report = ?, address = ?, replaced = COALESCE(?, replaced)
       WHERE uuid = ?`,
      now,
      now,
      JSON.stringify(report),
      address,
      replaced ? JSON.stringify(replaced) : null,
      uuid,
    );
  }

  /**
   * The agent's last connection ended, its last sign at `at`. Returns whether
   * it was connected (once: a reaped connection closes later).
   */
  disconnected(uuid: string, at: number): boolean {
    const rows = this.sql
      .exec(
        "UPDATE agents SET connected_since = NULL, last_seen = ? WHERE uuid = ? AND connected_since IS NOT NULL RETURNING 1",
        at,
        uuid,
      )
      .toArray();
    return rows.length > 0;
  }

  seen(uuid: string, now: number): void {
    this.sql.exec("UPDATE agents SET last_seen = ? WHERE uuid = ?", now, uuid);
  }

  row(uuid: string): AgentRow | undefined {
    return this.sql.exec<AgentRow>("SELECT * FROM agents WHERE uuid = ?", uuid).toArray()[0];
  }

  list(filters: AgentFilters, page: Page): Listing<AgentJson> {
    const { total, rows } = selectPage<AgentRow>(this.sql, {
      columns: "*",
      table: "agents",
      where: [equals("name", filters.name), stateIs(filters.state)],
      order: "seq",
      page,
    });
    return { total, objects: rows.map((r) => this.json(r)) };
  }

  async create(name: string): Promise<Result<AgentJson & { token: string }>> {
    const token = newAgentToken(this.ns());
    const hash = await sha256Hex(token);
    // Checked after the await, with no await before the insert: other requests may run during one.
    const count = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM agents").one().n;
    if (count >= MAX_AGENTS_PER_NAMESPACE) {
      return fail(
        "quota_exceeded",
        `a namespace may hold at most ${MAX_AGENTS_PER_NAMESPACE} agents; delete one before creating another`,
      );
    }
    if (this.named(name)) return this.nameTaken(name);
    const uuid = newUuid();
    this.sql.exec(
      "INSERT INTO agents (uuid, name, token_hash, created_at) VALUES (?, ?, ?, ?)",
      uuid,
      name,
      hash,
      Date.now(),
    );
    return ok({ ...this.json(this.row(uuid) as AgentRow), token });
  }

  get(uuid: string): Result<AgentJson> {
    const row = this.row(uuid);
    return row ? ok(this.json(row)) : AGENT_NOT_FOUND;
  }

  update(uuid: string, changes: { name?: string }): Result<AgentJson> {
    const row = this.row(uuid);
    if (!row) return AGENT_NOT_FOUND;
    if (changes.name !== undefined && changes.name !== row.name) {
      if (this.named(changes.name)) return this.nameTaken(changes.name);
      this.sql.exec("UPDATE agents SET name = ? WHERE uuid = ?", changes.name, uuid);
    }
    return ok(this.json(this.row(uuid) as AgentRow));
  }

  /** Gives an agent a new token, shown once: the old one is refused from this moment on. */
  async rotateToken(uuid: string): Promise<Result<AgentJson & { token: string }>> {
    const token = newAgentToken(this.ns());
    const hash = await sha256Hex(token);
    // Read after the await, with no await before the write: the agent may have been deleted meanwhile.
    if (!this.row(uuid)) return AGENT_NOT_FOUND;
    this.sql.exec("UPDATE agents SET token_hash = ? WHERE uuid = ?", hash, uuid);
    return ok({ ...this.json(this.row(uuid) as AgentRow), token });
  }

  /** Deletes an agent: its token is refused from this moment on. */
  remove(uuid: string): Result<AgentJson> {
    const row = this.row(uuid);
    if (!row) return AGENT_NOT_FOUND;
    this.sql.exec("DELETE FROM agents WHERE uuid = ?", uuid);
    return ok(this.json({ ...row, connected_since: null }));
  }

  /**
   * A target that names an agent must name one of this namespace; it is
   * stored by the agent's uuid, so renaming the agent changes nothing.
   */
  resolveTarget<T extends { target_public?: PublicTarget | null }>(input: T): Result<T> {
    const target = input.target_public ? agentTargetOf(input.target_public) : null;
    if (!target) return ok(input);
    const agent = this.sql
      .exec<AgentRow>("SELECT * FROM agents WHERE uuid = ? OR name = ?", target.agent.toLowerCase(), target.agent)
      .toArray()[0];
    if (!agent) {
      return fail(
        "bad_request",
        "target.agent: this namespace has no agent by that name or uuid; create one first (POST /api/agent/v1/agent/)",
      );
    }
    return ok({ ...input, target_public: { ...target, agent: agent.uuid } });
  }

  private named(name: string): boolean {
    return this.sql.exec("SELECT 1 FROM agents WHERE name = ?", name).toArray().length > 0;
  }

  private nameTaken(name: string) {
    return fail("conflict", `an agent named '${hideIds(name)}' already exists`);
  }

  private json(row: AgentRow): AgentJson {
    const ping = row.connected_since === null ? null : this.lastPing(row.uuid);
    const last_seen = ping !== null && (row.last_seen === null || ping > row.last_seen) ? ping : row.last_seen;
    return serializeAgent(this.ns(), { ...row, last_seen });
  }
}
