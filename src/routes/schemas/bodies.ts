import { z } from "@hono/zod-openapi";
import { serviceFields } from "../../domain/service";
import { refuseUnsafeText } from "../../domain/text";
import { TargetInput } from "../../targets";

/** Request bodies shared by route modules, or that join parts of several rooms. */

export const KeyCreate = z
  .object({
    label: z
      .string({ error: "label must be a string" })
      .max(100, { error: "label must be at most 100 characters" })
      .superRefine(refuseUnsafeText("label"))
      .optional(),
  })
  .openapi("ApiKeyCreate");

const serviceBody = { ...serviceFields, target: TargetInput.optional() };

export const ServiceCreate = z.object(serviceBody).openapi("ServiceCreate");
export type ServiceCreate = z.infer<typeof ServiceCreate>;

export const ServicePatch = z.object(serviceBody).openapi("ServicePatch");
export type ServicePatch = z.infer<typeof ServicePatch>;
