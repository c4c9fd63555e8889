// The real pieces of the swarm end-to-end suite: the Docker Swarm and registry that
// scripts/swarm/up.sh starts (driven with the docker CLI against its DOCKER_HOST), the plain
// engine it starts beside it for Compose (PLAIN_DOCKER_HOST, driven with the docker CLI and
// docker-compose 1.29), and the agent program (`node agent/src/main.ts`) as a process of its
// own that a test may SIGKILL and start again. Nothing here is mocked.

import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ROOT, waitFor } from "../e2e/helpers.mjs";

export const DOCKER_TIMEOUT_MS = 30_000;
/** How long one docker-compose command may take here (`up -d` of two services: about 2 s). */
export const COMPOSE_TIMEOUT_MS = 60_000;
/** How long a swarm service may take to reach its replicas here (measured: 1–3 s). */
export const CONVERGE_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------- the swarm's environment

/** KEY=value lines, as up.sh writes $SWARM_DIR/env. */
export function parseEnvFile(text) {
  const env = {};
  for (const line of text.split("\n")) {
    const m = line.match(/^([A-Z_][A-Z0-9_]*)=(.*)$/);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

const envFile = () => join(process.env.SWARM_DIR || "/tmp/dockercloud-swarm", "env");

/**
 * The swarm's settings: from the environment when `npm run test:swarm` loaded them, else from
 * $SWARM_DIR/env (after a manual scripts/swarm/up.sh).
 */
function loadSwarmEnv() {
  const names = ["DOCKER_HOST", "DOCKER_CONFIG", "IMAGE", "IMAGE_DIGEST", "REGISTRY", "SWARM_DIR", "PLAIN_DOCKER_HOST"];
  const optional = ["DOCKER_BIN", "PLAIN_ADDRESS_POOL", "COMPOSE_BIN"];
  if (names.every((n) => process.env[n])) {
    return Object.fromEntries([...names, ...optional].filter((n) => process.env[n]).map((n) => [n, process.env[n]]));
  }
  const file = envFile();
  if (!existsSync(file)) {
    throw new Error(`no swarm: ${file} is missing (run npm run test:swarm, or scripts/swarm/up.sh first)`);
  }
  return parseEnvFile(readFileSync(file, "utf8"));
}

export const SWARM = loadSwarmEnv();
const DOCKER_BIN = process.env.DOCKER_BIN || SWARM.DOCKER_BIN || "docker";
const COMPOSE_BIN = process.env.COMPOSE_BIN || SWARM.COMPOSE_BIN || "/usr/bin/docker-compose";
const dockerEnv = () => ({ ...process.env, DOCKER_HOST: SWARM.DOCKER_HOST, DOCKER_CONFIG: SWARM.DOCKER_CONFIG });
const plainEnv = () => {
  if (!SWARM.PLAIN_DOCKER_HOST) {
    throw new Error("no plain engine: PLAIN_DOCKER_HOST is unset (run scripts/swarm/up.sh)");
  }
  return { ...process.env, DOCKER_HOST: SWARM.PLAIN_DOCKER_HOST, DOCKER_CONFIG: SWARM.DOCKER_CONFIG };
};

// ---------------------------------------------------------------- the docker CLI

/**
 * Runs `file ...args` (named `label` in errors), bounded (SIGKILL after `timeoutMs`); resolves with
 * its trimmed stdout, rejects with an error carrying `stderr`.
 */
function runBounded(label, file, args, { env, cwd, timeoutMs }) {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { env, cwd, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const why = err.killed ? `killed after ${timeoutMs} ms` : `exit ${err.code}`;
          reject(Object.assign(new Error(`${label} ${args.join(" ")}: ${why}: ${stderr.trim()}`), { stderr }));
        } else resolve(stdout.trim());
      },
    );
  });
}

/** Runs `docker ...args` against the swarm, bounded; resolves with its trimmed stdout. */
export const docker = (args, { timeoutMs = DOCKER_TIMEOUT_MS } = {}) =>
  runBounded("docker", DOCKER_BIN, args, { env: dockerEnv(), timeoutMs });

/** Runs `docker ...args` against the plain engine (no swarm), bounded; resolves with its trimmed stdout. */
export const plainDocker = (args, { timeoutMs = DOCKER_TIMEOUT_MS } = {}) =>
  runBounded("docker (plain)", DOCKER_BIN, args, { env: plainEnv(), timeoutMs });

/**
 * Runs `docker-compose -p <project> ...args` in `projectDir` (its docker-compose.yml) against the
 * plain engine, bounded; resolves with its trimmed stdout, rejects with its stderr. `project`
 * defaults to the folder's name; `env` adds to the environment (the compose file's ${VARS}).
 */
export const compose = (
  projectDir,
  args,
  { project = basename(projectDir), env = {}, timeoutMs = COMPOSE_TIMEOUT_MS } = {},
) =>
  runBounded("docker-compose", COMPOSE_BIN, ["-p", project, ...args], {
    env: { ...plainEnv(), ...env },
    cwd: projectDir,
    timeoutMs,
  });

/** A name for a swarm service (and the API's service of the same name): letters, digits, '-'. */
export const uniqueName = (prefix) => `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;

/**
 * A swarm service of the busybox image with fast settings (stops at once, start-first updates
 * watched for 200 ms, a failed update rolled back): `script` is what `sh -c` runs before
 * `exec sleep 3600`. `extra` adds `docker service create` flags (they come after the defaults,
 * so `--update-monitor 4s` there wins). Resolves once `replicas` tasks run.
 */
export async function createSwarmService(
  name,
  { script = "true", replicas = 1, image = SWARM.IMAGE, extra = [] } = {},
) {
  await docker([
    "service",
    "create",
    "--detach",
    "--name",
    name,
    "--init",
    "--stop-grace-period",
    "1s",
    "--update-order",
    "start-first",
    "--update-monitor",
    "200ms",
    "--update-failure-action",
    "rollback",
    "--rollback-monitor",
    "1s",
    "--replicas",
    String(replicas),
    ...extra,
    image,
    "sh",
    "-c",
    `${script}; exec sleep 3600`,
  ]);
  await waitRunning(name, replicas);
  return inspectService(name);
}

/** `docker service inspect` of one service, or null when the swarm has none of that name. */
export async function inspectService(name) {
  try {
    return JSON.parse(await docker(["service", "inspect", name]))[0] ?? null;
  } catch (err) {
    if (/no such service/i.test(err.stderr ?? "")) return null;
    throw err;
  }
}

/** Fields of a `docker service inspect` object. */
export const forceUpdateOf = (svc) => svc.Spec.TaskTemplate.ForceUpdate ?? 0;
export const versionOf = (svc) => svc.Version.Index;
export const specEnvOf = (svc) => svc.Spec.TaskTemplate.ContainerSpec.Env ?? [];
export const specImageOf = (svc) => svc.Spec.TaskTemplate.ContainerSpec.Image;
export const labelsOf = (svc) => svc.Spec.Labels ?? {};

/** Every task of the service, history included (`docker inspect` of each: Status, DesiredState, Spec). */
export async function serviceTasks(name) {
  const ids = (await docker(["service", "ps", "--quiet", "--no-trunc", name])).split("\n").filter(Boolean);
  if (ids.length === 0) return [];
  return JSON.parse(await docker(["inspect", "--type", "task", ...ids]));
}

/** Tasks that should run and do. */
export const runningTasks = async (name) =>
  (await serviceTasks(name)).filter((t) => t.DesiredState === "running" && t.Status.State === "running");

/** Resolves with the running tasks once there are exactly `n` and no other task is meant to run. */
export async function waitRunning(name, n, { timeoutMs = CONVERGE_TIMEOUT_MS } = {}) {
  let last = [];
  return waitFor(
    `swarm service ${name} to run ${n} task(s)`,
    async () => {
      last = await serviceTasks(name);
      const running = last.filter((t) => t.DesiredState === "running" && t.Status.State === "running");
      const meant = last.filter((t) => t.DesiredState === "running");
      return running.length === n && meant.length === n ? running : null;
    },
    { timeoutMs, intervalMs: 200, describe: () => `tasks: ${describeTasks(last)}` },
  );
}

/** One line per task: id, desired and actual state, error, image digest. */
export const describeTasks = (tasks) =>
  tasks
    .map(
      (t) =>
        `${t.ID.slice(0, 12)} desired=${t.DesiredState} state=${t.Status.State}` +
        `${t.Status.Err ? ` err=${JSON.stringify(t.Status.Err)}` : ""} image=${t.Spec.ContainerSpec.Image.split("@")[1] ?? "?"}`,
    )
    .join("; ") || "none";

/** The container's environment (`docker inspect` `.Config.Env`). */
export const containerEnv = async (containerId) =>
  JSON.parse(await docker(["inspect", "--type", "container", "--format", "{{json .Config.Env}}", containerId]));

/** Removes swarm services, ignoring those already gone. */
export async function removeSwarmServices(names) {
  if (names.length === 0) return;
  await docker(["service", "rm", ...names]).catch(() => {});
}

/**
 * Builds and pushes a new image under the same tag (`SWARM_REPUSH=1 scripts/swarm/up.sh`), and
 * resolves with its digest (also kept in SWARM.IMAGE_DIGEST).
 */
export async function repushImage({ timeoutMs = 60_000 } = {}) {
  const before = SWARM.IMAGE_DIGEST;
  await new Promise((resolve, reject) => {
    execFile(
      "bash",
      [join(ROOT, "scripts/swarm/up.sh")],
      { env: { ...process.env, SWARM_DIR: SWARM.SWARM_DIR, SWARM_REPUSH: "1" }, timeout: timeoutMs },
      (err, _stdout, stderr) =>
        err ? reject(new Error(`SWARM_REPUSH=1 up.sh failed: ${err.message}\n${stderr}`)) : resolve(),
    );
  });
  const env = parseEnvFile(readFileSync(join(SWARM.SWARM_DIR, "env"), "utf8"));
  if (!env.IMAGE_DIGEST || env.IMAGE_DIGEST === before) {
    throw new Error(`the push gave no new digest (${before} -> ${env.IMAGE_DIGEST})`);
  }
  SWARM.IMAGE_DIGEST = env.IMAGE_DIGEST;
  return env.IMAGE_DIGEST;
}

// ---------------------------------------------------------------- the agent program

/**
 * The agent program in its own process, pointed at the Worker `base` with `token`, acting on the
 * swarm (DOCKER_HOST). `allow` are its rule flags; `bundle` runs the one file users copy to a
 * server (`npm run agent:build`) instead of the sources. Its output is kept; `kill()` sends SIGKILL.
 */
export function startAgent({
  base,
  token,
  allow = ["--allow-all"],
  args = [],
  bundle = false,
  plain = false,
  env = {},
}) {
  const entry = bundle ? "agent/dist/agent.mjs" : "agent/src/main.ts";
  const child = spawn(process.execPath, [join(ROOT, entry), "--heartbeat-seconds", "2", ...allow, ...args], {
    cwd: ROOT,
    env: { ...(plain ? plainEnv() : dockerEnv()), ...env, DOCKERCLOUD_AGENT_URL: base, DOCKERCLOUD_AGENT_TOKEN: token },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const agent = {
    child,
    output: [],
    exit: null,
    outputTail: (n = 40) => agent.output.slice(-n).join("\n"),
    /** SIGKILL (or `signal`), and resolves once it exited. */
    async kill(signal = "SIGKILL") {
      if (agent.exit === null) child.kill(signal);
      return agent.waitExit();
    },
    /** Resolves with { code, signal } once the process exited, within `timeoutMs`. */
    waitExit: (timeoutMs = 10_000) =>
      waitFor("the agent program to exit", async () => agent.exit, {
        timeoutMs,
        intervalMs: 50,
        describe: () => `agent output:\n${agent.outputTail()}`,
      }),
  };
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk) => agent.output.push(...chunk.toString("utf8").split("\n").filter(Boolean)));
  }
  child.on("exit", (code, signal) => {
    agent.exit = { code, signal };
  });
  process.on("exit", () => {
    if (agent.exit === null) child.kill("SIGKILL");
  });
  return agent;
}

/** Waits for a line of the agent's output that `match` (a string or RegExp) matches. */
export const waitAgentOutput = (agent, match, timeoutMs = 10_000) =>
  waitFor(
    `agent output matching ${match}`,
    async () => agent.output.find((l) => (typeof match === "string" ? l.includes(match) : match.test(l))),
    { timeoutMs, intervalMs: 50, describe: () => `agent output:\n${agent.outputTail()}` },
  );

export { sleep };
