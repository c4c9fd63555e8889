// `npm run bench:profile`: where the trigger call path spends its time. Runs
// the built Worker as bench/run.mjs does, with the V8 inspector open, puts
// trigger-call load on it from a separate process, records a CPU profile of
// the Worker's isolate (the Durable Objects run in it too) and prints the
// functions with the most self time, grouped by source file.
//
// With BENCH_PROFILE=deliveries it profiles the delivery side instead: it
// builds a backlog of calls on services with a webhook target, then records
// while the queue consumer drains it (no call load during the recording).
//
// Settings (environment): BENCH_DURATION seconds (default 5), BENCH_CONNECTIONS (64),
// BENCH_PROFILE (calls | deliveries).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startWorker } from "./runtime.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const run = promisify(execFile);
const MODE = process.env.BENCH_PROFILE === "deliveries" ? "deliveries" : "calls";

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function api(base, method, path, auth, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: auth, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return JSON.parse(text);
}

/** A receiver that answers 200 to every delivery and counts them. */
async function startSink() {
  let n = 0;
  const { createServer } = await import("node:http");
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      n++;
      res.end("{}");
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  server.unref();
  return { url: `http://127.0.0.1:${server.address().port}/hook`, count: () => n };
}

/** A minimal Chrome DevTools Protocol session over the inspector's WebSocket. */
async function devtools(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => t.title?.includes("bench")) ?? targets[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let id = 0;
  const waiting = new Map();
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.id && waiting.has(msg.id)) {
      waiting.get(msg.id)(msg);
      waiting.delete(msg.id);
    }
  };
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      id += 1;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => ws.close(), title: target.title };
}

function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (dt[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fns = new Map();
  const files = new Map();
  for (const [nodeId, us] of self) {
    const f = byId.get(nodeId).callFrame;
    const file = (f.url || "(runtime)").replace(/^.*\/build\//, "").replace(/^.*node_modules\//, "");
    const key = `${f.functionName || "(anonymous)"}  ${file}:${f.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    files.set(file, (files.get(file) ?? 0) + us);
  }
  const top = (m, n) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
  return { total_ms: total / 1000, top: top(fns, 30), files: top(files, 10) };
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), "triggers-profile-"));
  const inspectorPort = await freePort();
  const worker = await startWorker({ root: ROOT, tmp, inspectorPort });
  try {
    const base = worker.url;
    const admin = `Bearer ${worker.adminToken}`;
    await api(base, "POST", "/api/admin/v1/user/", admin, { username: "profileuser" });
    const { key } = await api(base, "POST", "/api/admin/v1/user/profileuser/apikey/", admin, {});
    const auth = `Basic ${Buffer.from(`profileuser:${key}`).toString("base64")}`;
    const paths = [];
    const hook = MODE === "deliveries" ? await startSink() : null;
    for (let s = 0; s < 32; s++) {
      const svc = await api(base, "POST", "/api/app/v1/service/", auth, {
        image: `p/s${s}`,
        max_num_containers: 1000,
        ...(hook ? { target: { type: "webhook", url: hook.url } } : {}),
      });
      for (const operation of ["REDEPLOY", "SCALEUP"]) {
        const t = await api(base, "POST", `${svc.resource_uri}trigger/`, auth, { operation, rate_limit: 100_000 });
        paths.push(t.url);
      }
    }
    const dt = await devtools(inspectorPort);
    await dt.send("Profiler.enable");
    await dt.send("Profiler.setSamplingInterval", { interval: 200 });
    const loadSpec = JSON.stringify({ url: base, method: "POST", paths, connections: CONNECTIONS, duration: DURATION });
    let stdout;
    if (MODE === "calls") {
      await dt.send("Profiler.start");
      ({ stdout } = await run(process.execPath, [join(ROOT, "bench/load.mjs"), loadSpec]));
    } else {
      ({ stdout } = await run(process.execPath, [join(ROOT, "bench/load.mjs"), loadSpec]));
      const before = hook.count();
      await dt.send("Profiler.start");
      await new Promise((r) => setTimeout(r, DURATION * 1000));
      stdout += `\ndeliveries while profiling: ${hook.count() - before} in ${DURATION} s`;
    }
    const { result } = await dt.send("Profiler.stop");
    dt.close();
    const summary = summarize(result.profile);
    console.log(`load: ${stdout.trim()}`);
    console.log(`\nprofiled isolate: ${dt.title}; ${summary.total_ms.toFixed(0)} ms of samples\n`);
    console.log("self time by file:");
    for (const line of summary.files) console.log(`  ${line}`);
    console.log("\nself time by function:");
    for (const line of summary.top) console.log(`  ${line}`);
    writeFileSync(join(ROOT, "bench/profile.cpuprofile"), JSON.stringify(result.profile));
    console.log("\nwrote bench/profile.cpuprofile (open it in Chrome DevTools' Performance panel)");
  } finally {
    await worker.mf.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
