/**
 * A model of retention (src/durable-objects/namespace/retention.ts) held to
 * the real object, with fast-check: random actions (every state, ages either
 * side of the retention, log lines, idempotency keys fresh or expired, open
 * retries that wait on finished actions, agent job rows), a random namespace
 * setting, then random passes at increasing times with small random bounds,
 * and restarts of the object between them. After every pass the object's
 * tables are exactly what they were, less the rows of the actions the model
 * says that pass deletes (the eligible ones, oldest end first, within the
 * bounds), and the list totals kept by triggers (in all, per state, per
 * object, per hour of start) equal a recount.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { NamespaceObject } from "../src/durable-objects/namespace";
import { type PassResult, Retention, type RetentionLimits } from "../src/durable-objects/namespace/retention";
import { createUser } from "./helpers/api";
import { type Dump, diffSnapshots, summarize } from "./helpers/bad-input";

const NUM_RUNS = 40;
const DAY = 86_400_000;
const HOUR = 3_600_000;
const WORKER_DAYS = 90;
/** Far ahead of the real clock, so the object's own alarm never prunes what the model holds. */
const T0 = Date.now() + 10 * 365 * DAY;
const STATES = ["Pending", "In progress", "Canceling", "Success", "Failed", "Canceled"] as const;
const FINISHED = new Set(["Success", "Failed", "Canceled"]);
const OPEN = new Set(["Pending", "In progress"]);

type Stub = DurableObjectStub<NamespaceObject>;
type ModelAction = {
  state: (typeof STATES)[number];
  /** Hours before T0 it ended (started, for an unfinished one). */
  hoursAgo: number;
  logs: number;
  /** Index of the action it retries (taken modulo the count), or null. */
  retryOf: number | null;
  /** An idempotency key pointing at it, created this many hours after T0 (negative: before), or null. */
  keyAt: number | null;
  job: boolean;
};
type Step =
  | { t: "pass"; advanceHours: number; limits: RetentionLimits }
  /** A pass exactly when an action comes due or its key expires, give or take a millisecond. */
  | { t: "edge"; pick: number; deltaMs: number; limits: RetentionLimits }
  | { t: "restart" };

const action = fc.record<ModelAction>({
  state: fc.constantFrom(...STATES),
  hoursAgo: fc.oneof(fc.integer({ min: 0, max: 200 * 24 }), fc.integer({ min: 88 * 24, max: 92 * 24 })),
  logs: fc.nat(4),
  retryOf: fc.option(fc.nat(), { freq: 3 }),
  keyAt: fc.option(fc.integer({ min: -200 * 24, max: 200 * 24 }), { freq: 2 }),
  job: fc.boolean(),
});
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant("pass" as const),
      advanceHours: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 48 }), fc.integer({ min: 1, max: 120 * 24 })),
      limits: fc.record({
        actionsPerPass: fc.integer({ min: 1, max: 6 }),
        rowsPerPass: fc.integer({ min: 1, max: 15 }),
      }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant("edge" as const),
      pick: fc.nat(),
      deltaMs: fc.constantFrom(-1, 0, 1),
      limits: fc.constant({ actionsPerPass: 30, rowsPerPass: 1_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant<Step>({ t: "restart" }) },
);
/** The namespace's own setting: none, shorter, or longer than the Worker's (kept, but it cannot lengthen). */
const setting = fc.option(fc.integer({ min: 1, max: 120 }), { freq: 2 });

type Row = { uuid: string; seq: number; end: number | null; m: ModelAction; retryOf: string | null };

/** Writes the model's actions into the object; returns them as rows. */
async function seed(stub: Stub, actions: ModelAction[], days: number | null): Promise<Row[]> {
  return runInDurableObject(stub, (_o: NamespaceObject, state) => {
    const sql = state.storage.sql;
    sql.exec("UPDATE namespace SET action_retention_days = ? WHERE id = 1", days);
    const uuids = actions.map(() => crypto.randomUUID());
    return actions.map((m, i): Row => {
      const finished = FINISHED.has(m.state);
      const at = T0 - m.hoursAgo * HOUR + i; // distinct ends: the order of a pass is the model's
      const retryOf =
        m.retryOf === null || actions.length < 2
          ? null
          : (uuids[(i + 1 + (m.retryOf % (actions.length - 1))) % actions.length] as string);
      const uuid = uuids[i] as string;
      const { seq } = sql
        .exec<{ seq: number }>(
          `INSERT INTO actions (uuid, service_uuid, object, kind, method, path, start_at, end_at, state, is_user_action,
             dispatch, touched_at, log_lines, log_bytes, retry_of)
           VALUES (?, 's', ?, 'redeploy', 'POST', '/model', ?, ?, ?, 0, ?, ?, ?, 0, ?) RETURNING seq`,
          uuid,
          `/o/${i % 3}/`,
          at - 1000,
          finished ? at : null,
          m.state,
          finished ? "done" : "waiting",
          at,
          m.logs,
          retryOf,
        )
        .one();
      for (let n = 1; n <= m.logs; n++) sql.exec("INSERT INTO action_logs VALUES (?, ?, ?)", uuid, n, `line ${n}`);
      if (m.keyAt !== null) {
        sql.exec("INSERT INTO idempotency_keys VALUES ('t', ?, ?, ?)", `k${i}`, uuid, T0 + m.keyAt * HOUR);
      }
      if (m.job) sql.exec("INSERT INTO agent_jobs (action_uuid, agent_uuid) VALUES (?, 'a')", uuid);
      return { uuid, seq, end: finished ? at : null, m, retryOf };
    });
  });
}

/** What a pass at `now` deletes, by the rules alone. */
function modelPass(rows: Row[], gone: Set<string>, days: number, now: number, limits: RetentionLimits): string[] {
  const cutoff = now - days * DAY;
  const left = rows.filter((r) => !gone.has(r.uuid));
  const waitedOn = new Set(left.filter((r) => OPEN.has(r.m.state) && r.retryOf).map((r) => r.retryOf));
  const eligible = left
    .filter((r) => FINISHED.has(r.m.state) && (r.end as number) < cutoff && !waitedOn.has(r.uuid))
    .filter((r) => r.m.keyAt === null || T0 + r.m.keyAt * HOUR <= now - 24 * HOUR)
    .sort((a, b) => (a.end as number) - (b.end as number) || a.seq - b.seq);
  const out: string[] = [];
  let cost = 0;
  for (const r of eligible.slice(0, limits.actionsPerPass)) {
    if (out.length > 0 && cost + 1 + r.m.logs > limits.rowsPerPass) break;
    out.push(r.uuid);
    cost += 1 + r.m.logs;
  }
  return out;
}

/** Every table of the object, as the storage-diff helper compares them. */
async function dump(stub: Stub): Promise<Dump> {
  return runInDurableObject(stub, (_o: NamespaceObject, state) => {
    const sql = state.storage.sql;
    const tables = sql
      .exec<{ name: string; sql: string }>(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name",
      )
      .toArray();
    const out: Dump = {};
    for (const t of tables) {
      const order = /WITHOUT ROWID/i.test(t.sql) ? "1, 2" : "rowid";
      out[t.name] = sql.exec(`SELECT * FROM "${t.name}" ORDER BY ${order}`).toArray() as Dump[string];
    }
    return out;
  });
}

/** The dump less the rows of `uuids` in the tables retention deletes from; the kept totals aside (see `counts`). */
function without(d: Dump, uuids: Set<string>): Dump {
  const out: Dump = { ...d };
  delete out.action_counts;
  delete out.action_hours;
  out.actions = (d.actions ?? []).filter((r) => !uuids.has(r.uuid as string));
  for (const t of ["action_logs", "idempotency_keys", "agent_jobs"]) {
    out[t] = (d[t] ?? []).filter((r) => !uuids.has(r.action_uuid as string));
  }
  return out;
}

const counts = (stub: Stub) =>
  runInDurableObject(stub, (_o: NamespaceObject, state) => {
    const sql = state.storage.sql;
    const kept = sql.exec("SELECT filter, value, n FROM action_counts WHERE n != 0 ORDER BY 1, 2").toArray();
    const recount = sql
      .exec(
        `SELECT 'all' AS filter, '' AS value, COUNT(*) AS n FROM actions HAVING n != 0
         UNION ALL SELECT 'object', object, COUNT(*) FROM actions GROUP BY object
         UNION ALL SELECT 'state', state, COUNT(*) FROM actions GROUP BY state ORDER BY 1, 2`,
      )
      .toArray();
    const hours = sql.exec("SELECT hour, n FROM action_hours WHERE n != 0 ORDER BY 1").toArray();
    const rehours = sql
      .exec("SELECT CAST(start_at / 3600000 AS INTEGER) AS hour, COUNT(*) AS n FROM actions GROUP BY 1 ORDER BY 1")
      .toArray();
    return { kept, recount, hours, rehours };
  });

describe("model: retention deletes exactly the eligible actions, and nothing else", () => {
  it(`${NUM_RUNS} runs of random actions and passes`, async () => {
    const stats = { runs: 0, passes: 0, deleted: 0, kept: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(action, { minLength: 1, maxLength: 30 }),
        setting,
        fc.array(step, { minLength: 1, maxLength: 8 }),
        async (actions, own, steps) => {
          const stub: Stub = env.NAMESPACES.getByName((await createUser()).username);
          const rows = await seed(stub, actions, own);
          const days = Math.min(own ?? WORKER_DAYS, WORKER_DAYS);
          const gone = new Set<string>();
          let now = T0;
          let before = await dump(stub);
          const initial = before;
          for (const s of [
            ...steps,
            { t: "pass", advanceHours: 400 * 24, limits: { actionsPerPass: 100, rowsPerPass: 1e6 } } as Step,
          ]) {
            if (s.t === "restart") {
              // Woken first: only a running object can be evicted.
              await runInDurableObject(stub, () => undefined);
              await evictDurableObject(stub);
              continue;
            }
            if (s.t === "edge") {
              const edges = rows.flatMap((r) => [
                ...(r.end === null ? [] : [r.end + days * DAY]),
                ...(r.m.keyAt === null ? [] : [T0 + r.m.keyAt * HOUR + 24 * HOUR]),
              ]);
              if (edges.length === 0) continue;
              now = (edges[s.pick % edges.length] as number) + s.deltaMs;
            } else now += s.advanceHours * HOUR;
            const expected = modelPass(rows, gone, days, now, s.limits);
            const pass: PassResult = await runInDurableObject(stub, (_o: NamespaceObject, state) =>
              new Retention(state.storage, () => WORKER_DAYS, s.limits).pass(now),
            );
            expect(pass.actions).toBe(expected.length);
            for (const uuid of expected) gone.add(uuid);
            const after = await dump(stub);
            const diff = diffSnapshots(
              new Map([["ns", without(before, new Set(expected))]]),
              new Map([["ns", without(after, new Set())]]),
            );
            expect(summarize(diff), `pass at T0 + ${(now - T0) / HOUR} h`).toEqual([]);
            const c = await counts(stub);
            expect(c.kept).toEqual(c.recount);
            expect(c.hours).toEqual(c.rehours);
            before = after;
            stats.passes++;
          }
          // Once every eligible action is gone, what stays is exactly the rest, as it was written.
          const finalDiff = diffSnapshots(
            new Map([["ns", without(initial, gone)]]),
            new Map([["ns", without(before, new Set())]]),
          );
          expect(summarize(finalDiff)).toEqual([]);
          stats.runs++;
          stats.deleted += gone.size;
          stats.kept += rows.length - gone.size;
        },
      ),
      { numRuns: NUM_RUNS, verbose: 1 },
    );
    console.log("retention model:", JSON.stringify(stats));
    expect(stats.deleted).toBeGreaterThan(0);
    expect(stats.kept).toBeGreaterThan(0);
  }, 300_000);
});
