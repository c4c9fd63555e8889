// `npm run bench`: how fast the trigger call path is, against the runtime's
// own ceiling and its floor, measured side by side in one run on the local
// workerd runtime (Miniflare's API, user worker socket exposed directly: no dev
// proxy). The floor is a Worker of the benchmark's own (bench/floor/worker.js)
// run as a second worker of the same Miniflare instance: one Durable Object RPC
// and one SQLite insert per request, the least an accepted call must pay.
// Load comes from a separate process (bench/load.mjs, autocannon) over
// loopback; a Standard Webhooks receiver in this process verifies deliveries.
// Prints a table and writes bench/results.json. Exits non-zero only when the
// run itself failed.
//
// Settings (environment): BENCH_DURATION seconds per phase (default 10),
// BENCH_CONNECTIONS (64), BENCH_SERVICES (32); for the bill (the counting phase, last):
// BENCH_COUNT_CALLS calls per target (1024), BENCH_CALLS_PER_DAY for the monthly bill (1,000,000);
// BENCH_AUDIT_SIZE actions of the audit phase's large namespace (1,000,000; 0 leaves the phase out).
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Webhook } from "standardwebhooks";
import { agentPhase } from "./agent-phase.mjs";
import { auditLines, auditPhase } from "./audit-phase.mjs";
import { costLines, costReport } from "./cost.mjs";
import { countPhase } from "./instrumented/count-phase.mjs";
import { inventoryPhase } from "./inventory-phase.mjs";
import { PRICE_LIST } from "./price-list.mjs";
import { registryPhase } from "./registry-phase.mjs";
import { cpuMs, startWorker } from "./runtime.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const AUDIT_SIZE = Number(process.env.BENCH_AUDIT_SIZE ?? 1_000_000);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const SERVICES = Number(process.env.BENCH_SERVICES ?? 32);
const COUNT_CALLS = Number(process.env.BENCH_COUNT_CALLS ?? 1024);
const CALLS_PER_DAY = Number(process.env.BENCH_CALLS_PER_DAY ?? 1_000_000);
const BODY = '{"ref":"main"}';
const LIST_SIZES = [10, 1_000, 10_000];
const run = promisify(execFile);

/** One autocannon run in its own process. */
async function load(spec) {
  const { stdout } = await run(process.execPath, [join(ROOT, "bench/load.mjs"), JSON.stringify(spec)], {
    maxBuffer: 1 << 20,
    timeout: (spec.duration + 60) * 1000,
  });
  return JSON.parse(stdout.trim().split("\n").pop());
}

/** A Standard Webhooks receiver: verifies every delivery, records when each webhook-id was first verified. */
function startReceiver(secrets) {
  const verified = new Map();
  let rejected = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const id = req.headers["webhook-id"];
      const ok = secrets.some((secret) => {
        try {
          new Webhook(secret).verify(body, req.headers);
          return true;
        } catch {
          return false;
        }
      });
      if (!ok) rejected++;
      else if (!verified.has(id)) verified.set(id, Date.now());
      res.writeHead(ok ? 200 : 401, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, url: `http://127.0.0.1:${server.address().port}/hook`, verified, rejected: () => rejected }),
    ),
  );
}

async function api(base, method, path, auth, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: auth, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Runs fn over items with at most `limit` in flight. */
async function pool(items, limit, fn) {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

const ratio = (a, b) => (b ? a / b : null);
const fmt = (n, digits = 1) => (n === null || n === undefined ? "-" : Number(n).toFixed(digits));

/** The ratios of a run and which targets it met (docs/performance.md). */
function judge(results) {
  const b = results.bare;
  const c = results.calls;
  const f = results.sqlite_do_write_floor;
  results.ratios = {
    call_throughput_vs_bare: ratio(c.rps, b.rps),
    call_p99_vs_bare_p99: ratio(c.p99_ms, b.p99_ms),
    call_throughput_vs_sqlite_do_write_floor: ratio(c.rps, f.rps),
    call_p99_vs_sqlite_do_write_floor_p99: ratio(c.p99_ms, f.p99_ms),
    list_p50_10000_vs_10: ratio(results.list[10000].p50_ms, results.list[10].p50_ms),
    list_p99_10000_vs_10: ratio(results.list[10000].p99_ms, results.list[10].p99_ms),
    deliveries_vs_accepted: ratio(results.end_to_end.deliveries_per_s, results.end_to_end.accepted_per_s),
    agent_job_p50_vs_webhook_delivery_p50: ratio(results.agent_latency.p50_ms, results.webhook_latency.p50_ms),
    agent_calls_throughput_vs_webhook_calls: ratio(results.agent_calls.rps, c.rps),
  };
  results.targets_met = {
    call_throughput_at_least_half_of_bare: results.ratios.call_throughput_vs_bare >= 0.5,
    call_p99_at_most_3x_bare: results.ratios.call_p99_vs_bare_p99 <= 3,
    list_10000_within_1_5x_of_10: results.ratios.list_p50_10000_vs_10 <= 1.5,
    deliveries_keep_half_pace: results.ratios.deliveries_vs_accepted >= 0.5,
    call_to_agent_p50_under_50ms: results.agent_latency.p50_ms < 50,
    call_to_agent_p99_under_250ms: results.agent_latency.p99_ms < 250,
    inventory_1000_services_under_1s: results.inventory.first_full_ms < 1000,
    notification_to_job_p50_under_50ms: results.registry_hooks.notification_to_job_p50_ms < 50,
    notification_to_job_p99_under_250ms: results.registry_hooks.notification_to_job_p99_ms < 250,
    burst_makes_exactly_the_expected_actions:
      results.registry_hooks.burst_actions === results.registry_hooks.burst_actions_expected,
  };
}

/** Prints the tables and figures of a run. */
function report(results) {
  const b = results.bare;
  const c = results.calls;
  const f = results.sqlite_do_write_floor;
  const rows = [
    ["bare route (GET /api/health/)", b],
    ["call, unknown trigger (404)", results.call_not_found],
    ["floor: 1 DO RPC + 1 SQLite insert (bench worker)", f],
    ["trigger calls (202)", c],
    ["trigger calls, agent targets (202)", results.agent_calls],
    ...LIST_SIZES.map((n) => [`trigger list, ${n} triggers`, results.list[n]]),
  ];
  console.log("\n| measurement | req/s | p50 ms | p99 ms | statuses |");
  console.log("|---|---:|---:|---:|---|");
  for (const [name, r] of rows) {
    console.log(`| ${name} | ${fmt(r.rps, 0)} | ${fmt(r.p50_ms)} | ${fmt(r.p99_ms)} | ${JSON.stringify(r.status)} |`);
  }
  const e = results.end_to_end;
  console.log(
    `\nend to end over ${fmt(e.window_s)} s: ${e.accepted_calls} calls accepted (${fmt(e.accepted_per_s, 0)}/s), ` +
      `${e.actions_created} actions, ${e.deliveries_verified_in_window} deliveries verified in the window ` +
      `(${fmt(e.deliveries_per_s, 0)}/s), ${e.deliveries_verified_total} in all after a ${fmt(e.drain_s)} s drain, ` +
      `${e.failed_actions} failed, ${e.rejected_signatures} bad signatures`,
  );
  for (const [name, l] of [
    ["call sent → job at the agent (dry run)", results.agent_latency],
    ["call sent → first webhook delivery", results.webhook_latency],
  ]) {
    console.log(
      `${name}: p50 ${fmt(l.p50_ms)} ms, p99 ${fmt(l.p99_ms)} ms, max ${fmt(l.max_ms)} ms (${l.samples} calls)`,
    );
  }
  const inv = results.inventory;
  console.log(
    `inventory of ${inv.services} services: first ${fmt(inv.first_full_ms, 0)} ms, resent unchanged ` +
      `${fmt(inv.resend_unchanged_ms, 0)} ms; one change p50 ${fmt(inv.change_p50_ms)} ms, p99 ` +
      `${fmt(inv.change_p99_ms)} ms (${inv.changes} changes, ${inv.refused} refused)`,
  );
  const rh = results.registry_hooks;
  console.log(
    `registry notification → job at the agent: p50 ${fmt(rh.notification_to_job_p50_ms)} ms, p99 ` +
      `${fmt(rh.notification_to_job_p99_ms)} ms (${rh.samples} pushes); a burst of ${rh.burst_notifications} ` +
      `notifications → ${rh.burst_actions} actions (expected ${rh.burst_actions_expected}), the last job ` +
      `${fmt(rh.burst_ms_to_last_job, 0)} ms after the first notification`,
  );
  console.log("\nratios:", JSON.stringify(results.ratios, null, 0));
  console.log("targets met:", JSON.stringify(results.targets_met, null, 0));
  console.log(`\n${costLines(results.cost_per_million_calls).join("\n")}`);
  if (results.audit) console.log(`\n${auditLines(results.audit).join("\n")}`);
}

/** The product's Worker, and the floor's beside it in the same workerd (see docs/performance.md). */
function startProduct(tmp) {
  return startWorker({
    root: ROOT,
    tmp,
    bindings: { MAX_TRIGGERS_PER_SERVICE: "10000" },
    extraWorkers: [
      {
        name: "floor",
        modules: true,
        scriptPath: join(ROOT, "bench/floor/worker.js"),
        modulesRoot: join(ROOT, "bench/floor"),
        durableObjects: { FLOOR: { className: "FloorObject", useSQLite: true } },
      },
    ],
  });
}

/** The bench's user; services with a webhook target and a REDEPLOY and a SCALEUP trigger each; the lists. */
async function setup(worker, receiver, secrets) {
  const base = worker.url;
  const admin = `Bearer ${worker.adminToken}`;
  await api(base, "POST", "/api/admin/v1/user/", admin, { username: "benchuser" });
  const { key } = await api(base, "POST", "/api/admin/v1/user/benchuser/apikey/", admin, { label: "bench" });
  const auth = `Basic ${Buffer.from(`benchuser:${key}`).toString("base64")}`;
  const callPaths = [];
  const services = [];
  for (let s = 0; s < SERVICES; s++) {
    const svc = await api(base, "POST", "/api/app/v1/service/", auth, {
      image: `bench/app-${s}:latest`,
      max_num_containers: 1000,
      target: { type: "webhook", url: receiver.url },
    });
    secrets.push(svc.target.secret);
    services.push(svc);
    for (const operation of ["REDEPLOY", "SCALEUP"]) {
      const t = await api(base, "POST", `${svc.resource_uri}trigger/`, auth, { operation, rate_limit: 100_000 });
      callPaths.push(t.url);
    }
  }
  // Lists: services holding 10, 1,000 and 10,000 triggers (null target).
  const listPaths = {};
  for (const size of LIST_SIZES) {
    const svc = await api(base, "POST", "/api/app/v1/service/", auth, { name: `list${size}` });
    await pool(
      Array.from({ length: size }, (_, i) => i),
      32,
      (i) => api(base, "POST", `${svc.resource_uri}trigger/`, auth, { name: `t${i}` }),
    );
    // The same page size for every list (10), so the comparison isolates the size of the table:
    // with the default 25, the 10-trigger list would answer a smaller page than the others.
    listPaths[size] = `${svc.resource_uri}trigger/?limit=10`;
  }
  return { base, auth, callPaths, services, listPaths };
}

/** 1 and 3: the runtime's ceiling, a read-only hop (the unknown trigger), the floor of an accepted call. */
async function runtimePhases(results, { base, callPaths, services }, worker) {
  const spec = { connections: CONNECTIONS, duration: DURATION };
  // The runtime's ceiling: a route of the same Worker that touches no storage.
  results.bare = await load({ ...spec, url: base, paths: ["/api/health/"] });
  // Profile by difference: a call to an unknown trigger reads storage once and writes nothing.
  const missing = services.slice(0, 8).map((s) => `${s.resource_uri}trigger/${randomUUID()}/call/`);
  results.call_not_found = await load({ ...spec, url: base, method: "POST", paths: missing });
  // The floor of an accepted call: the bench's own Worker, one RPC to a SQLite-backed Durable Object that
  // inserts one row, then the answer. Mirrors the call phase below: same connections, duration, method and
  // body, and as many distinct paths as there are trigger URLs, all naming ONE object, because every
  // trigger URL of the call phase belongs to the one namespace (benchuser) and so to one NamespaceObject:
  // its services are rows of that object, not objects of their own. One request first creates the object
  // and its table, as setup has already woken the namespace's object.
  const floorBase = worker.urls.floor;
  const floorPaths = callPaths.map((_, i) => `/benchuser/w${i}`);
  const warm = await fetch(`${floorBase}${floorPaths[0]}`, { method: "POST", body: "{}" });
  if (warm.status !== 202) throw new Error(`floor worker → ${warm.status} ${await warm.text()}`);
  results.sqlite_do_write_floor = await load({
    ...spec,
    url: floorBase,
    method: "POST",
    paths: floorPaths,
    body: BODY,
  });
}

/** Waits (bounded) until every action is finished; the actions still open when it gave up. */
async function drain(base, auth) {
  const start = Date.now();
  let pending = Number.POSITIVE_INFINITY;
  while (Date.now() - start < 120_000) {
    const [p, r] = await Promise.all(
      ["Pending", "In progress"].map((state) =>
        api(base, "GET", `/api/audit/v1/action/?state=${encodeURIComponent(state)}&limit=1`, auth),
      ),
    );
    pending = p.meta.total_count + r.meta.total_count;
    if (pending === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return { pending, seconds: (Date.now() - start) / 1000 };
}

/** 2 and 4: trigger calls (mixed REDEPLOY and SCALEUP over many services), and deliveries over the same window. */
async function callPhase(results, { base, auth, callPaths }, worker, receiver) {
  const before = receiver.verified.size;
  const cpuStart = worker.pid ? cpuMs(worker.pid) : null;
  const windowStart = Date.now();
  const spec = { connections: CONNECTIONS, duration: DURATION };
  results.calls = await load({ ...spec, url: base, method: "POST", paths: callPaths, body: BODY });
  const windowEnd = Date.now();
  const windowSeconds = (windowEnd - windowStart) / 1000;
  const inWindow = [...receiver.verified.values()].filter((t) => t >= windowStart && t <= windowEnd).length;
  const accepted = results.calls.status["202"] ?? 0;
  // Drain: what the window left behind.
  const drained = await drain(base, auth);
  const actions = await api(base, "GET", "/api/audit/v1/action/?limit=1", auth);
  const failed = await api(base, "GET", "/api/audit/v1/action/?state=Failed&limit=1", auth);
  results.end_to_end = {
    window_s: windowSeconds,
    accepted_calls: accepted,
    accepted_per_s: accepted / windowSeconds,
    actions_created: actions.meta.total_count,
    deliveries_verified_in_window: inWindow,
    deliveries_per_s: inWindow / windowSeconds,
    deliveries_verified_total: receiver.verified.size - before,
    failed_actions: failed.meta.total_count,
    rejected_signatures: receiver.rejected(),
    unfinished_after_drain: drained.pending,
    drain_s: drained.seconds,
    // The product's own build at full load: a cross-check of the counting phase's CPU figure.
    workerd_cpu_ms_per_accepted_call: cpuStart === null ? null : (cpuMs(worker.pid) - cpuStart) / accepted,
  };
}

/** 3. The authenticated trigger list, first page, by size. */
async function listPhase(results, { base, auth, listPaths }) {
  results.list = {};
  for (const size of LIST_SIZES) {
    results.list[size] = await load({
      url: base,
      paths: [listPaths[size]],
      headers: { authorization: auth },
      connections: 16,
      duration: Math.max(3, Math.round(DURATION / 2)),
    });
  }
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), "triggers-bench-"));
  const results = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model, memory_gib: Math.round(totalmem() / 2 ** 30) },
    settings: { duration_s: DURATION, connections: CONNECTIONS, services: SERVICES },
  };
  let worker;
  let receiver;
  try {
    worker = await startProduct(tmp);
    // Retry delay and batch settings are wrangler.jsonc's: the ones recommended for production.
    results.settings.queue = worker.queueConsumers;
    const secrets = [];
    receiver = await startReceiver(secrets);
    const bench = await setup(worker, receiver, secrets);
    const { base, auth } = bench;
    console.error(`setup done: ${SERVICES} services, ${bench.callPaths.length} trigger URLs; ${DURATION}s per phase`);

    await runtimePhases(results, bench, worker);
    await callPhase(results, bench, worker, receiver);
    await listPhase(results, bench);
    // 5. The agent path (bench/agent-phase.mjs): calls to services whose target is a connected agent.
    const webhookCalls = bench.callPaths.filter((_, i) => i % 2 === 0); // the REDEPLOY triggers
    const agentSpec = { root: ROOT, base, auth, api, load, receiver, webhookCalls };
    Object.assign(results, await agentPhase({ ...agentSpec, duration: DURATION, connections: CONNECTIONS }));
    // 6. Inventories (bench/inventory-phase.mjs): 1,000 services brought in, resent unchanged, then 100 changes.
    Object.assign(results, await inventoryPhase({ base, auth, api }));
    // 7. Registry hooks (bench/registry-phase.mjs): notification → job, and a 1,000-notification burst.
    Object.assign(results, await registryPhase({ base, auth, api }));
    judge(results);

    // 8. The bill: what Cloudflare would charge per million calls, counted on the instrumented build
    // (bench/instrumented/, its own Miniflare instance, after this one is gone) and priced (bench/cost.mjs).
    await worker.mf.dispose();
    worker = undefined;
    const counted = await countPhase({ root: ROOT, tmp, api, receiver, secrets, calls: COUNT_CALLS });
    results.settings.bill = { count_calls: COUNT_CALLS, calls_per_day: CALLS_PER_DAY };
    results.cost_per_million_calls = costReport(counted, PRICE_LIST, { callsPerDay: CALLS_PER_DAY });

    // 9. The audit at size (bench/audit-phase.mjs, a Worker of its own): the action list at 1,000,000
    // actions against 1,000, and retention's passes. BENCH_AUDIT_SIZE=0 leaves it out.
    if (AUDIT_SIZE > 0) Object.assign(results, await auditPhase({ root: ROOT, size: AUDIT_SIZE }));

    report(results);
    writeFileSync(join(ROOT, "bench/results.json"), `${JSON.stringify(results, null, 2)}\n`);
    console.log("\nwrote bench/results.json");
  } finally {
    receiver?.server.close();
    await worker?.mf.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
