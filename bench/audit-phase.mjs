// The audit phase of `npm run bench`: the action list at a million actions against a thousand, and
// retention deleting half a million of them.
//
//   auditPhase({ root, size, small, samples, budgetMs }) → Promise<{ audit }>
//
// Arguments (all but `root` optional):
//   root      the repository's root (bench/run.mjs's ROOT): the Worker is built from it.
//   size      actions of the large namespace (1,000,000).
//   small     actions of the small namespace it is compared with (1,000).
//   samples   timed requests per list query and namespace (200, after 20 to warm up).
//   budgetMs  how long retention may run before the phase stops waiting and reports what it saw,
//             with the time the whole would take projected from it (120,000); the phase as a whole
//             then stays under three minutes.
//
// It starts a Worker of its own (bench/runtime.mjs) with state in a temporary folder, and removes
// both when it returns or throws; bench/run.mjs's Worker is not touched. The actions are written
// straight into the namespaces' Durable Object SQLite files, not through the API: the Worker
// creates the two users (so their objects exist, migrated), stops, node:sqlite (Node 22) inserts
// the rows with one INSERT ... SELECT per table into each object's file (the schema's triggers keep
// the list totals as they would), and the Worker starts again on the same folder.
//
// The large namespace's actions started over the last 80 days, evenly, and each ended 800 ms
// later: 80 % Success, 10 % Failed, 10 % Canceled, two log lines each, over 20 services; the 100
// newest are still Pending. The small one is the same at its size.
//
// Returns { audit } with:
//   fill_s                 time to write both namespaces' rows
//   actions                { large, small }
//   list                   per query (first page, uuid, state=Failed, state=Pending, object,
//                          start_date__gte, start_date__lte, a start date range; 25 objects a page):
//                          { small: { p50_ms, p99_ms }, large: { p50_ms, p99_ms }, p50_ratio, p99_ratio }
//   prune                  retention set to 40 days on the large namespace (so about half of its
//                          actions are due), run by the object's own alarm while a client reads the
//                          list's first page back to back:
//                          { due, removed, remaining, finished, seconds, removed_per_s, total_s,
//                            passes, actions_per_pass, pass_interval_ms, pass_hold_ms: { p50, p99, max },
//                            longest_hold_ms, probe, baseline }
//                          total_s is the time to remove every due action: measured when `finished`,
//                          else projected from removed_per_s. pass_hold_ms is how long each pass held
//                          the object: the probe that arrives as a pass starts waits for all of it, so
//                          the slowest `passes` probes, less the median probe before retention began,
//                          are the holds; longest_hold_ms is the longest.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { percentile } from "./agent-phase.mjs";
import { startWorker } from "./runtime.mjs";

const DAY = 86_400_000;
const SERVICES = 20;
const PENDING = 100;
const SPAN_DAYS = 80;
const RETENTION_DAYS = 40;

const serviceUuid = (s) => `00000000-0000-4000-8000-${s.toString(16).padStart(12, "0")}`;
const objectOf = (ns, s) => `/api/app/v1/${ns}/service/${serviceUuid(s)}/`;

async function request(base, method, path, auth, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: auth, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`bench: ${method} ${path} → ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

/** Users and keys made through the API, so their objects exist with every migration applied. */
async function createUsers(worker, names) {
  const admin = `Bearer ${worker.adminToken}`;
  const auth = {};
  for (const name of names) {
    await request(worker.url, "POST", "/api/admin/v1/user/", admin, { username: name });
    const { key } = await request(worker.url, "POST", `/api/admin/v1/user/${name}/apikey/`, admin, { label: "bench" });
    auth[name] = `Basic ${Buffer.from(`${name}:${key}`).toString("base64")}`;
  }
  return auth;
}

/** The SQLite file of each namespace's object, by namespace name (read from the file itself). */
function namespaceFiles(DatabaseSync, state) {
  const dir = join(
    state,
    "do",
    readdirSync(join(state, "do")).find((d) => d.endsWith("-NamespaceObject")),
  );
  const files = {};
  for (const f of readdirSync(dir).filter((n) => /^[0-9a-f]{64}\.sqlite$/.test(n))) {
    const db = new DatabaseSync(join(dir, f));
    const row = db.prepare("SELECT name FROM namespace WHERE id = 1").get();
    db.close();
    if (row) files[row.name] = join(dir, f);
  }
  return files;
}

/** Writes `count` actions and their logs into a stopped object's file; returns a uuid from the middle. */
function fill(DatabaseSync, file, ns, count, now) {
  const db = new DatabaseSync(file);
  const first = now - SPAN_DAYS * DAY;
  const step = (SPAN_DAYS * DAY) / count;
  db.exec("BEGIN");
  db.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
     INSERT INTO actions (uuid, service_uuid, object, kind, method, path, start_at, end_at, state, is_user_action,
       dispatch, touched_at, log_lines, log_bytes)
     SELECT lower(printf('%s-%s-4%s-8%s-%s', hex(randomblob(4)), hex(randomblob(2)), substr(hex(randomblob(2)), 2),
              substr(hex(randomblob(2)), 2), hex(randomblob(6)))),
       printf('00000000-0000-4000-8000-%012x', i % ${SERVICES}),
       printf('/api/app/v1/%s/service/00000000-0000-4000-8000-%012x/', ?, i % ${SERVICES}),
       'redeploy', 'POST', '/api/app/v1/service/…/trigger/…/call/',
       CAST(? + i * ? AS INTEGER),
       CASE WHEN i >= ? - ${PENDING} THEN NULL ELSE CAST(? + i * ? AS INTEGER) + 800 END,
       CASE WHEN i >= ? - ${PENDING} THEN 'Pending' WHEN i % 10 = 0 THEN 'Failed' WHEN i % 10 = 1 THEN 'Canceled'
         ELSE 'Success' END,
       0,
       CASE WHEN i >= ? - ${PENDING} THEN 'waiting' ELSE 'done' END,
       CAST(? + i * ? AS INTEGER) + 800, 2, 96
     FROM n`,
  ).run(count, ns, first, step, count, first, step, count, count, first, step);
  for (const [n, text] of [
    [1, "redeploy requested by trigger 'ci' (POST)"],
    [2, "the target answered 200 OK in 212 ms"],
  ]) {
    db.prepare("INSERT INTO action_logs (action_uuid, n, line) SELECT uuid, ?, ? FROM actions").run(
      n,
      JSON.stringify(`2026-12-01T10:00:00.000Z ${text}`),
    );
  }
  db.exec("COMMIT");
  const middle = db.prepare("SELECT uuid FROM actions WHERE seq = (SELECT MAX(seq) / 2 FROM actions)").get().uuid;
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  return middle;
}

/** Milliseconds of one GET, body read. */
async function timed(url, auth) {
  const start = performance.now();
  const res = await fetch(url, { headers: { authorization: auth } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`bench: GET ${url} → ${res.status} ${body.slice(0, 200)}`);
  return { ms: performance.now() - start, body };
}

async function latencies(url, auth, samples) {
  for (let i = 0; i < 20; i++) await timed(url, auth);
  const ms = [];
  for (let i = 0; i < samples; i++) ms.push((await timed(url, auth)).ms);
  return { p50_ms: percentile(ms, 50), p99_ms: percentile(ms, 99) };
}

/** The list queries the clients make, for a namespace whose actions started from `first` over SPAN_DAYS. */
function queries(ns, first, middleUuid) {
  const at = (fraction) => Math.floor((first + fraction * SPAN_DAYS * DAY) / 1000);
  return {
    "first page": "",
    uuid: `uuid=${middleUuid}`,
    "state=Failed": "state=Failed",
    "state=Pending": "state=Pending",
    object: `object=${encodeURIComponent(objectOf(ns, 3))}`,
    start_date__gte: `start_date__gte=${at(0.5)}`,
    start_date__lte: `start_date__lte=${at(0.5)}`,
    "start date range": `start_date__gte=${at(0.4)}&start_date__lte=${at(0.6)}`,
  };
}

/** The pass bounds and pause of retention.ts, read from its source so the figures cannot drift from it. */
function retentionConstants(root) {
  const src = readFileSync(join(root, "src/durable-objects/namespace/retention.ts"), "utf8");
  const number = (re) => Number(re.exec(src)?.[1]?.replace(/_/g, "") ?? Number.NaN);
  return { actionsPerPass: number(/actionsPerPass: ([\d_]+)/), passIntervalMs: number(/NEXT_PASS_MS = ([\d_]+)/) };
}

/**
 * Retention set to RETENTION_DAYS on the large namespace, run by its own alarm while a client
 * reads the list's first page back to back (a probe takes about a millisecond). Each pass holds
 * the object; the probe that arrives as it starts waits for all of it, so the slowest `passes`
 * probes, less the median probe before retention began, are the passes' holds.
 */
async function prune(worker, ns, auth, fillAt, size, { actionsPerPass, passIntervalMs }, budgetMs) {
  const probeUrl = `${worker.url}/api/audit/v1/action/?limit=1`;
  const total = async () => JSON.parse((await timed(probeUrl, auth)).body).meta.total_count;
  const before = [];
  for (let i = 0; i < 200; i++) before.push((await timed(probeUrl, auth)).ms);
  const baseline = percentile(before, 50);
  const start = performance.now();
  const cutoff = Date.now() - RETENTION_DAYS * DAY;
  await request(worker.url, "PATCH", `/api/admin/v1/user/${ns}/`, `Bearer ${worker.adminToken}`, {
    action_retention_days: RETENTION_DAYS,
  });
  // Actions i < size - PENDING ended at first + i * step + 800 (see fill).
  const first = fillAt - SPAN_DAYS * DAY;
  const due = Math.min(size - PENDING, Math.ceil((cutoff - 800 - first) / ((SPAN_DAYS * DAY) / size)));
  const probes = [];
  let last = size;
  let lastChange = start;
  let finished = false;
  while (performance.now() - start < budgetMs) {
    const { ms, body } = await timed(probeUrl, auth);
    probes.push(ms);
    const now = JSON.parse(body).meta.total_count;
    if (now !== last) [last, lastChange] = [now, performance.now()];
    // Done once the total has stood still for ten pauses between passes.
    if (last < size && performance.now() - lastChange > 10 * passIntervalMs) {
      finished = true;
      break;
    }
  }
  const removed = size - (await total());
  const passes = Math.ceil(removed / actionsPerPass);
  const seconds = (lastChange - start) / 1000;
  const holds = [...probes]
    .sort((a, b) => b - a)
    .slice(0, passes)
    .map((ms) => Math.max(0, ms - baseline));
  return {
    due,
    removed,
    remaining: size - removed,
    finished,
    seconds,
    removed_per_s: removed / seconds,
    total_s: finished ? seconds : due / (removed / seconds),
    passes,
    actions_per_pass: actionsPerPass,
    pass_interval_ms: passIntervalMs,
    pass_hold_ms: { p50: percentile(holds, 50), p99: percentile(holds, 99), max: percentile(holds, 100) },
    longest_hold_ms: percentile(holds, 100),
    probe: {
      samples: probes.length,
      p50_ms: percentile(probes, 50),
      p99_ms: percentile(probes, 99),
      max_ms: percentile(probes, 100),
      over_50_ms: probes.filter((ms) => ms > 50).length,
    },
    baseline: { samples: before.length, p50_ms: baseline, p99_ms: percentile(before, 99) },
  };
}

export async function auditPhase({ root, size = 1_000_000, small = 1_000, samples = 200, budgetMs = 120_000 }) {
  const { DatabaseSync } = await import("node:sqlite");
  const tmp = mkdtempSync(join(tmpdir(), "triggers-audit-"));
  const names = { large: "auditlarge", small: "auditsmall" };
  let worker;
  try {
    worker = await startWorker({ root, tmp });
    const auth = await createUsers(worker, Object.values(names));
    await worker.mf.dispose();
    worker = undefined;

    const now = Date.now();
    const fillStart = performance.now();
    const files = namespaceFiles(DatabaseSync, join(tmp, "state"));
    const middle = {
      large: fill(DatabaseSync, files[names.large], names.large, size, now),
      small: fill(DatabaseSync, files[names.small], names.small, small, now),
    };
    const fill_s = (performance.now() - fillStart) / 1000;

    worker = await startWorker({ root, tmp });
    const list = {};
    const first = now - SPAN_DAYS * DAY;
    for (const label of Object.keys(queries("", first, ""))) {
      const row = {};
      for (const which of ["small", "large"]) {
        const q = queries(names[which], first, middle[which])[label];
        const url = `${worker.url}/api/audit/v1/action/${q ? `?${q}` : ""}`;
        row[which] = await latencies(url, auth[names[which]], samples);
      }
      row.p50_ratio = row.large.p50_ms / row.small.p50_ms;
      row.p99_ratio = row.large.p99_ms / row.small.p99_ms;
      list[label] = row;
    }
    const constants = retentionConstants(root);
    const pruned = await prune(worker, names.large, auth[names.large], now, size, constants, budgetMs);
    return { audit: { fill_s, actions: { large: size, small }, list, prune: pruned } };
  } finally {
    await worker?.mf.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const fmt = (n, digits = 1) => (n === null || n === undefined ? "-" : Number(n).toFixed(digits));

/** The audit phase's figures, for the bench's report: the list at size against small, and retention's passes. */
export function auditLines(audit) {
  const { large, small } = audit.actions;
  const lines = [`action list at ${large} actions against ${small} (p50 / p99 ms):`];
  for (const [query, r] of Object.entries(audit.list)) {
    lines.push(
      `  ${query}: ${fmt(r.small.p50_ms)} / ${fmt(r.small.p99_ms)} → ${fmt(r.large.p50_ms)} / ${fmt(r.large.p99_ms)} (p50 × ${fmt(r.p50_ratio)})`,
    );
  }
  const p = audit.prune;
  lines.push(
    `retention: ${p.removed} of ${p.due} due removed in ${fmt(p.seconds, 0)} s (${fmt(p.removed_per_s, 0)}/s, ` +
      `${p.passes} passes); each pass held the object p50 ${fmt(p.pass_hold_ms.p50)} ms, p99 ${fmt(p.pass_hold_ms.p99)} ms, max ${fmt(p.pass_hold_ms.max)} ms`,
  );
  return lines;
}
