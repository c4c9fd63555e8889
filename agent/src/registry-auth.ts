import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/**
 * Registry credentials from the Docker CLI's config file, read the way the
 * docker CLI reads it: `$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`, its `auths` map keyed by registry host (Docker
 * Hub's key is `https://index.docker.io/v1/`). Credential helpers
 * (`credsStore`, `credHelpers`) are programs: the agent never runs one, so a
 * registry only they cover is asked without credentials, and the log says so.
 * Nothing here ever puts a credential in a message.
 */

/** Docker Hub's key in `auths`, as `docker login` writes it. */
export const DOCKER_HUB_KEY = "https://index.docker.io/v1/";
/** The hosts that all mean Docker Hub. */
const HUB_HOSTS = ["index.docker.io", "docker.io", "registry-1.docker.io"];

/** What the engine takes as `X-Registry-Auth` (base64url of this JSON; dockerode encodes it). */
export type RegistryAuth = {
  username?: string;
  password?: string;
  identitytoken?: string;
  serveraddress: string;
};

type AuthEntry = { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown };
export type DockerConfig = {
  auths?: Record<string, AuthEntry>;
  credsStore?: unknown;
  credHelpers?: Record<string, unknown>;
};

/** The credentials for an image, or none, and what the log should say about it (never a secret). */
export type Lookup = { auth: RegistryAuth | null; note: string | null };

/** The config file the docker CLI reads. */
export function defaultConfigPath(env: Record<string, string | undefined>, home: string = homedir()): string {
  return env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, "config.json") : join(home, ".docker", "config.json");
}

/**
 * The registry of an image reference: its first path component when that
 * looks like a host (has a `.` or `:`, or is `localhost`), else Docker Hub
 * (`docker.io`). Lower-cased, as hostnames compare.
 */
export function registryOf(image: string): string {
  const name = image.split("@")[0] ?? "";
  const slash = name.indexOf("/");
  if (slash < 0) return "docker.io";
  const first = name.slice(0, slash);
  const host = first.includes(".") || first.includes(":") || first === "localhost";
  if (!host) return "docker.io";
  const lower = first.toLowerCase();
  return HUB_HOSTS.includes(lower) ? "docker.io" : lower;
}

/**
 * The repository of an image reference, spelt one way whatever way it was written: its registry
 * (as `registryOf` says it), then its path, with Docker Hub's implied `library/` for official images;
 * no tag, no digest (`nginx:1.27` and `docker.io/library/nginx@sha256:...` are both `docker.io/library/nginx`).
 */
export function repositoryOf(image: string): string {
  const name = image.split("@")[0] ?? "";
  const registry = registryOf(name);
  const slash = name.indexOf("/");
  const first = slash < 0 ? "" : name.slice(0, slash);
  const hosted = first.includes(".") || first.includes(":") || first === "localhost";
  const path = hosted ? name.slice(slash + 1) : name;
  const colon = path.lastIndexOf(":");
  const bare = colon > path.lastIndexOf("/") ? path.slice(0, colon) : path;
  return `${registry}/${registry === "docker.io" && !bare.includes("/") ? `library/${bare}` : bare}`;
}

/**
 * A key of `auths` (or `credHelpers`) as a host: scheme and path dropped,
 * as the docker CLI's ConvertToHostname does (`https://r.example.com/v2/` → `r.example.com`).
 */
export function keyHost(key: string): string {
  const bare = key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const host = (bare.split("/")[0] ?? "").toLowerCase();
  return HUB_HOSTS.includes(host) ? "docker.io" : host;
}

/** The entry of a map whose key means `registry`: the exact key first (Docker Hub's own key for Hub), then any spelling of it. */
function entryFor<T>(map: Record<string, T> | undefined, registry: string): [string, T] | null {
  if (!map || typeof map !== "object") return null;
  const exact = registry === "docker.io" ? DOCKER_HUB_KEY : registry;
  if (Object.hasOwn(map, exact)) return [exact, map[exact] as T];
  const key = Object.keys(map).find((k) => keyHost(k) === registry);
  return key === undefined ? null : [key, map[key] as T];
}

const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);

/** An `auths` entry as credentials: `auth` (base64 of `user:password`) or `username`/`password`, and/or `identitytoken`. */
export function credentialsOf(entry: AuthEntry, serveraddress: string): RegistryAuth | null {
  if (!entry || typeof entry !== "object") return null;
  let username = text(entry.username);
  let password = text(entry.password);
  const encoded = text(entry.auth);
  if (encoded) {
    const decoded = Buffer.from(encoded, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) {
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1) || undefined;
    }
  }
  const identitytoken = text(entry.identitytoken);
  if (identitytoken) return { ...(username ? { username } : {}), identitytoken, serveraddress };
  if (username && password) return { username, password, serveraddress };
  return null;
}

/** The credentials `config` holds for `image`'s registry; `source` names the file in notes. */
export function lookup(config: DockerConfig, image: string, source: string): Lookup {
  const registry = registryOf(image);
  const found = entryFor(config.auths, registry);
  const auth = found ? credentialsOf(found[1], found[0]) : null;
  if (auth) return { auth, note: null };
  const helper = entryFor(config.credHelpers, registry)?.[1] ?? config.credsStore;
  if (typeof helper === "string" && helper !== "") {
    return {
      auth: null,
      note:
        `the credentials for ${registry} in ${source} are kept by the credential helper docker-credential-${helper}, ` +
        `which the agent does not run; asking ${registry} without credentials (to give them, put them in ` +
        `"auths" of a config file without helpers and point --registry-config at it)`,
    };
  }
  if (found) {
    return { auth: null, note: `the entry for ${found[0]} in ${source} holds no usable credentials; going without` };
  }
  return { auth: null, note: null };
}

/** The config file's content, or why there is none (never the file's text: a parse error would quote it). */
export function parseConfig(raw: string, source: string): DockerConfig | string {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return `${source} is not valid JSON; registries are asked without credentials`;
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    return `${source} is not a JSON object; registries are asked without credentials`;
  }
  return json as DockerConfig;
}

/**
 * Credentials for images, read from the config file at each use (so a new
 * `docker login` counts without a restart). Each note is logged once.
 */
export class RegistryCredentials {
  private readonly said = new Set<string>();
  readonly path: string;
  private readonly log: (line: string) => void;
  private readonly read: (path: string) => string;

  constructor(path: string, log: (line: string) => void, read = (p: string) => readFileSync(p, "utf8")) {
    this.path = path;
    this.log = log;
    this.read = read;
  }

  /** The credentials for `image`'s registry, or undefined (the engine is then asked without any). */
  for(image: string): RegistryAuth | undefined {
    const config = this.config();
    if (!config) return undefined;
    const found = lookup(config, image, this.path);
    if (found.note) this.once(found.note);
    return found.auth ?? undefined;
  }

  private config(): DockerConfig | null {
    let raw: string;
    try {
      raw = this.read(this.path);
    } catch (err) {
      const code = (err as { code?: string }).code;
      const why = code === "ENOENT" ? "there is none" : `it cannot be read: ${code ?? "error"}`;
      this.once(`no docker config file ${this.path} (${why}); registries are asked without credentials`);
      return null;
    }
    const parsed = parseConfig(raw, this.path);
    if (typeof parsed === "string") {
      this.once(parsed);
      return null;
    }
    return parsed;
  }

  private once(line: string) {
    if (this.said.has(line)) return;
    this.said.add(line);
    this.log(line);
  }
}
