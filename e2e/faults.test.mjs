// End-to-end fault tests of webhook delivery: `npm run dev` with short retry
// settings, and a real Standard Webhooks receiver (node:http) that can be told,
// per service, to fail the first K deliveries with a 500, to hang past the
// target timeout, to drop the connection, or to refuse with a 400 (for a
// service's first action, or for the one the consumer chains after it). Counted
// per action: attempts (log lines), verified deliveries, the delays between
// them. (A crash and restart is e2e/restart.test.mjs, under the shipped settings.)
//
// Run: npm run test:e2e   (node --test 'e2e/*.test.mjs', Node 22 from node_modules/.bin)
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe } from "node:test";
import { Webhook } from "standardwebhooks";
import {
  actionLogs,
  apiRequest,
  createUserWithKey,
  createWorker,
  failureTracker,
  HOST,
  REQUEST_TIMEOUT_MS,
  waitFor,
} from "./helpers.mjs";

// The Worker's settings for this file (MAX_ATTEMPTS stays at wrangler.jsonc's 7).
const RETRY_BASE_DELAY_SECONDS = 1;
const RETRY_MAX_DELAY_SECONDS = 2;
const TARGET_TIMEOUT_MS = 1_500;
const MAX_ATTEMPTS = 7;

const FAULTS_TIMEOUT_MS = 60_000; // every action of the fault scenarios finished
const HANG_MS = 3_000; // how long a hanging delivery is held before it is answered (past the 1.5 s timeout)

const worker = createWorker({
  persistPrefix: "dockercloud-e2e-faults-",
  outputLimit: 20_000,
  vars: { RETRY_BASE_DELAY_SECONDS, RETRY_MAX_DELAY_SECONDS, TARGET_TIMEOUT_MS },
});

// ---------------------------------------------------------------- the receiver

/**
 * A Standard Webhooks receiver at /hook/<label>, one label per service, each
 * with its own secret and behaviour:
 *   ok        200 at once
 *   fail500   500 for the first `k` deliveries, then 200
 *   hang      the first `k` are never answered (closed after 10 s if the Worker has not), then 200
 *   late      the first `k` are answered 200 after 3 s, if the Worker still waits (it must not), then 200
 *   drop      the first `k` have their connection destroyed, then 200
 *   reject400 always 400
 *   always500 always 500
 * With `skip`, the first `skip` deliveries are answered 200 before the fault applies.
 * Every delivery is verified first; a bad signature is answered 401 and recorded.
 */
const receiver = {
  /** @type {http.Server | undefined} */
  server: undefined,
  port: 0,
  /** label -> { secret, mode, k, seen, open, maxOpen } */
  routes: new Map(),
  /** every verified delivery: { label, id, index, at, answer?: { status, at }, closedAt? } */
  deliveries: [],
  /** deliveries that failed verification */
  rejected: [],
  timers: new Set(),
};

function later(ms, fn) {
  const timer = setTimeout(() => {
    receiver.timers.delete(timer);
    fn();
  }, ms);
  receiver.timers.add(timer);
}

function startReceiver() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const label = /^\/hook\/([a-z0-9-]+)$/.exec(req.url ?? "")?.[1];
      const route = label ? receiver.routes.get(label) : undefined;
      if (req.method !== "POST" || !route) {
        res.writeHead(404).end("not here");
        return;
      }
      const raw = Buffer.concat(chunks).toString("utf8");
      try {
        new Webhook(route.secret).verify(raw, req.headers);
      } catch (err) {
        receiver.rejected.push({ label, id: req.headers["webhook-id"], error: err.message });
        res.writeHead(401, { "content-type": "text/plain" }).end(`bad signature: ${err.message}`);
        return;
      }
      route.seen++;
      route.open++;
      route.maxOpen = Math.max(route.maxOpen, route.open);
      const d = { label, id: String(req.headers["webhook-id"]), index: route.seen, at: Date.now() };
      receiver.deliveries.push(d);
      res.on("finish", () => {
        d.answer = { status: res.statusCode, at: Date.now() };
      });
      res.on("close", () => {
        d.closedAt = Date.now();
        route.open--;
      });
      const gone = () => res.destroyed || req.socket.destroyed;
      const answer = (status) => {
        if (!gone()) res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ status }));
      };
      // The first `skip` deliveries are answered 200; the `k` after them take the fault.
      const faulty = route.seen > route.skip && route.seen <= route.skip + route.k;
      switch (route.mode) {
        case "fail500":
          return answer(faulty ? 500 : 200);
        case "hang":
          if (!faulty) return answer(200);
          return later(10_000, () => res.destroy());
        case "late":
          if (!faulty) return answer(200);
          return later(HANG_MS, () => answer(200));
        case "drop":
          if (!faulty) return answer(200);
          return req.socket.destroy();
        case "reject400":
          return answer(400);
        case "always500":
          return answer(route.seen > route.skip ? 500 : 200);
        default:
          return answer(200);
      }
    });
  });
  receiver.server = server;
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, HOST, () => {
      receiver.port = server.address().port;
      resolve();
    });
  });
}

function stopReceiver() {
  for (const timer of receiver.timers) clearTimeout(timer);
  receiver.timers.clear();
  if (!receiver.server) return Promise.resolve();
  receiver.server.closeAllConnections?.();
  return new Promise((resolve) => receiver.server.close(() => resolve()));
}

const deliveriesOf = (id) => receiver.deliveries.filter((d) => d.id === id);

/**
 * Deliveries of an action that arrived after the receiver had answered one of
 * its deliveries with a 2xx (the answer was written to a live connection).
 */
function deliveredAfterSuccess(id) {
  const ds = deliveriesOf(id);
  const ok = ds.filter((d) => d.answer && d.answer.status >= 200 && d.answer.status < 300);
  if (ok.length === 0) return [];
  const first = Math.min(...ok.map((d) => d.answer.at));
  return ds.filter((d) => d.at > first);
}

// ---------------------------------------------------------------- the API

const state = { admin: "", basic: "", username: "" };
/** action uuid -> { label, operation, callAt } for every 202 */
const accepted = new Map();

function api(method, path, body) {
  return apiRequest(worker.base, method, path, { body, authorization: state.basic });
}

/** A service whose webhook target is /hook/<label>, with a REDEPLOY and a SCALEUP trigger. */
async function makeService(label, behaviour) {
  const url = `http://${HOST}:${receiver.port}/hook/${label}`;
  const created = await api("POST", "/api/app/v1/service/", {
    image: `e2e/${label}:latest`,
    name: label,
    target: { type: "webhook", url },
  });
  assert.equal(created.status, 201, created.text);
  const secret = created.json.target?.secret;
  assert.match(secret ?? "", /^whsec_/, created.text);
  receiver.routes.set(label, { secret, k: 0, skip: 0, mode: "ok", ...behaviour, seen: 0, open: 0, maxOpen: 0 });
  const triggers = {};
  for (const operation of ["REDEPLOY", "SCALEUP"]) {
    const t = await api("POST", `${created.json.resource_uri}trigger/`, { operation, rate_limit: 100_000 });
    assert.equal(t.status, 201, t.text);
    triggers[operation] = t.json;
  }
  return { label, service: created.json, triggers };
}

/** Calls a trigger with no credentials; the 202's action is recorded as accepted. */
async function call(svc, operation) {
  const res = await fetch(`${worker.base}${svc.triggers[operation].url}`, {
    method: "POST",
    body: JSON.stringify({ ref: "main" }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  assert.equal(res.status, 202, `${svc.label} ${operation}: ${text}`);
  const action = JSON.parse(text);
  if (!accepted.has(action.uuid)) accepted.set(action.uuid, { label: svc.label, operation, callAt: Date.now() });
  return action;
}

const FINISHED = new Set(["Success", "Failed", "Canceled"]);
const attemptLines = (logs) => logs.split("\n").filter((l) => / attempt \d+: /.test(l));

/** Polls the audit API until every action in `uuids` is finished; returns uuid -> action. */
async function waitFinished(uuids, timeoutMs, what) {
  const last = new Map();
  const lastLogs = new Map();
  await waitFor(
    what,
    async () => {
      for (const uuid of uuids) {
        if (FINISHED.has(last.get(uuid)?.state)) continue;
        const res = await api("GET", `/api/audit/v1/action/${uuid}/`);
        if (res.status === 200) last.set(uuid, res.json);
        if (res.status === 200 && !FINISHED.has(res.json.state)) {
          lastLogs.set(uuid, await actionLogs(worker.base, state.basic, res.json.resource_uri));
        }
      }
      return uuids.every((u) => FINISHED.has(last.get(u)?.state));
    },
    {
      timeoutMs,
      intervalMs: 500,
      describe: () => {
        const open = uuids.filter((u) => !FINISHED.has(last.get(u)?.state));
        return `${open.length} unfinished: ${open
          .slice(0, 5)
          .map((u) => `${u} ${last.get(u)?.state} [${lastLogs.get(u)?.replace(/\n/g, " | ")}]`)
          .join("; ")}`;
      },
    },
  );
  return last;
}

// ---------------------------------------------------------------- the tests

const run = failureTracker();
const step = run.step;

describe("webhook delivery under faults (wrangler dev, short retries, real receiver)", { timeout: 240_000 }, () => {
  before(async () => {
    try {
      await Promise.all([worker.start(), startReceiver()]);
      state.basic = (await createUserWithKey(worker.base, { label: "e2e-faults" })).basic;
    } catch (err) {
      run.failed = true;
      throw err;
    }
  });

  after(async () => {
    await Promise.allSettled([worker.stop(), stopReceiver()]);
    if (run.failed) {
      const notable = worker.output.filter((l) => /QUEUE|error|retrying|Reloading|server updated/i.test(l));
      console.error(`--- wrangler output: queue batches, errors, reloads ---\n${notable.slice(-80).join("\n")}`);
      console.error(`--- last wrangler output ---\n${worker.outputTail(40)}`);
    }
  });

  /** wrangler dev reloads the Worker when a source file changes: queued messages are lost then. */
  const reloads = () => worker.output.filter((l) => l.includes("Reloading local server")).length;

  // label -> { svc, redeploy, scaleup } of the fault scenarios
  const scenarios = {};

  step(
    "transient failures (500, hang, late answer, dropped connection) end Success with one log line per attempt; 400 fails after one delivery; always 500 fails after MAX_ATTEMPTS",
    async (t) => {
      const timedOut = new RegExp(`no answer within ${TARGET_TIMEOUT_MS} ms`);
      // Per service: the receiver's behaviour, and which of its two actions takes the faults. The
      // REDEPLOY is called first, the SCALEUP right after (it waits Pending: one action In progress
      // per service). "chain" services answer the REDEPLOY at once and fault the SCALEUP, which the
      // consumer that finished the REDEPLOY runs next (no queue round trip): its retries must follow
      // the same rules.
      const plan = {
        "flt-500": { mode: "fail500", k: 2, faulty: "redeploy", expect: /target answered 500/ },
        "flt-hang": { mode: "hang", k: 2, faulty: "redeploy", expect: timedOut },
        "flt-late": { mode: "late", k: 1, faulty: "redeploy", expect: timedOut },
        "flt-drop": { mode: "drop", k: 2, faulty: "redeploy", expect: /network error/ },
        "flt-400": { mode: "reject400", faulty: "redeploy" },
        "flt-dlq": { mode: "always500", faulty: "redeploy", only: "redeploy" },
        "flt-chain500": { mode: "fail500", skip: 1, k: 2, faulty: "scaleup", expect: /target answered 500/ },
        "flt-chaindlq": { mode: "always500", skip: 1, faulty: "scaleup" },
        "flt-ok": { mode: "ok" },
      };
      const started = Date.now();
      for (const [label, { mode, k = 0, skip = 0 }] of Object.entries(plan)) {
        scenarios[label] = { svc: await makeService(label, { mode, k, skip }) };
      }
      await Promise.all(
        Object.entries(scenarios).map(async ([label, s]) => {
          s.redeploy = await call(s.svc, "REDEPLOY");
          if (plan[label].only !== "redeploy") s.scaleup = await call(s.svc, "SCALEUP");
        }),
      );
      // A burst at the healthy service: SCALEUP calls each make an action, REDEPLOY calls join a pending one.
      const burst = await Promise.all(
        Array.from({ length: 12 }, (_, i) => call(scenarios["flt-ok"].svc, i % 2 ? "SCALEUP" : "REDEPLOY")),
      );
      const uuids = [...accepted.keys()];
      const actions = await waitFinished(uuids, FAULTS_TIMEOUT_MS, "every fault-scenario action to finish");
      const elapsed = Date.now() - started;

      const rows = {};
      for (const [label, s] of Object.entries(scenarios)) {
        for (const op of ["redeploy", "scaleup"]) {
          if (!s[op]) continue;
          const a = actions.get(s[op].uuid);
          const logs = await actionLogs(worker.base, state.basic, a.resource_uri);
          const lines = attemptLines(logs);
          const ds = deliveriesOf(a.uuid);
          rows[`${label} ${op}`] = { a, logs, lines, ds };
          const gaps = ds.slice(1).map((d, i) => d.at - ds[i].at);
          t.diagnostic(
            `${label} ${op}: ${a.state}, ${lines.length} attempt line(s), ${ds.length} verified deliveries` +
              `${gaps.length ? ` ${gaps.join(" / ")} ms apart` : ""}, call→end ${
                Date.parse(a.end_date) - Date.parse(a.start_date)
              } ms (1 s resolution)`,
          );
        }
      }
      t.diagnostic(
        `fault scenarios: ${uuids.length} actions, ${receiver.deliveries.length} verified deliveries, all finished ${elapsed} ms after the first call`,
      );

      // Every check runs; the failures are reported together.
      const problems = [];
      const check = (ok, message) => {
        if (!ok) problems.push(message);
      };
      const delayMs = (attempt) =>
        Math.min(RETRY_BASE_DELAY_SECONDS * 2 ** (attempt - 1), RETRY_MAX_DELAY_SECONDS) * 1000;

      for (const [label, spec] of Object.entries(plan)) {
        const { mode, k = 0, faulty, expect } = spec;
        for (const op of ["redeploy", "scaleup"]) {
          const r = rows[`${label} ${op}`];
          if (!r) continue;
          const { a, logs, lines, ds } = r;
          const what = `${label} ${op}`;
          const numbers = lines.map((l) => Number(/ attempt (\d+): /.exec(l)[1]));
          check(
            numbers.every((n, i) => n === i + 1),
            `${what}: attempt lines numbered ${numbers.join(",")}, not 1..n`,
          );
          check(lines.length === ds.length, `${what}: ${lines.length} attempt lines for ${ds.length} deliveries`);
          const gaps = ds.slice(1).map((d, i) => d.at - ds[i].at);

          if (op !== faulty) {
            // No fault for this one: one delivery, one attempt (a 400 service refuses both).
            const want = mode === "reject400" ? "Failed" : "Success";
            check(a.state === want, `${what}: ${a.state}, expected ${want} [${logs}]`);
            check(ds.length === 1 && lines.length === 1, `${what}: ${ds.length} deliveries, expected 1`);
          } else if (mode === "reject400") {
            check(a.state === "Failed", `${what}: ${a.state}, expected Failed [${logs}]`);
            check(ds.length === 1, `${what}: a permanent failure delivered ${ds.length} times, expected once`);
            check(/target answered 400/.test(lines[0] ?? ""), `${what}: ${lines[0]}`);
          } else if (mode === "always500") {
            check(a.state === "Failed", `${what}: ${a.state}, expected Failed [${logs}]`);
            check(
              ds.length === MAX_ATTEMPTS,
              `${what}: ${ds.length} deliveries before giving up, expected MAX_ATTEMPTS = ${MAX_ATTEMPTS}`,
            );
            check(
              new RegExp(`gave up after ${MAX_ATTEMPTS} attempt\\(s\\)`).test(logs),
              `${what}: no "gave up after ${MAX_ATTEMPTS} attempt(s)" line [${logs.split("\n").at(-1)}]`,
            );
            gaps.forEach((gap, i) => {
              // The delay doubles from RETRY_BASE_DELAY_SECONDS and stops at RETRY_MAX_DELAY_SECONDS. At most:
              // the delay, the batch timeout (1 s), slack.
              const least = delayMs(i + 1) - 100;
              const most = RETRY_MAX_DELAY_SECONDS * 1000 + TARGET_TIMEOUT_MS + 3_000;
              check(gap >= least, `${what}: attempt ${i + 2} came ${gap} ms after attempt ${i + 1}, < ${least}`);
              check(gap <= most, `${what}: attempt ${i + 2} came ${gap} ms after attempt ${i + 1}, > ${most}`);
            });
          } else {
            check(a.state === "Success", `${what}: ${a.state}, expected Success [${logs}]`);
            check(ds.length === k + 1, `${what}: ${ds.length} deliveries, expected ${k} failed + 1`);
            check(lines.length === logs.split("\n").length, `${what}: lines other than attempts [${logs}]`);
            lines.slice(0, k).forEach((line) => {
              check(expect.test(line), `${what}: ${line}`);
            });
            check(/target answered 200/.test(lines[k] ?? ""), `${what}: last attempt ${lines[k]}`);
            // Each retry waits its delay; after the timeout when the receiver hung.
            gaps.forEach((gap, i) => {
              const least = delayMs(i + 1) + (mode === "hang" || mode === "late" ? TARGET_TIMEOUT_MS : 0) - 100;
              check(gap >= least, `${what}: attempt ${i + 2} came ${gap} ms after attempt ${i + 1}, < ${least}`);
            });
          }
        }
        const first = rows[`${label} redeploy`];
        const second = rows[`${label} scaleup`];
        if (second && first.ds.length && second.ds.length) {
          check(second.ds[0].at >= first.ds.at(-1).at, `${label}: the SCALEUP was delivered before the REDEPLOY ended`);
        }
        check(receiver.routes.get(label).maxOpen === 1, `${label}: ${receiver.routes.get(label).maxOpen} at once`);
      }

      // The burst: REDEPLOY calls that found a pending REDEPLOY joined it; every action was delivered once.
      const burstIds = new Set(burst.map((a) => a.uuid));
      t.diagnostic(`burst at flt-ok: 12 calls → ${burstIds.size} distinct actions`);
      for (const id of burstIds) {
        check(actions.get(id)?.state === "Success", `burst action ${id}: ${actions.get(id)?.state}`);
        check(deliveriesOf(id).length === 1, `burst action ${id} delivered ${deliveriesOf(id).length} times`);
      }

      // Every accepted call was delivered and verified; nothing after a 2xx; no bad signature.
      const undelivered = uuids.filter((u) => deliveriesOf(u).length === 0);
      check(undelivered.length === 0, `never delivered: ${undelivered.join(", ")}`);
      const again = uuids.flatMap(deliveredAfterSuccess);
      check(again.length === 0, `delivered after a 2xx: ${again.map((d) => `${d.label} ${d.id}`).join(", ")}`);
      check(receiver.rejected.length === 0, `bad signatures: ${JSON.stringify(receiver.rejected)}`);

      if (reloads()) {
        t.diagnostic(`wrangler dev reloaded the Worker ${reloads()} time(s) during the run (a source file changed)`);
      }
      for (const p of problems) t.diagnostic(`FAILED: ${p}`);
      assert.deepEqual(problems, [], `${problems.length} check(s) failed`);
    },
    FAULTS_TIMEOUT_MS + 30_000,
  );
});
