import type { ActionKind } from "../domain/action";
import type { ImageToDeploy } from "../domain/registry-hook";
import type { PublicTarget } from "../domain/service";

/** What an adapter needs to perform one attempt of an action. */
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
  /** The target's public view as stored (its adapter checks it again), or null: the registry only. */
  target: PublicTarget | null;
  target_sealed: string | null;
  /** What the adapter kept from an earlier attempt of this action, as JSON text (see Target.state), or null. */
  target_state: string | null;
  /** How many targets passed this operation on before it reached this action; a target sends hops + 1. */
  hops: number;
  /** redeploy of a registry push: the pushed image (the service's repository at the pushed tag, and its digest). */
  image: ImageToDeploy | null;
};

/** What one attempt came to: performed, worth another try, or failed for good. */
export type Verdict = {
  result: "success" | "retry" | "failed";
  /** One log line: what happened, without secrets. */
  detail: string;
};

/**
 * The result of one attempt. `state`, when set, is kept with the action and
 * handed to its next attempts. Adapters deal in their own state type; the
 * core stores it as JSON text without knowing its shape (AttemptReport).
 */
export type AttemptResult<State = string> = Verdict & { state?: State };

/** An attempt's result as the consumer reports it to the action's object: its state as JSON text. */
export type AttemptReport = AttemptResult<string> & { durationMs: number };

export type BeginResult = { status: "run"; job: Job } | { status: "done"; reason: string };
