import Docker from "dockerode";
import type { Change, Description, Orchestrator, Progress, Service, TagLookup, Verdict } from "./orchestrator.ts";
import type { Observed } from "./protocol.ts";
import { type Credentials, lookUpTag, NO_CREDENTIALS, resolveTag } from "./registry-lookup.ts";
import { observed, type SwarmTarget, type TaskJson, verdict } from "./swarm-converge.ts";
import {
  ACTION_LABEL,
  BODY_ENV,
  engineMessage,
  forceUpdateOf,
  isVersionConflict,
  parseImage,
  redeploySpec,
  replicasOf,
  type ServiceJson,
  type ServiceSpecJson,
  scaleSpec,
} from "./swarm-spec.ts";

export type { Credentials } from "./registry-lookup.ts";

/** How often an update that lost a race with another writer is read and sent again. */
const UPDATE_TRIES = 5;

/**
 * Docker Swarm through the Docker Engine API (dockerode; `new Docker()` honours
 * DOCKER_HOST and the other DOCKER_* variables, like the docker CLI). It must
 * talk to a manager node: only managers know services. Registry credentials,
 * when there are some for the image's registry, go with the digest lookup and
 * with a redeploy's update (as `docker service update --with-registry-auth`
 * sends them, so that the nodes can pull); without, the engine keeps those
 * the service was given before.
 */
export class SwarmOrchestrator implements Orchestrator<SwarmTarget> {
  readonly docker: Docker;
  private readonly credentials: Credentials;

  constructor(docker: Docker = new Docker(), credentials: Credentials = NO_CREDENTIALS) {
    this.docker = docker;
    this.credentials = credentials;
  }

  async describe(): Promise<Description> {
    const [version, info] = await Promise.all([this.docker.version(), this.docker.info()]);
    const nodeId = (info as { Swarm?: { NodeID?: string } }).Swarm?.NodeID;
    return { orchestrator: "swarm", engine_version: version.Version ?? null, node_id: nodeId || null };
  }

  unknownService(ref: string): string {
    return `no swarm service named '${ref}' on this swarm`;
  }

  /** The service by name, id, or id prefix of 12 or more characters (as `docker service ls` shows ids). */
  async find(ref: string): Promise<Service | null> {
    const json = await this.inspect(ref);
    if (!json) return null;
    const name = json.Spec.Name ?? "";
    // The engine also resolves short id prefixes; a name must never reach another service that way.
    if (name !== ref && !(json.ID.startsWith(ref) && ref.length >= 12)) return null;
    const labels = json.Spec.Labels ?? {};
    const replicas = replicasOf(json.Spec);
    const image = json.Spec.TaskTemplate?.ContainerSpec?.Image;
    return {
      id: json.ID,
      name,
      labels,
      mode: replicas === null ? "global" : "replicated",
      replicas,
      appliedAction: labels[ACTION_LABEL] ?? null,
      ...(image ? { image } : {}),
    };
  }

  lookUp(reference: string): Promise<TagLookup> {
    return lookUpTag(this.docker, this.credentials, reference);
  }

  async plan(service: Service, change: Change): Promise<string> {
    if (change.kind === "scale") return `would scale ${service.name} from ${service.replicas} to ${change.replicas}`;
    const json = await this.mustInspect(service.id);
    const current = json.Spec.TaskTemplate?.ContainerSpec?.Image ?? "";
    const image = change.image ?? (await this.resolveImage(current, () => {}));
    const moved = movedFrom(current, image);
    const force = forceUpdateOf(json.Spec);
    const body = change.body === null ? "" : `, ${BODY_ENV} set`;
    const from = moved ? `${moved} → ` : "";
    return `would update service ${service.name}: ForceUpdate ${force} → ${force + 1}, image ${from}${image}${body}`;
  }

  async apply(service: Service, change: Change, action: string, progress: Progress): Promise<SwarmTarget> {
    for (let attempt = 1; ; attempt++) {
      const json = await this.mustInspect(service.id);
      const spec = await this.changedSpec(json.Spec, change, action, attempt === 1 ? progress : () => {});
      // dockerode sends `authconfig` as the X-Registry-Auth header (base64url of its JSON), not in the query.
      const image = spec.TaskTemplate?.ContainerSpec?.Image;
      const authconfig = change.kind === "redeploy" && image ? this.credentials.for(image) : undefined;
      try {
        const update = { _query: { version: json.Version?.Index }, _body: spec, ...(authconfig ? { authconfig } : {}) };
        await this.docker.getService(service.id).update(update);
        return this.target(json, spec, change);
      } catch (err) {
        if (!isVersionConflict(err) || attempt >= UPDATE_TRIES) throw err;
        progress(`the service changed while being updated (${engineMessage(err)}); reading it again`);
      }
    }
  }

  async applied(service: Service, change: Change): Promise<SwarmTarget> {
    const json = await this.mustInspect(service.id);
    // The update is the one under way (or done): its status counts, whatever its StartedAt.
    return { ...this.target(json, json.Spec, change), since: null, earlier: true };
  }

  async check(target: SwarmTarget): Promise<Verdict> {
    const json = await this.inspect(target.id);
    if (!json) return { state: "failed", line: "the service is gone", detail: `${target.name} was removed` };
    return verdict(target, json, await this.tasks(target.id));
  }

  async observe(service: Service): Promise<Observed | null> {
    const json = await this.inspect(service.id);
    return json ? observed(json, await this.tasks(service.id)) : null;
  }

  private async changedSpec(spec: ServiceSpecJson, change: Change, action: string, progress: Progress) {
    if (change.kind === "scale") return scaleSpec(spec, { replicas: change.replicas, action });
    const current = spec.TaskTemplate?.ContainerSpec?.Image ?? "";
    const image = change.image ?? (await this.resolveImage(current, progress));
    const moved = movedFrom(current, image);
    if (moved) progress(`the service moves from ${moved} to ${parseImage(image).name}`);
    return redeploySpec(spec, { image, body: change.body, action });
  }

  private target(before: ServiceJson, spec: ServiceSpecJson, change: Change): SwarmTarget {
    return {
      id: before.ID,
      name: before.Spec.Name ?? before.ID,
      kind: change.kind,
      replicas: replicasOf(spec),
      forceUpdate: forceUpdateOf(spec),
      since: before.UpdateStatus?.StartedAt ?? null,
      earlier: false,
    };
  }

  private resolveImage(image: string, progress: Progress): Promise<string> {
    return resolveTag((ref) => this.lookUp(ref), image, progress);
  }

  private async inspect(ref: string): Promise<ServiceJson | null> {
    try {
      return (await this.docker.getService(ref).inspect()) as ServiceJson;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
  }

  private async mustInspect(id: string): Promise<ServiceJson> {
    const json = await this.inspect(id);
    if (!json) throw new Error(`the service ${id} was removed`);
    return json;
  }

  private async tasks(id: string): Promise<TaskJson[]> {
    return (await this.docker.listTasks({ filters: { service: [id] } })) as TaskJson[];
  }
}

/** The tag a service leaves when `next` names another one than `current` (a push of a new tag), or null. */
function movedFrom(current: string, next: string): string | null {
  const before = parseImage(current).name;
  return before !== parseImage(next).name ? before : null;
}
