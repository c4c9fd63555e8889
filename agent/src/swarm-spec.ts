/**
 * Swarm service specs as the engine returns them (GET /services/{id}), and
 * the changes the agent makes to them. Pure functions over that JSON: every
 * field the agent does not change is passed back exactly as read.
 */

/** The label on the service spec that records which action last changed it. */
export const ACTION_LABEL = "io.dockercloud.action";
/** The variable a redeploy passes the trigger call's body in. */
export const BODY_ENV = "DOCKERCLOUD_TRIGGER_BODY";

export type ContainerSpecJson = { Image?: string; Env?: string[]; [field: string]: unknown };
export type ServiceSpecJson = {
  Name?: string;
  Labels?: Record<string, string>;
  TaskTemplate?: { ContainerSpec?: ContainerSpecJson; ForceUpdate?: number; [field: string]: unknown };
  Mode?: { Replicated?: { Replicas?: number }; Global?: object; [field: string]: unknown };
  [field: string]: unknown;
};
export type UpdateStatusJson = { State?: string; StartedAt?: string; CompletedAt?: string; Message?: string };
export type ServiceJson = {
  ID: string;
  Version?: { Index?: number };
  Spec: ServiceSpecJson;
  UpdateStatus?: UpdateStatusJson | null;
  [field: string]: unknown;
};

/** An image reference split into what names it and the digest pinning it. */
export type ImageRef = {
  /** The reference without its digest: `repo:tag`, or `repo` when it has no tag. */
  name: string;
  tagged: boolean;
  digest: string | null;
};

export function parseImage(ref: string): ImageRef {
  const at = ref.indexOf("@");
  const name = at < 0 ? ref : ref.slice(0, at);
  // A tag follows the last path component's colon; a colon before the last slash is a registry's port.
  const last = name.slice(name.lastIndexOf("/") + 1);
  return { name, tagged: last.includes(":"), digest: at < 0 ? null : ref.slice(at + 1) };
}

/** A reference without its digest (`repo:tag`), without its tag: `repo` (a registry's port stays). */
export const untagged = (name: string) => name.replace(/:[^:/]+$/, "");

/** The reference pinned to a digest, as Swarm pins it: `repo:tag@sha256:...`. */
export const pinImage = (name: string, digest: string) => `${name}@${digest}`;

/** `NAME=value` set in an environment list: an entry of that name replaced in place, or added; others kept. */
export function withEnv(env: readonly string[] | undefined, name: string, value: string): string[] {
  const entry = `${name}=${value}`;
  const list = [...(env ?? [])];
  const at = list.findIndex((e) => e === name || e.startsWith(`${name}=`));
  if (at < 0) return [...list, entry];
  list[at] = entry;
  // Only one entry of the name may stay: a later duplicate would override ours in the container.
  return list.filter((e, i) => i === at || !(e === name || e.startsWith(`${name}=`)));
}

export const forceUpdateOf = (spec: ServiceSpecJson) => spec.TaskTemplate?.ForceUpdate ?? 0;
export const replicasOf = (spec: ServiceSpecJson) =>
  spec.Mode?.Global !== undefined ? null : (spec.Mode?.Replicated?.Replicas ?? 1);

/** The spec of a redeploy: tasks replaced (ForceUpdate + 1), the image re-pinned, the body passed, the action recorded. */
export function redeploySpec(
  spec: ServiceSpecJson,
  change: { image: string; body: string | null; action: string },
): ServiceSpecJson {
  const template = spec.TaskTemplate ?? {};
  const container = template.ContainerSpec ?? {};
  return {
    ...spec,
    Labels: { ...spec.Labels, [ACTION_LABEL]: change.action },
    TaskTemplate: {
      ...template,
      ForceUpdate: forceUpdateOf(spec) + 1,
      ContainerSpec: {
        ...container,
        Image: change.image,
        ...(change.body === null ? {} : { Env: withEnv(container.Env, BODY_ENV, change.body) }),
      },
    },
  };
}

/** The spec of a scale: the replicas set, the action recorded; the tasks' template untouched so none is replaced. */
export function scaleSpec(spec: ServiceSpecJson, change: { replicas: number; action: string }): ServiceSpecJson {
  return {
    ...spec,
    Labels: { ...spec.Labels, [ACTION_LABEL]: change.action },
    Mode: { ...spec.Mode, Replicated: { ...spec.Mode?.Replicated, Replicas: change.replicas } },
  };
}

/** An error as dockerode raises it for an engine's answer: the status and the engine's JSON message. */
type EngineError = { statusCode?: number; json?: { message?: string } | null; message?: string };

/** The engine's own words for a failed call, without dockerode's "(HTTP code 500) server error - " prefix. */
export function engineMessage(err: unknown): string {
  const e = (err ?? {}) as EngineError;
  const text = e.json?.message ?? e.message ?? String(err);
  return text.replace(/^\(HTTP code \d+\) [^-]*- /, "").trim();
}

/**
 * Whether an update lost a race: the spec's version changed between our read
 * and our write (someone else updated the service). Engine 20.10 answers 500
 * "update out of sequence"; newer ones may answer 409.
 */
export function isVersionConflict(err: unknown): boolean {
  const e = (err ?? {}) as EngineError;
  if (e.statusCode === 409) return true;
  return e.statusCode === 500 && /update out of sequence/i.test(engineMessage(err));
}
