/**
 * Retention of finished actions (src/durable-objects/namespace/retention.ts):
 * what goes and what stays, passes bounded in rows and in actions, driven by
 * the object's alarm; the namespace's setting through the admin API; a crash
 * inside a pass; the action list before and after; and the query plans that
 * keep the list's cost the same at any size.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import type { ActionFilters } from "../src/domain/action";
import type { NamespaceObject } from "../src/durable-objects/namespace";
import { NEXT_PASS_MS, RECHECK_MIN_MS, RETENTION_LIMITS, Retention } from "../src/durable-objects/namespace/retention";
import { readJson } from "./helpers/actions";
import { ADMIN_TOKEN, admin, call, createOrg, createUser, type User } from "./helpers/api";
import { diffSnapshots, snapshotStorage, summarize } from "./helpers/bad-input";

const DAY = 86_400_000;
const HOUR = 3_600_000;
const WORKER_DAYS = Number(env.ACTION_RETENTION_DAYS);

type Stub = DurableObjectStub<NamespaceObject>;
type State = "Pending" | "In progress" | "Success" | "Failed" | "Canceled";
/** An action written straight into the object: `ago` days since it started (and ended, when finished). */
type Seed = {
  state: State;
  ago: number;
  logs?: number;
  object?: string;
  retryOf?: string;
  /** An idempotency key pointing at it, created this many hours ago. */
  keyAgeHours?: number;
  job?: boolean;
};

const nsOf = (user: User): Stub => env.NAMESPACES.getByName(user.username);
const OBJECTS = ["/api/app/v1/x/service/00000000-0000-4000-8000-00000000000a/", "/api/app/v1/x/service/b/"];

/** Writes actions (and their logs, keys, jobs) as the object would have; returns their uuids in order. */
async function seed(stub: Stub, seeds: Seed[], now = Date.now()): Promise<string[]> {
  return runInDurableObject(stub, (_o: NamespaceObject, state) => {
    const sql = state.storage.sql;
    return seeds.map((s, i) => {
      const uuid = crypto.randomUUID();
      const finished = ["Success", "Failed", "Canceled"].includes(s.state);
      const end = now - s.ago * DAY + i;
      sql.exec(
        `INSERT INTO actions (uuid, service_uuid, object, kind, method, path, start_at, end_at, state, is_user_action,
           dispatch, touched_at, due_at, log_lines, log_bytes, retry_of)
         VALUES (?, 's', ?, 'redeploy', 'POST', '/seeded', ?, ?, ?, 0, ?, ?, ?, ?, 0, ?)`,
        uuid,
        s.object ?? OBJECTS[i % 2],
        end - 1000,
        finished ? end : null,
        s.state,
        finished ? "done" : s.state === "Pending" ? "waiting" : "queued",
        end,
        s.state === "In progress" ? now + 3650 * DAY : null,
        s.logs ?? 0,
        s.retryOf ?? null,
      );
      for (let n = 1; n <= (s.logs ?? 0); n++) {
        sql.exec("INSERT INTO action_logs (action_uuid, n, line) VALUES (?, ?, ?)", uuid, n, `line ${n} of ${uuid}`);
      }
      if (s.keyAgeHours !== undefined) {
        sql.exec(
          "INSERT INTO idempotency_keys (trigger_uuid, key, action_uuid, created_at) VALUES ('t', ?, ?, ?)",
          `k-${uuid}`,
          uuid,
          now - s.keyAgeHours * HOUR,
        );
      }
      if (s.job) sql.exec("INSERT INTO agent_jobs (action_uuid, agent_uuid) VALUES (?, 'agent')", uuid);
      return uuid;
    });
  });
}

/** `count` finished actions that ended `endedAgo` days ago, `logs` lines each, in one statement per table. */
async function seedOld(stub: Stub, count: number, logs: number, endedAgo = WORKER_DAYS + 30): Promise<void> {
  await runInDurableObject(stub, (_o: NamespaceObject, state) => {
    const ended = Date.now() - endedAgo * DAY;
    state.storage.sql.exec(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO actions (uuid, service_uuid, object, kind, method, path, start_at, end_at, state, is_user_action,
         dispatch, touched_at, log_lines, log_bytes)
       SELECT lower(hex(randomblob(16))), 's', 'o', 'redeploy', 'POST', '/seeded', ? - 500 + i, ? + i, 'Success', 0,
         'done', ?, ?, 0 FROM n`,
      count,
      ended,
      ended,
      ended,
      logs,
    );
    state.storage.sql.exec(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO action_logs (action_uuid, n, line) SELECT a.uuid, n.i, 'a line' FROM actions a, n`,
      logs,
    );
  });
}

/**
 * One pass at `now`, as the alarm runs it. Rows that end within a day are due
 * only at a `now` far ahead: the object's own alarm, on the real clock, leaves
 * them to the test.
 */
const passAt = (stub: Stub, now: number, limits = RETENTION_LIMITS) =>
  runInDurableObject(stub, (_o: NamespaceObject, state) =>
    new Retention(state.storage, () => WORKER_DAYS, limits).pass(now),
  );
const LATER = () => Date.now() + (WORKER_DAYS + 2) * DAY;

/** Runs the alarm until retention has nothing left to do now (its next look an hour away or more). */
async function drain(stub: Stub): Promise<void> {
  for (let i = 0; i < 100; i++) {
    await runDurableObjectAlarm(stub);
    const alarm = (await holdings(stub)).alarm;
    if (alarm === null || alarm > Date.now() + HOUR / 2) return;
  }
  throw new Error("retention did not settle within 100 passes");
}

/** Uuids of the actions the object holds, and rows of the tables that hang off them. */
async function holdings(stub: Stub) {
  return runInDurableObject(stub, async (_o: NamespaceObject, state) => {
    const sql = state.storage.sql;
    const n = (q: string) => sql.exec<{ n: number }>(q).one().n;
    return {
      actions: sql
        .exec<{ uuid: string }>("SELECT uuid FROM actions ORDER BY seq")
        .toArray()
        .map((r) => r.uuid),
      logs: n("SELECT COUNT(*) AS n FROM action_logs"),
      keys: n("SELECT COUNT(*) AS n FROM idempotency_keys"),
      jobs: n("SELECT COUNT(*) AS n FROM agent_jobs"),
      alarm: await state.storage.getAlarm(),
    };
  });
}

/** Wakes the object anew: its constructor arms the alarm for the retention if none is set. */
async function wake(stub: Stub): Promise<void> {
  await evictDurableObject(stub);
  await runInDurableObject(stub, () => undefined);
}

describe("retention of finished actions", () => {
  it("old finished actions go with their logs, keys and job rows; what is open or waited on stays", async () => {
    const user = await createUser();
    const stub = nsOf(user);
    const old = WORKER_DAYS + 1;
    const [success, failed, canceled, recent, pending, running, retried, , keyed] = await seed(stub, [
      { state: "Success", ago: old, logs: 3, keyAgeHours: old * 24, job: true },
      { state: "Failed", ago: old + 10, logs: 1 },
      { state: "Canceled", ago: old },
      { state: "Success", ago: WORKER_DAYS - 1, logs: 2 },
      { state: "Pending", ago: old * 2 },
      { state: "In progress", ago: old * 2, job: true },
      { state: "Failed", ago: old },
      { state: "Pending", ago: 0 },
      // A key of yesterday that still answers with an old action: written by hand, as no call can.
      { state: "Success", ago: old, keyAgeHours: 1 },
    ]);
    await runInDurableObject(stub, (_o: NamespaceObject, state) => {
      state.storage.sql.exec("UPDATE actions SET retry_of = ? WHERE state = 'Pending' AND start_at > ?", retried, 0);
    });
    await wake(stub);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const after = await holdings(stub);
    for (const gone of [success, failed, canceled]) expect(after.actions).not.toContain(gone);
    for (const kept of [recent, pending, running, retried, keyed]) expect(after.actions).toContain(kept);
    expect(after.actions).toHaveLength(6);
    expect(after).toMatchObject({ logs: 2, keys: 1, jobs: 1 });
  });

  it("20,000 due actions go over passes of at most the batch; a restart between passes loses nothing", async () => {
    const user = await createUser();
    const stub = nsOf(user);
    await seedOld(stub, 20_000, 1, 1);
    const recent = await seed(stub, [{ state: "Success", ago: 0 }]);
    // The old ones ended a day ago, the recent one now: at this time only the old ones are due.
    const later = Date.now() + WORKER_DAYS * DAY - HOUR;
    let left = 20_001;
    let passes = 0;
    for (;;) {
      const pass = await passAt(stub, later);
      const h = await holdings(stub);
      expect(pass.actions).toBe(left - h.actions.length);
      expect(pass.actions).toBeLessThanOrEqual(RETENTION_LIMITS.actionsPerPass);
      expect(pass.rows).toBeLessThanOrEqual(RETENTION_LIMITS.rowsPerPass);
      expect(h.logs).toBe(h.actions.length - 1);
      left = h.actions.length;
      if (pass.actions > 0) passes++;
      if (!pass.more) break;
      // A restart between passes: the next one goes on from the tables.
      if (passes % 7 === 0) await evictDurableObject(stub);
    }
    expect(passes).toBe(20_000 / RETENTION_LIMITS.actionsPerPass);
    expect((await holdings(stub)).actions).toEqual(recent);
  });

  it("the alarm runs the passes one after another, soon, then looks again an hour or more later", {
    timeout: 40_000,
  }, async () => {
    const user = await createUser();
    const stub = nsOf(user);
    await seedOld(stub, 2_000, 1);
    const recent = await seed(stub, [{ state: "Success", ago: 1 }]);
    await wake(stub);
    expect((await holdings(stub)).alarm).toBeLessThanOrEqual(Date.now() + NEXT_PASS_MS);
    await runDurableObjectAlarm(stub);
    const h = await holdings(stub);
    if (h.actions.length > 1) expect(h.alarm).toBeLessThanOrEqual(Date.now() + NEXT_PASS_MS);
    // Nothing else runs them: the alarm's own passes empty the namespace.
    await vi.waitUntil(async () => (await holdings(stub)).actions.length === 1, { timeout: 30_000, interval: 100 });
    const done = await holdings(stub);
    expect(done.actions).toEqual(recent);
    expect(done.alarm).toBeGreaterThanOrEqual(Date.now() + RECHECK_MIN_MS - 60_000);
  });

  it("a pass holds at most its budget of rows: actions with long logs go a few at a time", async () => {
    const user = await createUser();
    const stub = nsOf(user);
    await seedOld(stub, 10, 1_000, 1);
    const sizes: number[] = [];
    for (let more = true; more; ) {
      const pass = await passAt(stub, LATER());
      expect(pass.rows).toBeLessThanOrEqual(RETENTION_LIMITS.rowsPerPass);
      const h = await holdings(stub);
      expect(h.logs).toBe(h.actions.length * 1_000);
      if (pass.actions > 0) sizes.push(pass.actions);
      more = pass.more;
    }
    const perPass = Math.floor(RETENTION_LIMITS.rowsPerPass / 1_001);
    const expected = [perPass, perPass, perPass, perPass].slice(0, Math.floor(10 / perPass));
    if (10 % perPass) expected.push(10 % perPass);
    expect(sizes).toEqual(expected);
  });

  it("an action whose log alone is over the budget still goes, alone in its pass", async () => {
    const user = await createUser();
    const stub = nsOf(user);
    await seedOld(stub, 3, 50, 1);
    const limits = { actionsPerPass: 10, rowsPerPass: 20 };
    const passes = [await passAt(stub, LATER(), limits), await passAt(stub, LATER(), limits)];
    expect(passes.map((p) => p.actions)).toEqual([1, 1]);
    expect((await holdings(stub)).actions).toHaveLength(1);
  });

  it("a crash between two statements of a pass deletes nothing; the next pass does it all", async () => {
    const user = await createUser();
    const stub = nsOf(user);
    // Due only at LATER(): the object's own alarm leaves them alone meanwhile.
    const seeded = await seed(stub, [
      { state: "Success", ago: 1, logs: 2, keyAgeHours: 30, job: true },
      { state: "Failed", ago: 1, logs: 1 },
      { state: "Success", ago: -5 },
    ]);
    const before = await snapshotStorage();
    for (const crashAt of [1, 2, 3, 4]) {
      await expect(
        runInDurableObject(stub, (_o: NamespaceObject, state) => {
          let deletes = 0;
          const sql = state.storage.sql;
          const crashing = {
            exec: (q: string, ...args: SqlStorageValue[]) => {
              if (q.startsWith("DELETE") && ++deletes === crashAt) throw new Error("the object was reset");
              return sql.exec(q, ...args);
            },
          };
          const storage = {
            sql: crashing,
            transactionSync: <T>(fn: () => T) => state.storage.transactionSync(fn),
          } as unknown as DurableObjectStorage;
          new Retention(storage, () => WORKER_DAYS).pass(LATER());
        }),
      ).rejects.toThrow("the object was reset");
      await evictDurableObject(stub);
      expect(summarize(diffSnapshots(before, await snapshotStorage()))).toEqual([]);
    }
    const pass = await passAt(stub, LATER());
    expect(pass).toEqual({ actions: 2, rows: 5, more: false });
    expect(await holdings(stub)).toMatchObject({ actions: [seeded[2]], logs: 0, keys: 0, jobs: 0 });
  });
});

type Listing = { meta: { total_count: number }; objects: { uuid: string }[] };

describe("the namespace's retention setting (admin API)", () => {
  const patch = (path: string, body?: unknown) => admin("PATCH", path, body);

  it("shortens the retention, never lengthens it; null follows the deployment again", async () => {
    const user = await createUser();
    const stub = nsOf(user);
    const path = `/api/admin/v1/user/${user.username}/`;
    const [older, younger] = await seed(stub, [
      { state: "Success", ago: 40 },
      { state: "Success", ago: 20 },
    ]);
    const read = await patch(path);
    expect(read.status).toBe(200);
    expect(await read.json()).toEqual({
      username: user.username,
      action_retention_days: null,
      action_retention_days_in_effect: WORKER_DAYS,
    });
    const set = await patch(path, { action_retention_days: 30 });
    expect(await set.json()).toEqual({
      username: user.username,
      action_retention_days: 30,
      action_retention_days_in_effect: 30,
    });
    // The shorter retention makes the older action due at once: the alarm comes by itself.
    await vi.waitUntil(async () => !(await holdings(stub)).actions.includes(older as string), { timeout: 5_000 });
    expect((await holdings(stub)).actions).toEqual([younger]);

    const before = await snapshotStorage();
    const longer = await patch(path, { action_retention_days: WORKER_DAYS + 1 });
    expect(longer.status).toBe(400);
    const body = await longer.json<{ error: string }>();
    expect(Object.keys(body)).toEqual(["error"]);
    expect(body.error).toContain(`at most ${WORKER_DAYS}`);
    expect(summarize(diffSnapshots(before, await snapshotStorage()))).toEqual([]);

    const cleared = await patch(path, { action_retention_days: null });
    expect(await cleared.json()).toMatchObject({ action_retention_days: null, action_retention_days_in_effect: 90 });
  });

  it("works for organizations, and answers 404 for a name of the other kind or of nothing", async () => {
    const org = await createOrg();
    const user = await createUser();
    const r = await patch(`/api/admin/v1/organization/${org}/`, { action_retention_days: 7 });
    expect(await r.json()).toEqual({ name: org, action_retention_days: 7, action_retention_days_in_effect: 7 });
    for (const path of [
      `/api/admin/v1/organization/${user.username}/`,
      `/api/admin/v1/user/${org}/`,
      "/api/admin/v1/user/nosuchuser42/",
    ]) {
      const missing = await patch(path, { action_retention_days: 7 });
      expect(missing.status, path).toBe(404);
      expect(Object.keys(await missing.json<object>())).toEqual(["error"]);
    }
  });

  it("bad values are a 400 naming the field, and change nothing", async () => {
    const user = await createUser();
    const path = `/api/admin/v1/user/${user.username}/`;
    await patch(path, { action_retention_days: 10 });
    const before = await snapshotStorage();
    const bad = ["0", "-1", "1.5", "1e-7", '"30"', "true", "[]", "{}", "3651", "1e400", String(WORKER_DAYS + 1)];
    for (const raw of bad) {
      const r = await call(path, {
        method: "PATCH",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: `{"action_retention_days": ${raw}}`,
      });
      expect(r.status, raw).toBe(400);
      const body = await r.json<{ error: string }>();
      expect(Object.keys(body), raw).toEqual(["error"]);
      expect(body.error, raw).toContain("action_retention_days");
    }
    expect(summarize(diffSnapshots(before, await snapshotStorage()))).toEqual([]);
    expect(await (await patch(path)).json()).toMatchObject({ action_retention_days: 10 });
  });
});

describe("the action list around retention", () => {
  /** Every filter the clients use, as query strings. */
  const filters = (start: number) => [
    "",
    "?state=Success",
    "?state=Pending",
    `?object=${encodeURIComponent(OBJECTS[0] as string)}`,
    `?start_date__gte=${Math.floor(start / 1000)}`,
    `?start_date__lte=${Math.floor(start / 1000)}`,
    `?state=Failed&start_date__gte=${Math.floor(start / 1000)}`,
  ];

  async function everything(user: User, query: string): Promise<Listing> {
    const objects: { uuid: string }[] = [];
    let total = -1;
    for (let offset = 0; total < 0 || offset < total; offset += 100) {
      const sep = query ? "&" : "?";
      const page = await readJson<Listing>(user, `/api/audit/v1/action/${query}${sep}limit=100&offset=${offset}`);
      total = page.meta.total_count;
      objects.push(...page.objects);
      if (page.objects.length === 0) break;
    }
    return { meta: { total_count: total }, objects };
  }

  it("answers the same objects, in the same order, with the same counts, less the deleted ones", async () => {
    const user = await createUser();
    const stub = nsOf(user);
    const states: State[] = ["Success", "Failed", "Canceled", "Pending", "Success"];
    const seeds = Array.from({ length: 230 }, (_, i): Seed => {
      const state = states[i % states.length] as State;
      return { state, ago: ((i * 7) % (WORKER_DAYS * 2)) + 0.5, logs: i % 3 };
    });
    await seed(stub, seeds);
    const split = Date.now() - WORKER_DAYS * DAY;
    const before = new Map<string, Listing>();
    for (const q of filters(split)) before.set(q, await everything(user, q));
    await wake(stub);
    await drain(stub);
    const kept = new Set((await holdings(stub)).actions);
    const deleted = seeds.filter((s) => s.state !== "Pending" && s.ago > WORKER_DAYS).length;
    expect(kept.size).toBe(230 - deleted);
    for (const q of filters(split)) {
      const was = before.get(q) as Listing;
      const now = await everything(user, q);
      const expected = was.objects.filter((o) => kept.has(o.uuid));
      expect(now.objects, q).toEqual(expected);
      expect(now.meta.total_count, q).toBe(expected.length);
    }
  });

  it("a deleted namespace's totals are reset: created again under its name, it counts from zero", async () => {
    const user = await createUser();
    await seed(nsOf(user), [
      { state: "Success", ago: 1 },
      { state: "Pending", ago: 0 },
    ]);
    expect((await readJson<Listing>(user, "/api/audit/v1/action/")).meta.total_count).toBe(2);
    expect((await admin("DELETE", `/api/admin/v1/user/${user.username}/`)).status).toBe(200);
    const again = await createUser(user.username);
    for (const q of ["", "?state=Success", "?start_date__gte=0"]) {
      expect((await readJson<Listing>(again, `/api/audit/v1/action/${q}`)).meta.total_count, q).toBe(0);
    }
    await seed(nsOf(again), [{ state: "Failed", ago: 2 }]);
    const after = await runInDurableObject(nsOf(again), (_o: NamespaceObject, state) =>
      state.storage.sql.exec("SELECT filter, value, n FROM action_counts WHERE n != 0 ORDER BY 1, 2").toArray(),
    );
    expect(after).toEqual([
      { filter: "all", value: "", n: 1 },
      { filter: "object", value: OBJECTS[0], n: 1 },
      { filter: "state", value: "Failed", n: 1 },
    ]);
    expect((await readJson<Listing>(again, "/api/audit/v1/action/?start_date__gte=0")).meta.total_count).toBe(1);
  });

  it("a date range's total, kept per hour, is the count of the actions it names", async () => {
    const user = await createUser();
    const stub = nsOf(user);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 5 * HOUR;
    await runInDurableObject(stub, (_o: NamespaceObject, state) => {
      for (let i = 0; i < 400; i++) {
        const at = base + Math.floor(Math.random() * 6 * HOUR);
        state.storage.sql.exec(
          `INSERT INTO actions (uuid, service_uuid, object, kind, method, path, start_at, state, is_user_action,
             dispatch, touched_at) VALUES (?, 's', 'o', 'redeploy', 'POST', '/x', ?, 'Pending', 0, 'waiting', ?)`,
          crypto.randomUUID(),
          i % 50 === 0 ? base + HOUR : at,
          at,
        );
      }
    });
    const edge = [base - 1, base, base + HOUR - 1, base + HOUR, base + HOUR + 1, base + 3 * HOUR, base + 7 * HOUR];
    const point = fc.oneof(fc.constantFrom(...edge), fc.integer({ min: base - HOUR, max: base + 7 * HOUR }));
    await fc.assert(
      fc.asyncProperty(fc.option(point), fc.option(point), async (from, to) => {
        const filters: ActionFilters = {
          ...(from === null ? {} : { start_date__gte: from }),
          ...(to === null ? {} : { start_date__lte: to }),
        };
        const [listed, counted] = await runInDurableObject(stub, (o: NamespaceObject, state) => {
          const r = o.listActions(user.username, user.username, filters, { limit: 1, offset: 0 });
          const n = state.storage.sql
            .exec<{ n: number }>(
              "SELECT COUNT(*) AS n FROM actions WHERE start_at >= ? AND start_at <= ?",
              from ?? -1,
              to ?? Number.MAX_SAFE_INTEGER,
            )
            .one().n;
          return [r.ok ? r.value.total : -1, n];
        });
        expect(listed).toBe(counted);
      }),
      { numRuns: 150 },
    );
  });

  it("every filter's page is read through an index in the list's order, never sorted; kept totals count no rows", async () => {
    const user = await createUser();
    const stub = nsOf(user);
    await seed(stub, [
      { state: "Success", ago: 1 },
      { state: "Pending", ago: 0 },
    ]);
    const page = { limit: 25, offset: 0 };
    const cases: [string, ActionFilters][] = [
      ["no filter", {}],
      ["uuid", { uuid: crypto.randomUUID() }],
      ["state", { state: "Success" }],
      ["object", { object: OBJECTS[0] as string }],
      ["start_date__gte", { start_date__gte: Date.now() - DAY }],
      ["start_date__lte", { start_date__lte: Date.now() - DAY }],
      ["start_date range", { start_date__gte: Date.now() - 2 * DAY, start_date__lte: Date.now() }],
      ["state and start date", { state: "Success", start_date__gte: Date.now() - 2 * DAY }],
      ["object and start date", { object: OBJECTS[1] as string, start_date__lte: Date.now() }],
    ];
    const plans = await runInDurableObject(stub, (o: NamespaceObject, state) => {
      const sql = state.storage.sql;
      const exec = sql.exec;
      return cases.map(([label, filters]) => {
        const seen: [string, SqlStorageValue[]][] = [];
        Object.assign(sql, {
          exec: (q: string, ...args: SqlStorageValue[]) => {
            seen.push([q, args]);
            return exec.call(sql, q, ...args);
          },
        });
        try {
          o.listActions(user.username, user.username, filters, page);
        } finally {
          delete (sql as { exec?: unknown }).exec;
        }
        const selects = seen.filter(([q]) => /FROM actions/.test(q));
        const counts = selects.filter(([q]) => q.includes("COUNT(*)"));
        return {
          label,
          counted: counts.length > 0,
          windows: counts.map(([, args]) => args as [number, number]),
          plans: selects.map(([q, args]) =>
            sql
              .exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${q}`, ...args)
              .toArray()
              .map((r) => r.detail)
              .join(" | "),
          ),
        };
      });
    });
    for (const { label, counted, plans: steps } of plans) {
      expect(steps.length, label).toBeGreaterThan(0);
      for (const plan of steps) {
        expect(plan, label).toMatch(/USING (COVERING )?INDEX|USING INTEGER PRIMARY KEY/);
        expect(plan, label).not.toMatch(/TEMP B-TREE/);
        expect(plan, label).not.toMatch(/SCAN actions(?! USING)/);
      }
      if (["no filter", "state", "object"].includes(label)) expect(counted, label).toBe(false);
    }
    // Date ranges alone: kept per hour, so only the rows of the hours at either end are counted.
    for (const { label, windows } of plans) {
      if (!label.startsWith("start_date")) continue;
      expect(windows.length, label).toBeGreaterThan(0);
      for (const [lo, hi] of windows) expect(hi - lo, label).toBeLessThan(HOUR);
    }
  });
});
