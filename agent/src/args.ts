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
};

export const USAGE =
  "usage: dockercloud-agent --url https://<api host> --token <agent token> " +
  "(--allow-label KEY=VALUE | --allow-service NAME)... | --allow-all [--dry-run] [--registry-config PATH] " +
  "(URL and token may come from DOCKERCLOUD_AGENT_URL and DOCKERCLOUD_AGENT_TOKEN, " +
  '--dry-run from DOCKERCLOUD_AGENT_DRY_RUN=1; registry credentials are read from the "auths" of ' +
  "--registry-config, default $DOCKER_CONFIG/config.json or ~/.docker/config.json; credential helpers are not run)";

/** Parses `--name value` pairs; the token may come from the environment, so it stays out of `ps`. */
export function parseArgs(argv: readonly string[], env: Record<string, string | undefined>): Options | string {
  const given = new Map<string, string>();
  let allow = NO_RULES;
  let dryRun = env.DOCKERCLOUD_AGENT_DRY_RUN === "1" || env.DOCKERCLOUD_AGENT_DRY_RUN === "true";
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const [name, inline] = arg.startsWith("--") ? arg.slice(2).split(/=(.*)/s) : [undefined, undefined];
    if (!name) return `unexpected argument '${arg}'; ${USAGE}`;
    if (name === "dry-run") {
      if (inline !== undefined && inline !== "true") return "--dry-run takes no value";
      dryRun = true;
      continue;
    }
    if (name === "allow-all") {
      const next = addRule(allow, name, inline);
      if (typeof next === "string") return next;
      allow = next;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) return `--${name} needs a value; ${USAGE}`;
    if (name.startsWith("allow-")) {
      const next = addRule(allow, name, value);
      if (typeof next === "string") return next;
      allow = next;
      continue;
    }
    given.set(name, value);
  }
  for (const name of given.keys()) {
    if (!["url", "token", "heartbeat-seconds", "registry-config"].includes(name))
      return `unknown option --${name}; ${USAGE}`;
  }
  if (!hasRules(allow)) {
    return `say which services the agent may act on: --allow-label KEY=VALUE, --allow-service NAME, or --allow-all; ${USAGE}`;
  }
  const url = given.get("url") ?? env.DOCKERCLOUD_AGENT_URL;
  const token = given.get("token") ?? env.DOCKERCLOUD_AGENT_TOKEN;
  if (!url || !token) return USAGE;
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
  const registryConfig = given.get("registry-config") ?? null;
  if (registryConfig === "") return "--registry-config needs a file's path";
  return { url: parsed.toString(), token, heartbeatMs: heartbeat * 1000, allow, dryRun, registryConfig };
}

/** The API's base URL, or why not: https://, or http:// for localhost only (the token travels in it). */
function apiUrl(url: string): URL | string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `--url '${url}' is not a URL; ${USAGE}`;
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
