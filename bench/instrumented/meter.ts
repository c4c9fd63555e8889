// The bench build's meter (never part of the product): what the call path makes Cloudflare bill,
// counted as it happens in the local workerd. Module state, so one count per isolate: workerd runs
// the Worker and every Durable Object of one script in one isolate (count-phase.mjs checks that the
// objects' counts reach the Worker's route).
//
//   - Worker invocations: each fetch (the bench's own /__bench/ routes excepted) and each queue batch;
//   - Durable Object events, per object: RPC method calls (each its own session, so a billed request),
//     fetches, alarms, WebSocket messages received, closes and errors;
//   - the object's active wall time: from an event's start until its result has settled and its
//     writes are committed (`storage.sync()`), overlapping events counted once;
//   - SQLite rows read and written, per statement, from each cursor's `rowsRead`/`rowsWritten`
//     (final only once the cursor is consumed: read again after toArray/one/next/raw and at the end
//     of every event), and `setAlarm()` (billed as one row written);
//   - queue messages written (on a successful send, and into the dead-letter queue), read (each
//     delivery to a consumer, a retry's again) and deleted (acked), in 64 KB chunks, and retries.

/** Queues bill per 64 KB (of 1,000 bytes) of message, with about 100 bytes of metadata per message. */
const CHUNK_BYTES = 64_000;
const METADATA_BYTES = 100;

type Statement = { cls: string; sql: string; execs: number; rowsRead: number; rowsWritten: number };
type ObjectMeter = {
  cls: string;
  id: string;
  events: Record<string, number>;
  inflight: number;
  since: number;
  activeMs: number;
  /** The alarm this object set and that has not run yet, as far as the meter saw. */
  alarmAt: number | null;
};
type Seen = { statement: Statement; read: number; written: number };

const worker = { fetch: 0, queue_batches: 0 };
const queue = {
  writes: 0,
  write_ops: 0,
  reads: 0,
  read_ops: 0,
  deletes: 0,
  delete_ops: 0,
  retries: 0,
  dead_letters: 0,
};
const objects = new Map<string, ObjectMeter>();
const statements = new Map<string, Statement>();
const seen = new WeakMap<object, Seen>();
let pending: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
let depth = 0;
/** Moves whenever anything is counted: the bench waits for it to stand still. */
let ticks = 0;

/**
 * What the bench polls while it waits for a workload to settle (cheap, no RPC): a number that moves
 * whenever anything is counted, and the objects with an alarm due within `withinMs` (the retention's
 * daily look is not the workload's).
 */
export function activity(withinMs: number) {
  harvest();
  const by = Date.now() + withinMs;
  return { ticks, alarms: [...objects.values()].filter((m) => m.alarmAt !== null && m.alarmAt <= by).length };
}

const chunks = (body: unknown) =>
  Math.max(1, Math.ceil(((JSON.stringify(body) ?? "").length + METADATA_BYTES) / CHUNK_BYTES));

function statement(cls: string, sql: string): Statement {
  const text = sql.replace(/\s+/g, " ").trim().slice(0, 160);
  const key = `${cls} ${text}`;
  let s = statements.get(key);
  if (!s) {
    s = { cls, sql: text, execs: 0, rowsRead: 0, rowsWritten: 0 };
    statements.set(key, s);
  }
  return s;
}

/** Adds what a cursor read and wrote since it was last looked at. */
function account(cursor: SqlStorageCursor<Record<string, SqlStorageValue>>): void {
  const s = seen.get(cursor);
  if (!s) return;
  const read = cursor.rowsRead;
  const written = cursor.rowsWritten;
  if (read !== s.read || written !== s.written) ticks++;
  s.statement.rowsRead += read - s.read;
  s.statement.rowsWritten += written - s.written;
  s.read = read;
  s.written = written;
}

/** Accounts every cursor opened since the last harvest; their counters are final by now. */
export function harvest(): void {
  for (const cursor of pending) account(cursor);
  pending = [];
}

const CONSUMERS = ["toArray", "one", "next", "raw"] as const;

/** Meters one object's SQL API (the same `SqlStorage` object on every access) and its alarm writes. */
function meterStorage(storage: DurableObjectStorage, m: ObjectMeter): void {
  const cls = m.cls;
  const sql = storage.sql;
  const exec = sql.exec;
  sql.exec = function meteredExec(query: string, ...bindings: unknown[]) {
    const cursor = exec.call(sql, query, ...bindings);
    const s = statement(cls, query);
    s.execs++;
    seen.set(cursor, { statement: s, read: 0, written: 0 });
    const c = cursor as unknown as Record<string, (...a: unknown[]) => unknown>;
    for (const name of CONSUMERS) {
      const original = c[name] as (...a: unknown[]) => unknown;
      c[name] = (...a: unknown[]) => {
        const out = original.apply(cursor, a);
        account(cursor);
        return out;
      };
    }
    account(cursor);
    pending.push(cursor);
    return cursor;
  } as typeof sql.exec;
  const setAlarm = storage.setAlarm;
  storage.setAlarm = (...args: Parameters<typeof storage.setAlarm>) => {
    const s = statement(cls, "setAlarm()");
    s.execs++;
    s.rowsWritten++;
    ticks++;
    m.alarmAt = Number(args[0]);
    return setAlarm.apply(storage, args);
  };
  const deleteAlarm = storage.deleteAlarm;
  storage.deleteAlarm = (...args: Parameters<typeof storage.deleteAlarm>) => {
    m.alarmAt = null;
    return deleteAlarm.apply(storage, args);
  };
}

/** Called first in each metered object's constructor, before the product's constructor runs SQL. */
export function attach(ctx: DurableObjectState, cls: string): DurableObjectState {
  const id = ctx.id.toString();
  let m = objects.get(id);
  if (!m) {
    m = { cls, id, events: {}, inflight: 0, since: 0, activeMs: 0, alarmAt: null };
    objects.set(id, m);
  }
  meterStorage(ctx.storage, m);
  return ctx;
}

const meterOf = (ctx: DurableObjectState) => objects.get(ctx.id.toString()) as ObjectMeter;

/**
 * Runs one event of an object (`kind`: rpc:<method>, fetch, alarm, websocket_message, ...): counts
 * it, and counts the object active from now until its result settled and its writes are committed.
 */
export function event<T>(ctx: DurableObjectState, kind: string, run: () => T): T {
  const m = meterOf(ctx);
  m.events[kind] = (m.events[kind] ?? 0) + 1;
  ticks++;
  // An alarm that runs is spent; one its handler sets is recorded again.
  if (kind === "alarm") m.alarmAt = null;
  if (m.inflight++ === 0) m.since = Date.now();
  const done = () => {
    if (--m.inflight === 0) m.activeMs += Date.now() - m.since;
    harvest();
  };
  let result: T;
  depth++;
  try {
    result = run();
  } catch (err) {
    done();
    throw err;
  } finally {
    depth--;
  }
  void Promise.allSettled([result, ctx.storage.sync()]).then(done);
  return result;
}

/**
 * Wraps the RPC methods of `proto`'s class (its own and those it inherits, up to `stop`) on
 * `target`, the metered subclass's prototype. A method called while another metered event of the
 * isolate is on the stack is the product calling itself, not an RPC, and is not counted.
 */
export function meterRpc(target: object, proto: object, stop: object): void {
  const skip = new Set(["constructor", "fetch", "alarm", "webSocketMessage", "webSocketClose", "webSocketError"]);
  for (let p = proto; p && p !== stop; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      const d = Object.getOwnPropertyDescriptor(p, name);
      if (skip.has(name) || Object.hasOwn(target, name) || typeof d?.value !== "function") continue;
      const original = d.value as (...a: unknown[]) => unknown;
      Object.defineProperty(target, name, {
        configurable: true,
        writable: true,
        value(this: { ctx: DurableObjectState }, ...args: unknown[]) {
          if (depth > 0) return original.apply(this, args);
          return event(this.ctx, `rpc:${name}`, () => original.apply(this, args));
        },
      });
    }
  }
}

function meterQueue(q: Queue): Queue {
  const wrote = (bodies: unknown[]) => {
    ticks++;
    queue.writes += bodies.length;
    for (const b of bodies) queue.write_ops += chunks(b);
  };
  return {
    async send(body: unknown, options?: QueueSendOptions) {
      const out = await q.send(body, options);
      wrote([body]);
      return out;
    },
    async sendBatch(messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) {
      const list = [...messages];
      const out = await q.sendBatch(list, options);
      wrote(list.map((m) => m.body));
      return out;
    },
  } as Queue;
}

const envs = new WeakMap<object, Env>();

/** The env with its queue producers metered (one per original env, so the product's caches keyed by env hold). */
export function meterEnv(env: Env): Env {
  let metered = envs.get(env);
  if (!metered) {
    const copy: Record<string, unknown> = { ...env };
    for (const [name, value] of Object.entries(env)) {
      const v = value as Partial<Queue> | null;
      if (v && typeof v.send === "function" && typeof v.sendBatch === "function")
        copy[name] = meterQueue(value as Queue);
    }
    metered = copy as unknown as Env;
    envs.set(env, metered);
  }
  return metered;
}

export function countWorker(kind: "fetch" | "queue_batches"): void {
  worker[kind]++;
  ticks++;
}

/** A batch for the product's consumer whose acks and retries are counted; `settle` after the handler. */
export function meterBatch(batch: MessageBatch<unknown>): {
  batch: MessageBatch<unknown>;
  settle: (threw: boolean) => void;
} {
  const retried = new Set<string>();
  const acked = new Set<string>();
  ticks++;
  // A dead-letter queue's messages were written to it when they ran out of retries: a write each.
  const deadLetters = batch.queue.endsWith("-dlq");
  for (const m of batch.messages) {
    queue.reads++;
    queue.read_ops += chunks(m.body);
    if (deadLetters) {
      queue.dead_letters++;
      queue.writes++;
      queue.write_ops += chunks(m.body);
    }
  }
  const messages = batch.messages.map((m) => ({
    id: m.id,
    timestamp: m.timestamp,
    body: m.body,
    attempts: m.attempts,
    ack: () => {
      acked.add(m.id);
      m.ack();
    },
    retry: (o?: QueueRetryOptions) => {
      retried.add(m.id);
      m.retry(o);
    },
  }));
  const wrapped = {
    queue: batch.queue,
    messages,
    ackAll: () => {
      for (const m of batch.messages) acked.add(m.id);
      batch.ackAll();
    },
    retryAll: (o?: QueueRetryOptions) => {
      for (const m of batch.messages) retried.add(m.id);
      batch.retryAll(o);
    },
  } as unknown as MessageBatch<unknown>;
  const settle = (threw: boolean) => {
    // A message not retried is deleted: acked by the consumer, or with the batch when the handler returns
    // (a handler that throws has the runtime retry every message it did not ack).
    for (const m of batch.messages) {
      if (retried.has(m.id) || (threw && !acked.has(m.id))) queue.retries++;
      else {
        queue.deletes++;
        queue.delete_ops += chunks(m.body);
      }
    }
  };
  return { batch: wrapped, settle };
}

/** Everything counted since the last reset; objects' active time up to now. */
export function snapshot() {
  harvest();
  const now = Date.now();
  return {
    worker: { ...worker },
    queue: { ...queue },
    objects: [...objects.values()]
      .filter((m) => Object.keys(m.events).length > 0 || m.activeMs > 0)
      .map((m) => ({
        cls: m.cls,
        id: m.id,
        events: { ...m.events },
        active_ms: m.activeMs + (m.inflight > 0 ? now - m.since : 0),
      })),
    statements: [...statements.values()].map((s) => ({ ...s })),
  };
}

export function reset(): void {
  harvest();
  Object.assign(worker, { fetch: 0, queue_batches: 0 });
  for (const k of Object.keys(queue) as (keyof typeof queue)[]) queue[k] = 0;
  statements.clear();
  const now = Date.now();
  for (const m of objects.values()) Object.assign(m, { events: {}, activeMs: 0, since: now });
}

/** The ids of the metered objects of one class, for the bench's route to ask them for their state. */
export const objectIds = (cls: string): string[] => [...objects.values()].filter((m) => m.cls === cls).map((m) => m.id);
