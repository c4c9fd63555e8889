import { DurableObject } from "cloudflare:workers";
import { config } from "../../config";
import type { ActionFilters, ActionJson, CallerActionJson, RequestMeta } from "../../domain/action";
import type { AgentFilters, AgentJson } from "../../domain/agent";
import type { NamespaceInfo, NamespaceKind } from "../../domain/namespace";
import type { Listing, Page } from "../../domain/pagination";
import { andThen, fail, ok, type Result } from "../../domain/result";
import type { NewService, ServiceChanges, ServiceFilters, ServiceJson, ServiceRow } from "../../domain/service";
import type { TriggerCall, TriggerFilters, TriggerJson } from "../../domain/trigger";
import type { AttemptReport, BeginResult } from "../../targets/job";
import { migrate } from "../migrations";
import { Actions } from "./actions";
import { AgentJobs } from "./agent-jobs";
import { AgentLinks, CLOSE, PING, PONG } from "./agent-links";
import { Agents } from "./agents";
import { type ApiKeyJson, authenticateKey, deleteKey, insertKey, listKeys } from "./api-keys";
import { Attempts } from "./attempts";
import { acceptCall } from "./calls";
import { Members } from "./members";
import { Scheduler } from "./scheduler";
import { NAMESPACE_MIGRATIONS } from "./schema";
import { SERVICE_NOT_FOUND, Services } from "./services";
import { agentJobSettings, attemptSettings } from "./settings";
import { type NewTrigger, TRIGGER_NOT_FOUND, Triggers } from "./triggers";

export type { ApiKeyJson } from "./api-keys";

/**
 * One namespace (a user or an organization): its API keys or members, its
 * services, their triggers and the actions they ran. Everything a request
 * reads or writes for one namespace lives here, so every write is immediately
 * visible to the next read, from everywhere; namespaces never wait on each
 * other. Methods that change several rows do so with no `await` between the
 * writes, so each commits atomically.
 *
 * This class is the RPC surface only: each method checks access once and
 * delegates to the module that owns the tables (members.ts, api-keys.ts,
 * services.ts, triggers.ts, calls.ts, actions.ts, attempts.ts, scheduler.ts,
 * agents.ts).
 */
export class NamespaceObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  /**
   * False until the namespace is claimed. An object that was only asked about
   * (a guessed username in a Basic header) writes nothing, so it is never stored.
   */
  private migrated = false;

  private readonly members: Members;
  private readonly services: Services;
  private readonly triggers: Triggers;
  private readonly actions: Actions;
  private readonly attempts: Attempts;
  private readonly scheduler: Scheduler;
  private readonly agents: Agents;
  private readonly links: AgentLinks;
  private readonly agentJobs: AgentJobs;
  private readonly keyUsedAt = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    const name = () => this.members.name;
    this.members = new Members(this.sql, () => this.migrated);
    this.scheduler = new Scheduler(ctx.storage, this.sql);
    this.services = new Services(this.sql, name);
    this.triggers = new Triggers(this.sql, name);
    this.agents = new Agents(this.sql, name, (uuid) => this.links.lastPing(uuid));
    this.links = new AgentLinks(ctx, this.agents, () => this.agentJobs);
    // Heartbeats are answered by the runtime, without waking a hibernating object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
    this.actions = new Actions(this.sql, name, this.scheduler, () => this.leaseMs());
    // Settings are read when used, from this.env, the object's settings at that moment.
    this.attempts = new Attempts(this.sql, name, this.actions, this.services, this.scheduler, () =>
      attemptSettings(config(this.env)),
    );
    const rooms = { actions: this.actions, attempts: this.attempts, services: this.services, agents: this.agents };
    this.agentJobs = new AgentJobs(this.sql, rooms, this.scheduler, this.links, () =>
      agentJobSettings(config(this.env)),
    );
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

  /** How long a message handed to the queue may take to start its attempt before it is handed again. */
  private leaseMs(): number {
    return config(this.env).DISPATCH_LEASE_SECONDS * 1000;
  }

  /** Runs `then` if `caller` may use the namespace it asked for by the name `asked`. */
  private as<T>(caller: string, asked: string, then: () => Result<T>): Result<T> {
    return this.members.denied(caller, asked) ?? then();
  }

  /** Runs `then` with a service of the namespace, if `caller` may use it and it exists. */
  private withService<T>(caller: string, asked: string, uuid: string, then: (svc: ServiceRow) => Result<T>) {
    return this.as(caller, asked, () => {
      const svc = this.services.row(uuid);
      return svc ? then(svc) : SERVICE_NOT_FOUND;
    });
  }

  // ---- the namespace itself (admin API) ----

  claim(name: string, kind: NamespaceKind): Result<NamespaceInfo> {
    this.ensureSchema();
    return this.members.claim(name, kind);
  }

  info(): NamespaceInfo | null {
    return this.members.info();
  }

  destroy(kind: NamespaceKind): Result<{ memberships: string[]; members: string[] }> {
    const destroyed = this.members.destroy(kind);
    if (destroyed.ok) this.links.dropAll();
    return destroyed;
  }

  addMember(username: string): Result<{ username: string }> {
    return this.members.add(username);
  }

  removeMember(username: string): Result<{ username: string }> {
    return this.members.remove(username);
  }

  recordMembership(organization: string, member: boolean): void {
    this.members.recordMembership(organization, member);
  }

  memberships(): string[] {
    return this.members.memberships();
  }

  // ---- API keys (users only) ----

  async createApiKey(label: string): Promise<Result<ApiKeyJson & { key: string }>> {
    if (this.members.namespace()?.kind !== "user") return fail("not_found", "user not found");
    return ok(await insertKey(this.sql, label));
  }

  listApiKeys(): ApiKeyJson[] {
    return this.members.namespace() ? listKeys(this.sql) : [];
  }

  revokeApiKey(uuid: string): Result<ApiKeyJson> {
    const revoked = this.members.namespace() ? deleteKey(this.sql, uuid) : null;
    return revoked ? ok(revoked) : fail("not_found", "API key not found");
  }

  async authenticate(key: string): Promise<boolean> {
    if (this.members.namespace()?.kind !== "user") return false;
    return authenticateKey(this.sql, key, this.keyUsedAt);
  }

  // ---- services ----

  listServices(caller: string, asked: string, filters: ServiceFilters, page: Page): Result<Listing<ServiceJson>> {
    return this.as(caller, asked, () => ok(this.services.list(filters, page)));
  }

  createService(caller: string, asked: string, input: NewService): Result<ServiceJson> {
    return this.as(caller, asked, () => andThen(this.agents.resolveTarget(input), (i) => this.services.create(i)));
  }

  getService(caller: string, asked: string, uuid: string): Result<ServiceJson> {
    return this.withService(caller, asked, uuid, (svc) => ok(this.services.json(svc)));
  }

  /** A new target takes over the service's waiting actions at once (an agent's go out to it now). */
  updateService(caller: string, asked: string, uuid: string, changes: ServiceChanges): Result<ServiceJson> {
    return this.withService(caller, asked, uuid, (svc) =>
      andThen(this.agents.resolveTarget(changes), (c) => {
        const updated = this.services.update(svc, c);
        if (updated.ok && c.target_public !== undefined) this.agentJobs.offerHead(uuid, Date.now());
        return updated;
      }),
    );
  }

  /**
   * Terminates a service: it leaves the registry with its triggers, and the
   * actions still waiting for it fail with a reason.
   */
  terminateService(caller: string, asked: string, uuid: string): Result<ServiceJson> {
    return this.withService(caller, asked, uuid, (svc) => {
      this.actions.failOpen(uuid, "the service was terminated before the operation completed");
      this.triggers.revokeAll(uuid);
      return ok(this.services.remove(svc));
    });
  }

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
    return this.withService(caller, asked, uuid, (svc) => {
      const action = this.actions.insert({
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
      this.agentJobs.offerHead(svc.uuid, Date.now());
      return ok({
        service: this.services.json(svc),
        action: this.actions.json(this.actions.row(action.uuid) ?? action),
      });
    });
  }

  // ---- triggers ----

  listTriggers(
    caller: string,
    asked: string,
    serviceUuid: string,
    filters: TriggerFilters,
    page: Page,
  ): Result<Listing<TriggerJson>> {
    return this.withService(caller, asked, serviceUuid, (svc) => ok(this.triggers.list(svc, filters, page)));
  }

  createTrigger(caller: string, asked: string, serviceUuid: string, input: NewTrigger): Result<TriggerJson> {
    const quota = config(this.env).MAX_TRIGGERS_PER_SERVICE;
    return this.withService(caller, asked, serviceUuid, (svc) => this.triggers.create(svc, input, quota));
  }

  getTrigger(caller: string, asked: string, serviceUuid: string, uuid: string): Result<TriggerJson> {
    return this.withService(caller, asked, serviceUuid, () => this.triggers.get(serviceUuid, uuid));
  }

  updateTrigger(
    caller: string,
    asked: string,
    serviceUuid: string,
    uuid: string,
    changes: { name?: string; rate_limit?: number },
  ): Result<TriggerJson> {
    return this.withService(caller, asked, serviceUuid, () => this.triggers.update(serviceUuid, uuid, changes));
  }

  /** Revokes a trigger: once this returns, a call to it finds nothing. */
  deleteTrigger(caller: string, asked: string, serviceUuid: string, uuid: string): Result<TriggerJson> {
    return this.withService(caller, asked, serviceUuid, () => this.triggers.revoke(serviceUuid, uuid));
  }

  // ---- the call (no credentials: the trigger's uuid is the secret) ----

  /**
   * Accepts a trigger call in one atomic write, leaving the hand-off to the
   * queue to the alarm, so the caller waits for nothing but this write.
   */
  callTrigger(call: TriggerCall): Result<CallerActionJson> {
    const ns = this.members.namespace();
    if (!ns) return TRIGGER_NOT_FOUND;
    const trigger = this.triggers.row(call.service, call.trigger);
    const service = trigger && this.services.row(call.service);
    if (!trigger || !service) return TRIGGER_NOT_FOUND;
    const accepted = acceptCall(this.sql, this.actions, ns.name, { trigger, service }, call);
    // An agent that is connected gets the job now, from this object, without a queue hop.
    if (accepted.ok && service.target_public !== null) this.agentJobs.offerHead(service.uuid, Date.now());
    return accepted;
  }

  // ---- actions (audit API) ----

  listActions(caller: string, asked: string, filters: ActionFilters, page: Page): Result<Listing<ActionJson>> {
    return this.as(caller, asked, () => ok(this.actions.list(filters, page)));
  }

  getAction(caller: string, asked: string, uuid: string): Result<ActionJson> {
    return this.as(caller, asked, () => this.actions.get(uuid));
  }

  cancelAction(caller: string, asked: string, uuid: string): Result<ActionJson> {
    return this.as(caller, asked, () => this.actions.cancel(uuid, caller));
  }

  retryAction(caller: string, asked: string, uuid: string, meta: RequestMeta): Result<ActionJson> {
    return this.as(caller, asked, () => {
      const retried = this.actions.retry(uuid, caller, meta, (s) => this.services.row(s));
      if (retried.ok) this.agentJobs.offerHead(this.actions.row(uuid)?.service_uuid ?? "", Date.now());
      return retried;
    });
  }

  // ---- agents (see agents.ts) ----

  listAgents(caller: string, asked: string, filters: AgentFilters, page: Page): Result<Listing<AgentJson>> {
    return this.as(caller, asked, () => {
      this.links.reap(Date.now());
      return ok(this.agents.list(filters, page));
    });
  }

  async createAgent(caller: string, asked: string, name: string): Promise<Result<AgentJson & { token: string }>> {
    return this.members.denied(caller, asked) ?? (await this.agents.create(name));
  }

  getAgent(caller: string, asked: string, uuid: string): Result<AgentJson> {
    return this.as(caller, asked, () => {
      this.links.reap(Date.now());
      return this.agents.get(uuid);
    });
  }

  updateAgent(caller: string, asked: string, uuid: string, changes: { name?: string }): Result<AgentJson> {
    return this.as(caller, asked, () => this.agents.update(uuid, changes));
  }

  /** Deletes an agent: its connection is closed at once and its token refused from then on. */
  deleteAgent(caller: string, asked: string, uuid: string): Result<AgentJson> {
    return this.as(caller, asked, () => {
      const removed = this.agents.remove(uuid);
      if (!removed.ok) return removed;
      this.links.drop(uuid, CLOSE.deleted);
      // What waits for it says so, and waits for the service's target to name another agent.
      this.agentJobs.offerAll(uuid, Date.now());
      return removed;
    });
  }

  /**
   * An agent's connection (the only request that reaches this object over
   * fetch: a WebSocket upgrade cannot travel over RPC). The Worker has checked
   * the upgrade and the token's shape, and words every refusal itself.
   */
  override async fetch(request: Request): Promise<Response> {
    if (!this.members.namespace()) return new Response(null, { status: 401 });
    return this.links.accept(request.headers.get("x-agent-token") ?? "");
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    if (this.migrated) this.links.message(ws, message);
  }

  override webSocketClose(ws: WebSocket): void {
    if (this.migrated) this.links.closed(ws);
  }

  override webSocketError(ws: WebSocket): void {
    if (this.migrated) this.links.closed(ws);
  }

  // ---- the queue side (see attempts.ts) ----

  beginAttempt(uuid: string): BeginResult {
    if (!this.members.namespace()) return { status: "done", reason: "the action no longer exists" };
    if (this.agentJobs.isAgentAction(uuid)) {
      this.agentJobs.offer(uuid, Date.now(), false);
      return { status: "done", reason: "the action goes to its agent" };
    }
    return this.attempts.begin(uuid);
  }

  finishAttempt(uuid: string, attempt: number, report: AttemptReport, chain = false): BeginResult | null {
    if (!this.migrated) return null;
    return this.attempts.finish(uuid, attempt, report, chain);
  }

  giveUp(uuid: string): void {
    if (this.migrated) this.attempts.giveUp(uuid);
  }

  /** The outbox (see scheduler.ts): every action whose deadline has passed goes to the queue. */
  override async alarm(): Promise<void> {
    const ns = this.members.namespace();
    if (!ns) return this.scheduler.forget();
    this.agentJobs.offerDue(Date.now());
    await this.scheduler.sendDue(ns.name, this.env.OPERATIONS, this.leaseMs());
  }
}

export const namespaceStub = (env: Env, name: string): DurableObjectStub<NamespaceObject> =>
  env.NAMESPACES.getByName(name);
