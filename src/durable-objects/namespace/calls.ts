import { type ActionRow, type CallerActionJson, serializeActionForCaller } from "../../domain/action";
import { fail, ok, type Result } from "../../domain/result";
import type { ServiceRow } from "../../domain/service";
import { quote } from "../../domain/text";
import { OPERATIONS, type TriggerCall, type TriggerRow, triggerUri } from "../../domain/trigger";
import { agentTargetOf, orchestratorServiceGone } from "../../targets/agent";
import type { Actions } from "./actions";
import {
  idempotentAction,
  pendingOfKind,
  pendingScaleUp,
  rateLimited,
  recordAcceptedCall,
  recordRejectedCall,
  rememberIdempotencyKey,
} from "./call-guards";

type Called = { trigger: TriggerRow; service: ServiceRow; now: number };

/**
 * Accepts a trigger call found to name `trigger` of `service`: checks the
 * guard rails and records the action (or joins a pending one) in one atomic
 * write (no await in here). A refusal is a domain refusal (`rate_limited`
 * with the seconds to wait, `conflict`, `bad_request`); the route maps it to
 * its status and headers. The answer may be another caller's action (joined,
 * or replayed): it shows only this trigger.
 */
export function acceptCall(
  sql: SqlStorage,
  actions: Actions,
  ns: string,
  found: { trigger: TriggerRow; service: ServiceRow },
  call: TriggerCall,
): Result<CallerActionJson> {
  const c: Called = { ...found, now: Date.now() };
  const forCaller = (a: ActionRow) => serializeActionForCaller(ns, a, triggerUri(ns, c.service.uuid, c.trigger.uuid));

  if (call.idempotency_key !== null) {
    const earlier = idempotentAction(sql, c.trigger.uuid, call.idempotency_key, c.now);
    const action = earlier ? actions.row(earlier) : undefined;
    if (action) return ok(forCaller(action));
  }
  const scaleBy = countOf(c, call);
  if (!scaleBy.ok) return scaleBy;
  const refused = guard(sql, c, scaleBy.value);
  if (refused) return refused;

  recordAcceptedCall(sql, c.trigger, c.now);
  const action = joinPending(sql, actions, c) ?? insertCalled(actions, c, call, ns, scaleBy.value);
  if (call.idempotency_key !== null) {
    rememberIdempotencyKey(sql, c.trigger.uuid, call.idempotency_key, action.uuid, c.now);
  }
  return ok(forCaller(action));
}

/** The N of .../call/N/: only for operations that take a count (default 1), and at most max_num_containers. */
function countOf({ trigger, service }: Called, call: TriggerCall): Result<number | null> {
  if (!OPERATIONS[trigger.operation].counted) {
    if (call.scale_by !== null) {
      return fail("bad_request", `a ${trigger.operation} trigger takes no count: POST to .../call/ without a number`);
    }
    return ok(null);
  }
  const scaleBy = call.scale_by ?? 1;
  if (scaleBy < 1 || scaleBy > service.max_num_containers) {
    return fail(
      "bad_request",
      `the count to scale up by must be a whole number from 1 to ${service.max_num_containers} (the service's max_num_containers)`,
    );
  }
  return ok(scaleBy);
}

/** The rate limit, then the scale bound (counting scale-ups not yet finished); each refusal is counted. */
function guard(sql: SqlStorage, { trigger, service, now }: Called, scaleBy: number | null) {
  const retryAfter = rateLimited(sql, trigger.uuid, trigger.rate_limit, now);
  if (retryAfter !== null) {
    recordRejectedCall(sql, trigger.uuid, now);
    return fail(
      "rate_limited",
      `this trigger accepts at most ${trigger.rate_limit} calls per minute; retry in ${retryAfter} s`,
      retryAfter,
    );
  }
  const gone = goneFromOrchestrator(service);
  if (gone) {
    recordRejectedCall(sql, trigger.uuid, now);
    return gone;
  }
  if (scaleBy === null) return null;
  const pending = pendingScaleUp(sql, service.uuid);
  if (service.target_num_containers + pending + scaleBy <= service.max_num_containers) return null;
  recordRejectedCall(sql, trigger.uuid, now);
  return fail(
    "conflict",
    `scaling up by ${scaleBy} would pass max_num_containers (${service.max_num_containers}): the service targets ${service.target_num_containers} containers${pending ? ` and ${pending} more are pending` : ""}`,
  );
}

/**
 * A service its agent reported gone from the orchestrator (a `docker stack rm`,
 * say) takes no operation until it is back: refused at once, not failed later.
 */
export function goneFromOrchestrator(service: ServiceRow) {
  if (service.present !== 0) return null;
  const target = agentTargetOf(service.target_public);
  const gone = target ? orchestratorServiceGone(target) : `the service '${service.name}' is not on its orchestrator`;
  return fail(
    "conflict",
    `${gone} (its agent reported it gone); nothing was queued, and calls are accepted again once it is back`,
  );
}

/** A redeploy not yet started will deploy the latest image anyway: a redeploy call joins it. */
function joinPending(sql: SqlStorage, actions: Actions, { trigger, service, now }: Called): ActionRow | null {
  const op = OPERATIONS[trigger.operation];
  const joinable = op.joins ? pendingOfKind(sql, service.uuid, op.action) : null;
  if (!joinable) return null;
  // The row as the caller sees it comes back with the count: the log line below changes nothing it shows.
  const joined = sql
    .exec<ActionRow>("UPDATE actions SET joined_calls = joined_calls + 1 WHERE uuid = ? RETURNING *", joinable)
    .one();
  // Calls are rate-limited, yet an action may wait long: these lines count against the log's budget.
  actions.appendWithinBudget(
    joinable,
    `${new Date(now).toISOString()} a call to trigger ${quote(trigger.name)} joined this pending ${op.action} (${joined.joined_calls} joined)`,
  );
  return joined;
}

function insertCalled(
  actions: Actions,
  { trigger, service }: Called,
  call: TriggerCall,
  ns: string,
  scaleBy: number | null,
) {
  return actions.insert({
    service,
    kind: OPERATIONS[trigger.operation].action,
    trigger: { uuid: trigger.uuid, name: trigger.name, uri: triggerUri(ns, service.uuid, trigger.uuid) },
    user: null,
    meta: call.meta,
    scaleBy,
    body: call.body,
    reuseVolumes: null,
    retryOf: null,
    hops: call.meta.hops,
  });
}
