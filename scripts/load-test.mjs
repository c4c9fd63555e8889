// `npm run test:load`: a load test with exact accounting. The built Worker runs
// on the local workerd runtime (bench/runtime.mjs: Miniflare, the user
// worker's socket exposed directly), with wrangler.jsonc's retry and queue
// batch settings (the production ones); a Standard Webhooks receiver in this
// process verifies every delivery. S services, each with a webhook target and a
// REDEPLOY and a SCALEUP trigger, take N trigger calls from a separate process
// (scripts/load-client.mjs, 64 concurrent workers). Then, once every action is
// finished (bounded wait), the books must balance exactly:
//
//   no 5xx (nor network error); accepted calls (202) = calls;
//   distinct action uuids among the 202s = actions in the audit log
//     = accepted calls - joined calls (a REDEPLOY 202 whose action an earlier REDEPLOY call already got);
//   the actions' uuids are exactly the webhook-ids the receiver verified; every action Success.
//
// Prints calls/s, p50/p99 latency and the counts; exits non-zero if a check fails.
// Settings (environment): LOAD_CALLS (default 3000), LOAD_SERVICES (default 8),
// LOAD_CONCURRENCY (64), LOAD_DRAIN_TIMEOUT_S (120).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Webhook } from "standardwebhooks";
import { startWorker } from "../bench/runtime.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CALLS = Number(process.env.LOAD_CALLS ?? 3000);
const SERVICES = Number(process.env.LOAD_SERVICES ?? 8);
const CONCURRENCY = Number(process.env.LOAD_CONCURRENCY ?? 64);
const DRAIN_TIMEOUT_MS = Number(process.env.LOAD_DRAIN_TIMEOUT_S ?? 120) * 1000;
const CLIENT_TIMEOUT_MS = 180_000;
const WATCHDOG_MS = DRAIN_TIMEOUT_MS + CLIENT_TIMEOUT_MS + 120_000;
const MAX_CONTAINERS = 1000;

const log = (...a) => console.error(...a);
const seconds = (ms) => (ms / 1000).toFixed(1);

/** A Standard Webhooks receiver at /hook/<service index>; counts verified deliveries per webhook-id. */
function startReceiver(secrets) {
  const verified = new Map();
  const rejected = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const index = Number(/^\/hook\/(\d+)$/.exec(req.url ?? "")?.[1] ?? -1);
      const id = String(req.headers["webhook-id"]);
      try {
        if (!secrets[index]) throw new Error(`no service at ${req.url}`);
        new Webhook(secrets[index]).verify(Buffer.concat(chunks).toString("utf8"), req.headers);
      } catch (err) {
        rejected.push({ id, error: err.message });
        res.writeHead(401).end();
        return;
      }
      verified.set(id, (verified.get(id) ?? 0) + 1);
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, url: (i) => `http://127.0.0.1:${server.address().port}/hook/${i}`, verified, rejected }),
    ),
  );
}

async function api(base, method, path, auth, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: auth, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** The load client in its own process; resolves with its JSON lines (calls, summary). */
function runClient(specPath) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "scripts/load-client.mjs"), specPath], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the load client did not finish within ${CLIENT_TIMEOUT_MS} ms`));
    }, CLIENT_TIMEOUT_MS);
    const results = [];
    let summary = null;
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (!line.trim()) return;
      const row = JSON.parse(line);
      if (row.summary) summary = row.summary;
      else results.push(row);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`the load client exited with ${code}`));
      else resolve({ results, summary });
    });
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main() {
  if (!(CALLS > 0 && SERVICES > 0 && CONCURRENCY > 0))
    throw new Error("LOAD_CALLS, LOAD_SERVICES, LOAD_CONCURRENCY > 0");
  // Each SCALEUP call adds 1 container; a service may not pass max_num_containers (409 otherwise).
  if (Math.ceil(CALLS / (2 * SERVICES)) >= MAX_CONTAINERS) {
    throw new Error(`LOAD_CALLS/LOAD_SERVICES too high: a service would pass ${MAX_CONTAINERS} containers`);
  }
  const t0 = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), "triggers-load-"));
  let worker;
  let receiver;
  try {
    worker = await startWorker({ root: ROOT, tmp });
    const tStarted = Date.now();
    const base = worker.url;
    const admin = `Bearer ${worker.adminToken}`;
    await api(base, "POST", "/api/admin/v1/user/", admin, { username: "loaduser" });
    const { key } = await api(base, "POST", "/api/admin/v1/user/loaduser/apikey/", admin, { label: "load" });
    const auth = `Basic ${Buffer.from(`loaduser:${key}`).toString("base64")}`;

    const secrets = [];
    receiver = await startReceiver(secrets);
    const triggers = [];
    for (let s = 0; s < SERVICES; s++) {
      const svc = await api(base, "POST", "/api/app/v1/service/", auth, {
        image: `load/app-${s}:latest`,
        max_num_containers: MAX_CONTAINERS,
        target: { type: "webhook", url: receiver.url(s) },
      });
      secrets[s] = svc.target.secret;
      for (const operation of ["REDEPLOY", "SCALEUP"]) {
        const t = await api(base, "POST", `${svc.resource_uri}trigger/`, auth, { operation, rate_limit: 100_000 });
        triggers.push({ path: t.url, op: operation });
      }
    }
    // Call i goes to trigger i mod 2S: REDEPLOY and SCALEUP alternate, over every service.
    const calls = Array.from({ length: CALLS }, (_, i) => triggers[i % triggers.length]);
    const specPath = join(tmp, "calls.json");
    writeFileSync(
      specPath,
      JSON.stringify({ base, calls, concurrency: CONCURRENCY, body: '{"ref":"main","source":"load-test"}' }),
    );
    const tSetup = Date.now();
    log(
      `worker up in ${seconds(tStarted - t0)} s (queue ${JSON.stringify(worker.queueConsumers["dockercloud-operations"])}), ` +
        `${SERVICES} services / ${triggers.length} triggers in ${seconds(tSetup - tStarted)} s; ` +
        `${CALLS} calls at concurrency ${CONCURRENCY} from a separate process...`,
    );

    // The calls.
    const { results, summary } = await runClient(specPath);
    const tCalls = Date.now();

    // The drain: every action finished (bounded).
    const count = async (query) =>
      (await api(base, "GET", `/api/audit/v1/action/?limit=1${query}`, auth)).meta.total_count;
    let unfinished;
    for (;;) {
      const [p, r] = await Promise.all([count("&state=Pending"), count("&state=In%20progress")]);
      unfinished = p + r;
      if (unfinished === 0 || Date.now() - tCalls >= DRAIN_TIMEOUT_MS) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    const tDrained = Date.now();
    // Deliveries that were answered just as the last action finished are in; a moment for stragglers.
    await new Promise((res) => setTimeout(res, 200));

    // The books.
    const status = {};
    for (const r of results) status[r.status] = (status[r.status] ?? 0) + 1;
    const accepted = results.filter((r) => r.status === 202);
    const fivexx = results.filter((r) => r.status >= 500).length;
    const noAnswer = results.filter((r) => r.status === 0);
    const seen = new Set();
    const redeployGot = new Set();
    let joined = 0;
    let repeatedNonJoin = 0;
    for (const r of accepted) {
      // `results` is in the order the answers came back: "earlier" is an earlier answer.
      if (r.op === "REDEPLOY" && redeployGot.has(r.action)) joined++;
      else if (seen.has(r.action)) repeatedNonJoin++;
      if (r.op === "REDEPLOY") redeployGot.add(r.action);
      seen.add(r.action);
    }
    const distinct = seen.size;
    const auditTotal = await count("");
    const success = await count("&state=Success");
    const failed = await count("&state=Failed");
    const verifiedIds = new Set(receiver.verified.keys());
    const deliveries = [...receiver.verified.values()].reduce((a, b) => a + b, 0);
    const missing = [...seen].filter((id) => !verifiedIds.has(id));
    const unknown = [...verifiedIds].filter((id) => !seen.has(id));
    const latencies = results
      .filter((r) => r.status !== 0)
      .map((r) => r.latency_ms)
      .sort((a, b) => a - b);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    const callSeconds = summary.duration_ms / 1000;

    const checks = [
      ["client printed one line per call", results.length === CALLS, `${results.length} lines for ${CALLS} calls`],
      ["zero 5xx", fivexx === 0, `${fivexx} 5xx`],
      [
        "every call answered",
        noAnswer.length === 0,
        `${noAnswer.length} without an answer${noAnswer[0] ? ` (${noAnswer[0].error})` : ""}`,
      ],
      [
        "accepted (202) = calls",
        accepted.length === CALLS,
        `${accepted.length} of ${CALLS}; statuses ${JSON.stringify(status)}`,
      ],
      ["every 202 names an action", accepted.every((r) => typeof r.action === "string"), ""],
      ["only REDEPLOY calls join an action", repeatedNonJoin === 0, `${repeatedNonJoin} other repeated uuid(s)`],
      [
        "distinct uuids = accepted - joined",
        distinct === accepted.length - joined,
        `${distinct} vs ${accepted.length} - ${joined}`,
      ],
      ["audit total_count = distinct uuids", auditTotal === distinct, `${auditTotal} vs ${distinct}`],
      [
        "every action finished within the drain",
        unfinished === 0,
        `${unfinished} unfinished after ${seconds(tDrained - tCalls)} s`,
      ],
      ["all actions Success", success === auditTotal, `${success} Success, ${failed} Failed of ${auditTotal}`],
      ["verified webhook-ids = actions", verifiedIds.size === auditTotal, `${verifiedIds.size} vs ${auditTotal}`],
      ["every action's uuid verified at the receiver", missing.length === 0, `${missing.length} missing`],
      ["no webhook-id outside the 202s", unknown.length === 0, `${unknown.length} unknown`],
      ["no bad signature", receiver.rejected.length === 0, `${receiver.rejected.length} rejected`],
    ];

    console.log(
      `\n${CALLS} calls, ${SERVICES} services, concurrency ${CONCURRENCY}: ` +
        `${(CALLS / callSeconds).toFixed(0)} calls/s over ${callSeconds.toFixed(1)} s, latency p50 ${p50} ms, p99 ${p99} ms (max ${latencies.at(-1)} ms)`,
    );
    console.log(
      `statuses ${JSON.stringify(status)}; accepted ${accepted.length}, joined ${joined}, distinct actions ${distinct}, ` +
        `audit total ${auditTotal} (Success ${success}, Failed ${failed}); receiver: ${verifiedIds.size} webhook-ids verified, ` +
        `${deliveries} verified deliveries (${deliveries - verifiedIds.size} repeats), ${receiver.rejected.length} rejected`,
    );
    console.log(
      `drain: every action finished ${seconds(tDrained - tCalls)} s after the last call ` +
        `(${(auditTotal / ((tDrained - tSetup) / 1000)).toFixed(1)} actions/s from the first call); ` +
        `phases: start ${seconds(tStarted - t0)} s, setup ${seconds(tSetup - tStarted)} s, calls ${seconds(tCalls - tSetup)} s, ` +
        `drain ${seconds(tDrained - tCalls)} s; total ${seconds(Date.now() - t0)} s`,
    );
    console.log("\n| check | result | detail |\n|---|---|---|");
    for (const [name, pass, detail] of checks) console.log(`| ${name} | ${pass ? "ok" : "FAIL"} | ${detail} |`);
    const failures = checks.filter(([, pass]) => !pass);
    if (failures.length) {
      console.log(`\n${failures.length} check(s) failed`);
      process.exitCode = 1;
    } else {
      console.log("\nall checks passed");
    }
  } finally {
    receiver?.server.closeAllConnections?.();
    receiver?.server.close();
    await worker?.mf.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  console.error(`load test: no result within ${WATCHDOG_MS} ms; giving up`);
  process.exit(2);
}, WATCHDOG_MS);
watchdog.unref();

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
