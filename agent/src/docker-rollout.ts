import type Docker from "dockerode";
import {
  type ContainerJson,
  cloneContainer,
  demuxLog,
  fixedHostPorts,
  goneName,
  type ImageConfigJson,
  nameOf,
  newName,
  numberOf,
  oldName,
  replicaName,
  type ServiceKey,
  standingOf,
  temporaryOf,
} from "./containers.ts";
import { faultPoint } from "./fault.ts";
import type { Progress } from "./orchestrator.ts";
import { ACTION_LABEL, engineMessage, parseImage, untagged } from "./swarm-spec.ts";

/**
 * Redeploys and scales on a plain Docker host, one container at a time, each step of which a
 * later run of the same job can take up after a crash (the states are in docs/architecture.md):
 *
 * 1. the new container is created under `<name>.dcnew-<action>`, labelled with the action, from
 *    the old one's configuration; nothing has stopped yet;
 * 2. the old one is stopped and renamed `<name>.dcold-<action>` (a name cannot be held twice);
 * 3. the new one takes the name and starts;
 * 4. once it is healthy (or, without a healthcheck, has run the settle time) the old one is
 *    removed; if it exits, restarts or is not healthy by the deadline, it is removed and the old
 *    one takes its name back and starts again.
 *
 * Each container made carries `io.dockercloud.action` from its create on, and the temporary names
 * carry the action too: a run of the job finds what an earlier run of it left, and any other job
 * first puts back what an abandoned one left (`tidy`).
 */

/** How a rollout ended: the service as it should be, or why not (and how it was left). */
export type Outcome = { ok: boolean; detail: string };

export type RolloutOptions = {
  /** How long a container without a healthcheck must keep running to count as started. */
  settleMs: number;
  /** How often a starting container is looked at. */
  pollMs: number;
};

/** Lines of a failed container's log told in the action's log. */
const LOG_TAIL = 10;
const STOP_SECONDS = 10;

type Slot = { name: string; holder: ContainerJson | null; made: ContainerJson | null; aside: ContainerJson | null };

export class Rollout {
  private readonly docker: Docker;
  private readonly options: RolloutOptions;

  constructor(docker: Docker, options: RolloutOptions) {
    this.docker = docker;
    this.options = options;
  }

  /** Every container of the service, temporaries included, inspected. */
  async containers(key: ServiceKey, filters: string[]): Promise<ContainerJson[]> {
    const listed = await this.docker.listContainers({ all: true, filters: { label: filters } });
    const found = await Promise.all(listed.map((c) => this.inspect(c.Id)));
    const mine = found.filter((c): c is ContainerJson => c !== null);
    return key.project === null ? mine : mine.filter((c) => c.Config.Labels?.["com.docker.compose.oneoff"] !== "True");
  }

  /**
   * Puts back what a job other than `action` left half done: a new container that never took its
   * name is removed; an old one set aside gets its name back and runs again, unless a container
   * now holds the name and runs (then the old one is removed); a replica made and never started
   * starts.
   */
  async tidy(all: ContainerJson[], action: string, progress: Progress): Promise<void> {
    for (const c of all) {
      const t = temporaryOf(nameOf(c));
      // A replica a scale (this one, or another) was removing: its removal is finished.
      if (t?.side === "gone") await this.drop(c.Id);
      if (!t || t.action === action || t.side === "gone") continue;
      const holder = all.find((h) => nameOf(h) === t.slot) ?? null;
      if (t.side === "new") {
        // That action may have stopped the old container before it died: it runs again, before the
        // trace that says so goes (a crash in between leaves the trace, and the next job sees it).
        const aside = all.some((o) => nameOf(o) === oldName(t.slot, t.action));
        if (holder && !holder.State.Running && !aside) await this.start(holder.Id);
        progress(`removing ${nameOf(c)}, left by an earlier action that did not finish`);
        await this.remove(c.Id);
        continue;
      }
      if (holder?.State.Running) {
        await this.remove(c.Id);
      } else {
        progress(`putting ${t.slot} back: an earlier action set it aside and did not finish`);
        if (holder) await this.remove(holder.Id);
        await this.restore(c.Id, t.slot);
      }
    }
    // A replica another action created and died before starting was meant to run (read again:
    // putting a slot back above may have removed it).
    for (const c of all) {
      const madeBy = c.Config.Labels?.[ACTION_LABEL];
      if (temporaryOf(nameOf(c)) || c.State.Status !== "created" || !madeBy || madeBy === action) continue;
      if ((await this.inspect(c.Id))?.State.Status !== "created") continue;
      progress(`starting ${nameOf(c)}, made by an earlier action that did not finish`);
      await this.start(c.Id);
    }
  }

  /** The slots of a redeploy: each container of the service, with what this action already made for it. */
  slots(all: ContainerJson[], action: string): Slot[] {
    const byName = new Map(all.map((c) => [nameOf(c), c]));
    const names = new Set<string>();
    for (const c of all) {
      const t = temporaryOf(nameOf(c));
      if (!t) names.add(nameOf(c));
      else if (t.action === action && t.side !== "gone") names.add(t.slot);
    }
    return [...names]
      .map((name) => ({
        name,
        holder: byName.get(name) ?? null,
        made: byName.get(newName(name, action)) ?? null,
        aside: byName.get(oldName(name, action)) ?? null,
      }))
      .sort((a, b) => numberOf(labelsOfSlot(a)) - numberOf(labelsOfSlot(b)));
  }

  /** Replaces each container of the service by one on `image`, one at a time; stops at the first that fails. */
  async redeploy(
    slots: Slot[],
    change: { image: string; body: string | null; action: string },
    progress: Progress,
    deadline: number,
  ): Promise<Outcome> {
    let replaced = 0;
    for (const slot of slots) {
      const outcome = await this.replace(slot, change, progress, deadline);
      if (!outcome.ok) {
        const done = replaced ? ` (${replaced} of ${slots.length} container(s) were replaced before it)` : "";
        return { ok: false, detail: `${outcome.detail}${done}` };
      }
      replaced++;
    }
    return { ok: true, detail: `${slots.length} container(s) run ${change.image}` };
  }

  private async replace(
    slot: Slot,
    change: { image: string; body: string | null; action: string },
    progress: Progress,
    deadline: number,
  ): Promise<Outcome> {
    const { action } = change;
    // Already made by this action and holding the name: it only has to run (steps 3-4 of a run cut short).
    let made = slot.holder?.Config.Labels?.[ACTION_LABEL] === action ? slot.holder : slot.made;
    const old = made === slot.holder ? slot.aside : (slot.holder ?? slot.aside);
    if (!made && !old) return { ok: false, detail: `${slot.name}: no container to replace` };
    if (old) {
      const imageConfig = await this.imageConfig(old.Image);
      const plan = cloneContainer(old, { name: newName(slot.name, action), ...change, imageConfig });
      if (!made) {
        made = await this.create(plan.name, plan.body);
        progress(`${slot.name}: created its replacement on ${change.image}`);
      }
      // Also for one an earlier run created: it may have died before joining them all.
      await this.join(made, plan.more);
      if (old.State.Running) await this.docker.getContainer(old.Id).stop({ t: STOP_SECONDS }).catch(ignoreStopped);
      if (old !== slot.aside) {
        await this.docker.getContainer(old.Id).rename({ name: oldName(slot.name, action) });
        faultPoint("docker:old-set-aside");
      }
    }
    if (!made) return { ok: false, detail: `${slot.name}: no container to replace` };
    if (nameOf(made) !== slot.name) await this.docker.getContainer(made.Id).rename({ name: slot.name });
    const started = await this.startAndWait(made.Id, slot.name, progress, deadline);
    if (started.ok) {
      if (old) await this.remove(old.Id);
      progress(`${slot.name}: replaced${old ? "; the old container removed" : ""}`);
      return started;
    }
    await this.remove(made.Id);
    if (!old) return started;
    await this.restore(old.Id, slot.name);
    progress(`${slot.name}: the new container failed; the old one runs again under its name`);
    return { ok: false, detail: `${started.detail}; the old container runs again under its name` };
  }

  /**
   * Sets the service's replicas: new ones cloned from the highest-numbered container, numbered
   * as Compose numbers them; the highest numbers removed first.
   */
  async scale(
    key: ServiceKey,
    members: ContainerJson[],
    change: { replicas: number; action: string },
    progress: Progress,
    deadline: number,
  ): Promise<Outcome> {
    const sorted = [...members].sort((a, b) => numberOf(a.Config.Labels) - numberOf(b.Config.Labels));
    // The template is one this action did not make: a replica a crashed run made may lack a network.
    const template = sorted.filter((c) => c.Config.Labels?.[ACTION_LABEL] !== change.action).at(-1) ?? sorted.at(-1);
    const refused = scaleRefusal(key, template, change.replicas);
    if (refused || !template) return { ok: false, detail: refused ?? "no container to scale" };
    for (const c of sorted.slice(change.replicas).reverse()) {
      progress(`removing ${nameOf(c)}`);
      // Named as going first: a crash before the removal leaves a name that says to finish it.
      await this.docker.getContainer(c.Id).rename({ name: goneName(nameOf(c), change.action) });
      await this.drop(c.Id);
    }
    const kept = sorted.slice(0, change.replicas);
    const plan = (name: string, number: number, image: string) =>
      cloneContainer(template, { name, image, action: change.action, body: null, imageConfig: null, number });
    // Replicas this action made before a crash are started now (tidy started other actions' ones).
    const made = kept.filter((c) => c.Config.Labels?.[ACTION_LABEL] === change.action && !c.State.Running);
    for (const c of made) await this.join(c, plan(nameOf(c), numberOf(c.Config.Labels), "").more);
    const image = await this.pinned(template);
    const taken = new Set(kept.map((c) => numberOf(c.Config.Labels)));
    for (let n = 1; taken.size < change.replicas; n++) {
      if (taken.has(n)) continue;
      const name = replicaName(nameOf(template), key, n);
      const p = plan(name, n, image);
      const c = await this.create(name, p.body);
      await this.join(c, p.more);
      made.push(c);
      taken.add(n);
      progress(`created ${name}`);
    }
    return this.startReplicas(made, change.replicas, progress, deadline);
  }

  /** Starts the replicas a scale made; if one fails, every one it made goes. */
  private async startReplicas(made: ContainerJson[], replicas: number, progress: Progress, deadline: number) {
    for (const c of made) {
      const started = await this.startAndWait(c.Id, nameOf(c), progress, deadline);
      if (started.ok) continue;
      for (const undo of made) await this.remove(undo.Id);
      return { ok: false, detail: `${started.detail}; the ${made.length} new container(s) were removed` };
    }
    return { ok: true, detail: `${replicas} container(s)` };
  }

  /**
   * The image a container runs as `repo:tag@sha256:...` (Compose writes only `repo:tag`, whose
   * local tag may have moved since: the digest is the container's image's), or, when the engine
   * knows no digest for it, the image's id: exactly what it runs either way.
   */
  async pinned(c: ContainerJson): Promise<string> {
    const image = c.Config.Image ?? "";
    if (parseImage(image).digest) return image;
    try {
      const json = (await this.docker.getImage(c.Image).inspect()) as { RepoDigests?: string[] };
      const name = parseImage(image).name;
      const repo = untagged(name);
      const digest = json.RepoDigests?.find((d) => d.startsWith(`${repo}@`))?.split("@")[1];
      return digest ? `${name}@${digest}` : c.Image;
    } catch {
      return c.Image;
    }
  }

  /** Starts a container (if it is not running) and waits until it is ready, fails, or the deadline passes. */
  private async startAndWait(id: string, name: string, progress: Progress, deadline: number): Promise<Outcome> {
    const first = await this.inspect(id);
    if (!first?.State.Running) await this.start(id);
    let last = "";
    for (;;) {
      const c = await this.inspect(id);
      if (!c) return { ok: false, detail: `${name}: the container was removed while starting` };
      const standing = standingOf(c, Date.now(), this.options.settleMs);
      if (standing.state === "ready") return { ok: true, detail: `${name} runs` };
      if (standing.state === "failed") return { ok: false, detail: `${name}: ${standing.why}${await this.tail(id)}` };
      if (standing.line !== last) progress(`${name}: ${standing.line}`);
      last = standing.line;
      if (Date.now() + this.options.pollMs > deadline) {
        return { ok: false, detail: `${name}: not ready by the deadline (${last})${await this.tail(id)}` };
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.pollMs));
    }
  }

  private async create(name: string, body: Record<string, unknown>): Promise<ContainerJson> {
    const created = await this.docker.createContainer({ _query: { name }, _body: body } as never);
    const json = await this.inspect(created.id);
    if (!json) throw new Error(`the container ${name} was removed as it was created`);
    return json;
  }

  /** The create joins one network; the others are joined before the start, as Compose does: those not joined yet. */
  private async join(c: ContainerJson, more: [string, object][]): Promise<void> {
    const joined = new Set(Object.keys(c.NetworkSettings?.Networks ?? {}));
    for (const [network, endpoint] of more) {
      if (joined.has(network)) continue;
      await this.docker.getNetwork(network).connect({ Container: c.Id, EndpointConfig: endpoint });
    }
  }

  /**
   * An old container back in service: started while it still has its temporary name, then given
   * its name back. A crash in between leaves the temporary name, which the next job puts right;
   * the other order could leave it stopped under its own name, where nothing says it should run.
   */
  private async restore(id: string, name: string): Promise<void> {
    await this.start(id);
    await this.docker.getContainer(id).rename({ name });
  }

  private start(id: string): Promise<void> {
    return this.docker.getContainer(id).start().catch(ignoreStarted);
  }

  private async imageConfig(id: string): Promise<ImageConfigJson | null> {
    try {
      return ((await this.docker.getImage(id).inspect()) as { Config?: ImageConfigJson }).Config ?? null;
    } catch {
      return null;
    }
  }

  /** The last lines of a container's log, for a failure's reason. */
  private async tail(id: string): Promise<string> {
    try {
      const raw = (await this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail: LOG_TAIL })) as Buffer;
      const text = demuxLog(Buffer.from(raw)).trim();
      return text ? `; its last log lines: ${text.split("\n").slice(-LOG_TAIL).join(" | ")}` : "; it logged nothing";
    } catch (err) {
      return `; its log could not be read (${engineMessage(err)})`;
    }
  }

  async inspect(id: string): Promise<ContainerJson | null> {
    try {
      return (await this.docker.getContainer(id).inspect()) as unknown as ContainerJson;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
  }

  /** Stops a container (within its grace period), then removes it. */
  private async drop(id: string): Promise<void> {
    await this.docker.getContainer(id).stop({ t: STOP_SECONDS }).catch(ignoreGone);
    await this.remove(id);
  }

  /** Removes a container; its volumes stay (a replacement mounts them). */
  private async remove(id: string): Promise<void> {
    await this.docker
      .getContainer(id)
      .remove({ force: true, v: false })
      .catch((err: unknown) => {
        if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      });
  }
}

function labelsOfSlot(slot: Slot) {
  return (slot.holder ?? slot.made ?? slot.aside)?.Config.Labels;
}

/** Why the service cannot have that many replicas, or null. Said before anything changes. */
function scaleRefusal(key: ServiceKey, template: ContainerJson | undefined, replicas: number): string | null {
  if (!template) return `no container of ${key.ref} to scale from`;
  if (replicas < 1) {
    return `the docker orchestrator keeps at least one container of a service (new ones are cloned from it); stop ${key.ref} with docker compose instead`;
  }
  if (key.project === null && replicas > 1) {
    return `${key.ref} is standalone containers (io.dockercloud.service): only Compose services are scaled`;
  }
  const fixed = fixedHostPorts(template.HostConfig);
  if (replicas > 1 && fixed.length > 0) {
    return `${key.ref} publishes a fixed host port (${fixed.join(", ")}): two replicas cannot both hold it; nothing was changed`;
  }
  return null;
}

// Stopping a container that already stopped, or starting one that runs, is not a failure.
const ignoreStopped = (err: unknown) => {
  if ((err as { statusCode?: number }).statusCode !== 304) throw err;
};
const ignoreStarted = ignoreStopped;
const ignoreGone = (err: unknown) => {
  const status = (err as { statusCode?: number }).statusCode;
  if (status !== 304 && status !== 404) throw err;
};
