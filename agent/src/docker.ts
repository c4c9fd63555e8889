import Docker from "dockerode";
import {
  type ContainerJson,
  commonLabels,
  keyOf,
  labelFilters,
  nameOf,
  type ServiceKey,
  slotCount,
  temporaryOf,
} from "./containers.ts";
import { Rollout } from "./docker-rollout.ts";
import type { Change, Description, Orchestrator, Progress, Service, TagLookup, Verdict } from "./orchestrator.ts";
import type { Observed } from "./protocol.ts";
import { type Credentials, lookUpTag, NO_CREDENTIALS, resolveTag } from "./registry-lookup.ts";
import { ACTION_LABEL, BODY_ENV, engineMessage, parseImage, untagged } from "./swarm-spec.ts";

/** The outcome of a change, reached by the time `apply` returns: the agent itself rolls containers out. */
export type DockerTarget = { ref: string; ok: boolean; detail: string };

export type DockerOptions = {
  /** How long a new container without a healthcheck must keep running to count as started (default 10 s). */
  settleMs?: number;
  pollMs?: number;
};

/**
 * A plain Docker host (no swarm), through the Engine API (dockerode, which honours DOCKER_HOST
 * like the docker CLI; the API version is the engine's own, not pinned). Services are Compose
 * services or labelled standalone containers (containers.ts); the agent replaces and adds their
 * containers itself (docker-rollout.ts), so `apply` returns once the change has converged or has
 * been undone, and `check` only tells which.
 */
export class DockerOrchestrator implements Orchestrator<DockerTarget> {
  readonly docker: Docker;
  private readonly credentials: Credentials;
  private readonly rollout: Rollout;

  constructor(docker: Docker = new Docker(), credentials: Credentials = NO_CREDENTIALS, options: DockerOptions = {}) {
    this.docker = docker;
    this.credentials = credentials;
    this.rollout = new Rollout(docker, { settleMs: options.settleMs ?? 10_000, pollMs: options.pollMs ?? 500 });
  }

  async describe(): Promise<Description> {
    const [version, info] = await Promise.all([this.docker.version(), this.docker.info()]);
    const name = (info as { Name?: string }).Name;
    return { orchestrator: "docker", engine_version: version.Version ?? null, node_id: name || null };
  }

  unknownService(ref: string): string {
    return keyOf(ref)
      ? `no container of service '${ref}' on this docker host (Compose's project and service labels, or io.dockercloud.service)`
      : `'${ref}' names no service of a docker host: <compose project>/<compose service>, or an io.dockercloud.service label`;
  }

  async find(ref: string): Promise<Service | null> {
    const key = keyOf(ref);
    if (!key) return null;
    const all = await this.rollout.containers(key, labelFilters(key));
    const members = all.filter((c) => temporaryOf(nameOf(c)) === null);
    if (all.length === 0) return null;
    const newest = [...all]
      .filter((c) => c.Config.Labels?.[ACTION_LABEL])
      .sort((a, b) => Date.parse(b.Created ?? "") - Date.parse(a.Created ?? ""))[0];
    const image = members[0]?.Config.Image;
    return {
      id: ref,
      name: ref,
      labels: commonLabels((members.length ? members : all).map((c) => c.Config.Labels)),
      mode: "replicated",
      // A replacement cut short still counts once: its old and new containers stand for one.
      replicas: slotCount(all.map(nameOf)),
      appliedAction: newest?.Config.Labels?.[ACTION_LABEL] ?? null,
      madeBy: countBy(members.map((c) => c.Config.Labels?.[ACTION_LABEL] ?? "")),
      ...(image ? { image } : {}),
    };
  }

  lookUp(reference: string): Promise<TagLookup> {
    return lookUpTag(this.docker, this.credentials, reference);
  }

  async plan(service: Service, change: Change): Promise<string> {
    if (change.kind === "scale")
      return `would set ${service.name} to ${change.replicas} container(s) from ${service.replicas}`;
    const image =
      change.image ??
      (await resolveTag(
        (r) => this.lookUp(r),
        service.image ?? "",
        () => {},
      ));
    const body = change.body === null ? "" : `, ${BODY_ENV} set`;
    return `would replace the ${service.replicas} container(s) of ${service.name} one at a time, on ${image}${body}`;
  }

  async apply(
    service: Service,
    change: Change,
    action: string,
    progress: Progress,
    deadline: number,
  ): Promise<DockerTarget> {
    const key = keyOf(service.id) as ServiceKey;
    const all = await this.rollout.containers(key, labelFilters(key));
    await this.rollout.tidy(all, action, progress);
    const now = await this.rollout.containers(key, labelFilters(key));
    const members = now.filter((c) => temporaryOf(nameOf(c)) === null);
    if (change.kind === "scale") {
      const outcome = await this.rollout.scale(key, members, { ...change, action }, progress, deadline);
      return { ref: key.ref, ...outcome };
    }
    const made = now.find((c) => c.Config.Labels?.[ACTION_LABEL] === action);
    // A run of this job cut short keeps the image it chose; a new one resolves the tag again.
    const image = made?.Config.Image ?? change.image ?? (await this.currentImage([...members, ...now], progress));
    if (!made) await this.pull(image, progress);
    const slots = this.rollout.slots(now, action);
    const outcome = await this.rollout.redeploy(slots, { image, body: change.body, action }, progress, deadline);
    return { ref: key.ref, ...outcome };
  }

  /**
   * A job the API (or the containers' labels) says was applied: the rollout is taken up where it
   * stopped; when no container carries the action any more, it was undone (or replaced since).
   */
  async applied(service: Service, change: Change, action: string, progress: Progress, deadline: number) {
    const key = keyOf(service.id) as ServiceKey;
    // A scale is taken up by setting the count again: a scale-down made nothing to carry the action.
    if (change.kind === "scale") return this.apply(service, change, action, progress, deadline);
    const all = await this.rollout.containers(key, labelFilters(key));
    const traces = all.some(
      (c) => c.Config.Labels?.[ACTION_LABEL] === action || temporaryOf(nameOf(c))?.action === action,
    );
    if (!traces) {
      const detail = `no container of ${key.ref} carries this action's change: it was undone, or the containers were replaced since`;
      return { ref: key.ref, ok: false, detail };
    }
    progress("taking up the rollout an earlier run of this job started");
    return this.apply(service, change, action, progress, deadline);
  }

  async check(target: DockerTarget): Promise<Verdict> {
    return target.ok
      ? { state: "converged", line: target.detail, detail: target.detail }
      : { state: "failed", line: "", detail: target.detail };
  }

  async observe(service: Service): Promise<Observed | null> {
    const key = keyOf(service.id);
    if (!key) return null;
    const members = (await this.rollout.containers(key, labelFilters(key))).filter(
      (c) => temporaryOf(nameOf(c)) === null,
    );
    if (members.length === 0) return null;
    const running = members.filter((c) => c.State.Running).length;
    return {
      replicas: members.length,
      desired: members.length,
      running,
      image: await this.rollout.pinned(members[0] as ContainerJson),
    };
  }

  /** The tag the service runs, resolved again; from a container set aside when none holds its name (a crash). */
  private async currentImage(members: ContainerJson[], progress: Progress): Promise<string> {
    const image = members[0]?.Config.Image;
    if (!image) throw new Error("the service has no container to take the image from");
    return resolveTag((r) => this.lookUp(r), image, progress);
  }

  /**
   * Pulls exactly the pinned image (with the agent's credentials for it) and moves the local tag
   * to it. An image the host has already is not asked for again: with its registry out of reach, a
   * redeploy still replaces the containers with what they ran.
   */
  private async pull(image: string, progress: Progress): Promise<void> {
    const ref = parseImage(image);
    const local = await this.docker
      .getImage(image)
      .inspect()
      .then(() => true)
      .catch(() => false);
    const repo = untagged(ref.name);
    const tag = ref.tagged ? ref.name.slice(repo.length + 1) : null;
    if (!local) await this.fetchImage(image, { fromImage: repo, tag: ref.digest ?? tag ?? "latest" }, progress);
    // `docker compose up` and `docker run` of the tag then find what was deployed, not the old image.
    if (ref.digest && tag) {
      await this.docker
        .getImage(`${repo}@${ref.digest}`)
        .tag({ repo, tag })
        .catch((err: unknown) => progress(`could not tag ${repo}:${tag} locally (${engineMessage(err)})`));
    }
  }

  private async fetchImage(image: string, query: { fromImage: string; tag: string }, progress: Progress) {
    const authconfig = this.credentials.for(image);
    progress(`pulling ${image}`);
    const stream = authconfig ? await this.docker.createImage(authconfig, query) : await this.docker.createImage(query);
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(stream, (err: Error | null, events: { error?: string }[]) => {
        const failed = err?.message ?? events.find((e) => e.error)?.error;
        if (failed) reject(new Error(`the pull of ${image} failed: ${failed}`));
        else resolve();
      });
    });
  }
}

/** How many times each value comes. */
function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) if (v) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}
