/**
 * An in-memory Docker Engine: as much of dockerode's `Docker` as docker.ts and docker-rollout.ts
 * use. It answers as dockerd does where the rollout depends on it: errors carry `statusCode` (404
 * no such container or image, 409 a name already held, 304 a start of a running container or a
 * stop of a stopped one), names are unique, a force remove takes a running container. A started
 * container behaves as its image says: an image that `fails` (by default, one whose reference
 * contains "bad") exits at once with code 3 and logs why; any other runs, started `startedAgoMs`
 * ago (past the rollout's settle time). Faults: each mutating call (create, start, stop, rename,
 * remove, connect) is counted; with `crashAt = k` the k-th throws `Crash` before it changes
 * anything, and every call after it does too (the process is dead) until `reset()`.
 */
import { createHash } from "node:crypto";
import type Docker from "dockerode";
import type { ContainerConfigJson, ContainerJson, EndpointJson, HostConfigJson, MountJson } from "../src/containers.ts";

/** The agent process dies here: nothing more of this run reaches the engine. */
export class Crash extends Error {
  constructor(at: number, what: string) {
    super(`crashed at mutating call ${at} (${what})`);
    this.name = "Crash";
  }
}

export type EngineError = Error & { statusCode: number; json: { message: string } };

/** An error as dockerode raises one for an engine's answer. */
export function engineError(statusCode: number, message: string): EngineError {
  return Object.assign(new Error(`(HTTP code ${statusCode}) - ${message}`), { statusCode, json: { message } });
}

type ImageConfig = { Env: string[]; Labels: Record<string, string>; Cmd: string[] };
type ImageRecord = { Id: string; RepoTags: string[]; RepoDigests: string[]; Config: ImageConfig; fails: boolean };
type Done = (err: Error | null, events: object[]) => void;
type Endpoints = { EndpointsConfig?: Record<string, EndpointJson> };
type CreateBody = ContainerConfigJson & { HostConfig?: HostConfigJson; NetworkingConfig?: Endpoints };

/** A container to put on the host as Compose would have: created and started (the first network its mode), not counted. */
export type Seed = {
  name: string;
  image: string;
  labels: Record<string, string>;
  env?: string[];
  ports?: Record<string, { HostIp?: string; HostPort?: string }[]>;
  networks: string[];
  binds?: string[];
};

const BASE = Date.parse("2026-12-07T10:00:00Z");
const NEVER = "0001-01-01T00:00:00Z";
const digestOf = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;
const repoOf = (name: string) => name.replace(/:[^:/]+$/, "");

/** A non-TTY container's log as the engine frames it: an 8-byte header per chunk. */
function framed(line: string): Buffer {
  const text = Buffer.from(`${line}\n`);
  const head = Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]);
  head.writeUInt32BE(text.length, 4);
  return Buffer.concat([head, text]);
}

export class FakeEngine {
  readonly containers = new Map<string, ContainerJson>();
  readonly images: ImageRecord[] = [];
  /** What the registry serves: `repo:tag` to a digest, and whether that image fails. */
  readonly registry = new Map<string, { digest: string; fails: boolean }>();
  readonly networks = new Set<string>();
  /** Each mutating call made, as `verb name`, in order (the crashed one included). */
  readonly calls: string[] = [];
  mutations = 0;
  crashAt: number | null = null;
  crashed = false;
  /** The most containers the host held at once. */
  most = 0;
  startedAgoMs = 60_000;
  private readonly fails = new Map<string, boolean>();
  private readonly logged = new Map<string, string[]>();
  private seq = 0;

  readonly modem = { followProgress: (_: unknown, done: Done) => setImmediate(() => done(null, [{ status: "done" }])) };

  /** This engine where dockerode's is expected. */
  asDocker(): Docker {
    return this as unknown as Docker;
  }

  /** Clears the fault: the next run is a new process. */
  reset(): void {
    this.crashAt = null;
    this.crashed = false;
  }

  // ---- the host's state, set up by a test (nothing counted) ----

  /** An image in the registry under `repo:tag` (and so pullable by its digest). */
  publish(ref: string, fails = ref.includes("bad")): string {
    const digest = digestOf(`manifest ${ref} ${++this.seq}`);
    this.registry.set(ref, { digest, fails });
    return `${ref}@${digest}`;
  }

  /** An image the host already has: `repo:tag` as published (published first if it is not). */
  pulled(ref: string): ImageRecord {
    const known = this.registry.get(ref) ?? { digest: digestOf(`manifest ${ref}`), fails: ref.includes("bad") };
    this.registry.set(ref, known);
    return this.addImage(repoOf(ref), known.digest, known.fails, [ref]);
  }

  /** A container made and started as Compose would have (not a counted call). */
  seed(s: Seed): ContainerJson {
    for (const n of s.networks) this.networks.add(n);
    if (!this.findImage(s.image)) this.pulled(s.image);
    const [primary = "bridge", ...others] = s.networks;
    const alias = s.labels["com.docker.compose.service"] ?? s.name;
    const id = this.make(s.name, {
      Image: s.image,
      Env: s.env ?? [],
      Labels: s.labels,
      HostConfig: { NetworkMode: primary, Binds: s.binds ?? null, PortBindings: s.ports ?? {} },
      NetworkingConfig: { EndpointsConfig: { [primary]: { Aliases: [alias] } } },
    });
    for (const n of others) this.join(n, id, { Aliases: [alias] });
    this.boot(id);
    return this.peek(id) as ContainerJson;
  }

  /** A container by id or name, as inspect shows it, or undefined. */
  peek(ref: string): ContainerJson | undefined {
    const c = this.lookup(ref);
    return c ? structuredClone(c) : undefined;
  }

  all(): ContainerJson[] {
    return [...this.containers.values()].map((c) => structuredClone(c));
  }

  // ---- dockerode's surface ----

  async version() {
    this.alive();
    return { Version: "27.3.1", ApiVersion: "1.47" };
  }

  async info() {
    this.alive();
    return { Name: "fake-host" };
  }

  async listContainers(opts: { all?: boolean; filters?: { label?: string[] } } = {}) {
    this.alive();
    const wanted = opts.filters?.label ?? [];
    const has = (labels: Record<string, string>, f: string) => {
      const at = f.indexOf("=");
      return at < 0 ? f in labels : labels[f.slice(0, at)] === f.slice(at + 1);
    };
    return [...this.containers.values()]
      .filter((c) => opts.all || c.State.Running)
      .filter((c) => wanted.every((f) => has(c.Config.Labels ?? {}, f)))
      .map((c) => ({ Id: c.Id, Names: [c.Name], Labels: { ...c.Config.Labels }, State: c.State.Status }));
  }

  getContainer(ref: string) {
    return {
      id: ref,
      inspect: async () => structuredClone(this.must(ref)),
      logs: async () => Buffer.concat((this.logged.get(this.must(ref).Id) ?? []).map(framed)),
      start: async () => this.start(ref),
      stop: async (_opts?: { t?: number }) => this.stop(ref),
      rename: async (opts: { name: string }) => this.rename(ref, opts.name),
      remove: async (opts: { force?: boolean; v?: boolean } = {}) => this.remove(ref, opts.force === true),
    };
  }

  async createContainer(opts: { _query: { name: string }; _body: Record<string, unknown> }) {
    this.mutate(`create ${opts._query.name}`);
    const id = this.make(opts._query.name, opts._body);
    return { id };
  }

  getNetwork(network: string) {
    return {
      connect: async (opts: { Container: string; EndpointConfig?: EndpointJson }) => {
        const c = this.touch(`connect ${network}`, opts.Container);
        this.join(network, c.Id, opts.EndpointConfig ?? {});
      },
    };
  }

  getImage(ref: string) {
    return {
      inspect: async () => {
        const image = this.mustImage(ref);
        return structuredClone({
          Id: image.Id,
          RepoTags: image.RepoTags,
          RepoDigests: image.RepoDigests,
          Config: image.Config,
        });
      },
      tag: async (opts: { repo: string; tag: string }) => {
        const image = this.mustImage(ref);
        const tag = `${opts.repo}:${opts.tag}`;
        for (const other of this.images) other.RepoTags = other.RepoTags.filter((t) => t !== tag);
        image.RepoTags.push(tag);
      },
      distribution: async (_opts?: object) => {
        this.alive();
        const served = this.registry.get(ref);
        if (!served) throw engineError(404, `manifest unknown: ${ref}`);
        return { Descriptor: { digest: served.digest } };
      },
    };
  }

  /** A pull (`createImage([auth,] {fromImage, tag})`): the registry's image, by tag or digest. */
  async createImage(first: object, second?: object) {
    this.alive();
    const { fromImage, tag } = (second ?? first) as { fromImage: string; tag: string };
    const served = [...this.registry].find(
      ([ref, s]) =>
        repoOf(ref) === fromImage && (tag.startsWith("sha256:") ? s.digest === tag : ref.endsWith(`:${tag}`)),
    );
    if (!served) throw engineError(404, `manifest for ${fromImage}:${tag} not found: manifest unknown`);
    const [ref, s] = served;
    if (!this.findImage(`${fromImage}@${s.digest}`)) {
      this.addImage(fromImage, s.digest, s.fails, tag.startsWith("sha256:") ? [] : [ref]);
    }
    return { pulled: `${fromImage}:${tag}` };
  }

  // ---- the engine's workings ----

  private alive(): void {
    if (this.crashed) throw new Crash(this.mutations, "after the crash");
  }

  private mutate(what: string): void {
    this.alive();
    this.mutations++;
    this.calls.push(what);
    if (this.crashAt !== null && this.mutations >= this.crashAt) {
      this.crashed = true;
      throw new Crash(this.mutations, what);
    }
  }

  private addImage(repo: string, digest: string, fails: boolean, tags: string[]): ImageRecord {
    const image: ImageRecord = {
      Id: digestOf(`config ${repo}@${digest}`),
      RepoTags: tags,
      RepoDigests: [`${repo}@${digest}`],
      Config: { Env: ["PATH=/usr/local/bin:/usr/bin:/bin"], Labels: { maintainer: "fake" }, Cmd: ["serve"] },
      fails,
    };
    this.images.push(image);
    return image;
  }

  /** An image by id, `repo:tag`, or `repo[:tag]@digest` (the digest decides, as for the engine). */
  private findImage(ref: string): ImageRecord | undefined {
    const at = ref.indexOf("@");
    if (at >= 0) {
      const byDigest = `${repoOf(ref.slice(0, at))}@${ref.slice(at + 1)}`;
      return this.images.find((i) => i.RepoDigests.includes(byDigest));
    }
    return this.images.find((i) => i.Id === ref || i.RepoTags.includes(ref));
  }

  /** A container by full id, name, or unique id prefix, as the engine resolves one. */
  private lookup(ref: string): ContainerJson | undefined {
    const byId = this.containers.get(ref);
    if (byId) return byId;
    const name = `/${ref.replace(/^\//, "")}`;
    const all = [...this.containers.values()];
    const byName = all.find((c) => c.Name === name);
    if (byName) return byName;
    const prefixed = ref.length >= 4 ? all.filter((c) => c.Id.startsWith(ref)) : [];
    return prefixed.length === 1 ? prefixed[0] : undefined;
  }

  private must(ref: string): ContainerJson {
    this.alive();
    const c = this.lookup(ref);
    if (!c) throw engineError(404, `No such container: ${ref}`);
    return c;
  }

  private mustImage(ref: string): ImageRecord {
    this.alive();
    const image = this.findImage(ref);
    if (!image) throw engineError(404, `No such image: ${ref}`);
    return image;
  }

  /** A counted call on a container: it may crash before it is made. */
  private touch(verb: string, ref: string, more = ""): ContainerJson {
    this.mutate(`${verb} ${this.lookup(ref)?.Name ?? ref}${more}`);
    return this.must(ref);
  }

  private claim(name: string, id: string): void {
    const holder = this.lookup(`/${name}`);
    if (holder && holder.Id !== id) {
      throw engineError(409, `Conflict. The container name "/${name}" is already in use by container "${holder.Id}"`);
    }
  }

  /** POST /containers/create: the body's config on its image, joined to the networks it names. */
  private make(name: string, body: Record<string, unknown>): string {
    const { HostConfig, NetworkingConfig, ...config } = body as CreateBody;
    const image = this.findImage(config.Image ?? "");
    if (!image) throw engineError(404, `No such image: ${config.Image}`);
    this.claim(name, "");
    const id = digestOf(`container ${++this.seq}`).slice(7);
    const set = new Set((config.Env ?? []).map((e) => e.split("=")[0]));
    this.containers.set(id, {
      Id: id,
      Name: `/${name}`,
      Image: image.Id,
      Created: new Date(BASE + this.seq * 1000).toISOString(),
      RestartCount: 0,
      State: { Status: "created", Running: false, Restarting: false, ExitCode: 0, StartedAt: NEVER, Health: null },
      Config: {
        Hostname: id.slice(0, 12),
        ...config,
        Env: [...image.Config.Env.filter((e) => !set.has(e.split("=")[0])), ...(config.Env ?? [])],
        Labels: { ...image.Config.Labels, ...config.Labels },
      },
      HostConfig: { ...HostConfig },
      NetworkSettings: { Networks: {} },
      Mounts: (HostConfig?.Binds ?? []).map(mountOf),
    });
    this.fails.set(id, image.fails);
    const endpoints = NetworkingConfig?.EndpointsConfig ?? { [HostConfig?.NetworkMode ?? "bridge"]: {} };
    for (const [network, endpoint] of Object.entries(endpoints)) this.join(network, id, endpoint);
    this.most = Math.max(this.most, this.containers.size);
    return id;
  }

  private join(network: string, id: string, endpoint: EndpointJson): void {
    if (!this.networks.has(network) && network !== "bridge") throw engineError(404, `network ${network} not found`);
    const c = this.containers.get(id) as ContainerJson;
    const networks = c.NetworkSettings?.Networks ?? {};
    if (networks[network])
      throw engineError(403, `endpoint with name ${c.Name.slice(1)} already exists in network ${network}`);
    networks[network] = { ...endpoint, Aliases: [...(endpoint.Aliases ?? []), id.slice(0, 12)] };
    c.NetworkSettings = { Networks: networks };
  }

  /** The container runs, or (its image fails) exits at once with code 3. */
  private boot(id: string): void {
    const c = this.containers.get(id) as ContainerJson;
    const now = Date.now();
    if (this.fails.get(id)) {
      c.State = { ...c.State, Status: "exited", Running: false, ExitCode: 3, StartedAt: new Date(now).toISOString() };
      this.logged.set(id, [...(this.logged.get(id) ?? []), "fatal: the configuration does not parse"]);
      return;
    }
    const started = new Date(now - this.startedAgoMs).toISOString();
    c.State = { ...c.State, Status: "running", Running: true, ExitCode: 0, StartedAt: started };
    this.logged.set(id, [...(this.logged.get(id) ?? []), "listening on :8080"]);
  }

  private start(ref: string): void {
    const c = this.touch("start", ref);
    if (c.State.Running) throw engineError(304, "container already started");
    this.boot(c.Id);
  }

  private stop(ref: string): void {
    const c = this.touch("stop", ref);
    if (!c.State.Running) throw engineError(304, "container already stopped");
    c.State = { ...c.State, Status: "exited", Running: false, ExitCode: 143 };
  }

  private rename(ref: string, name: string): void {
    const c = this.touch("rename", ref, ` ${name}`);
    if (c.Name === `/${name}`) throw engineError(400, "Renaming a container with the same name as its current name");
    this.claim(name, c.Id);
    c.Name = `/${name}`;
  }

  private remove(ref: string, force: boolean): void {
    const c = this.touch("remove", ref);
    if (c.State.Running && !force) throw engineError(409, `cannot remove container ${c.Name}: it is running`);
    this.containers.delete(c.Id);
  }
}

/** A bind as inspect shows it among the mounts: a named volume, or a host path. */
function mountOf(bind: string): MountJson {
  const [source = "", destination = "", mode = ""] = bind.split(":");
  const rw = mode !== "ro";
  return source.startsWith("/")
    ? { Type: "bind", Destination: destination, RW: rw }
    : { Type: "volume", Name: source, Destination: destination, RW: rw };
}
