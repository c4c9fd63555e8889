#!/usr/bin/env node
// `npm run test:swarm [-- test files]`: starts a throwaway Docker Swarm, a plain engine for
// Compose beside it and a local registry (scripts/swarm/up.sh, as root), runs the suites against
// them one file at a time (e2e-swarm/*.test.mjs and agent/test-swarm/*.test.ts when that folder
// has tests, then e2e-docker/*.test.mjs when that one has), then ALWAYS stops it all
// (scripts/swarm/down.sh), and exits with the suites' code (or up's or down's when they
// failed). SWARM_DIR (default /tmp/dockercloud-swarm) is where it all lives;
// SWARM_TEST_TIMEOUT_SECONDS (default 900) bounds the suites, SWARM_FILE_TIMEOUT_SECONDS
// (default 300) each file.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const swarmDir = process.env.SWARM_DIR || "/tmp/dockercloud-swarm";
const timeoutMs = Number(process.env.SWARM_TEST_TIMEOUT_SECONDS || 900) * 1000;
const fileTimeoutMs = Number(process.env.SWARM_FILE_TIMEOUT_SECONDS || 300) * 1000;
const log = (line) => console.error(`[test:swarm ${new Date().toISOString().slice(11, 19)}] ${line}`);

/** KEY=value lines, as up.sh writes $SWARM_DIR/env. */
function parseEnvFile(text) {
  const env = {};
  for (const line of text.split("\n")) {
    const m = line.match(/^([A-Z_][A-Z0-9_]*)=(.*)$/);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

let current = null;
let interrupted = null;

/** Runs a command in its own process group, output passed through; resolves with its exit code. */
function run(cmd, args, { env = process.env, timeout = 0, shielded = false } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: "inherit", detached: true });
    // A shielded command (down.sh) is not passed a ^C: the swarm must come down whatever happens.
    current = shielded ? null : child;
    let timer;
    if (timeout) {
      timer = setTimeout(() => {
        log(`${cmd} ${args.join(" ")}: still running after ${timeout / 1000} s; stopping it`);
        killGroup(child, "SIGTERM");
        setTimeout(() => killGroup(child, "SIGKILL"), 10_000).unref();
      }, timeout);
    }
    child.on("error", (err) => {
      log(`${cmd}: ${err.message}`);
      resolve(127);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      current = null;
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

// ^C or a CI cancel: stop the suites, then still take the swarm down.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    interrupted ??= signal;
    log(`${signal}: stopping, then taking the swarm down`);
    if (current) killGroup(current, signal);
  });
}

/**
 * The suites' files, in runs of `node --test`: those named on the command line (one run), else
 * every suite there is. node --test orders the files of one run by path, so the Compose suites
 * (e2e-docker) get a run of their own, after the swarm ones.
 */
function suiteRuns() {
  const named = process.argv.slice(2);
  if (named.length) return [named];
  const hasTests = (dir, ext) => {
    const abs = join(root, dir);
    return existsSync(abs) && readdirSync(abs).some((f) => f.endsWith(ext));
  };
  const swarm = ["e2e-swarm/*.test.mjs"];
  if (hasTests("agent/test-swarm", ".test.ts")) swarm.push("agent/test-swarm/*.test.ts");
  return hasTests("e2e-docker", ".test.mjs") ? [swarm, ["e2e-docker/*.test.mjs"]] : [swarm];
}

async function main() {
  const env = { ...process.env, SWARM_DIR: swarmDir };
  const t0 = Date.now();
  // The suites run the one-file bundle too, as users do: built from the sources first.
  const built = await run("npm", ["run", "--silent", "agent:build"]);
  let code = built === 0 ? await run("bash", [join(root, "scripts/swarm/up.sh")], { env }) : built;
  if (code !== 0) log(`${built === 0 ? "up.sh" : "npm run agent:build"} failed (exit ${code})`);
  else if (!interrupted) {
    const swarmEnv = parseEnvFile(readFileSync(join(swarmDir, "env"), "utf8"));
    const runs = suiteRuns();
    log(`swarm up in ${((Date.now() - t0) / 1000).toFixed(1)} s; running ${runs.flat().join(" ")}`);
    const t1 = Date.now();
    for (const files of runs) {
      // SWARM_TEST_TIMEOUT_SECONDS bounds all the runs together.
      const left = t1 + timeoutMs - Date.now();
      if (interrupted || left <= 0) {
        if (!interrupted) log(`no time left for ${files.join(" ")}`);
        code ||= 1;
        break;
      }
      // --test-timeout bounds each file (and every test that sets no timeout of its own).
      const args = ["--test", "--test-concurrency=1", `--test-timeout=${fileTimeoutMs}`, ...files];
      const exit = await run(process.execPath, args, { env: { ...env, ...swarmEnv }, timeout: left });
      code ||= exit;
    }
    log(`suites ${code === 0 ? "passed" : `failed (exit ${code})`} in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  }
  const down = await run("bash", [join(root, "scripts/swarm/down.sh")], { env, shielded: true });
  if (down !== 0) log(`down.sh failed (exit ${down})`);
  log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (interrupted) return 130;
  return code !== 0 ? code : down;
}

process.exitCode = await main();
