import { DurableObject } from "cloudflare:workers";
import { config } from "../../config";
import {
  type ActionJson,
  type ActionKind,
  type ActionRow,
  actionUri,
  type CallerActionJson,
  FINISHED_STATES,
  serializeAction,
  serializeActionForCaller,
} from "../../domain/action";
import { backoffSeconds } from "../../domain/backoff";
import { hideIds, newUuid } from "../../domain/ids";
import type { Page } from "../../domain/pagination";
import { type ServiceJson, type ServiceRow, serializeService, serviceUri } from "../../domain/service";
import { quote } from "../../domain/text";
import {
  DEFAULT_RATE_LIMIT,
  type Operation,
  serializeTrigger,
  type TriggerJson,
  type TriggerRow,
  triggerUri,
} from "../../domain/trigger";
import { fail, ok, type Result } from "../../http/errors";
import type { AttemptOutcome, BeginResult, OperationMessage } from "../../queue/messages";
import type { PublicTarget } from "../../targets/config";
import { migrate } from "../migrations";
import { type ApiKeyJson, deleteKey, insertKey, listKeys, matchKey } from "./api-keys";
import {
  idempotentAction,
  pendingRedeploy,
  pendingScaleUp,
  rateLimited,
  recordAcceptedCall,
  recordRejectedCall,
  rememberIdempotencyKey,
} from "./call-guards";
import { headOf, nextDue, putBack, releaseHead, takeDue } from "./dispatch";
import { atLeast, atMost, equals, selectPage, startsWith } from "./listing";
import { NAMESPACE_MIGRATIONS } from "./schema";

export type NamespaceKind = "user" | "organization";
export type NamespaceInfo = { name: string; kind: NamespaceKind; created_at: number; members: string[] };
export type { ApiKeyJson } from "./api-keys";

/** A service as the routes hand it over: validated, target already sealed. */
export type NewService = {
  uuid: string;
  name: string;
  image_name: string | null;
  image_tag: string | null;
  stack: string | null;
  target_num_containers: number;
  max_num_containers: number;
  target_public: PublicTarget | null;
  target_sealed: string | null;
};
export type ServiceChanges = Partial<Omit<NewService, "uuid">>;

export type ServiceFilters = {
  uuid?: string;
  uuid__startswith?: string;
  name?: string;
  stack__name?: string;
  state?: string;
};
export type TriggerFilters = { uuid?: string; uuid__startswith?: string; name?: string };
export type ActionFilters = {
  uuid?: string;
  uuid__startswith?: string;
  state?: string;
  object?: string;
  start_date__gte?: number;
  start_date__lte?: number;
  end_date__gte?: number;
  end_date__lte?: number;
};
/** One page of a list and the total it is a page of; routes wrap it in the envelope. */
export type Listing<T> = { total: number; objects: T[] };

/** What a request tells about itself, for the audit log. */
export type RequestMeta = {
  method: string;
  path: string;
  user_agent: string | null;
  ip: string | null;
  location: string | null;
  /** X-DockerCloud-Hops of the request: how many targets passed the operation on to get here. */
  hops: number;
};
export type TriggerCall = {
  service: string;
  trigger: string;
  /** The Idempotency-Key header, or null. */
  idempotency_key: string | null;
  /** The N of .../call/N/, or null. */
  scale_by: number | null;
  body: string | null;
  meta: RequestMeta;
};

const REDISPATCH_RETRY_MS = 5_000;
const QUEUE_BATCH = 100;

const NO_ACCESS = (name: string) =>
  fail("forbidden", `namespace '${hideIds(name)}' does not exist or you are not a member of it`);
const TRIGGER_COLUMNS =
  "uuid, service_uuid, name, operation, created_at, rate_limit, call_count, rejected_count, last_called_at";
const SERVICE_NOT_FOUND = fail("not_found", "Service not found");
const TRIGGER_NOT_FOUND = fail("not_found", "Trigger not found");
const ACTION_NOT_FOUND = fail("not_found", "Action not found");

/**
 * One namespace (a user or an organization): its API keys or members, its
 * services, their triggers and the actions they ran. Everything a request
 * reads or writes for one namespace lives here, so every write is immediately
 * visible to the next read, from everywhere; namespaces never wait on each
 * other. Methods that change several rows do so with no `await` between the
 * writes, so each commits atomically.
 */
export class NamespaceObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  /**
   * False until the namespace is claimed. An object that was only asked about
   * (a guessed username in a Basic header) writes nothing, so it is never stored.
   */
  private migrated = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => {
      const hasSchema =
        this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sql_schema_migrations'").toArray()
          .length > 0;
      if (hasSchema) this.ensureSchema();
    });
  }

  private ensureSchema(): void {
    if (this.migrated) return;
    migrate(this.sql, NAMESPACE_MIGRATIONS);
    this.migrated = true;
  }

  // ---- the namespace itself (admin API) ----

  /** The namespace row, kept in memory: it changes only through claim() and destroy(), both here. */
  private namespaceRow: { name: string; kind: NamespaceKind; created_at: number } | null | undefined;

  private row(): { name: string; kind: NamespaceKind; created_at: number } | undefined {
    if (!this.migrated) return undefined;
    if (this.namespaceRow === undefined) {
      this.namespaceRow =
        this.sql
          .exec<{ name: string; kind: NamespaceKind; created_at: number }>(
            "SELECT name, kind, created_at FROM namespace WHERE id = 1",
          )
          .toArray()[0] ?? null;
    }
    return this.namespaceRow ?? undefined;
  }

  /** Creates the namespace; names are unique across users and organizations. */
  claim(name: string, kind: NamespaceKind): Result<NamespaceInfo> {
    this.ensureSchema();
    const existing = this.row();
    if (existing) return fail("conflict", `the name '${name}' is already taken by a ${existing.kind}`);
    const created_at = Date.now();
    this.sql.exec("INSERT INTO namespace (id, name, kind, created_at) VALUES (1, ?, ?, ?)", name, kind, created_at);
    this.namespaceRow = { name, kind, created_at };
    return ok({ name, kind, created_at, members: [] });
  }

  info(): NamespaceInfo | null {
    const ns = this.row();
    if (!ns) return null;
    const members = this.sql
      .exec<{ username: string }>("SELECT username FROM members ORDER BY username")
      .toArray()
      .map((r) => r.username);
    return { ...ns, members };
  }

  /** Removes the namespace and everything in it. Returns the organizations a user belonged to. */
  destroy(kind: NamespaceKind): Result<{ memberships: string[]; members: string[] }> {
    const ns = this.row();
    if (!ns || ns.kind !== kind) return fail("not_found", `${kind} not found`);
    const memberships = this.sql
      .exec<{ organization: string }>("SELECT organization FROM memberships")
      .toArray()
      .map((r) => r.organization);
    const members = this.sql
      .exec<{ username: string }>("SELECT username FROM members")
      .toArray()
      .map((r) => r.username);
    for (const table of [
      "namespace",
      "api_keys",
      "members",
      "memberships",
      "services",
      "triggers",
      "actions",
      "trigger_calls",
      "idempotency_keys",
    ]) {
      this.sql.exec(`DELETE FROM ${table}`);
    }
    this.namespaceRow = null;
    return ok({ memberships, members });
  }

  addMember(username: string): Result<{ username: string }> {
    const ns = this.row();
    if (ns?.kind !== "organization") return fail("not_found", "organization not found");
    const inserted = this.sql.exec(
      "INSERT INTO members (username, added_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
      username,
      Date.now(),
    ).rowsWritten;
    if (inserted === 0) return fail("conflict", `'${username}' is already a member of '${ns.name}'`);
    return ok({ username });
  }

  removeMember(username: string): Result<{ username: string }> {
    if (!this.row()) return fail("not_found", "organization not found");
    const removed = this.sql.exec("DELETE FROM members WHERE username = ?", username).rowsWritten;
    if (removed === 0) return fail("not_found", `'${username}' is not a member`);
    return ok({ username });
  }

  /** A user's side of an organization membership, so deleting the user can leave its organizations. */
  recordMembership(organization: string, member: boolean): void {
    if (!this.row()) return;
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
    if (!this.row()) return [];
    return this.sql
      .exec<{ organization: string }>("SELECT organization FROM memberships ORDER BY organization")
      .toArray()
      .map((r) => r.organization);
  }

  // ---- API keys (users only) ----

  async createApiKey(label: string): Promise<Result<ApiKeyJson & { key: string }>> {
    if (this.row()?.kind !== "user") return fail("not_found", "user not found");
    return ok(await insertKey(this.sql, label));
  }

  listApiKeys(): ApiKeyJson[] {
    return this.row() ? listKeys(this.sql) : [];
  }

  revokeApiKey(uuid: string): Result<ApiKeyJson> {
    const revoked = this.row() ? deleteKey(this.sql, uuid) : null;
    return revoked ? ok(revoked) : fail("not_found", "API key not found");
  }

  private readonly keyUsedAt = new Map<string, number>();

  /** Checks an API key against every key of the user, each in constant time. */
  async authenticate(key: string): Promise<boolean> {
    if (this.row()?.kind !== "user") return false;
    const match = await matchKey(this.sql, key);
    // last_used_at is kept to the minute, so a busy key does not make every request a write.
    const now = Date.now();
    if (match && (this.keyUsedAt.get(match) ?? 0) < now - 60_000) {
      this.sql.exec("UPDATE api_keys SET last_used_at = ? WHERE uuid = ?", now, match);
      this.keyUsedAt.set(match, now);
    }
    return match !== null;
  }

  /** null when `caller` may use this namespace: it is the user, or a member of the organization. */
  private denied(caller: string, asked: string) {
    const ns = this.row();
    if (!ns) return NO_ACCESS(asked);
    if (ns.kind === "user" && ns.name === caller) return null;
    if (ns.kind === "organization") {
      const member = this.sql.exec("SELECT 1 FROM members WHERE username = ?", caller).toArray().length > 0;
      if (member) return null;
    }
    return NO_ACCESS(asked);
  }

  private get name(): string {
    return this.row()?.name ?? "";
  }

  // ---- services ----

  private service(uuid: string): ServiceRow | undefined {
    return this.sql.exec<ServiceRow>("SELECT * FROM services WHERE uuid = ?", uuid).toArray()[0];
  }

  private nameTaken(name: string, stack: string | null, except?: string): boolean {
    return (
      this.sql
        .exec("SELECT 1 FROM services WHERE name = ? AND stack IS ? AND uuid IS NOT ?", name, stack, except ?? null)
        .toArray().length > 0
    );
  }

  listServices(caller: string, asked: string, filters: ServiceFilters, page: Page): Result<Listing<ServiceJson>> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
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
    const ns = this.name;
    return ok({ total, objects: rows.map((r) => serializeService(ns, r)) });
  }

  createService(caller: string, asked: string, input: NewService): Result<ServiceJson> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    if (this.nameTaken(input.name, input.stack)) {
      return fail(
        "conflict",
        `a service named '${input.name}' already exists${input.stack ? ` in stack '${input.stack}'` : ""}`,
      );
    }
    if (input.target_num_containers > input.max_num_containers) {
      return fail(
        "bad_request",
        `target_num_containers (${input.target_num_containers}) must not exceed max_num_containers (${input.max_num_containers})`,
      );
    }
    this.sql.exec(
      `INSERT INTO services (uuid, name, image_name, image_tag, stack, state, target_num_containers,
         max_num_containers, target_public, target_sealed, created_at)
       VALUES (?, ?, ?, ?, ?, 'Not running', ?, ?, ?, ?, ?)`,
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
    );
    return ok(serializeService(this.name, this.service(input.uuid) as ServiceRow));
  }

  getService(caller: string, asked: string, uuid: string): Result<ServiceJson> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    const row = this.service(uuid);
    return row ? ok(serializeService(this.name, row)) : SERVICE_NOT_FOUND;
  }

  updateService(caller: string, asked: string, uuid: string, changes: ServiceChanges): Result<ServiceJson> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    const row = this.service(uuid);
    if (!row) return SERVICE_NOT_FOUND;
    const next = {
      name: changes.name ?? row.name,
      stack: changes.stack === undefined ? row.stack : changes.stack,
      target_num_containers: changes.target_num_containers ?? row.target_num_containers,
      max_num_containers: changes.max_num_containers ?? row.max_num_containers,
    };
    if ((changes.name !== undefined || changes.stack !== undefined) && this.nameTaken(next.name, next.stack, uuid)) {
      return fail(
        "conflict",
        `a service named '${next.name}' already exists${next.stack ? ` in stack '${next.stack}'` : ""}`,
      );
    }
    if (next.target_num_containers > next.max_num_containers) {
      return fail(
        "bad_request",
        `target_num_containers (${next.target_num_containers}) must not exceed max_num_containers (${next.max_num_containers})`,
      );
    }
    const sets: string[] = [];
    const args: (string | number | null)[] = [];
    const set = (column: string, value: string | number | null) => {
      sets.push(`${column} = ?`);
      args.push(value);
    };
    if (changes.name !== undefined) set("name", changes.name);
    if (changes.stack !== undefined) set("stack", changes.stack);
    if (changes.image_name !== undefined) set("image_name", changes.image_name);
    if (changes.image_tag !== undefined) set("image_tag", changes.image_tag);
    if (changes.target_num_containers !== undefined) set("target_num_containers", changes.target_num_containers);
    if (changes.max_num_containers !== undefined) set("max_num_containers", changes.max_num_containers);
    if (changes.target_public !== undefined) {
      set("target_public", changes.target_public ? JSON.stringify(changes.target_public) : null);
      set("target_sealed", changes.target_sealed ?? null);
    }
    if (sets.length) this.sql.exec(`UPDATE services SET ${sets.join(", ")} WHERE uuid = ?`, ...args, uuid);
    return ok(serializeService(this.name, this.service(uuid) as ServiceRow));
  }

  /**
   * Terminates a service: it leaves the registry with its triggers, and the
   * actions still waiting for it fail with a reason.
   */
  terminateService(caller: string, asked: string, uuid: string): Result<ServiceJson> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    const row = this.service(uuid);
    if (!row) return SERVICE_NOT_FOUND;
    const now = Date.now();
    const open = this.sql
      .exec<{ uuid: string; service_uuid: string }>(
        "SELECT uuid, service_uuid FROM actions WHERE service_uuid = ? AND state IN ('Pending', 'In progress')",
        uuid,
      )
      .toArray();
    for (const a of open) this.finish(a, "Failed", "the service was terminated before the operation completed");
    this.dropTriggerRows("service_uuid = ?", uuid);
    this.sql.exec("DELETE FROM services WHERE uuid = ?", uuid);
    return ok(
      serializeService(this.name, {
        ...row,
        state: "Terminated",
        destroyed_at: now,
        current_num_containers: 0,
        running_num_containers: 0,
        stopped_num_containers: 0,
      }),
    );
  }

  // ---- triggers ----

  private trigger(serviceUuid: string, uuid: string): TriggerRow | undefined {
    return this.sql
      .exec<TriggerRow>(
        `SELECT ${TRIGGER_COLUMNS} FROM triggers WHERE uuid = ? AND service_uuid = ?`,
        uuid,
        serviceUuid,
      )
      .toArray()[0];
  }

  /** A trigger and its service: the call path's only lookup. */
  private triggerWithService(serviceUuid: string, uuid: string): { trigger: TriggerRow; service: ServiceRow } | null {
    const trigger = this.trigger(serviceUuid, uuid);
    const service = trigger && this.service(serviceUuid);
    return trigger && service ? { trigger, service } : null;
  }

  listTriggers(
    caller: string,
    asked: string,
    serviceUuid: string,
    filters: TriggerFilters,
    page: Page,
  ): Result<Listing<TriggerJson>> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    const svc = this.service(serviceUuid);
    if (!svc) return SERVICE_NOT_FOUND;
    const filtered = filters.uuid !== undefined || filters.uuid__startswith !== undefined || filters.name !== undefined;
    const { total, rows } = selectPage<TriggerRow>(this.sql, {
      columns: TRIGGER_COLUMNS,
      table: "triggers",
      where: [
        equals("service_uuid", serviceUuid),
        equals("uuid", filters.uuid?.toLowerCase()),
        startsWith("uuid", filters.uuid__startswith?.toLowerCase()),
        equals("name", filters.name),
      ],
      order: "seq",
      page,
      // The unfiltered count is kept on the service row, so the first page never scans.
      knownTotal: filtered ? undefined : svc.trigger_count,
    });
    const ns = this.name;
    return ok({ total, objects: rows.map((r) => serializeTrigger(ns, r)) });
  }

  createTrigger(
    caller: string,
    asked: string,
    serviceUuid: string,
    input: { name: string | null; operation: Operation; rate_limit: number | null },
  ): Result<TriggerJson> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    const svc = this.service(serviceUuid);
    if (!svc) return SERVICE_NOT_FOUND;
    const quota = config(this.env).MAX_TRIGGERS_PER_SERVICE;
    if (svc.trigger_count >= quota) {
      return fail("quota_exceeded", `a service may hold at most ${quota} triggers; revoke one before creating another`);
    }
    const uuid = newUuid();
    this.sql.exec(
      "INSERT INTO triggers (uuid, service_uuid, name, operation, created_at, rate_limit) VALUES (?, ?, ?, ?, ?, ?)",
      uuid,
      serviceUuid,
      input.name || input.operation.toLowerCase(),
      input.operation,
      Date.now(),
      input.rate_limit ?? DEFAULT_RATE_LIMIT,
    );
    this.sql.exec("UPDATE services SET trigger_count = trigger_count + 1 WHERE uuid = ?", serviceUuid);
    return ok(serializeTrigger(this.name, this.trigger(serviceUuid, uuid) as TriggerRow));
  }

  getTrigger(caller: string, asked: string, serviceUuid: string, uuid: string): Result<TriggerJson> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    if (!this.service(serviceUuid)) return SERVICE_NOT_FOUND;
    const row = this.trigger(serviceUuid, uuid);
    return row ? ok(serializeTrigger(this.name, row)) : TRIGGER_NOT_FOUND;
  }

  updateTrigger(
    caller: string,
    asked: string,
    serviceUuid: string,
    uuid: string,
    changes: { name?: string; rate_limit?: number },
  ): Result<TriggerJson> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    if (!this.service(serviceUuid)) return SERVICE_NOT_FOUND;
    const row = this.trigger(serviceUuid, uuid);
    if (!row) return TRIGGER_NOT_FOUND;
    this.sql.exec(
      "UPDATE triggers SET name = ?, rate_limit = ? WHERE uuid = ?",
      changes.name === undefined ? row.name : changes.name || row.operation.toLowerCase(),
      changes.rate_limit ?? row.rate_limit,
      uuid,
    );
    return ok(serializeTrigger(this.name, this.trigger(serviceUuid, uuid) as TriggerRow));
  }

  /** Revokes a trigger: once this returns, a call to it finds nothing. */
  deleteTrigger(caller: string, asked: string, serviceUuid: string, uuid: string): Result<TriggerJson> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    if (!this.service(serviceUuid)) return SERVICE_NOT_FOUND;
    const row = this.trigger(serviceUuid, uuid);
    if (!row) return TRIGGER_NOT_FOUND;
    this.dropTriggerRows(`uuid = ?`, uuid);
    this.sql.exec("UPDATE services SET trigger_count = trigger_count - 1 WHERE uuid = ?", serviceUuid);
    return ok(serializeTrigger(this.name, row));
  }

  /** Deletes triggers with their rate windows and idempotency keys. */
  private dropTriggerRows(where: string, value: string): void {
    const uuids = this.sql.exec<{ uuid: string }>(`SELECT uuid FROM triggers WHERE ${where}`, value).toArray();
    for (const { uuid } of uuids) {
      this.sql.exec("DELETE FROM trigger_calls WHERE trigger_uuid = ?", uuid);
      this.sql.exec("DELETE FROM idempotency_keys WHERE trigger_uuid = ?", uuid);
    }
    this.sql.exec(`DELETE FROM triggers WHERE ${where}`, value);
  }

  // ---- the call ----

  /**
   * Accepts a trigger call: checks the guard rails and records the action and
   * its hand-off in one atomic write (no await in here), leaving the hand-off
   * to the queue to the alarm, so the caller waits for nothing but this write.
   */
  callTrigger(call: TriggerCall): Result<CallerActionJson> {
    const ns = this.row();
    if (!ns) return TRIGGER_NOT_FOUND;
    const found = this.triggerWithService(call.service, call.trigger);
    if (!found) return TRIGGER_NOT_FOUND;
    const { trigger, service: svc } = found;
    const now = Date.now();
    // The answer may be another caller's action (joined, or replayed): it shows only this trigger.
    const forCaller = (a: ActionRow) =>
      serializeActionForCaller(ns.name, a, triggerUri(ns.name, svc.uuid, trigger.uuid));

    if (call.idempotency_key !== null) {
      const earlier = idempotentAction(this.sql, trigger.uuid, call.idempotency_key, now);
      const action = earlier ? this.action(earlier) : undefined;
      if (action) return ok(forCaller(action));
    }

    let scaleBy: number | null = null;
    if (trigger.operation === "REDEPLOY") {
      if (call.scale_by !== null) {
        return fail("bad_request", "a REDEPLOY trigger takes no count: POST to .../call/ without a number");
      }
    } else {
      scaleBy = call.scale_by ?? 1;
      if (scaleBy < 1 || scaleBy > svc.max_num_containers) {
        return fail(
          "bad_request",
          `the count to scale up by must be a whole number from 1 to ${svc.max_num_containers} (the service's max_num_containers)`,
        );
      }
    }

    const retryAfter = rateLimited(this.sql, trigger.uuid, trigger.rate_limit, now);
    if (retryAfter !== null) {
      recordRejectedCall(this.sql, trigger.uuid, now);
      return fail(
        "rate_limited",
        `this trigger accepts at most ${trigger.rate_limit} calls per minute; retry in ${retryAfter} s`,
        { "Retry-After": String(retryAfter) },
      );
    }

    if (scaleBy !== null) {
      const pending = pendingScaleUp(this.sql, svc.uuid);
      if (svc.target_num_containers + pending + scaleBy > svc.max_num_containers) {
        recordRejectedCall(this.sql, trigger.uuid, now);
        return fail(
          "conflict",
          `scaling up by ${scaleBy} would pass max_num_containers (${svc.max_num_containers}): the service targets ${svc.target_num_containers} containers${pending ? ` and ${pending} more are pending` : ""}`,
        );
      }
    }

    recordAcceptedCall(this.sql, trigger, now);
    let action: ActionRow;
    const joinable = trigger.operation === "REDEPLOY" ? pendingRedeploy(this.sql, svc.uuid) : null;
    if (joinable) {
      // A redeploy not yet started will deploy the latest image anyway: the call joins it.
      this.sql.exec("UPDATE actions SET joined_calls = joined_calls + 1 WHERE uuid = ?", joinable);
      const joined = this.action(joinable) as ActionRow;
      this.appendLog(
        joinable,
        `${new Date(now).toISOString()} a call to trigger ${quote(trigger.name)} joined this pending redeploy (${joined.joined_calls} joined)`,
        null,
      );
      action = this.action(joinable) as ActionRow;
    } else {
      action = this.insertAction({
        service: svc,
        kind: trigger.operation === "REDEPLOY" ? "redeploy" : "scaleup",
        trigger: { uuid: trigger.uuid, name: trigger.name, uri: triggerUri(ns.name, svc.uuid, trigger.uuid) },
        user: null,
        meta: call.meta,
        scaleBy,
        body: call.body,
        reuseVolumes: null,
        retryOf: null,
        hops: call.meta.hops,
      });
    }
    if (call.idempotency_key !== null) {
      rememberIdempotencyKey(this.sql, trigger.uuid, call.idempotency_key, action.uuid, now);
    }
    return ok(forCaller(action));
  }

  // ---- service operations (Basic auth) ----

  /**
   * POST .../redeploy/ and .../scale/: the same pipeline as trigger calls, as
   * an action of the user. `scale` brings the service to its target_num_containers.
   */
  operateService(
    caller: string,
    asked: string,
    uuid: string,
    op: { kind: "redeploy" | "scale"; reuse_volumes: boolean | null; meta: RequestMeta },
  ): Result<{ service: ServiceJson; action: ActionJson }> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    const svc = this.service(uuid);
    if (!svc) return SERVICE_NOT_FOUND;
    const action = this.insertAction({
      service: svc,
      kind: op.kind,
      trigger: null,
      user: caller,
      meta: op.meta,
      scaleBy: null,
      body: null,
      reuseVolumes: op.reuse_volumes,
      retryOf: null,
      hops: op.meta.hops,
    });
    const ns = this.name;
    return ok({ service: serializeService(ns, svc), action: serializeAction(ns, action) });
  }

  private insertAction(a: {
    service: ServiceRow;
    kind: ActionKind;
    trigger: { uuid: string; name: string; uri: string } | null;
    user: string | null;
    meta: RequestMeta;
    scaleBy: number | null;
    body: string | null;
    reuseVolumes: boolean | null;
    retryOf: string | null;
    hops: number;
  }): ActionRow {
    const now = Date.now();
    const uuid = newUuid();
    // Only the first unfinished action of a service is handed to the queue; the others wait their turn.
    const busy = headOf(this.sql, a.service.uuid) !== undefined;
    const inserted = this.sql
      .exec<ActionRow>(
        `INSERT INTO actions (uuid, service_uuid, object, trigger_uuid, trigger_name, trigger_uri, kind, method, path,
         user, user_agent, ip, location, start_at, state, is_user_action, scale_by, body, dispatch, touched_at,
         reuse_volumes, retry_of, due_at, hops)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'Pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)
       RETURNING *`,
        uuid,
        a.service.uuid,
        serviceUri(this.name, a.service.uuid),
        a.trigger?.uuid ?? null,
        a.trigger?.name ?? null,
        a.trigger?.uri ?? null,
        a.kind,
        a.meta.method,
        a.meta.path,
        a.user,
        a.meta.user_agent,
        a.meta.ip,
        a.meta.location,
        now,
        a.user === null ? 0 : 1,
        a.scaleBy,
        a.body,
        busy ? "waiting" : "ready",
        now,
        a.reuseVolumes === null ? null : a.reuseVolumes ? 1 : 0,
        a.retryOf,
        busy ? null : now,
        a.hops,
      )
      .one();
    if (!busy) this.alarmBy(now);
    return inserted;
  }

  // ---- actions (audit API) ----

  private action(uuid: string): ActionRow | undefined {
    if (!this.migrated) return undefined;
    return this.sql.exec<ActionRow>("SELECT * FROM actions WHERE uuid = ?", uuid).toArray()[0];
  }

  listActions(caller: string, asked: string, filters: ActionFilters, page: Page): Result<Listing<ActionJson>> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    const { total, rows } = selectPage<ActionRow>(this.sql, {
      columns: "*",
      table: "actions",
      where: [
        equals("uuid", filters.uuid?.toLowerCase()),
        startsWith("uuid", filters.uuid__startswith?.toLowerCase()),
        equals("state", filters.state),
        equals("object", filters.object),
        atLeast("start_at", filters.start_date__gte),
        atMost("start_at", filters.start_date__lte),
        atLeast("end_at", filters.end_date__gte),
        atMost("end_at", filters.end_date__lte),
      ],
      order: "seq DESC",
      page,
    });
    const ns = this.name;
    return ok({ total, objects: rows.map((r) => serializeAction(ns, r)) });
  }

  getAction(caller: string, asked: string, uuid: string): Result<ActionJson> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    const row = this.action(uuid);
    return row ? ok(serializeAction(this.name, row)) : ACTION_NOT_FOUND;
  }

  /** Cancels a Pending action; one already In progress cannot be stopped (409). */
  cancelAction(caller: string, asked: string, uuid: string): Result<ActionJson> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    const a = this.action(uuid);
    if (!a) return ACTION_NOT_FOUND;
    if (a.state !== "Pending") {
      return fail("conflict", `only a Pending action can be canceled; this one is ${a.state}`);
    }
    this.finish(a, "Canceled", `canceled by ${quote(caller)}`);
    return ok(serializeAction(this.name, this.action(uuid) as ActionRow));
  }

  /**
   * Repeats a finished action as a new one (the way to replay what went to the
   * dead-letter queue). The new action runs through the same queue and order.
   */
  retryAction(caller: string, asked: string, uuid: string, meta: RequestMeta): Result<ActionJson> {
    const denied = this.denied(caller, asked);
    if (denied) return denied;
    const a = this.action(uuid);
    if (!a) return ACTION_NOT_FOUND;
    if (!FINISHED_STATES.includes(a.state)) {
      return fail("conflict", `only a Success, Failed or Canceled action can be retried; this one is ${a.state}`);
    }
    const svc = this.service(a.service_uuid);
    if (!svc) return fail("conflict", "the action's service no longer exists");
    const retried = this.insertAction({
      service: svc,
      kind: a.kind,
      trigger: a.trigger_uuid ? { uuid: a.trigger_uuid, name: a.trigger_name ?? "", uri: a.trigger_uri ?? "" } : null,
      user: caller,
      meta,
      scaleBy: a.scale_by,
      body: a.body,
      reuseVolumes: a.reuse_volumes === null ? null : a.reuse_volumes === 1,
      retryOf: a.uuid,
      // A retry goes on from where the action was in a chain of targets, so retrying cannot restart a loop.
      hops: Math.max(a.hops, meta.hops),
    });
    this.appendLog(retried.uuid, `${new Date().toISOString()} retry of action ${a.uuid}`, null);
    return ok(serializeAction(this.name, this.action(retried.uuid) as ActionRow));
  }

  // ---- the queue side ----

  /**
   * Starts one attempt of an action. Nothing is performed out of turn: an
   * action already finished, not yet at the head of its service, scheduled
   * for a later retry, or with an attempt still running is left alone (a
   * redelivered or stale message is acked and does nothing; the action's own
   * deadline brings it back when it is due).
   */
  beginAttempt(uuid: string): BeginResult {
    const ns = this.row();
    const a = this.action(uuid);
    if (!ns || !a) return { status: "done", reason: "the action no longer exists" };
    if (FINISHED_STATES.includes(a.state)) return { status: "done", reason: `the action is already ${a.state}` };
    const now = Date.now();
    if (a.dispatch === "waiting" || headOf(this.sql, a.service_uuid)?.uuid !== a.uuid) {
      return { status: "done", reason: "an earlier action of the service has not finished" };
    }
    if (a.dispatch === "ready" && a.due_at !== null && a.due_at > now) {
      return { status: "done", reason: "the action's next attempt is not due yet" };
    }
    if (a.attempt_started_at !== null && now - a.attempt_started_at < this.attemptWindowMs()) {
      return { status: "done", reason: "another delivery of this action is being performed" };
    }
    const svc = this.service(a.service_uuid);
    if (!svc) {
      this.finish(a, "Failed", "the service no longer exists");
      return { status: "done", reason: "the service no longer exists" };
    }
    // The new count is computed when the action first runs (not when it was called), and kept for its retries.
    let newTarget = a.new_target;
    if (newTarget === null && a.kind === "scaleup") {
      newTarget = svc.target_num_containers + (a.scale_by ?? 1);
      if (newTarget > svc.max_num_containers) {
        const reason = `scaling up by ${a.scale_by} would take the service from ${svc.target_num_containers} to ${newTarget} containers, past its max_num_containers of ${svc.max_num_containers}`;
        this.finish(a, "Failed", reason);
        return { status: "done", reason };
      }
    }
    if (newTarget === null && a.kind === "scale") newTarget = svc.target_num_containers;
    // Until the attempt reports, its deadline is the longest it can run: past that it is presumed lost.
    this.sql.exec(
      `UPDATE actions SET state = 'In progress', attempts = attempts + 1, touched_at = ?, attempt_started_at = ?,
         new_target = ?, dispatch = 'queued', due_at = ? WHERE uuid = ?`,
      now,
      now,
      newTarget,
      now + this.attemptWindowMs(),
      uuid,
    );
    this.scheduleAlarm();
    return {
      status: "run",
      job: {
        namespace: ns.name,
        attempt: a.attempts + 1,
        kind: a.kind,
        action: { uuid, resource_uri: actionUri(ns.name, uuid) },
        service: {
          uuid: svc.uuid,
          name: svc.name,
          resource_uri: serviceUri(ns.name, svc.uuid),
          image_name: svc.image_name,
          target_num_containers: svc.target_num_containers,
          max_num_containers: svc.max_num_containers,
        },
        trigger: a.trigger_uuid ? { uuid: a.trigger_uuid, name: a.trigger_name ?? "" } : null,
        scale_by: a.scale_by,
        new_target_num_containers: newTarget,
        trigger_body: a.body,
        reuse_volumes: a.reuse_volumes === null ? null : a.reuse_volumes === 1,
        target: svc.target_public ? (JSON.parse(svc.target_public) as PublicTarget) : null,
        target_sealed: svc.target_sealed,
        remote_target: a.remote_target,
        hops: a.hops,
      },
    };
  }

  /**
   * Records the outcome of attempt `attempt`. Success applies the operation to
   * the registry and lets the next action of the service go (with `chain`,
   * already started and returned, so the consumer runs it at once). A
   * retryable failure is scheduled here, with the capped exponential delay,
   * until the action has used MAX_ATTEMPTS. A report of an attempt that is no
   * longer the current one (it was presumed lost and started again) is logged
   * and changes nothing.
   */
  finishAttempt(uuid: string, attempt: number, outcome: AttemptOutcome, chain = false): BeginResult | null {
    const a = this.action(uuid);
    if (!a || FINISHED_STATES.includes(a.state)) return null;
    const now = Date.now();
    const stale = attempt !== a.attempts || a.attempt_started_at === null;
    const line = `${new Date(now).toISOString()} attempt ${attempt}: ${outcome.detail} (${outcome.durationMs} ms)${stale ? " [reported after the attempt was presumed lost; ignored]" : ""}`;
    if (stale) {
      this.appendLog(uuid, line, null);
      return null;
    }
    const cfg = config(this.env);
    const retry = outcome.result === "retry";
    const delayMs = retry
      ? backoffSeconds(a.attempts, cfg.RETRY_BASE_DELAY_SECONDS, cfg.RETRY_MAX_DELAY_SECONDS) * 1000
      : 0;
    // One write for the attempt: its log line, its error, the end of the attempt, a remote count to keep, the
    // next deadline of a retry.
    this.sql.exec(
      `UPDATE actions SET logs = CASE WHEN logs = '' THEN ? ELSE logs || char(10) || ? END,
         last_error = COALESCE(?, last_error), touched_at = ?, attempt_started_at = NULL,
         remote_target = COALESCE(remote_target, ?),
         dispatch = CASE WHEN ? THEN 'ready' ELSE dispatch END, due_at = CASE WHEN ? THEN ? ELSE due_at END
       WHERE uuid = ?`,
      line,
      line,
      outcome.result === "success" ? null : outcome.detail,
      now,
      outcome.remoteTarget ?? null,
      retry ? 1 : 0,
      retry ? 1 : 0,
      now + delayMs,
      uuid,
    );
    if (retry) {
      if (a.attempts >= cfg.MAX_ATTEMPTS) {
        this.finish(a, "Failed", `gave up after ${a.attempts} attempt(s); last error: ${outcome.detail}`);
      } else {
        this.scheduleAlarm();
      }
      return null;
    }
    if (outcome.result === "success") this.applyToRegistry(a);
    const next = this.finish(a, outcome.result === "success" ? "Success" : "Failed", null, chain);
    // The consumer that finished an action goes on with the next one of the service, skipping a queue round trip.
    return next ? this.beginAttempt(next) : null;
  }

  /**
   * How long a started attempt may be running: its target timeout (two
   * requests for a Docker Cloud target's scale) plus a margin.
   */
  private attemptWindowMs(): number {
    return 3 * config(this.env).TARGET_TIMEOUT_MS + 5_000;
  }

  /** How long a message handed to the queue may take to start its attempt before it is handed again. */
  private leaseMs(): number {
    return config(this.env).DISPATCH_LEASE_SECONDS * 1000;
  }

  /**
   * The dead-letter queue's verdict: the queue could not start the action in
   * all its deliveries. An attempt still running decides instead.
   */
  giveUp(uuid: string): void {
    const a = this.action(uuid);
    if (!a || FINISHED_STATES.includes(a.state)) return;
    if (a.attempt_started_at !== null && Date.now() - a.attempt_started_at < this.attemptWindowMs()) return;
    const last = a.last_error ?? "no attempt completed";
    this.finish(a, "Failed", `gave up after ${a.attempts} attempt(s); last error: ${last}`);
  }

  private appendLog(uuid: string, line: string, error: string | null): void {
    this.sql.exec(
      "UPDATE actions SET logs = CASE WHEN logs = '' THEN ? ELSE logs || char(10) || ? END, last_error = COALESCE(?, last_error), touched_at = ? WHERE uuid = ?",
      line,
      line,
      error,
      Date.now(),
      uuid,
    );
  }

  private applyToRegistry(a: ActionRow): void {
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
  }

  /**
   * Ends an action and lets the next action of its service go if it is now
   * the head: handed to the queue by the alarm or, with `claimNext`, claimed
   * by the caller (its uuid is returned) so it runs without a queue round trip.
   */
  private finish(
    a: { uuid: string; service_uuid: string },
    state: "Success" | "Failed" | "Canceled",
    reason: string | null,
    claimNext = false,
  ): string | null {
    const now = Date.now();
    if (reason) this.appendLog(a.uuid, `${new Date(now).toISOString()} ${reason}`, reason);
    this.sql.exec(
      "UPDATE actions SET state = ?, end_at = ?, dispatch = 'done', due_at = NULL, attempt_started_at = NULL WHERE uuid = ?",
      state,
      now,
      a.uuid,
    );
    const claimed = releaseHead(this.sql, a.service_uuid, now, claimNext ? { leaseMs: this.leaseMs() } : null);
    this.scheduleAlarm();
    return claimed;
  }

  /** The time the alarm is set for, as far as this instance knows (null: unknown or none). */
  private alarmAt: number | null = null;

  /**
   * Sets the alarm to the earliest deadline of the namespace. Read from the
   * table each time, so an instance that lost its memory (evicted, restarted)
   * never moves the alarm past a deadline.
   */
  private scheduleAlarm(): void {
    const due = nextDue(this.sql);
    if (due === null || due === this.alarmAt) return;
    this.alarmAt = due;
    void this.ctx.storage.setAlarm(due);
  }

  /**
   * Makes sure the alarm runs by `t`, a new deadline, without reading the
   * table (the call path): an alarm set for `t` or earlier already covers it,
   * and one that runs early only sets itself again for the earliest deadline.
   */
  private alarmBy(t: number): void {
    if (this.alarmAt !== null && this.alarmAt <= t) return;
    this.alarmAt = t;
    void this.ctx.storage.setAlarm(t);
  }

  /**
   * The outbox: hands every action whose deadline has passed to the queue
   * (new, due for a retry, or whose message or attempt went missing), then
   * sets the alarm for the next deadline. An accepted call is never lost, and
   * after any crash its action resumes within one deadline.
   */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    const ns = this.row();
    if (!ns) return;
    for (;;) {
      const due = takeDue(this.sql, Date.now(), this.leaseMs(), QUEUE_BATCH);
      if (due.length === 0) break;
      try {
        await this.env.OPERATIONS.sendBatch(
          due.map((action) => ({ body: { namespace: ns.name, action } satisfies OperationMessage })),
        );
      } catch (err) {
        console.error("handing actions to the queue failed; retrying", err);
        putBack(this.sql, due, Date.now(), REDISPATCH_RETRY_MS);
        break;
      }
    }
    this.scheduleAlarm();
  }
}

export const namespaceStub = (env: Env, name: string): DurableObjectStub<NamespaceObject> =>
  env.NAMESPACES.getByName(name);
