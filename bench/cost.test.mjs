// The pricing arithmetic of bench/cost.mjs: node --test bench/cost.test.mjs
// The monthly cases are Cloudflare's own worked examples on the pricing pages of bench/price-list.mjs.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  billable,
  callsWithinAllowances,
  costPerMillion,
  costTable,
  monthlyBill,
  price,
  UNITS,
  unitsPerCall,
} from "./cost.mjs";
import { PRICE_LIST } from "./price-list.mjs";

const zero = Object.fromEntries(UNITS.map(([k]) => [k, 0]));
const close = (actual, expected, what) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`);

test("a million of each unit costs its published price", () => {
  const { usd, total_usd } = price(
    { ...zero, worker_requests: 1e6, do_requests: 1e6, rows_written: 1e6, queue_operations: 1e6, storage_gb_month: 1 },
    PRICE_LIST,
  );
  close(usd.worker_requests, 0.3, "Worker requests");
  close(usd.do_requests, 0.15, "Durable Object requests");
  close(usd.rows_written, 1.0, "rows written");
  close(usd.queue_operations, 0.4, "queue operations");
  close(usd.storage_gb_month, 0.2, "a GB-month");
  close(total_usd, 0.3 + 0.15 + 1.0 + 0.4 + 0.2, "total");
});

test("Workers example 1: 15 million requests at 7 ms of CPU each is $8.00 a month", () => {
  const bill = monthlyBill({ ...zero, worker_requests: 1, worker_cpu_ms: 7 }, 500_000, 90, PRICE_LIST);
  close(bill.usd.worker_requests, 1.5, "requests");
  close(bill.usd.worker_cpu_ms, 1.5, "CPU");
  close(bill.total_usd, 8, "total with the plan");
});

test("Queues example: a million messages a day, written, read and deleted, is $35.60 a month", () => {
  const bill = monthlyBill({ ...zero, queue_operations: 3 }, 1_000_000, 90, PRICE_LIST);
  close(bill.usd.queue_operations, 35.6, "operations");
});

test("Durable Objects example 1: 1.5 million requests and 1,000,000 s active cost the requests only", () => {
  const perCall = { ...zero, do_requests: 1, do_gb_s: (1_000_000 / 1_500_000) * 0.128 };
  const bill = monthlyBill(perCall, 50_000, 90, PRICE_LIST);
  close(bill.usd.do_requests, 0.075, "requests past the million included");
  close(bill.usd.do_gb_s, 0, "128,000 GB-s is within the 400,000 included");
});

test("storage: a call's bytes kept for the retention, at steady state", () => {
  // 1,000 bytes a call, 90 days: a call is 1e-6 GB for 3 months.
  const perCall = unitsPerCall(workload({ database_size_after: 1_000_000 }), PRICE_LIST, 90);
  close(perCall.storage_gb_month, 3e-6, "GB-month per call");
  close(costPerMillion(perCall, PRICE_LIST).usd.storage_gb_month, 0.6, "per million calls");
  // A million calls a day: 90 GB held, 85 GB-month past the 5 included.
  close(monthlyBill(perCall, 1_000_000, 90, PRICE_LIST).usd.storage_gb_month, 17, "a month at a million a day");
});

test("WebSocket messages bill at 20:1; RPC calls, fetches and alarms at one each", () => {
  const b = billable(
    counters({ "rpc:callTrigger": 3, "rpc:beginAttempts": 1, fetch: 1, alarm: 2, websocket_message: 40 }),
    PRICE_LIST,
  );
  assert.equal(b.do_requests, 3 + 1 + 1 + 2 + 2);
  assert.equal(b.events.rpc, 4);
});

test("a workload's sweep adds to its calls' units", () => {
  const w = workload({ calls: 2 });
  w.sweep = { ran: true, retention_days: 90, workerd_cpu_ms: 2, counters: counters({ alarm: 1 }, 6) };
  const perCall = unitsPerCall(w, PRICE_LIST, 90);
  assert.equal(perCall.do_requests, (2 + 1) / 2);
  assert.equal(perCall.rows_written, (4 + 6) / 2);
  assert.equal(perCall.worker_cpu_ms, (10 + 2) / 2);
});

test("the table has a line per unit and a total", () => {
  const cost = costPerMillion(unitsPerCall(workload({}), PRICE_LIST, 90), PRICE_LIST);
  const lines = costTable({ webhook: cost, agent: cost });
  assert.equal(lines.length, 2 + UNITS.length + 1);
  assert.match(lines.at(-1), /total/);
});

function counters(events, rowsWritten = 4) {
  return {
    worker: { fetch: 1, queue_batches: 0 },
    queue: { write_ops: 0, read_ops: 0, delete_ops: 0 },
    objects: [{ cls: "NamespaceObject", events, active_ms: 10 }],
    statements: [{ sql: "INSERT", execs: 1, rowsRead: 1, rowsWritten }],
  };
}

function workload({ calls = 1000, database_size_after = 0 }) {
  return {
    calls,
    workerd_cpu_ms: 10,
    database_size_before: 0,
    database_size_after,
    counters: counters({ "rpc:callTrigger": calls }),
  };
}

test("the allowances cover calls until the first unit runs out", () => {
  // 3 queue operations a call: the 1,000,000 included last 333,333 calls; 40 rows written, 1,250,000.
  const within = callsWithinAllowances({ ...zero, queue_operations: 3, rows_written: 40 }, PRICE_LIST);
  assert.deepEqual(within, { calls_per_month: 333_333, first_exhausted: "queue_operations" });
});
