// The counting phase of `npm run bench`: what Cloudflare would bill for the call path, counted on the
// bench's instrumented build (bench/instrumented/worker.ts) in a Miniflare instance of its own, after
// the timed phases (which run the product's own build). Counts do not depend on the machine's speed,
// so the phase is small; the CPU time of the workerd process over each workload is read from /proc
// and is an upper bound (it includes the runtime's own work and the loopback HTTP).
//
// Two workloads, each counted from a reset of the counters until everything it caused has run
// (deliveries, reports, the alarms left behind):
//   - webhook: services with a webhook target (the bench's receiver), calls in rounds of one call per
//     service, alternating REDEPLOY and SCALEUP triggers; a round waits for its deliveries, so every
//     accepted call is its own action, delivered once (none joins a pending redeploy);
//   - agent: services whose target is an agent (a WebSocket client of the bench that answers each
//     job as an agent that redeployed it: ack, a progress line, applied, a progress line, a success
//     report), the same rounds; a round waits for its jobs to reach the agent and its reports to land.
// Deadlines are shortened (COUNT_BINDINGS) so that the alarms they leave fire within the phase; they
// change when an alarm fires, not what runs.
import { join } from "node:path";
import { dialAgent } from "../agent-socket.mjs";
import { cpuMs, startWorker } from "../runtime.mjs";

const SERVICES = 64;
const CONCURRENCY = 8;
const BODY = '{"ref":"main"}';
const COUNT_BINDINGS = {
  MAX_TRIGGERS_PER_SERVICE: "10000",
  DISPATCH_LEASE_SECONDS: "5",
  TARGET_TIMEOUT_MS: "2000",
  AGENT_CONVERGE_SECONDS: "1",
};
/** The longest deadline COUNT_BINDINGS leave (an agent's report: converge + 30 s), and some margin. */
const SETTLE_LIMIT_MS = 45_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function pool(items, limit, fn) {
  let i = 0;
  const out = [];
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (i < items.length) {
        const k = i++;
        out[k] = await fn(items[k]);
      }
    }),
  );
  return out;
}

const counters = async (base) => (await fetch(`${base}/__bench/counters`)).json();

const activity = async (base) => (await fetch(`${base}/__bench/activity?within=${SETTLE_LIMIT_MS}`)).json();

/**
 * Waits until nothing was counted for `quietMs` and, with `alarms`, no object has an alarm due within
 * SETTLE_LIMIT_MS (further ones are the retention's daily look, not the workload's).
 * Returns the workerd's CPU time when the last thing counted had run (the polls after it are the
 * bench's), and how many alarms were left when waiting for them timed out.
 */
async function settle(worker, quietMs, { alarms: waitForAlarms = true } = {}) {
  const deadline = Date.now() + SETTLE_LIMIT_MS;
  let last = await activity(worker.url);
  let since = Date.now();
  let cpu = cpuMs(worker.pid);
  for (;;) {
    await sleep(Math.min(100, quietMs));
    const now = await activity(worker.url);
    if (now.ticks !== last.ticks) {
      since = Date.now();
      cpu = cpuMs(worker.pid);
    }
    last = now;
    const quiet = Date.now() - since >= quietMs;
    if (quiet && (now.alarms === 0 || !waitForAlarms)) return { cpu, alarms_left: now.alarms };
    if (Date.now() > deadline) return { cpu, alarms_left: now.alarms };
  }
}

async function call(base, path) {
  const res = await fetch(`${base}${path}`, { method: "POST", body: BODY });
  const answer = await res.json();
  if (res.status !== 202) throw new Error(`bench: a counted call answered ${res.status} ${JSON.stringify(answer)}`);
  return answer.uuid;
}

/** Rounds of one call per service (`pathOf(service index, round)`), each awaited with `done(uuids)`. */
async function rounds(base, calls, pathOf, done) {
  let made = 0;
  for (let r = 0; made < calls; r++) {
    const batch = Array.from({ length: Math.min(SERVICES, calls - made) }, (_, s) => pathOf(s, r));
    const uuids = await pool(batch, CONCURRENCY, (path) => call(base, path));
    made += uuids.length;
    await done(uuids);
  }
  return made;
}

/** Runs `workload` from a reset of the counters until it has settled; what it caused, and the workerd's CPU time. */
async function measure(worker, workload, quietMs) {
  const base = worker.url;
  await fetch(`${base}/__bench/reset`, { method: "POST" });
  const start = await counters(base);
  const cpu0 = cpuMs(worker.pid);
  const t0 = Date.now();
  const calls = await workload();
  const settled = await settle(worker, quietMs);
  const wall = (Date.now() - t0) / 1000;
  const end = await counters(base);
  // The meter's state is module state: it must be the objects' isolate too (workerd runs one per script).
  if (calls > 0 && end.objects.length === 0) throw new Error("bench: no Durable Object event reached the counters");
  const size = (c) => c.namespaces.reduce((n, o) => n + o.database_size, 0);
  return {
    calls,
    wall_s: wall,
    workerd_cpu_ms: settled.cpu - cpu0,
    database_size_before: size(start),
    database_size_after: size(end),
    alarms_left: settled.alarms_left,
    counters: { worker: end.worker, queue: end.queue, objects: end.objects, statements: end.statements },
  };
}

/**
 * The retention's cost for the actions a workload left: its passes, run at once as the alarm would
 * run them after the retention (bench/instrumented/objects.ts), counted from a reset of their own.
 */
async function measureSweep(worker) {
  const base = worker.url;
  await fetch(`${base}/__bench/reset`, { method: "POST" });
  const cpu0 = cpuMs(worker.pid);
  const swept = await (await fetch(`${base}/__bench/sweep`, { method: "POST" })).json();
  const settled = await settle(worker, 200, { alarms: false });
  const end = await counters(base);
  const sum = (k) => swept.reduce((n, o) => n + (o[k] ?? 0), 0);
  return {
    ran: swept.some((o) => o.passes !== undefined),
    retention_days: swept.find((o) => o.retention_days !== undefined)?.retention_days ?? null,
    passes: sum("passes"),
    actions_deleted: sum("actions"),
    rows_deleted: sum("rows"),
    workerd_cpu_ms: settled.cpu - cpu0,
    counters: { worker: end.worker, queue: end.queue, objects: end.objects, statements: end.statements },
  };
}

async function actionCounts(base, auth, api) {
  const all = await api(base, "GET", "/api/audit/v1/action/?limit=1", auth);
  const failed = await api(base, "GET", "/api/audit/v1/action/?state=Failed&limit=1", auth);
  return { actions: all.meta.total_count, failed: failed.meta.total_count };
}

async function webhookWorkload({ worker, auth, api, receiver, secrets, calls }) {
  const base = worker.url;
  const triggers = [];
  for (let s = 0; s < SERVICES; s++) {
    const svc = await api(base, "POST", "/api/app/v1/service/", auth, {
      image: `bench/count-${s}:latest`,
      max_num_containers: 1000,
      target: { type: "webhook", url: receiver.url },
    });
    secrets.push(svc.target.secret);
    const pair = [];
    for (const operation of ["REDEPLOY", "SCALEUP"]) {
      pair.push((await api(base, "POST", `${svc.resource_uri}trigger/`, auth, { operation, rate_limit: 100_000 })).url);
    }
    triggers.push(pair);
  }
  const before = await actionCounts(base, auth, api);
  const delivered = (uuids) =>
    until("the round's deliveries", () => uuids.every((u) => receiver.verified.has(u)), 30_000);
  const run = () => rounds(base, calls, (s, r) => triggers[s][r % 2], delivered);
  const measured = await measure(worker, run, 1_000);
  const after = await actionCounts(base, auth, api);
  const sweep = await measureSweep(worker);
  return { ...measured, actions: after.actions - before.actions, failed: after.failed - before.failed, sweep };
}

/** The bench's agent: answers every job as an agent that redeployed the service would. */
async function benchAgent(base, token) {
  const arrived = new Set();
  const ws = await dialAgent(base, token, (m) => {
    if (m.type !== "job") return;
    const { action, attempt } = m.job;
    arrived.add(action);
    for (const message of [
      { type: "ack", action, attempt },
      { type: "progress", action, line: "deploying bench/app:latest" },
      { type: "applied", action },
      { type: "progress", action, line: "1/1 tasks running" },
      { type: "report", action, attempt, result: "success", detail: "redeployed", observed: null },
    ]) {
      ws.send(JSON.stringify(message));
    }
  });
  return { ws, arrived };
}

async function agentWorkload({ worker, auth, api, calls }) {
  const base = worker.url;
  const agent = await api(base, "POST", "/api/agent/v1/agent/", auth, { name: "count" });
  const paths = [];
  for (let s = 0; s < SERVICES; s++) {
    const svc = await api(base, "POST", "/api/app/v1/service/", auth, {
      name: `count-agent-${s}`,
      max_num_containers: 1000,
      target: { type: "agent", agent: agent.uuid, swarm_service: `count-agent-${s}` },
    });
    const t = await api(base, "POST", `${svc.resource_uri}trigger/`, auth, {
      operation: "REDEPLOY",
      rate_limit: 100_000,
    });
    paths.push(t.url);
  }
  const program = await benchAgent(base, agent.token);
  try {
    await settle(worker, 500, { alarms: false });
    const before = await actionCounts(base, auth, api);
    const reported = async (uuids) => {
      await until("the round's jobs at the agent", () => uuids.every((u) => program.arrived.has(u)), 30_000);
      await settle(worker, 150, { alarms: false });
    };
    const measured = await measure(worker, () => rounds(base, calls, (s) => paths[s], reported), 500);
    const after = await actionCounts(base, auth, api);
    const sweep = await measureSweep(worker);
    return { ...measured, actions: after.actions - before.actions, failed: after.failed - before.failed, sweep };
  } finally {
    program.ws.close();
  }
}

/**
 * Runs the phase on its own Miniflare instance (state under `tmp`). `api(base, method, path, auth, body)`
 * is the bench's; `receiver` (with its `secrets`) verifies the webhook deliveries. `calls` per workload.
 */
export async function countPhase({ root, tmp, api, receiver, secrets, calls }) {
  const worker = await startWorker({
    root,
    tmp: join(tmp, "count"),
    entry: "bench/instrumented/worker.ts",
    bindings: COUNT_BINDINGS,
  });
  if (!worker.pid) throw new Error("bench: the workerd process of the counting phase was not found");
  try {
    const base = worker.url;
    const admin = `Bearer ${worker.adminToken}`;
    await api(base, "POST", "/api/admin/v1/user/", admin, { username: "countuser" });
    const { key } = await api(base, "POST", "/api/admin/v1/user/countuser/apikey/", admin, { label: "count" });
    const auth = `Basic ${Buffer.from(`countuser:${key}`).toString("base64")}`;
    const context = { worker, auth, api, receiver, secrets, calls };
    return {
      settings: { calls, services: SERVICES, concurrency: CONCURRENCY, bindings: COUNT_BINDINGS },
      webhook: await webhookWorkload(context),
      agent: await agentWorkload(context),
    };
  } finally {
    await worker.mf.dispose();
  }
}
