// What the call path costs on Cloudflare, from what the counting phase counted
// (bench/instrumented/count-phase.mjs) and the published prices (bench/price-list.mjs). Pure
// functions: counters in, units and dollars out.
//
// Per accepted call, each unit is:
//   worker_requests   counted: Worker fetches + queue consumer invocations (batches)
//   worker_cpu_ms     measured: the workerd process's CPU time over the workload ÷ calls; an upper bound
//                     (it holds the objects' CPU, billed as duration instead, the runtime's own work, and
//                     the loopback HTTP of the bench and the webhook receiver)
//   do_requests       counted: RPC calls + fetches + alarms + incoming WebSocket messages ÷ 20
//   do_gb_s           measured: the objects' active wall time (events until settled and committed) × 128 MB
//   rows_read         counted: the cursors' rowsRead
//   rows_written      counted: the cursors' rowsWritten, and one per setAlarm()
//   storage_gb_month  estimated: database growth per call (databaseSize) × retention days ÷ 30, in 10^9 bytes
//   queue_operations  counted: messages written, read and deleted, per 64 KB (retries read again)
// The retention's sweep of the workload's actions (run by the bench with the clock past the
// retention) is added to the workload: its alarms, rows and duration are part of what a call costs.

export const UNITS = [
  ["worker_requests", "Worker requests", "workers", "requests_usd_per_million"],
  ["worker_cpu_ms", "Worker CPU ms (upper bound)", "workers", "cpu_ms_usd_per_million"],
  ["do_requests", "Durable Object requests", "durable_objects", "requests_usd_per_million"],
  ["do_gb_s", "Durable Object duration, GB-s", "durable_objects", "gb_s_usd_per_million"],
  ["rows_read", "SQLite rows read", "durable_objects", "rows_read_usd_per_million"],
  ["rows_written", "SQLite rows written", "durable_objects", "rows_written_usd_per_million"],
  ["storage_gb_month", "SQLite storage, GB-month (retention)", "durable_objects", "stored_gb_month_usd"],
  ["queue_operations", "Queue operations", "queues", "operations_usd_per_million"],
];

const MONTH_DAYS = 30;
const GB = 1e9;
const MILLION = 1e6;

const sum = (list, f) => list.reduce((n, x) => n + f(x), 0);

/** The objects' events of a counters snapshot by kind (rpc:<method>, alarm, websocket_message, ...). */
export function eventsByKind(counters) {
  const events = {};
  for (const o of counters.objects)
    for (const [kind, n] of Object.entries(o.events)) events[kind] = (events[kind] ?? 0) + n;
  return events;
}

/** A counters snapshot (meter.ts) summed into what is billed, with the objects' events by kind. */
export function billable(counters, priceList) {
  const events = {};
  for (const o of counters.objects) {
    for (const [kind, n] of Object.entries(o.events)) {
      const k = kind.startsWith("rpc:") ? "rpc" : kind;
      events[k] = (events[k] ?? 0) + n;
    }
  }
  const wsMessages = events.websocket_message ?? 0;
  const q = counters.queue;
  return {
    worker_requests: counters.worker.fetch + counters.worker.queue_batches,
    do_requests:
      (events.rpc ?? 0) +
      (events.fetch ?? 0) +
      (events.alarm ?? 0) +
      wsMessages / priceList.durable_objects.websocket_messages_per_request,
    do_active_ms: sum(counters.objects, (o) => o.active_ms),
    rows_read: sum(counters.statements, (s) => s.rowsRead),
    rows_written: sum(counters.statements, (s) => s.rowsWritten),
    queue_operations: q.write_ops + q.read_ops + q.delete_ops,
    events,
  };
}

/**
 * What one accepted call costs, in units: a workload of the counting phase (its counters, its
 * sweep's, its CPU time and database growth) divided by its accepted calls. `retentionDays`: how
 * long an action is stored (the product's setting, as the sweep read it).
 */
export function unitsPerCall(workload, priceList, retentionDays) {
  const calls = workload.calls;
  const main = billable(workload.counters, priceList);
  const sweep = workload.sweep?.ran ? billable(workload.sweep.counters, priceList) : null;
  const both = (k) => (main[k] + (sweep?.[k] ?? 0)) / calls;
  const bytesPerCall = (workload.database_size_after - workload.database_size_before) / calls;
  return {
    worker_requests: both("worker_requests"),
    worker_cpu_ms: (workload.workerd_cpu_ms + (workload.sweep?.workerd_cpu_ms ?? 0)) / calls,
    do_requests: both("do_requests"),
    do_gb_s: (both("do_active_ms") / 1000) * priceList.durable_objects.memory_gb,
    rows_read: both("rows_read"),
    rows_written: both("rows_written"),
    storage_gb_month: (Math.max(0, bytesPerCall) / GB) * (retentionDays / MONTH_DAYS),
    queue_operations: both("queue_operations"),
  };
}

const rate = (priceList, group, key) => priceList[group][key];

/** USD per kind and in total for the given units (per million calls: the units of a million calls). */
export function price(units, priceList) {
  const usd = {};
  for (const [key, , group, priceKey] of UNITS) {
    const r = rate(priceList, group, priceKey);
    // Storage is priced per GB-month; everything else per million units.
    usd[key] = key === "storage_gb_month" ? units[key] * r : (units[key] / MILLION) * r;
  }
  return { usd, total_usd: sum(Object.values(usd), (v) => v) };
}

/** Cost per 1,000,000 accepted calls: units and USD per kind, and the total (free allowances left out). */
export function costPerMillion(perCall, priceList) {
  const units = Object.fromEntries(Object.entries(perCall).map(([k, v]) => [k, v * MILLION]));
  return { units, ...price(units, priceList) };
}

/**
 * The monthly bill at `callsPerDay` (30-day month), steady state: storage holds `retentionDays` of
 * actions; the plan's allowances are taken off each unit and its minimum charge applies.
 */
/** The plan's monthly allowance of each unit. */
export function allowances(priceList) {
  const w = priceList.workers.included;
  const d = priceList.durable_objects.included;
  return {
    worker_requests: w.requests,
    worker_cpu_ms: w.cpu_ms,
    do_requests: d.requests,
    do_gb_s: d.gb_s,
    rows_read: d.rows_read,
    rows_written: d.rows_written,
    storage_gb_month: d.gb,
    queue_operations: priceList.queues.included.operations,
  };
}

/** How many calls a month the plan's allowances cover (storage at steady state), and which runs out first. */
export function callsWithinAllowances(perCall, priceList) {
  const allowance = allowances(priceList);
  let best = { calls_per_month: Number.POSITIVE_INFINITY, first_exhausted: null };
  for (const [key] of UNITS) {
    const calls = perCall[key] > 0 ? allowance[key] / perCall[key] : Number.POSITIVE_INFINITY;
    if (calls < best.calls_per_month) best = { calls_per_month: Math.floor(calls), first_exhausted: key };
  }
  return best;
}

export function monthlyBill(perCall, callsPerDay, retentionDays, priceList) {
  const calls = callsPerDay * MONTH_DAYS;
  const allowance = allowances(priceList);
  const units = {};
  for (const [key] of UNITS) {
    // perCall's storage is GB-month per call: a month of calls, each kept for the retention, is the steady state.
    units[key] = Math.max(0, perCall[key] * calls - allowance[key]);
  }
  const { usd, total_usd } = price(units, priceList);
  return {
    calls_per_day: callsPerDay,
    calls_per_month: calls,
    retention_days: retentionDays,
    billed_units: units,
    usd,
    usage_usd: total_usd,
    total_usd: total_usd + priceList.plan_minimum_usd_per_month,
  };
}

/** The statements that write most, per call: where the rows written go. */
export function topStatements(counters, calls, n = 8) {
  return [...counters.statements]
    .sort((a, b) => b.rowsWritten - a.rowsWritten || b.rowsRead - a.rowsRead)
    .slice(0, n)
    .map((s) => ({
      sql: s.sql.slice(0, 100),
      execs_per_call: s.execs / calls,
      rows_written_per_call: s.rowsWritten / calls,
      rows_read_per_call: s.rowsRead / calls,
    }));
}

/** How each unit was obtained, as results.json says it. */
export const METHOD = {
  counted:
    "Worker requests (fetches, queue batches), Durable Object requests (RPC calls, fetches, alarms, WebSocket messages ÷ 20), SQLite rows read/written (cursor counters, setAlarm = 1 row written), queue operations (per 64 KB written/read/deleted): instrumented bench build (bench/instrumented/), the product's code unchanged",
  measured:
    "Worker CPU: the workerd process's utime+stime over the workload ÷ calls, an upper bound (includes the objects' CPU, the runtime's own work and the loopback HTTP); Durable Object duration: the objects' active wall time (event start until settled and committed, overlaps once) × 128 MB",
  estimated:
    "storage: databaseSize growth per call × retention days ÷ 30 (GB = 10^9 bytes); the retention's deletes: the product's sweep run with the clock past the retention, once per workload",
  not_counted:
    "included allowances (see monthly); WebSocket closes; outgoing WebSocket messages and auto-responded pings (free); the retention's daily look at a namespace (per namespace, not per call)",
};

/** The counting phase's result priced: per target, units and USD per million calls, and a monthly bill at `callsPerDay`. */
export function costReport(counted, priceList, { callsPerDay }) {
  const report = {
    price_list: { read_on: priceList.read_on, plan: priceList.plan, sources: priceList.sources },
    method: METHOD,
    settings: counted.settings,
  };
  for (const target of ["webhook", "agent"]) {
    const w = counted[target];
    const retentionDays = w.sweep?.retention_days ?? 90;
    const perCall = unitsPerCall(w, priceList, retentionDays);
    const events = eventsByKind(w.counters);
    report[target] = {
      ...costPerMillion(perCall, priceList),
      per_call: perCall,
      counted: {
        calls: w.calls,
        actions: w.actions,
        failed: w.failed,
        wall_s: w.wall_s,
        alarms_left: w.alarms_left,
        bytes_per_call: (w.database_size_after - w.database_size_before) / w.calls,
        object_events_per_call: Object.fromEntries(Object.entries(events).map(([k, n]) => [k, n / w.calls])),
        queue: w.counters.queue,
        worker: w.counters.worker,
        sweep: w.sweep && { ...w.sweep, counters: undefined },
      },
      top_statements: topStatements(w.counters, w.calls, 20),
      sweep_statements: w.sweep?.ran ? topStatements(w.sweep.counters, w.calls, 6) : [],
      monthly: monthlyBill(perCall, callsPerDay, retentionDays, priceList),
      within_allowances: callsWithinAllowances(perCall, priceList),
    };
  }
  return report;
}

const num = (v) =>
  v >= 100 ? Math.round(v).toLocaleString("en-US") : v >= 1 ? v.toFixed(2) : v === 0 ? "0" : v.toPrecision(2);
const usd = (v) => (v >= 1 ? `$${v.toFixed(2)}` : `$${v.toFixed(4)}`);

/** A markdown table of costs per million calls, one pair of columns per target (`{ webhook: cost, ... }`). */
export function costTable(costs) {
  const targets = Object.keys(costs);
  const lines = [
    `| per 1,000,000 accepted calls | ${targets.map((t) => `${t}: units | ${t}: USD`).join(" | ")} |`,
    `|---|${targets.map(() => "---:|---:").join("|")}|`,
  ];
  for (const [key, label] of UNITS) {
    lines.push(
      `| ${label} | ${targets.map((t) => `${num(costs[t].units[key])} | ${usd(costs[t].usd[key])}`).join(" | ")} |`,
    );
  }
  lines.push(`| **total** | ${targets.map((t) => ` | **${usd(costs[t].total_usd)}**`).join(" | ")} |`);
  return lines;
}

/** The bill as `npm run bench` prints it: the table, and the monthly bill of each target at its volume. */
export function costLines(report) {
  const lines = [`what it costs (Cloudflare's prices of ${report.price_list.read_on}, free allowances left out):`, ""];
  lines.push(...costTable({ webhook: report.webhook, agent: report.agent }), "");
  for (const target of ["webhook", "agent"]) {
    const m = report[target].monthly;
    lines.push(
      `${target} targets at ${m.calls_per_day.toLocaleString("en-US")} calls a day: $${m.total_usd.toFixed(2)} a month ` +
        `(the plan's $5 and $${m.usage_usd.toFixed(2)} past its allowances, ${m.retention_days} days of actions stored); ` +
        `the allowances cover ${report[target].within_allowances.calls_per_month.toLocaleString("en-US")} calls a month ` +
        `(${report[target].within_allowances.first_exhausted} first)`,
    );
  }
  return lines;
}
