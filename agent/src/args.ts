import { type AllowRules, addRule, hasRules, NO_RULES } from "./allow.ts";

/** The agent's command line. */
export type Options = {
  /** The services it may act on. */
  allow: AllowRules;
  /** The API's base URL (https://..., or http://localhost for local development). */
  url: string;
  token: string;
  heartbeatMs: number;
  /** Check each job and say what would be done, but change nothing. */
  dryRun: boolean;
  /** The docker CLI config file with registry credentials; null: the docker CLI's own (registry-auth.ts). */
  registryConfig: string | null;
  /** Keep dialling when the service refuses the token, instead of exiting (link.ts). */
  retryForever: boolean;
  /** swarm or docker; null: the engine's answer decides (choose.ts). */
  orchestrator: "swarm" | "docker" | null;
  /** On a docker host, how long a new container without a healthcheck must keep running. */
  settleMs: number;
};

/** Flags that take no value. */
const SWITCHES = ["allow-all", "dry-run", "retry-forever"];
/** Flags that take one, as `--name value` or `--name=value`. */
const VALUED = [
  "url",
  "token",
  "allow-label",
  "allow-service",
  "heartbeat-seconds",
  "registry-config",
  "orchestrator",
  "settle-seconds",
];
/** Every flag the parser takes (besides --help, which the program answers before parsing): USAGE must tell each. */
export const FLAGS: readonly string[] = [...SWITCHES, ...VALUED];

const SYNOPSIS =
  "usage: dockercloud-agent --url https://<api host> --token <agent token> " +
  "(--allow-label KEY=VALUE | --allow-service NAME)... | --allow-all [--dry-run] [--registry-config PATH] " +
  "[--orchestrator swarm|docker] [--settle-seconds N] [--heartbeat-seconds N] [--retry-forever]";

/** Why the command line is refused, with the way to the whole help. */
const refused = (why: string) => `${why}\n${SYNOPSIS}\n(--help tells every flag, environment variable and exit code)`;

export const USAGE = `${SYNOPSIS}

Runs next to a Docker Swarm manager or a plain Docker host running Compose, dials out to the Docker
Cloud triggers API and performs the redeploys and scales it is sent, on the services its rules allow
and no other.

flags:
  --url URL                  the API's base URL: https://, or http:// for localhost only (the token travels in it)
  --token TOKEN              the agent's token, dca_<namespace>_<40 hex digits>, shown once when the agent was created
  --allow-label KEY=VALUE    may act on services with this label; repeatable
  --allow-service NAME       may act on the service of this name (on a docker host: PROJECT/SERVICE); repeatable
  --allow-all                may act on every service; a rule (this or one of the two above) is required
  --dry-run                  check each job and say what would be done, changing nothing
  --heartbeat-seconds N      seconds between heartbeats, 1 to 60 (default 15; an agent silent for 90 s is dropped)
  --registry-config PATH     docker config file whose "auths" give registry credentials (no credential helper is run)
  --orchestrator KIND        swarm (Swarm services) or docker (Compose services and containers labelled
                             io.dockercloud.service); default: swarm on an active swarm manager, else docker
  --settle-seconds N         docker: how long a new container without a healthcheck must keep running to
                             count as started, 1 to 600 (default 10)
  --retry-forever            keep dialling when the service refuses the token, instead of exiting 3
  --help, -h                 print this and exit

environment:
  DOCKERCLOUD_AGENT_URL              the API's base URL, when --url is not given
  DOCKERCLOUD_AGENT_TOKEN            the agent's token, when --token is not given (keeps it out of ps)
  DOCKERCLOUD_AGENT_DRY_RUN=1        as --dry-run
  DOCKERCLOUD_AGENT_RETRY_FOREVER=1  as --retry-forever
  DOCKER_HOST                        the Docker engine, as for the docker CLI (default unix:///var/run/docker.sock)
  DOCKER_TLS_VERIFY=1                TLS to a tcp:// DOCKER_HOST, as for the docker CLI
  DOCKER_CERT_PATH                   the folder of ca.pem, cert.pem and key.pem for that TLS
  DOCKER_CONFIG                      --registry-config defaults to $DOCKER_CONFIG/config.json, else ~/.docker/config.json
  NODE_EXTRA_CA_CERTS                a PEM file of extra CAs to trust, for an API behind a private CA
  DOCKERCLOUD_AGENT_FAULT=POINT      tests of crash recovery only: the agent kills itself (SIGKILL) on reaching
                                     that point (fault.ts names them); never set it otherwise

exit codes:
  0  stopped by SIGINT or SIGTERM
  1  the service ended the agent: deleted, its token rotated, another process took its place, or its hello refused
  2  the command line was refused
  3  the service refused the token 3 times in a row (not with --retry-forever)`;

const yes = (value: string | undefined) => value === "1" || value === "true";

/** Parses `--name value` pairs; the token may come from the environment, so it stays out of `ps`. */
export function parseArgs(argv: readonly string[], env: Record<string, string | undefined>): Options | string {
  const given = new Map<string, string>();
  const switches = new Set<string>();
  let allow = NO_RULES;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const [name, inline] = arg.startsWith("--") ? arg.slice(2).split(/=(.*)/s) : [undefined, undefined];
    if (!name) return refused(`unexpected argument '${arg}'`);
    if (!FLAGS.includes(name)) return refused(`unknown option --${name}`);
    const isSwitch = SWITCHES.includes(name);
    const value = isSwitch ? inline : (inline ?? argv[++i]);
    if (isSwitch && value !== undefined && value !== "true") return `--${name} takes no value`;
    if (!isSwitch && value === undefined) return refused(`--${name} needs a value`);
    if (name.startsWith("allow-")) {
      const next = addRule(allow, name, value);
      if (typeof next === "string") return next;
      allow = next;
    } else if (isSwitch) switches.add(name);
    else given.set(name, value ?? "");
  }
  if (!hasRules(allow)) {
    return refused(
      "say which services the agent may act on: --allow-label KEY=VALUE, --allow-service NAME, or --allow-all",
    );
  }
  const url = given.get("url") ?? env.DOCKERCLOUD_AGENT_URL;
  const token = given.get("token") ?? env.DOCKERCLOUD_AGENT_TOKEN;
  if (!url || !token) {
    return refused(
      "say where the API is and the agent's token: --url and --token, or DOCKERCLOUD_AGENT_URL and DOCKERCLOUD_AGENT_TOKEN",
    );
  }
  const parsed = apiUrl(url);
  if (typeof parsed === "string") return parsed;
  if (!/^dca_[a-z0-9]{4,30}_[0-9a-f]{40}$/.test(token)) {
    return "the token is not an agent token (dca_<namespace>_<40 hex digits>, shown once when the agent was created)";
  }
  const heartbeat = Number(given.get("heartbeat-seconds") ?? 15);
  // The service presumes an agent silent for 90 s gone: a heartbeat must come well within that.
  if (!Number.isFinite(heartbeat) || heartbeat < 1 || heartbeat > 60) {
    return "--heartbeat-seconds must be from 1 to 60";
  }
  const docker = orchestratorOptions(given);
  if (typeof docker === "string") return docker;
  const registryConfig = given.get("registry-config") ?? null;
  if (registryConfig === "") return "--registry-config needs a file's path";
  return {
    url: parsed.toString(),
    token,
    heartbeatMs: heartbeat * 1000,
    allow,
    dryRun: switches.has("dry-run") || yes(env.DOCKERCLOUD_AGENT_DRY_RUN),
    registryConfig,
    retryForever: switches.has("retry-forever") || yes(env.DOCKERCLOUD_AGENT_RETRY_FOREVER),
    ...docker,
  };
}

/** --orchestrator and --settle-seconds, or why not. */
function orchestratorOptions(given: Map<string, string>): Pick<Options, "orchestrator" | "settleMs"> | string {
  const orchestrator = given.get("orchestrator") ?? null;
  if (orchestrator !== null && orchestrator !== "swarm" && orchestrator !== "docker") {
    return "--orchestrator must be swarm or docker";
  }
  const settle = Number(given.get("settle-seconds") ?? 10);
  if (!Number.isFinite(settle) || settle < 1 || settle > 600) return "--settle-seconds must be from 1 to 600";
  return { orchestrator, settleMs: settle * 1000 };
}

/** The API's base URL, or why not: https://, or http:// for localhost only (the token travels in it). */
function apiUrl(url: string): URL | string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return refused(`--url '${url}' is not a URL`);
  }
  const local = parsed.hostname === "localhost" || parsed.hostname === "127.0.0.1";
  if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && local)) {
    return "--url must be https:// (http:// only for localhost): the token travels in it";
  }
  return parsed;
}

/** The WebSocket URL of the connection endpoint under the API's base URL. */
export function connectUrl(base: string): string {
  const url = new URL(base);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/api/agent/v1/connect/`;
  url.search = "";
  return url.toString();
}
