/**
 * Containers of a plain Docker host (GET /containers/json, GET /containers/{id}/json) seen as
 * services, and the containers the agent makes from them. Pure functions over the engine's JSON:
 * the adapter (docker.ts) reads and writes, these decide.
 *
 * A service is the set of containers sharing the Compose labels project + service (Compose v1 and
 * v2 write the same ones), or standalone containers labelled `io.dockercloud.service=<name>`. Its
 * reference, as the API's target names it, is `<project>/<service>` or `<name>`.
 */
import { ACTION_LABEL, BODY_ENV, withEnv } from "./swarm-spec.ts";

export const PROJECT_LABEL = "com.docker.compose.project";
export const SERVICE_LABEL = "com.docker.compose.service";
export const NUMBER_LABEL = "com.docker.compose.container-number";
export const ONEOFF_LABEL = "com.docker.compose.oneoff";
export const STANDALONE_LABEL = "io.dockercloud.service";

const PROJECT = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/**
 * While a container is replaced, the new one waits under `<name>.dcnew-<action>` and the old one
 * under `<name>.dcold-<action>`; a replica a scale removes goes under `<name>.dcgone-<action>`
 * first. The names say which action made them, so a run of the same job after a crash finds them,
 * and any later job puts them right (docker-rollout.ts).
 */
const TEMPORARY = /^(.+)\.dc(new|old|gone)-([0-9a-f-]{36})$/;

export type Temporary = { slot: string; side: "new" | "old" | "gone"; action: string };

export type ContainerSummaryJson = {
  Id: string;
  Names?: string[];
  Labels?: Record<string, string> | null;
  State?: string;
  Created?: number;
};

export type ContainerJson = {
  Id: string;
  Name: string;
  Image: string;
  Created?: string;
  RestartCount?: number;
  State: {
    Status?: string;
    Running?: boolean;
    Restarting?: boolean;
    ExitCode?: number;
    StartedAt?: string;
    Health?: { Status?: string; Log?: { Output?: string }[] } | null;
  };
  Config: ContainerConfigJson;
  HostConfig: HostConfigJson;
  NetworkSettings?: { Networks?: Record<string, EndpointJson> | null };
  Mounts?: MountJson[];
};

export type ContainerConfigJson = {
  Hostname?: string;
  Image?: string;
  Env?: string[] | null;
  Labels?: Record<string, string> | null;
  Healthcheck?: { Test?: string[] } | null;
  [field: string]: unknown;
};
export type HostConfigJson = {
  NetworkMode?: string;
  Binds?: string[] | null;
  Links?: string[] | null;
  PortBindings?: Record<string, { HostIp?: string; HostPort?: string }[] | null> | null;
  [field: string]: unknown;
};
export type EndpointJson = {
  Aliases?: string[] | null;
  IPAMConfig?: Record<string, unknown> | null;
  Links?: string[] | null;
  DriverOpts?: Record<string, string> | null;
  [field: string]: unknown;
};
export type MountJson = { Type?: string; Name?: string; Destination?: string; RW?: boolean };
export type ImageConfigJson = { Env?: string[] | null; Labels?: Record<string, string> | null; [f: string]: unknown };

/** What a service's reference names: the label filters that list its containers. */
export type ServiceKey = { ref: string; project: string | null; service: string };

/** The key of a target's `<project>/<service>` or `<name>`, or null when it is neither. */
export function keyOf(ref: string): ServiceKey | null {
  const slash = ref.indexOf("/");
  if (slash < 0) return NAME.test(ref) ? { ref, project: null, service: ref } : null;
  const project = ref.slice(0, slash);
  const service = ref.slice(slash + 1);
  return PROJECT.test(project) && NAME.test(service) ? { ref, project, service } : null;
}

/** The engine's label filters for a key's containers. */
export const labelFilters = (key: ServiceKey): string[] =>
  key.project === null
    ? [`${STANDALONE_LABEL}=${key.service}`]
    : [`${PROJECT_LABEL}=${key.project}`, `${SERVICE_LABEL}=${key.service}`];

/** The service a container belongs to, from its labels, or null (a one-off `compose run` belongs to none). */
export function keyOfLabels(labels: Record<string, string> | null | undefined): ServiceKey | null {
  const l = labels ?? {};
  if (l[ONEOFF_LABEL]?.toLowerCase() === "true") return null;
  const project = l[PROJECT_LABEL];
  const service = l[SERVICE_LABEL];
  if (project !== undefined && service !== undefined) return keyOf(`${project}/${service}`);
  const standalone = l[STANDALONE_LABEL];
  return standalone === undefined ? null : keyOf(standalone);
}

/** A container's name without the engine's leading slash. */
export const nameOf = (c: { Name?: string; Names?: string[] }) => (c.Name ?? c.Names?.[0] ?? "").replace(/^\//, "");

/** What a temporary name says: the slot's name, new or old, and the action; null for any other name. */
export function temporaryOf(name: string): Temporary | null {
  const m = TEMPORARY.exec(name);
  return m ? { slot: m[1] as string, side: m[2] as Temporary["side"], action: m[3] as string } : null;
}

/** The name a container stands for: its own, or, for a temporary one, the name it is replacing or to take back. */
export const slotOf = (name: string) => temporaryOf(name)?.slot ?? name;

/** Whether the name is that of a replica being removed. */
export const isGoing = (name: string) => temporaryOf(name)?.side === "gone";

/** How many containers a service has, counting a replacement under way once (old, new or both), not one going. */
export const slotCount = (names: readonly string[]) => new Set(names.filter((n) => !isGoing(n)).map(slotOf)).size;

export const newName = (slot: string, action: string) => `${slot}.dcnew-${action}`;
export const oldName = (slot: string, action: string) => `${slot}.dcold-${action}`;
export const goneName = (slot: string, action: string) => `${slot}.dcgone-${action}`;

/** Compose's number of a container (1 when it has none: a standalone container). */
export const numberOf = (labels: Record<string, string> | null | undefined): number => {
  const n = Number(labels?.[NUMBER_LABEL] ?? 1);
  return Number.isSafeInteger(n) && n > 0 ? n : 1;
};

/** The labels every container of the service has, with the same value: what the allow rules see. */
export function commonLabels(all: readonly (Record<string, string> | null | undefined)[]): Record<string, string> {
  const [first, ...rest] = all;
  const common: Record<string, string> = {};
  for (const [key, value] of Object.entries(first ?? {})) {
    if (rest.every((l) => l?.[key] === value)) common[key] = value;
  }
  return common;
}

/** The host ports a container publishes on a fixed number: two replicas cannot both hold one. */
export function fixedHostPorts(host: HostConfigJson): string[] {
  const fixed: string[] = [];
  for (const [port, bindings] of Object.entries(host.PortBindings ?? {})) {
    for (const b of bindings ?? []) {
      if (b.HostPort && b.HostPort !== "0") fixed.push(`${b.HostIp ? `${b.HostIp}:` : ""}${b.HostPort}->${port}`);
    }
  }
  return fixed;
}

/** The name of replica `n`, the way the container it is cloned from was named (Compose v1 `_1`, v2 `-1`). */
export function replicaName(template: string, key: ServiceKey, n: number): string {
  const m = /^(.*[_-])\d+$/.exec(template);
  if (m) return `${m[1]}${n}`;
  return key.project === null ? `${key.service}-${n}` : `${key.project}_${key.service}_${n}`;
}

export type CreateBody = {
  name: string;
  body: Record<string, unknown>;
  /** Networks to connect after the create (the create names one), each with its endpoint settings. */
  more: [string, EndpointJson][];
};

export type CloneChange = {
  name: string;
  image: string;
  action: string;
  /** The trigger call's body, passed as DOCKERCLOUD_TRIGGER_BODY; null leaves the variable as it was. */
  body: string | null;
  /** The old image's own config, to tell what the container set from what it inherited; null if gone. */
  imageConfig: ImageConfigJson | null;
  /** Compose's number for the new container, when it is a new replica. */
  number?: number;
};

/** Config fields a container inherits from its image unless it sets them: left to the new image when inherited. */
const INHERITED = ["Cmd", "Entrypoint", "WorkingDir", "User", "Healthcheck", "ExposedPorts", "Volumes", "StopSignal"];

/**
 * The create request for a container made from `old`: its configuration, networks, volumes and
 * labels, on `change.image`. What the container only inherited from its old image (its command,
 * its variables, its labels) is left out, so that the new image's own apply, as `docker compose
 * up` would do; what the container set itself is kept. Anonymous volumes are mounted again by
 * name, so their data stays.
 */
export function cloneContainer(old: ContainerJson, change: CloneChange): CreateBody {
  const image = change.imageConfig ?? {};
  const config: Record<string, unknown> = { ...old.Config };
  for (const field of INHERITED) {
    if (field in image && same(config[field], image[field])) delete config[field];
  }
  // The engine names a container's host after its id unless told otherwise: a clone gets its own.
  if (old.Config.Hostname && old.Id.startsWith(old.Config.Hostname)) delete config.Hostname;
  const imageEnv = new Set(image.Env ?? []);
  let env = (old.Config.Env ?? []).filter((e) => !imageEnv.has(e));
  if (change.body !== null) env = withEnv(env, BODY_ENV, change.body);
  const labels = ownLabels(old.Config.Labels ?? {}, image.Labels ?? {});
  labels[ACTION_LABEL] = change.action;
  if (change.number !== undefined) labels[NUMBER_LABEL] = String(change.number);
  const host = { ...old.HostConfig, Binds: withAnonymousVolumes(old), Links: linksOf(old.HostConfig.Links) };
  const networks = Object.entries(old.NetworkSettings?.Networks ?? {}).map(
    ([net, endpoint]) => [net, endpointOf(endpoint, old.Id)] as [string, EndpointJson],
  );
  const primary = host.NetworkMode ?? "";
  const first = networks.find(([net]) => net === primary) ?? null;
  return {
    name: change.name,
    body: {
      ...config,
      Image: change.image,
      Env: env,
      Labels: labels,
      HostConfig: host,
      ...(first ? { NetworkingConfig: { EndpointsConfig: { [first[0]]: first[1] } } } : {}),
    },
    more: first ? networks.filter(([net]) => net !== primary) : [],
  };
}

/** The container's labels without those it only inherited from its image (a new image brings its own). */
function ownLabels(labels: Record<string, string>, fromImage: Record<string, string>): Record<string, string> {
  const own: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) if (fromImage[key] !== value) own[key] = value;
  return own;
}

/** The binds, plus each anonymous volume by its name: a new container would otherwise get an empty one. */
function withAnonymousVolumes(old: ContainerJson): string[] | null {
  const binds = [...(old.HostConfig.Binds ?? [])];
  const mounted = new Set(binds.map((b) => b.split(":")[1]));
  const declared = new Set(((old.HostConfig.Mounts as { Target?: string }[] | undefined) ?? []).map((m) => m.Target));
  for (const m of old.Mounts ?? []) {
    if (m.Type !== "volume" || !m.Name || !m.Destination) continue;
    if (mounted.has(m.Destination) || declared.has(m.Destination)) continue;
    binds.push(`${m.Name}:${m.Destination}${m.RW === false ? ":ro" : ""}`);
  }
  return binds.length ? binds : (old.HostConfig.Binds ?? null);
}

/** Links as inspect shows them (`/other:/self/alias`) in the form create takes (`other:alias`). */
function linksOf(links: string[] | null | undefined): string[] | null {
  if (!links?.length) return links ?? null;
  return links.map((l) => {
    const [target = "", alias = ""] = l.split(":");
    return `${target.replace(/^\//, "")}:${alias.slice(alias.lastIndexOf("/") + 1)}`;
  });
}

/** An endpoint's settings to create again: its aliases but the old container's id, its static addresses. */
function endpointOf(endpoint: EndpointJson, oldId: string): EndpointJson {
  const aliases = (endpoint.Aliases ?? []).filter((a) => !oldId.startsWith(a));
  return {
    ...(aliases.length ? { Aliases: aliases } : {}),
    ...(endpoint.IPAMConfig ? { IPAMConfig: endpoint.IPAMConfig } : {}),
    ...(endpoint.Links?.length ? { Links: endpoint.Links } : {}),
    ...(endpoint.DriverOpts ? { DriverOpts: endpoint.DriverOpts } : {}),
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** Where a started container stands: what the wait for it does next. */
export type Standing =
  | { state: "ready" }
  | { state: "waiting"; line: string }
  | { state: "failed"; why: string; exitCode: number | null };

/**
 * One look at a container just started: ready once its healthcheck passes, or, without one, once
 * it has been running `settleMs`; failed as soon as it exits or restarts.
 */
export function standingOf(c: ContainerJson, now: number, settleMs: number): Standing {
  const s = c.State;
  if ((c.RestartCount ?? 0) > 0 || s.Restarting) {
    return {
      state: "failed",
      why: `it restarted (exit code ${s.ExitCode ?? "unknown"})`,
      exitCode: s.ExitCode ?? null,
    };
  }
  if (!s.Running) {
    return { state: "failed", why: `it exited with code ${s.ExitCode ?? "unknown"}`, exitCode: s.ExitCode ?? null };
  }
  const health = s.Health?.Status;
  if (health && health !== "none") {
    if (health === "healthy") return { state: "ready" };
    const last = s.Health?.Log?.at(-1)?.Output?.trim();
    return { state: "waiting", line: `health ${health}${last ? `: ${last.slice(0, 200)}` : ""}` };
  }
  const since = Date.parse(s.StartedAt ?? "");
  const up = Number.isNaN(since) ? 0 : now - since;
  if (up >= settleMs) return { state: "ready" };
  return { state: "waiting", line: `running for ${Math.floor(up / 1000)} s of ${Math.round(settleMs / 1000)} s` };
}

/** The text of a non-TTY container's log (the engine frames each chunk with an 8-byte header). */
export function demuxLog(raw: Buffer): string {
  const parts: Buffer[] = [];
  let at = 0;
  while (at + 8 <= raw.length && raw[at + 1] === 0 && raw[at + 2] === 0 && raw[at + 3] === 0) {
    const size = raw.readUInt32BE(at + 4);
    parts.push(raw.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return (at === 0 ? raw : Buffer.concat(parts)).toString("utf8");
}
