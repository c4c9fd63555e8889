import { rfc1123 } from "./dates";

export const ACTION_STATES = ["Pending", "In progress", "Canceling", "Canceled", "Success", "Failed"] as const;
export type ActionState = (typeof ACTION_STATES)[number];
export const FINISHED_STATES: readonly ActionState[] = ["Canceled", "Success", "Failed"];

/**
 * Every kind of action: redeploy; scaleup: add N containers (triggers); scale:
 * reach target_num_containers (the API's scale/). A new kind also needs a
 * migration: the actions table's CHECK lists them (docs/storage.md).
 */
export const ACTION_KIND_NAMES = ["redeploy", "scaleup", "scale"] as const;
export type ActionKind = (typeof ACTION_KIND_NAMES)[number];

/** How the audit log names each kind (Docker Cloud's `action` field), and the type of the webhook it sends. */
export const ACTION_KINDS = {
  redeploy: { label: "Service Redeploy", webhook: "service.redeploy" },
  scaleup: { label: "Service Scale", webhook: "service.scaleup" },
  scale: { label: "Service Scale", webhook: "service.scale" },
} as const satisfies Record<ActionKind, { label: string; webhook: string }>;

export type ActionRow = {
  uuid: string;
  seq: number;
  service_uuid: string;
  object: string;
  trigger_uuid: string | null;
  trigger_name: string | null;
  trigger_uri: string | null;
  kind: ActionKind;
  method: string;
  path: string;
  user: string | null;
  user_agent: string | null;
  ip: string | null;
  location: string | null;
  start_at: number;
  end_at: number | null;
  state: ActionState;
  is_user_action: number;
  scale_by: number | null;
  body: string | null;
  /** Lines of its log (in `action_logs`), their bytes, and the optional lines dropped past its budget. */
  log_lines: number;
  log_bytes: number;
  log_dropped: number;
  dispatch: "waiting" | "ready" | "queued" | "done";
  touched_at: number;
  attempts: number;
  last_error: string | null;
  reuse_volumes: number | null;
  joined_calls: number;
  retry_of: string | null;
  /** The container count a scaling action sets, computed when its first attempt starts. */
  new_target: number | null;
  /** JSON its target's adapter keeps between attempts (e.g. the remote count a SCALEUP sets), or null. */
  target_state: string | null;
  /** Set while an attempt runs, so a duplicate delivery of the same message does not run it twice. */
  attempt_started_at: number | null;
  /** The action's next deadline while it may run (see durable-objects/namespace/dispatch.ts). */
  due_at: number | null;
  /** X-DockerCloud-Hops of the request that created it; its target sends hops + 1. */
  hops: number;
  /** JSON of the registry push it deploys (domain/registry-hook.ts PushedImage), for an autoredeploy. */
  push: string | null;
};

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

export const actionUri = (namespace: string, uuid: string) => `/api/audit/v1/${namespace}/action/${uuid}/`;

/** The trigger uuid is the secret of its URL: it never reaches the audit log. */
export function redactTriggerPath(path: string): string {
  return path.replace(/\/trigger\/[^/]+\/call\//, "/trigger/[redacted]/call/");
}

/**
 * An action as the audit API shows it. It has no `logs` key: the Python SDK
 * sets every key of an answer as an attribute, and a `logs` field would hide
 * its `Action.logs()` method (and break `docker-cloud action logs`). The
 * lines are at `<action>/logs/`, as JSON or as a stream.
 */
export function serializeAction(namespace: string, row: ActionRow) {
  const finished = FINISHED_STATES.includes(row.state);
  return {
    uuid: row.uuid,
    resource_uri: actionUri(namespace, row.uuid),
    object: row.object,
    action: ACTION_KINDS[row.kind].label,
    method: row.method,
    path: row.path,
    user: row.user,
    user_agent: row.user_agent,
    ip: row.ip,
    location: row.location,
    start_date: rfc1123(row.start_at),
    end_date: rfc1123(row.end_at),
    state: row.state,
    is_user_action: row.is_user_action === 1,
    can_be_canceled: row.state === "Pending",
    can_be_retried: finished,
    trigger: row.trigger_uri,
    retry_of: row.retry_of,
  };
}
export type ActionJson = ReturnType<typeof serializeAction>;

/**
 * The action as an anonymous trigger call is answered with (the 202 of
 * `.../trigger/<T>/call/`, a joined call's and an Idempotency-Key replay's included).
 * The action may have been started by another trigger or by a member's
 * `redeploy/`, so the answer carries only what the caller already has or created:
 * the action's identity, kind, object, state and dates, and the caller's OWN
 * trigger. Who started it (user, user agent, ip, location), how (method, path),
 * and its history (retry_of) are null; its log is not part of any action object.
 * Every key of the audit view stays, so the answer has one shape whatever the
 * caller joined; the clients only test that it is a non-empty JSON object
 * (Python's `Trigger.call`) or decode it leniently (Go's `CallTrigger`).
 * The `satisfies` makes a field added to `serializeAction` fail to compile
 * until it is classified here.
 */
export function serializeActionForCaller(namespace: string, row: ActionRow, callerTriggerUri: string) {
  const full = serializeAction(namespace, row);
  return {
    uuid: full.uuid,
    resource_uri: full.resource_uri,
    object: full.object,
    action: full.action,
    method: null,
    path: null,
    user: null,
    user_agent: null,
    ip: null,
    location: null,
    start_date: full.start_date,
    end_date: full.end_date,
    state: full.state,
    is_user_action: null,
    // Both follow from `state` alone.
    can_be_canceled: full.can_be_canceled,
    can_be_retried: full.can_be_retried,
    trigger: callerTriggerUri,
    retry_of: null,
  } satisfies Record<keyof ActionJson, unknown>;
}
export type CallerActionJson = ReturnType<typeof serializeActionForCaller>;
