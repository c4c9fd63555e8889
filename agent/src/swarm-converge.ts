import type { Verdict } from "./orchestrator.ts";
import type { Observed } from "./protocol.ts";
import { parseImage, replicasOf, type ServiceJson } from "./swarm-spec.ts";

/**
 * Whether a Swarm service has converged on the agent's change, decided from
 * one snapshot of the service and its tasks as the engine returns them
 * (GET /services/{id}, GET /tasks?filters={"service":[id]}).
 */

export type TaskJson = {
  ID: string;
  NodeID?: string;
  Spec?: { ForceUpdate?: number; ContainerSpec?: { Image?: string } };
  Status?: { State?: string; Err?: string; Timestamp?: string };
  DesiredState?: string;
};

/** What the agent waits for. */
export type SwarmTarget = {
  id: string;
  name: string;
  kind: "redeploy" | "scale";
  /** The replicas to run; null for a global service (one task per eligible node). */
  replicas: number | null;
  /** redeploy: the spec's ForceUpdate after our update; each task of our update carries it. */
  forceUpdate: number;
  /**
   * redeploy: the StartedAt of the update status before our update, or null. An
   * update status with that StartedAt is a previous update's, never ours: its
   * "completed" must not count as success, nor its "rollback_completed" as failure.
   */
  since: string | null;
  /** The change was applied before this run (its record was found): the service's update, if any, is the one. */
  earlier: boolean;
};

const isRunning = (t: TaskJson) => t.Status?.State === "running" && t.DesiredState === "running";
const desiresRunning = (t: TaskJson) => t.DesiredState === "running";

/** The tasks there should be: the replicas, or for a global service the nodes meant to run one. */
function expectedTasks(target: SwarmTarget, tasks: TaskJson[]): number {
  if (target.replicas !== null) return target.replicas;
  return new Set(tasks.filter(desiresRunning).map((t) => t.NodeID)).size;
}

/** The error of the latest failed task among these, e.g. "task: non-zero exit (1)"; or null. */
export function latestTaskError(tasks: TaskJson[]): string | null {
  const failed = tasks
    .filter((t) => (t.Status?.State === "failed" || t.Status?.State === "rejected") && t.Status.Err)
    .sort((a, b) => (a.Status?.Timestamp ?? "").localeCompare(b.Status?.Timestamp ?? ""));
  return failed.at(-1)?.Status?.Err ?? null;
}

/** Swarm's update states that end an update without it converging, in words. */
const FAILED_STATES: Record<string, string> = {
  rollback_completed: "the update was rolled back",
  rollback_paused: "the update failed and its rollback was paused",
  paused: "the update was paused",
};

/** Update states other than "updating" and "completed", as the progress line says them. */
const STATE_WORDS: Record<string, string> = {
  paused: "paused",
  rollback_started: "rolling back",
  rollback_paused: "rollback paused",
  rollback_completed: "rolled back",
};

/**
 * The progress line of a redeploy. It counts the tasks of the update apart from all the tasks running:
 * early in a rolling update none runs the new image while the old tasks still serve, and "0 running"
 * would read as an outage.
 */
function redeployLine(state: string | null, updated: number, expected: number, running: number, image: string) {
  const tasks = `${updated} of ${expected} tasks`;
  if (state === "completed") {
    return `update completed: ${tasks} on ${image}${running === updated ? "" : `; ${running} running`}`;
  }
  const phase = state === null || state === "updating" ? "" : `update ${STATE_WORDS[state] ?? state}: `;
  return `${phase}${tasks} updated to ${image}; ${running} running`;
}

/** The digest a task runs, shortened for the log. */
const shortImage = (image: string | undefined) => {
  const digest = image ? parseImage(image).digest : null;
  return digest ? digest.slice(0, 19) : (image ?? "?");
};

export function redeployVerdict(target: SwarmTarget, service: ServiceJson, tasks: TaskJson[]): Verdict {
  const status = service.UpdateStatus ?? null;
  // Ours once it is not the update that was under way before ours.
  const state = status && status.StartedAt !== target.since ? (status.State ?? null) : null;
  const ours = tasks.filter((t) => (t.Spec?.ForceUpdate ?? 0) === target.forceUpdate);
  const running = ours.filter(isRunning);
  const expected = expectedTasks(target, tasks);
  // The image of the update: its tasks carry it, even failed ones, while a rollback puts the old one back in the spec.
  const ofUpdate = (running[0] ?? ours[0])?.Spec?.ContainerSpec?.Image;
  const image = shortImage(ofUpdate ?? service.Spec.TaskTemplate?.ContainerSpec?.Image);
  const line = redeployLine(state, running.length, expected, tasks.filter(isRunning).length, image);
  // A task of our update, or of a later one; when waiting on a rolled-back change (its record came from the
  // service, the spec is the old one again) the failed task has a higher ForceUpdate than the spec's.
  const error = latestTaskError(tasks.filter((t) => (t.Spec?.ForceUpdate ?? 0) >= target.forceUpdate));
  const failedAs = state ? FAILED_STATES[state] : undefined;
  if (failedAs) return { state: "failed", line, detail: `${failedAs}: ${error ?? status?.Message ?? state}` };
  const others = tasks.filter((t) => desiresRunning(t) && !ours.includes(t));
  // Waiting on an earlier change, a service without an update status has no update under way: it is settled.
  // A service with no task to run (0 replicas) has nothing to update: Swarm then leaves the status as it was.
  const settled = state === "completed" || (target.earlier && !status) || expected === 0;
  if (settled && running.length === expected && others.length === 0) {
    return { state: "converged", line, detail: `${target.name} redeployed: ${running.length} tasks running ${image}` };
  }
  return { state: "waiting", line, detail: error ? `a task of the update failed: ${error}` : "" };
}

/**
 * A scale runs no update: it has converged when exactly the replicas run, no
 * other task is meant to, and the tasks a scale-down ends have stopped.
 */
export function scaleVerdict(target: SwarmTarget, tasks: TaskJson[]): Verdict {
  const running = tasks.filter(isRunning).length;
  const desired = tasks.filter(desiresRunning).length;
  const stopping = tasks.filter((t) => t.Status?.State === "running" && !desiresRunning(t)).length;
  const line = `${running} of ${target.replicas} tasks running${stopping ? `, ${stopping} stopping` : ""}`;
  if (running === target.replicas && desired === target.replicas && stopping === 0) {
    return { state: "converged", line, detail: `${target.name} scaled to ${target.replicas}` };
  }
  const error = latestTaskError(tasks);
  return { state: "waiting", line, detail: error ? `a task failed: ${error}` : "" };
}

export function verdict(target: SwarmTarget, service: ServiceJson, tasks: TaskJson[]): Verdict {
  return target.kind === "redeploy" ? redeployVerdict(target, service, tasks) : scaleVerdict(target, tasks);
}

/** The numbers the report carries. */
export function observed(service: ServiceJson, tasks: TaskJson[]): Observed {
  const replicas = replicasOf(service.Spec);
  const desired = tasks.filter(desiresRunning).length;
  return {
    replicas,
    desired: replicas ?? desired,
    running: tasks.filter(isRunning).length,
    image: service.Spec.TaskTemplate?.ContainerSpec?.Image ?? "",
  };
}
