import { z } from "zod";

/** A queue message names an action; everything else is read from storage when it runs. */
export const OperationMessage = z.object({
  namespace: z.string().min(1).max(64),
  action: z.string().uuid(),
});
export type OperationMessage = z.infer<typeof OperationMessage>;
