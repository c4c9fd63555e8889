/**
 * The messages of an agent's connection, each one JSON text frame. The
 * service's side checks them with zod (src/domain/agent-protocol.ts); this is
 * the agent's copy. docs/architecture.md tells the whole protocol.
 */

/** An operation the service asks for: the head action of one service, never two of a service at once. */
export type Job = {
  /** The action's uuid: the same job delivered again carries the same uuid. */
  action: string;
  /** Which delivery of the action this is (1, 2, ...), echoed in `ack` and `report`. */
  attempt: number;
  kind: "redeploy" | "scaleup" | "scale";
  /** The orchestrator's service, by name or id. */
  service: string;
  /** scaleup: replicas to add. */
  scale_by: number | null;
  /** scale: the replicas to set. */
  replicas: number | null;
  /** The most replicas a scale-up may reach (the service's max_num_containers). */
  max_replicas: number;
  /** redeploy: the body of the trigger call, passed to the new containers as DOCKERCLOUD_TRIGGER_BODY; or null. */
  body: string | null;
  /** How long the service may take to converge before the action fails. */
  converge_seconds: number;
  /** The service already knows this agent applied the job (it sent `applied`): only wait for it to converge. */
  applied: boolean;
  /**
   * redeploy of a registry push: the image to deploy, verified against the registry first; null
   * otherwise. Services from before registry pushes send no such field: absent means null.
   */
  image?: PushedImage | null;
};

/** The image a registry push asks to deploy. */
export type PushedImage = {
  /** The repository and the tag to deploy, e.g. `registry:5000/team/app:1.3`. */
  reference: string;
  /** The digest the push stated (`sha256:<64 hex>`), or null when the registry's notice states none (Docker Hub, Quay). */
  digest: string | null;
};

/** What the orchestrator reports of the service after an operation: the registry shows these numbers. */
export type Observed = {
  /** Replicas asked for; null for a global service. */
  replicas: number | null;
  /** Tasks that should be running now. */
  desired: number;
  /** Tasks running now. */
  running: number;
  /** The image the service runs, as the orchestrator pins it (`repo:tag@sha256:...`). */
  image: string;
};

/**
 * One orchestrator service in the agent's inventory (the service checks it with src/domain/inventory.ts):
 * only services the agent's rules let it act on, each as the orchestrator runs it now.
 */
export type InventoryItem = {
  /** The orchestrator's id of the service (Swarm: the service ID; a docker host: a hash of container_service). */
  id: string;
  name: string;
  /**
   * On a plain Docker host, what the API's target names: `<compose project>/<compose service>`,
   * or the io.dockercloud.service label of standalone containers. Absent for a Swarm service.
   */
  container_service?: string;
  /** The image as it runs, `repo:tag@sha256:...`; null when there is none the service would accept. */
  image: string | null;
  mode: "replicated" | "global";
  /** Replicas asked for; null for a global service. */
  replicas: number | null;
  /** Tasks that should be running now. */
  desired: number;
  /** Tasks running now. */
  running: number;
  /** The last update's state and, once it was paused or rolled back, the orchestrator's words for why. */
  update: { state: UpdateState | null; message: string | null };
  stack: string | null;
  /** The label io.dockercloud.max_num_containers, when it holds a whole number from 1 to 1,000. */
  max_num_containers: number | null;
  /** When the orchestrator last changed the service's spec (ISO 8601). */
  updated_at: string | null;
};

export type UpdateState =
  | "updating"
  | "paused"
  | "completed"
  | "rollback_started"
  | "rollback_paused"
  | "rollback_completed";

export type ServerMessage =
  /** The answer to a hello: the connection is the agent's now, and its jobs follow. */
  | { type: "welcome" }
  | { type: "pong" }
  | { type: "job"; job: Job }
  /**
   * A problem with a message, or, right before a close, why: before 4000 it names the node and
   * address of the connection that took the agent's place; before 4005, what is wrong with the hello.
   */
  | { type: "error"; error: string };

export type AgentMessage =
  /**
   * The first message of every connection: before it the connection gets no job and takes no
   * other's place. Each field is a string of at most 100 characters with no control characters
   * (nor line separators or bidirectional-text controls), or null; a hello that breaks this is
   * answered with an error and closed with 4005.
   */
  | {
      type: "hello";
      agent_version: string;
      orchestrator: string | null;
      engine_version: string | null;
      node_id: string | null;
    }
  | { type: "ping" }
  /**
   * The services the agent may act on. `full`: every one of them, sent after each welcome and
   * every minute (a service the agent brought in before and not listed is gone); otherwise the
   * ones that changed or appeared, and the ids of those removed or no longer allowed. At most
   * 1,000 entries (services and gone together): the service refuses a bigger message whole.
   */
  | { type: "inventory"; full: true; services: InventoryItem[] }
  | { type: "inventory"; full: false; services: InventoryItem[]; gone: string[] }
  /** Sent as soon as a job arrives: the service then waits up to converge_seconds (plus a margin) for the report. */
  | { type: "ack"; action: string; attempt: number }
  /** One line for the action's log (at most 500 characters are kept). */
  | { type: "progress"; action: string; line: string }
  /** The orchestrator accepted the change: a later delivery of this job must only wait, never apply again. */
  | { type: "applied"; action: string }
  | {
      type: "report";
      action: string;
      attempt: number;
      /** success: the service converged (or, in dry-run, the job was checked and nothing changed). */
      result: "success" | "failed";
      detail: string;
      observed: Observed | null;
    };
