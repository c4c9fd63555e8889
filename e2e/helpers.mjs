// Shared pieces of the end-to-end suites: free loopback ports, bounded polling,
// the local admin token, raw HTTP requests, a JSON API client, and `npm run dev`
// (wrangler dev on loopback, fresh persistence) as a killable process group.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const HOST = "127.0.0.1";
export const STARTUP_TIMEOUT_MS = 60_000;
export const DELIVERY_TIMEOUT_MS = 30_000;
export const REQUEST_TIMEOUT_MS = 10_000;
export const STOP_TIMEOUT_MS = 10_000;
export const UUID4 = /^[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$/i;

/** A free loopback port (the OS picks one; it is released before use). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Polls `probe` until it returns a truthy value; throws with `describe()` after `timeoutMs`.
 * An error carrying `fatal: true` stops the polling at once.
 */
export async function waitFor(what, probe, { timeoutMs, intervalMs = 250, describe = () => "" }) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      if (err.fatal) throw err;
      lastError = err;
    }
    await sleep(intervalMs);
  }
  const detail = [describe(), lastError ? `last error: ${lastError.message}` : ""].filter(Boolean).join("; ");
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? ` (${detail})` : ""}`);
}

/** An error that makes `waitFor` give up at once. */
export const fatal = (message) => Object.assign(new Error(message), { fatal: true });

/** ADMIN_TOKEN from .dev.vars (written by `npm run dev`), else from .dev.vars.example. */
export function adminToken() {
  for (const file of [".dev.vars", ".dev.vars.example"]) {
    const path = join(ROOT, file);
    if (!existsSync(path)) continue;
    const m = readFileSync(path, "utf8").match(/^\s*ADMIN_TOKEN\s*=\s*"?([^"\r\n]*?)"?\s*$/m);
    if (m?.[1]) return m[1];
  }
  throw new Error("ADMIN_TOKEN not found in .dev.vars or .dev.vars.example");
}

/** The Authorization header of a Docker Cloud user's API key. */
export const basicAuth = (username, apikey) => `Basic ${Buffer.from(`${username}:${apikey}`).toString("base64")}`;

/**
 * One request over a raw node:http connection, so the method, path (double
 * slashes kept), headers and body are exactly what a client sends, e.g. a GET
 * with a body, which fetch refuses.
 */
export function rawRequest(port, { method, path, headers = {}, body }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, method, path, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        // Go's transport asks for gzip and decompresses transparently; so does this.
        const raw = Buffer.concat(chunks);
        const encoding = res.headers["content-encoding"];
        let decoded;
        try {
          decoded =
            encoding === "gzip"
              ? zlib.gunzipSync(raw)
              : encoding === "br"
                ? zlib.brotliDecompressSync(raw)
                : encoding === "deflate"
                  ? zlib.inflateSync(raw)
                  : raw;
        } catch (err) {
          reject(new Error(`${method} ${path}: cannot decode a ${encoding} body: ${err.message}`));
          return;
        }
        const text = decoded.toString("utf8");
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** JSON over fetch to `base`, bounded; `authorization` is the header value, if any. */
export async function apiRequest(base, method, path, { body, authorization } = {}) {
  const headers = { accept: "application/json" };
  if (authorization !== undefined) headers.authorization = authorization;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * An action's log, read where the clients read it (GET <action resource_uri>logs/; the action
 * object has no `logs`): its lines, joined with "\n" as they are stored.
 */
export async function actionLogs(base, authorization, actionUri) {
  const res = await apiRequest(base, "GET", `${actionUri}logs/?tail=10000`, { authorization });
  assert.equal(res.status, 200, `GET ${actionUri}logs/: ${res.text}`);
  return res.json.objects.map((o) => o.log).join("\n");
}

/**
 * A user and an API key, made through the admin API of the Worker at `base`; `prefix` starts the
 * username. Returns the Basic credentials the user's requests carry.
 */
export async function createUserWithKey(base, { prefix = "e2e", label = "e2e" } = {}) {
  const admin = `Bearer ${adminToken()}`;
  const username = `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  const user = await apiRequest(base, "POST", "/api/admin/v1/user/", { authorization: admin, body: { username } });
  assert.equal(user.status, 201, user.text);
  const key = await apiRequest(base, "POST", `/api/admin/v1/user/${username}/apikey/`, {
    authorization: admin,
    body: { label },
  });
  assert.equal(key.status, 201, key.text);
  return { username, key: key.json.key, basic: basicAuth(username, key.json.key) };
}

/** True while any process of the process group `pid` leads is alive. */
function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
}

/**
 * `npm run dev` on a free loopback port with a fresh --persist-to directory,
 * in its own process group (npm -> node -> wrangler -> workerd go together).
 * `inspectorPort: true` also gives it a free loopback devtools port, so that
 * several instances may run at once. `vars` ({ NAME: value }) are passed as
 * `--var NAME:value`, overriding wrangler.jsonc's. The last `outputLimit` lines
 * of its output are kept in `output`.
 *
 * Restarting on the same state: `stop({ keepState: true, signal: "SIGKILL" })`
 * ends the process group but keeps the --persist-to directory, and the next
 * `start()` reuses it (on a new free port); a plain `stop()` removes it.
 */
export function createWorker({
  inspectorPort = false,
  persistPrefix = "dockercloud-e2e-state-",
  vars = {},
  outputLimit = 300,
} = {}) {
  const worker = {
    /** @type {import("node:child_process").ChildProcess | undefined} */
    child: undefined,
    port: 0,
    inspectorPort: 0,
    base: "",
    persistDir: "",
    output: [],
    exited: null,
    outputTail,
    start,
    stop,
  };

  function keepOutput(chunk) {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line.trim()) worker.output.push(line);
    }
    if (worker.output.length > outputLimit) worker.output.splice(0, worker.output.length - outputLimit);
  }

  function outputTail(n = 60) {
    return worker.output.slice(-n).join("\n");
  }

  function killGroup(signal) {
    const pid = worker.child?.pid;
    if (!pid) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }

  async function start() {
    worker.port = await freePort();
    worker.base = `http://${HOST}:${worker.port}`;
    worker.persistDir ||= mkdtempSync(join(tmpdir(), persistPrefix));
    worker.exited = null;
    const args = ["run", "dev", "--", "--port", String(worker.port), "--ip", HOST, "--persist-to", worker.persistDir];
    for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
    if (inspectorPort) {
      worker.inspectorPort = await freePort();
      args.push("--inspector-port", String(worker.inspectorPort), "--inspector-ip", HOST);
    }
    const child = spawn("npm", args, {
      cwd: ROOT,
      detached: true, // its own process group: npm -> node -> wrangler -> workerd all go together
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    });
    worker.child = child;
    // Last resort if the runner dies between `before` and `after`.
    process.on("exit", () => {
      if (worker.child === child) killGroup("SIGKILL");
    });
    child.stdout.on("data", keepOutput);
    child.stderr.on("data", keepOutput);
    child.on("exit", (code, signal) => {
      // A process group stopped before a restart must not mark the new one as exited.
      if (worker.child === child) worker.exited = { code, signal };
    });

    await waitFor(
      `the Worker to answer GET ${worker.base}/api/openapi.json`,
      async () => {
        if (worker.exited) throw fatal(`npm run dev exited early (${JSON.stringify(worker.exited)})`);
        const res = await fetch(`${worker.base}/api/openapi.json`, { signal: AbortSignal.timeout(2_000) });
        if (res.status !== 200) return false;
        const doc = await res.json();
        return typeof doc.openapi === "string";
      },
      { timeoutMs: STARTUP_TIMEOUT_MS, intervalMs: 500, describe: () => `wrangler output:\n${outputTail()}` },
    ).catch((err) => {
      err.message += worker.exited ? `\nwrangler output:\n${outputTail()}` : "";
      throw err;
    });
  }

  async function stop({ keepState = false, signal = "SIGTERM" } = {}) {
    const pid = worker.child?.pid;
    if (pid) {
      killGroup(signal);
      const deadline = Date.now() + STOP_TIMEOUT_MS;
      while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
      if (groupAlive(pid)) {
        killGroup("SIGKILL");
        const hard = Date.now() + 2_000;
        while (groupAlive(pid) && Date.now() < hard) await sleep(50);
      }
    }
    worker.child = undefined;
    if (worker.persistDir && !keepState) {
      rmSync(worker.persistDir, { recursive: true, force: true });
      worker.persistDir = "";
    }
  }

  return worker;
}

/**
 * Test steps that remember whether one failed, so an `after` hook can print
 * the tail of the servers' output only when it helps.
 */
export function failureTracker() {
  const tracker = {
    failed: false,
    step(name, fn, timeout) {
      test(name, { timeout }, async (t) => {
        try {
          await fn(t);
        } catch (err) {
          tracker.failed = true;
          throw err;
        }
      });
    },
  };
  return tracker;
}

/**
 * The agent program (agent/src/main.ts) in its own process, as a user runs it, dialling `base`
 * with `token`, a 1 s heartbeat and `--allow-all`; `env` adds to (or, with undefined, removes
 * from) its environment. Its output lines and, once it ended, its exit are kept.
 */
export function startAgentProcess(base, token, { env = {} } = {}) {
  const childEnv = { ...process.env, DOCKERCLOUD_AGENT_URL: base, DOCKERCLOUD_AGENT_TOKEN: token };
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[name];
    else childEnv[name] = value;
  }
  const child = spawn(process.execPath, [join(ROOT, "agent/src/main.ts"), "--heartbeat-seconds", "1", "--allow-all"], {
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const agent = { child, output: [], exit: null };
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk) => agent.output.push(...chunk.toString("utf8").split("\n").filter(Boolean)));
  }
  child.on("exit", (code, signal) => {
    agent.exit = { code, signal };
  });
  return agent;
}

/**
 * A Docker Engine API on a loopback port that answers only what the agent's hello reads
 * (GET /version, GET /info) for a swarm node `nodeId`: with DOCKER_HOST set to its `dockerHost`,
 * an agent process reports that node without a Docker daemon.
 */
export async function fakeDockerEngine(nodeId) {
  const server = http.createServer((req, res) => {
    req.resume();
    const path = new URL(req.url ?? "/", "http://engine").pathname;
    const body = path.endsWith("/version")
      ? { Version: "27.3.1", ApiVersion: "1.47" }
      : path.endsWith("/info")
        ? { Swarm: { NodeID: nodeId, LocalNodeState: "active", ControlAvailable: true } }
        : null;
    res.writeHead(body ? 200 : 404, { "content-type": "application/json" });
    res.end(JSON.stringify(body ?? { message: `${path}: not served by this stand-in engine` }));
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, HOST, resolve);
  });
  const { port } = server.address();
  return {
    dockerHost: `tcp://${HOST}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
