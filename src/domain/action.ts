import { rfc1123 } from "./dates";

export const ACTION_STATES = ["Pending", "In progress", "Canceling", "Canceled", "Success", "Failed"] as const;
export type ActionState = (typeof ACTION_STATES)[number];
export const FINISHED_STATES: readonly ActionState[] = ["Canceled", "Success", "Failed"];

export type ActionKind = "redeploy" | "scaleup";
export const ACTION_LABEL: Record<ActionKind, string> = {
  redeploy: "Service Redeploy",
  scaleup: "Service Scale",
};

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
  logs: string;
  dispatch: "waiting" | "ready" | "queued" | "done";
  touched_at: number;
  attempts: number;
  last_error: string | null;
};

export const actionUri = (namespace: string, uuid: string) => `/api/audit/v1/${namespace}/action/${uuid}/`;

/** The trigger uuid is the secret of its URL: it never reaches the audit log. */
export function redactTriggerPath(path: string): string {
  return path.replace(/\/trigger\/[^/]+\/call\//, "/trigger/[redacted]/call/");
}

export function serializeAction(namespace: string, row: ActionRow) {
  const finished = FINISHED_STATES.includes(row.state);
  return {
    uuid: row.uuid,
    resource_uri: actionUri(namespace, row.uuid),
    object: row.object,
    action: ACTION_LABEL[row.kind],
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
    logs: row.logs,
  };
}
export type ActionJson = ReturnType<typeof serializeAction>;
