import { hideIds } from "../../domain/ids";
import type { NamespaceInfo, NamespaceKind } from "../../domain/namespace";
import { type Failure, fail, ok, type Result } from "../../domain/result";

type NamespaceRow = { name: string; kind: NamespaceKind; created_at: number };

/** Every table of a namespace, emptied when the namespace is deleted. */
const NAMESPACE_TABLES = [
  "namespace",
  "api_keys",
  "members",
  "memberships",
  "services",
  "triggers",
  "actions",
  "trigger_calls",
  "idempotency_keys",
  "agents",
  "agent_jobs",
] as const;

const NO_ACCESS = (name: string) =>
  fail("forbidden", `namespace '${hideIds(name)}' does not exist or you are not a member of it`);

/**
 * The namespace itself (a user or an organization), an organization's
 * members, a user's side of its memberships, and who may use the namespace.
 * Owns the `namespace`, `members` and `memberships` tables.
 */
export class Members {
  /** The namespace row, kept in memory: it changes only through claim() and destroy(), both here. */
  private cached: NamespaceRow | null | undefined;

  constructor(
    private readonly sql: SqlStorage,
    /** False until the namespace's tables exist: an object only asked about stores nothing. */
    private readonly stored: () => boolean,
  ) {}

  namespace(): NamespaceRow | undefined {
    if (!this.stored()) return undefined;
    if (this.cached === undefined) {
      this.cached =
        this.sql.exec<NamespaceRow>("SELECT name, kind, created_at FROM namespace WHERE id = 1").toArray()[0] ?? null;
    }
    return this.cached ?? undefined;
  }

  /** The namespace's name, "" before it is claimed. */
  get name(): string {
    return this.namespace()?.name ?? "";
  }

  /** Creates the namespace; names are unique across users and organizations. */
  claim(name: string, kind: NamespaceKind): Result<NamespaceInfo> {
    const existing = this.namespace();
    if (existing) return fail("conflict", `the name '${hideIds(name)}' is already taken by a ${existing.kind}`);
    const created_at = Date.now();
    this.sql.exec("INSERT INTO namespace (id, name, kind, created_at) VALUES (1, ?, ?, ?)", name, kind, created_at);
    this.cached = { name, kind, created_at };
    return ok({ name, kind, created_at, members: [] });
  }

  info(): NamespaceInfo | null {
    const ns = this.namespace();
    if (!ns) return null;
    return { ...ns, members: this.column("SELECT username AS v FROM members ORDER BY username") };
  }

  /** Removes the namespace and everything in it. Returns the organizations a user belonged to. */
  destroy(kind: NamespaceKind): Result<{ memberships: string[]; members: string[] }> {
    const ns = this.namespace();
    if (!ns || ns.kind !== kind) return fail("not_found", `${kind} not found`);
    const memberships = this.column("SELECT organization AS v FROM memberships");
    const members = this.column("SELECT username AS v FROM members");
    for (const table of NAMESPACE_TABLES) this.sql.exec(`DELETE FROM ${table}`);
    this.cached = null;
    return ok({ memberships, members });
  }

  add(username: string): Result<{ username: string }> {
    const ns = this.namespace();
    if (ns?.kind !== "organization") return fail("not_found", "organization not found");
    const inserted = this.sql.exec(
      "INSERT INTO members (username, added_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
      username,
      Date.now(),
    ).rowsWritten;
    if (inserted === 0) return fail("conflict", `'${hideIds(username)}' is already a member of '${hideIds(ns.name)}'`);
    return ok({ username });
  }

  remove(username: string): Result<{ username: string }> {
    if (!this.namespace()) return fail("not_found", "organization not found");
    const removed = this.sql.exec("DELETE FROM members WHERE username = ?", username).rowsWritten;
    if (removed === 0) return fail("not_found", `'${hideIds(username)}' is not a member`);
    return ok({ username });
  }

  /** A user's side of an organization membership, so deleting the user can leave its organizations. */
  recordMembership(organization: string, member: boolean): void {
    if (!this.namespace()) return;
    if (member) {
      this.sql.exec(
        "INSERT INTO memberships (organization, added_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        organization,
        Date.now(),
      );
    } else {
      this.sql.exec("DELETE FROM memberships WHERE organization = ?", organization);
    }
  }

  /** The organizations a user belongs to. */
  memberships(): string[] {
    if (!this.namespace()) return [];
    return this.column("SELECT organization AS v FROM memberships ORDER BY organization");
  }

  /** null when `caller` may use this namespace: it is the user, or a member of the organization. */
  denied(caller: string, asked: string): Failure | null {
    const ns = this.namespace();
    if (!ns) return NO_ACCESS(asked);
    if (ns.kind === "user" && ns.name === caller) return null;
    if (ns.kind === "organization") {
      const member = this.sql.exec("SELECT 1 FROM members WHERE username = ?", caller).toArray().length > 0;
      if (member) return null;
    }
    return NO_ACCESS(asked);
  }

  private column(query: string): string[] {
    return this.sql
      .exec<{ v: string }>(query)
      .toArray()
      .map((r) => r.v);
  }
}
