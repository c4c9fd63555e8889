import { z } from "@hono/zod-openapi";
import type { ActionKind, RequestMeta } from "./action";
import { sha256Hex } from "./crypto";
import { rfc1123 } from "./dates";
import { hideIds } from "./ids";
import { serviceUri } from "./service";
import { refuseUnsafeText } from "./text";

/**
 * Every trigger operation. A new one also needs a migration: the triggers
 * table's CHECK lists them (docs/storage.md).
 */
export const OPERATION_NAMES = ["REDEPLOY", "SCALEUP"] as const;
export type Operation = (typeof OPERATION_NAMES)[number];

/**
 * What a call of each operation does: the kind of action it creates, whether
 * it takes a count (.../call/N/), and whether it joins a pending action of the
 * same kind (a redeploy not yet started deploys the latest image anyway).
 */
export const OPERATIONS = {
  REDEPLOY: { action: "redeploy", counted: false, joins: true },
  SCALEUP: { action: "scaleup", counted: true, joins: false },
} as const satisfies Record<Operation, { action: ActionKind; counted: boolean; joins: boolean }>;

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
        if (v === undefined || v === null || v === "") return "REDEPLOY" satisfies Operation;
        const upper = v.toUpperCase();
        const known = OPERATION_NAMES.find((name) => name === upper);
        if (known) return known;
        ctx.addIssue({
          code: "custom",
          message: `operation must be ${OPERATION_NAMES.join(" or ")}, not '${hideIds(v).slice(0, 40)}'`,
        });
        return z.NEVER;
      }),
  })
  .openapi("TriggerCreate");
export type TriggerCreate = z.output<typeof TriggerCreate>;

export const TriggerPatch = z
  .object({ name: triggerName.optional(), rate_limit: rateLimit.optional() })
  .openapi("TriggerPatch");
export type TriggerPatch = z.output<typeof TriggerPatch>;

export type TriggerFilters = { uuid?: string; uuid__startswith?: string; name?: string };

/** A call of a trigger URL, as the route hands it over. */
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
