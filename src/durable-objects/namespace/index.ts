import { config } from "../../config";
import type { ActionFilters, ActionJson, CallerActionJson, RequestMeta } from "../../domain/action";
import type { AgentFilters, AgentJson } from "../../domain/agent";
import { type LogMessage, logMessages } from "../../domain/log-lines";
import type { NamespaceInfo, NamespaceKind } from "../../domain/namespace";
import type { Listing, Page } from "../../domain/pagination";
import { andThen, fail, ok, type Result } from "../../domain/result";
import type { NewService, ServiceChanges, ServiceFilters, ServiceJson } from "../../domain/service";
import type { TriggerCall, TriggerFilters, TriggerJson } from "../../domain/trigger";
import type { AttemptReport, BeginResult } from "../../targets/job";
import { ACTION_NOT_FOUND } from "./actions";
import { CLOSE } from "./agents/links";
import { type ApiKeyJson, authenticateKey, deleteKey, insertKey, listKeys } from "./api-keys";
import { acceptCall, goneFromOrchestrator } from "./calls";
import { NamespaceRetention } from "./retention-surface";
import { openSocket, refuseSocket } from "./sockets";
import { Streams } from "./streams";
import { type NewTrigger, TRIGGER_NOT_FOUND } from "./triggers";

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
 * delegates to the module that owns the tables (rooms.ts wires them).
 */
export class NamespaceObject extends NamespaceRetention {
  // ---- the namespace itself (admin API) ----

  claim(name: string, kind: NamespaceKind): Result<NamespaceInfo> {
    this.ensureSchema();
    return this.r.members.claim(name, kind);
  }

  info(): NamespaceInfo | null {
    return this.r.members.info();
  }

  destroy(kind: NamespaceKind): Result<{ memberships: string[]; members: string[] }> {
    const destroyed = this.r.members.destroy(kind);
    if (destroyed.ok) this.r.links.dropAll();
    if (destroyed.ok) this.r.streams.closeAll();
    return destroyed;
  }

  addMember(username: string): Result<{ username: string }> {
    return this.r.members.add(username);
  }

  /** A member leaves: the streams they opened here close now. */
  removeMember(username: string): Result<{ username: string }> {
    const removed = this.r.members.remove(username);
    if (removed.ok) this.r.streams.closeUser(username);
    return removed;
  }

  recordMembership(organization: string, member: boolean): void {
    this.r.members.recordMembership(organization, member);
  }

  memberships(): string[] {
    return this.r.members.memberships();
  }

  // ---- API keys (users only) ----

  async createApiKey(label: string): Promise<Result<ApiKeyJson & { key: string }>> {
    if (this.r.members.namespace()?.kind !== "user") return fail("not_found", "user not found");
    return insertKey(this.sql, label);
  }

  listApiKeys(): ApiKeyJson[] {
    return this.r.members.namespace() ? listKeys(this.sql) : [];
  }

  /** Revokes a key: the streams it opened, here and in the user's organizations, close now. */
  async revokeApiKey(uuid: string): Promise<Result<ApiKeyJson>> {
    const revoked = this.r.members.namespace() ? deleteKey(this.sql, uuid) : null;
    if (!revoked) return fail("not_found", "API key not found");
    this.r.streams.closeKey(revoked.hash);
    const orgs = this.r.members.memberships();
    await Promise.all(orgs.map((org) => namespaceStub(this.env, org).closeStreamsOfKey(revoked.hash)));
    return ok(revoked.key);
  }

  closeStreamsOfKey(hash: string): void {
    this.r.streams.closeKey(hash);
  }

  async authenticate(key: string): Promise<boolean> {
    if (this.r.members.namespace()?.kind !== "user") return false;
    return authenticateKey(this.sql, key, this.keyUsedAt);
  }

  // ---- services ----

  listServices(caller: string, asked: string, filters: ServiceFilters, page: Page): Result<Listing<ServiceJson>> {
    return this.as(caller, asked, () => ok(this.r.services.list(filters, page)));
  }

  createService(caller: string, asked: string, input: NewService): Result<ServiceJson> {
    return this.as(caller, asked, () => andThen(this.r.agents.resolveTarget(input), (i) => this.r.services.create(i)));
  }

  getService(caller: string, asked: string, uuid: string): Result<ServiceJson> {
    return this.withService(caller, asked, uuid, (svc) => ok(this.r.services.json(svc)));
  }

  /** A new target takes over the service's waiting actions at once (an agent's go out to it now). */
  updateService(caller: string, asked: string, uuid: string, changes: ServiceChanges): Result<ServiceJson> {
    return this.withService(caller, asked, uuid, (svc) =>
      andThen(this.r.agents.resolveTarget(changes), (c) => {
        const updated = this.r.services.update(svc, c);
        if (updated.ok && c.target_public !== undefined) this.r.agentJobs.offerHead(uuid, Date.now());
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
      this.r.actions.failOpen(uuid, "the service was terminated before the operation completed");
      this.r.triggers.revokeAll(uuid);
      return ok(this.r.services.remove(svc));
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
      const gone = goneFromOrchestrator(svc);
      if (gone) return gone;
      const action = this.r.actions.insert({
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
      this.r.agentJobs.offerIfAgent(svc, Date.now());
      return ok({
        service: this.r.services.json(svc),
        action: this.r.actions.json(this.r.actions.row(action.uuid) ?? action),
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
    return this.withService(caller, asked, serviceUuid, (svc) => ok(this.r.triggers.list(svc, filters, page)));
  }

  createTrigger(caller: string, asked: string, serviceUuid: string, input: NewTrigger): Result<TriggerJson> {
    const quota = config(this.env).MAX_TRIGGERS_PER_SERVICE;
    return this.withService(caller, asked, serviceUuid, (svc) => this.r.triggers.create(svc, input, quota));
  }

  getTrigger(caller: string, asked: string, serviceUuid: string, uuid: string): Result<TriggerJson> {
    return this.withService(caller, asked, serviceUuid, () => this.r.triggers.get(serviceUuid, uuid));
  }

  updateTrigger(
    caller: string,
    asked: string,
    serviceUuid: string,
    uuid: string,
    changes: { name?: string; rate_limit?: number },
  ): Result<TriggerJson> {
    return this.withService(caller, asked, serviceUuid, () => this.r.triggers.update(serviceUuid, uuid, changes));
  }

  /** Revokes a trigger: once this returns, a call to it finds nothing. */
  deleteTrigger(caller: string, asked: string, serviceUuid: string, uuid: string): Result<TriggerJson> {
    return this.withService(caller, asked, serviceUuid, () => this.r.triggers.revoke(serviceUuid, uuid));
  }

  // ---- the call (no credentials: the trigger's uuid is the secret) ----

  /**
   * Accepts a trigger call in one atomic write, leaving the hand-off to the
   * queue to the alarm, so the caller waits for nothing but this write.
   */
  callTrigger(call: TriggerCall): Result<CallerActionJson> {
    const ns = this.r.members.namespace();
    if (!ns) return TRIGGER_NOT_FOUND;
    const found = this.r.triggers.rowWithService(call.service, call.trigger);
    if (!found) return TRIGGER_NOT_FOUND;
    const { service } = found;
    const accepted = acceptCall(this.sql, this.r.actions, ns.name, found, call);
    // An agent that is connected gets the job now, from this object, without a queue hop.
    if (accepted.ok) this.r.agentJobs.offerIfAgent(service, Date.now());
    return accepted;
  }

  // ---- actions (audit API) ----

  listActions(caller: string, asked: string, filters: ActionFilters, page: Page): Result<Listing<ActionJson>> {
    return this.as(caller, asked, () => ok(this.r.actions.list(filters, page)));
  }

  getAction(caller: string, asked: string, uuid: string): Result<ActionJson> {
    return this.as(caller, asked, () => this.r.actions.get(uuid));
  }

  /** The last `tail` lines of an action's log, as the logs route and stream give them. */
  actionLogs(caller: string, asked: string, uuid: string, tail: number): Result<LogMessage[]> {
    return this.as(caller, asked, () => {
      const a = this.r.actions.row(uuid);
      return a ? ok(logMessages(this.r.actions.logTail(a.uuid, tail), a.touched_at)) : ACTION_NOT_FOUND;
    });
  }

  cancelAction(caller: string, asked: string, uuid: string): Result<ActionJson> {
    return this.as(caller, asked, () => this.r.actions.cancel(uuid, caller));
  }

  retryAction(caller: string, asked: string, uuid: string, meta: RequestMeta): Result<ActionJson> {
    return this.as(caller, asked, () => {
      const retried = this.r.actions.retry(uuid, caller, meta, (s) => this.r.services.row(s));
      const svc = retried.ok ? this.r.services.row(this.r.actions.row(uuid)?.service_uuid ?? "") : undefined;
      if (svc) this.r.agentJobs.offerIfAgent(svc, Date.now());
      return retried;
    });
  }

  // ---- agents (see agents/) ----

  listAgents(caller: string, asked: string, filters: AgentFilters, page: Page): Result<Listing<AgentJson>> {
    return this.as(caller, asked, () => {
      this.r.links.tidy(Date.now());
      return ok(this.r.agents.list(filters, page));
    });
  }

  async createAgent(caller: string, asked: string, name: string): Promise<Result<AgentJson & { token: string }>> {
    return this.r.members.denied(caller, asked) ?? (await this.r.agents.create(name));
  }

  getAgent(caller: string, asked: string, uuid: string): Result<AgentJson> {
    return this.as(caller, asked, () => {
      this.r.links.tidy(Date.now());
      return this.r.agents.get(uuid);
    });
  }

  /** A new token for an agent (it keeps its jobs): the old one is refused, its connection closed, from now on. */
  async rotateAgentToken(caller: string, asked: string, uuid: string): Promise<Result<AgentJson & { token: string }>> {
    const rotated = this.r.members.denied(caller, asked) ?? (await this.r.agents.rotateToken(uuid));
    if (rotated.ok) this.r.links.drop(uuid, CLOSE.rotated);
    return rotated;
  }

  updateAgent(caller: string, asked: string, uuid: string, changes: { name?: string }): Result<AgentJson> {
    return this.as(caller, asked, () => this.r.agents.update(uuid, changes));
  }

  /** Deletes an agent: its connection is closed at once and its token refused from then on. */
  deleteAgent(caller: string, asked: string, uuid: string): Result<AgentJson> {
    return this.as(caller, asked, () => {
      const removed = this.r.agents.remove(uuid);
      if (!removed.ok) return removed;
      this.r.links.drop(uuid, CLOSE.deleted);
      // What waits for it says so, and waits for the service's target to name another agent.
      this.r.agentJobs.offerAll(uuid, Date.now());
      return removed;
    });
  }

  /** Sockets (agents', streams'): an upgrade cannot travel over RPC. The Worker checked it and words refusals. */
  override async fetch(request: Request): Promise<Response> {
    if (!this.r.members.namespace()) return refuseSocket("no such namespace");
    return openSocket(request, this.r);
  }

  /** What a client of the streams sends is not read: their sockets only listen. */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (this.migrated && !Streams.isStream(this.ctx, ws)) await this.r.links.message(ws, message);
  }

  override webSocketClose(ws: WebSocket): void {
    if (this.migrated && !Streams.isStream(this.ctx, ws)) this.r.links.closed(ws);
  }

  override webSocketError(ws: WebSocket): void {
    if (this.migrated && !Streams.isStream(this.ctx, ws)) this.r.links.closed(ws);
  }

  // ---- the queue side (see attempts.ts) ----

  beginAttempt(uuid: string): BeginResult {
    if (!this.r.members.namespace()) return { status: "done", reason: "the action no longer exists" };
    if (this.r.agentJobs.isAgentAction(uuid)) {
      this.r.agentJobs.offer(uuid, Date.now(), false);
      return { status: "done", reason: "the action goes to its agent" };
    }
    return this.r.attempts.begin(uuid);
  }

  finishAttempt(uuid: string, attempt: number, report: AttemptReport, chain = false): BeginResult | null {
    if (!this.migrated) return null;
    return this.r.attempts.finish(uuid, attempt, report, chain);
  }

  /** The attempts of a queue batch's messages for this namespace: one entry, one commit for all of them. */
  beginAttempts(uuids: string[]): BeginResult[] {
    return uuids.map((uuid) => this.beginAttempt(uuid));
  }

  /**
   * A group of attempts' outcomes (queue/delivery-pump.ts), each recorded as
   * `finishAttempt` would; one that cannot be recorded is left to its deadline
   * and does not keep the others from being recorded.
   */
  finishAttempts(group: { uuid: string; attempt: number; report: AttemptReport; chain: boolean }[]) {
    return group.map((f) => {
      try {
        // Its own savepoint: one that throws leaves no half-written record behind.
        return this.ctx.storage.transactionSync(() => this.finishAttempt(f.uuid, f.attempt, f.report, f.chain));
      } catch (err) {
        console.error("an attempt's outcome could not be recorded; its deadline will retry it", f.uuid, err);
        return null;
      }
    });
  }

  giveUp(uuid: string): void {
    if (this.migrated) this.r.attempts.giveUp(uuid);
  }

  /** The outbox (see scheduler.ts): every action whose deadline has passed goes to the queue. */
  override async alarm(): Promise<void> {
    const ns = this.r.members.namespace();
    if (!ns) return this.r.scheduler.forget();
    this.r.agentJobs.offerDue(Date.now());
    await this.r.scheduler.sendDue(ns.name, this.env.OPERATIONS, config(this.env).DISPATCH_LEASE_SECONDS * 1000);
  }
}

export const namespaceStub = (env: Env, name: string): DurableObjectStub<NamespaceObject> =>
  env.NAMESPACES.getByName(name);
