import type { Observed } from "./protocol.ts";

/**
 * What the job runner (jobs.ts) needs from an orchestrator. The runner holds
 * the logic shared by every orchestrator (rules, the once-only record, limits,
 * the wait for convergence, the messages); an adapter only reads and changes
 * its orchestrator's services. Swarm's adapter is swarm.ts; another
 * orchestrator is one more file implementing this interface.
 */

/** What the agent runs next to, sent in its hello. */
export type Description = { orchestrator: string; engine_version: string | null; node_id: string | null };

/** A service as the runner sees it. */
export type Service = {
  id: string;
  name: string;
  labels: Record<string, string>;
  mode: "replicated" | "global";
  /** Replicas asked for; null for a global service. */
  replicas: number | null;
  /** The action whose change the service's own record says was applied last (see jobs.ts), or null. */
  appliedAction: string | null;
  /**
   * Where an adapter adds replicas itself (a docker host), how many of the service's containers
   * each action made: a scale-up delivered again counts from the replicas before it, not after.
   */
  madeBy?: Record<string, number>;
  /**
   * The image the service runs (`repo:tag@sha256:...`), when the adapter knows it: a registry push
   * is only deployed on a service of the pushed repository.
   */
  image?: string;
};

/**
 * The change a job asks for. A redeploy's `image`, when set, is exactly what to deploy
 * (`repo:tag@sha256:...`, already checked in the registry); without it the tag the service runs is
 * resolved again.
 */
export type Change = { kind: "redeploy"; body: string | null; image?: string } | { kind: "scale"; replicas: number };

/**
 * What a registry says of a tag: the digest it serves, or that it has no such tag, or why it could
 * not be asked; each in the registry's (or the engine's) own words.
 */
export type TagLookup = { digest: string } | { missing: string } | { unreachable: string };

/** One look at a change in progress. */
export type Verdict = {
  state: "converged" | "waiting" | "failed";
  /** How far it is, for the action's log: sent whenever it differs from the last one sent. */
  line: string;
  /** Why it failed (or, while waiting, what is wrong so far: shown if the deadline passes). */
  detail: string;
};

export type Progress = (line: string) => void;

/**
 * An orchestrator's services. `Target` is whatever the adapter needs to
 * recognise its change when it looks again (Swarm: the ForceUpdate counter
 * and the update that was under way before); the runner only passes it back.
 */
export interface Orchestrator<Target> {
  describe(): Promise<Description>;
  /** The failure detail for a service that does not exist. */
  unknownService(ref: string): string;
  /** The service by name or id, or null when there is none. */
  find(ref: string): Promise<Service | null>;
  /** The digest the registry serves now for a tagged reference (`repo:tag`), asked with the agent's credentials. */
  lookUp(reference: string): Promise<TagLookup>;
  /** What `apply` would do, in words, changing nothing (dry run). */
  plan(service: Service, change: Change): Promise<string>;
  /**
   * Applies the change together with the record that `action` applied it
   * (in the same write, so that both land or neither does). Settles once the
   * orchestrator has accepted it (Swarm), or once the adapter itself has
   * rolled it out or undone it (a plain Docker host), by `deadline` (ms).
   */
  apply(service: Service, change: Change, action: string, progress: Progress, deadline: number): Promise<Target>;
  /**
   * The target of a change applied earlier (by a previous run, maybe a previous process): to wait
   * for it, or, where the adapter rolls changes out itself, to finish what that run left.
   */
  applied(service: Service, change: Change, action: string, progress: Progress, deadline: number): Promise<Target>;
  /** One look at how the change is going. */
  check(target: Target): Promise<Verdict>;
  /** The service's numbers now, for the report; null when it is gone. */
  observe(service: Service): Promise<Observed | null>;
}
