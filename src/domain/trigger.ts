import { z } from "@hono/zod-openapi";
import { serviceUri } from "./service";

export const OPERATIONS = ["REDEPLOY", "SCALEUP"] as const;
export type Operation = (typeof OPERATIONS)[number];

/** A service holds at most this many triggers (Docker Cloud answered a quota 403 past it). */
export const MAX_TRIGGERS_PER_SERVICE = 100;

/**
 * `""` counts as absent (the Go SDK always sends both keys); the operation is
 * matched case-insensitively (the CLI passes it as typed).
 */
export const TriggerCreate = z
  .object({
    name: z
      .string({ error: "name must be a string" })
      .max(255, { error: "name must be at most 255 characters" })
      .nullable()
      .optional(),
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

export type TriggerRow = {
  uuid: string;
  service_uuid: string;
  name: string;
  operation: Operation;
  created_at: number;
};

export const triggerUri = (namespace: string, serviceUuid: string, uuid: string) =>
  `${serviceUri(namespace, serviceUuid)}trigger/${uuid}/`;

/** `url` is root-relative: the CLI prints rest_host + url[1:]. */
export function serializeTrigger(namespace: string, row: TriggerRow) {
  const resource_uri = triggerUri(namespace, row.service_uuid, row.uuid);
  return {
    uuid: row.uuid,
    name: row.name,
    operation: row.operation,
    url: `${resource_uri}call/`,
    resource_uri,
  };
}
export type TriggerJson = ReturnType<typeof serializeTrigger>;
