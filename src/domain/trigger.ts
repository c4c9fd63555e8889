import { z } from "@hono/zod-openapi";
import { sha256Hex } from "./crypto";
import { rfc1123 } from "./dates";
import { serviceUri } from "./service";
import { refuseUnsafeText } from "./text";

export const OPERATIONS = ["REDEPLOY", "SCALEUP"] as const;
export type Operation = (typeof OPERATIONS)[number];

/** Calls a trigger accepts per minute unless told otherwise. */
export const DEFAULT_RATE_LIMIT = 30;
export const MAX_RATE_LIMIT = 100_000;

const rateLimit = z
  .number({ error: "rate_limit must be a whole number of calls per minute" })
  .int({ error: "rate_limit must be a whole number of calls per minute" })
  .min(1, { error: "rate_limit must be at least 1 call per minute" })
  .max(MAX_RATE_LIMIT, { error: `rate_limit must be at most ${MAX_RATE_LIMIT} calls per minute` });
const triggerName = z
  .string({ error: "name must be a string" })
  .max(255, { error: "name must be at most 255 characters" })
  .superRefine(refuseUnsafeText("name"));

/**
 * `""` counts as absent (the Go SDK always sends both keys); the operation is
 * matched case-insensitively (the CLI passes it as typed).
 */
export const TriggerCreate = z
  .object({
    name: triggerName.nullable().optional(),
    rate_limit: rateLimit.optional(),
    operation: z
      .string({ error: "operation must be a string" })
      .nullable()
      .optional()
      .transform((v, ctx) => {
        if (v === undefined || v === null || v === "") return "REDEPLOY" as Operation;
        const upper = v.toUpperCase();
        if ((OPERATIONS as readonly string[]).includes(upper)) return upper as Operation;
        ctx.addIssue({ code: "custom", message: `operation must be REDEPLOY or SCALEUP, not '${v.slice(0, 40)}'` });
        return z.NEVER;
      }),
  })
  .openapi("TriggerCreate");
export type TriggerCreate = z.output<typeof TriggerCreate>;

export const TriggerPatch = z
  .object({ name: triggerName.optional(), rate_limit: rateLimit.optional() })
  .openapi("TriggerPatch");
export type TriggerPatch = z.output<typeof TriggerPatch>;

export type TriggerRow = {
  uuid: string;
  service_uuid: string;
  name: string;
  operation: Operation;
  created_at: number;
  rate_limit: number;
  call_count: number;
  rejected_count: number;
  last_called_at: number | null;
};

export const triggerUri = (namespace: string, serviceUuid: string, uuid: string) =>
  `${serviceUri(namespace, serviceUuid)}trigger/${uuid}/`;

/**
 * Names a trigger where its uuid must not go (the uuid is the secret of its call URL): webhook
 * payloads, which receivers log. Stable per trigger, so deliveries can be told apart by trigger,
 * and derived with SHA-256 from the uuid's 122 random bits, so it cannot be turned back into it.
 * Needs no stored column.
 */
export async function triggerPublicId(uuid: string): Promise<string> {
  return `trg_${(await sha256Hex(`dockercloud-trigger-id:${uuid.toLowerCase()}`)).slice(0, 32)}`;
}

/**
 * `url` is root-relative: the CLI prints rest_host + url[1:]. `rate_limit`,
 * `call_count`, `rejected_count` and `last_called` are our extension fields.
 */
export function serializeTrigger(namespace: string, row: TriggerRow) {
  const resource_uri = triggerUri(namespace, row.service_uuid, row.uuid);
  return {
    uuid: row.uuid,
    name: row.name,
    operation: row.operation,
    url: `${resource_uri}call/`,
    resource_uri,
    rate_limit: row.rate_limit,
    call_count: row.call_count,
    rejected_count: row.rejected_count,
    last_called: rfc1123(row.last_called_at),
  };
}
export type TriggerJson = ReturnType<typeof serializeTrigger>;
