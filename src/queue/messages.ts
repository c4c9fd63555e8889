import { z } from "zod";
import type { ActionKind } from "../domain/action";
import type { PublicTarget } from "../targets/config";

/** A queue message names an action; everything else is read from storage when it runs. */
export const OperationMessage = z.object({
  namespace: z.string().min(1).max(64),
  action: z.string().uuid(),
});
export type OperationMessage = z.infer<typeof OperationMessage>;

/** What the consumer needs to perform one attempt of an action. */
export type Job = {
  namespace: string;
  attempt: number;
  kind: ActionKind;
  action: { uuid: string; resource_uri: string };
  service: {
    uuid: string;
    name: string;
    resource_uri: string;
    image_name: string | null;
    target_num_containers: number;
    max_num_containers: number;
  };
  trigger: { uuid: string; name: string } | null;
  scale_by: number | null;
  new_target_num_containers: number | null;
  trigger_body: string | null;
  /** redeploy only: the reuse_volumes query of POST .../redeploy/, or null. */
  reuse_volumes: boolean | null;
  target: PublicTarget | null;
  target_sealed: string | null;
  /** Docker Cloud target, SCALEUP: the remote count fixed by an earlier attempt, or null. */
  remote_target: number | null;
  /** How many targets passed this operation on before it reached this action; a target sends hops + 1. */
  hops: number;
};

export type BeginResult = { status: "run"; job: Job } | { status: "done"; reason: string };

/** The outcome of one attempt: performed, worth another try, or failed for good. */
export type AttemptOutcome = {
  result: "success" | "retry" | "failed";
  /** One log line: what happened, without secrets. */
  detail: string;
  durationMs: number;
  remoteTarget?: number;
};
