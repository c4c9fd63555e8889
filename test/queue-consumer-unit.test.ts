import { createExecutionContext, createMessageBatch, getQueueResult, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { HttpResponse, http } from "msw";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ActionRow } from "../src/domain/action";
import type { NamespaceObject } from "../src/durable-objects/namespace";
import worker from "../src/index";
import { consumeDeadLetters, consumeOperations } from "../src/queue/consumer";
import { createService, createUser, type User, uniqueName } from "./helpers/api";
import { network } from "./helpers/msw";

/**
 * The operations consumer, one batch at a time, on actions that never reach
 * the live queue: rows are inserted straight into the namespace's object with
 * dispatch = 'queued' and a deadline far away, so its alarm (the outbox) never
 * sends them and nothing races the batches built here. The consumer starts
 * each attempt and acks its message; the attempt runs in waitUntil, and its
 * object schedules any retry (dispatch 'ready' with a due_at).
 */

const OPERATIONS_QUEUE = "dockercloud-operations";
const DLQ = "dockercloud-operations-dlq";

/** Real delays (the test config sets the base to 0), seven attempts and a short target timeout. */
const DELAYS = {
  RETRY_BASE_DELAY_SECONDS: "5",
  RETRY_MAX_DELAY_SECONDS: "60",
  MAX_ATTEMPTS: "7",
  TARGET_TIMEOUT_MS: "300",
};
const delayEnv = { ...env, ...DELAYS } as unknown as Env;

/** The object schedules retries from its own settings: give this test's object the delays above. */
async function useDelays(ns: DurableObjectStub<NamespaceObject>, vars: Record<string, string> = DELAYS) {
  await runInDurableObject(ns, (o: NamespaceObject) => {
    Object.defineProperty(o, "env", { value: { ...env, ...vars }, configurable: true });
  });
}

/** A far deadline, so the object's alarm leaves the inserted actions to the batches of the test. */
const FAR = 3_600_000;

/**
 * Objects of this file's tests: after each test, retries they scheduled are
 * pushed out of reach, so their alarms do not send them to the live queue
 * once the test's mocked target is gone.
 */
const used: DurableObjectStub<NamespaceObject>[] = [];
afterEach(async () => {
  for (const ns of used.splice(0)) {
    await runInDurableObject(ns, (_o: NamespaceObject, state) => {
      state.storage.sql.exec("UPDATE actions SET due_at = ? WHERE dispatch IN ('ready', 'queued')", Date.now() + FAR);
    });
  }
});

/** Promises that resolvers are still holding; released after each test so nothing dangles. */
const held: (() => void)[] = [];
afterEach(() => {
  for (const release of held.splice(0)) release();
});

type Fixture = {
  user: User;
  ns: DurableObjectStub<NamespaceObject>;
  svc: { uuid: string; resource_uri: string };
  url: string;
  secret: string;
};

async function fixture(service: Record<string, unknown> = {}): Promise<Fixture> {
  const user = await createUser();
  const url = `https://${uniqueName("hook")}.example.test/deploy`;
  const svc = (await createService(user, { target: { type: "webhook", url }, ...service })) as unknown as {
    uuid: string;
    resource_uri: string;
    target: { secret: string };
  };
  const ns = env.NAMESPACES.getByName(user.username);
  used.push(ns);
  await useDelays(ns);
  return { user, ns, svc, url, secret: svc.target.secret };
}

/** An action as callTrigger records it, but already marked as handed to the queue. */
async function insertAction(f: Fixture, kind: "redeploy" | "scaleup" = "redeploy", scaleBy: number | null = null) {
  const uuid = crypto.randomUUID();
  await runInDurableObject(f.ns, (_o: NamespaceObject, state) => {
    const now = Date.now();
    state.storage.sql.exec(
      `INSERT INTO actions (uuid, service_uuid, object, kind, method, path, start_at, state, is_user_action,
         scale_by, body, dispatch, touched_at, due_at)
       VALUES (?, ?, ?, ?, 'POST', '/test', ?, 'Pending', 0, ?, NULL, 'queued', ?, ?)`,
      uuid,
      f.svc.uuid,
      f.svc.resource_uri,
      kind,
      now,
      scaleBy,
      now,
      now + FAR,
    );
  });
  return uuid;
}

/** An action's row, with its log's lines joined as one text (they are stored a line per row). */
type RowWithLog = ActionRow & { logs: string };

async function actionRow(f: Fixture, uuid: string): Promise<RowWithLog> {
  return runInDurableObject(f.ns, (_o: NamespaceObject, state) => {
    const row = state.storage.sql
      .exec<RowWithLog>(
        "SELECT *, COALESCE((SELECT group_concat(line, char(10)) FROM (SELECT line FROM action_logs WHERE action_uuid = actions.uuid ORDER BY n)), '') AS logs FROM actions WHERE uuid = ?",
        uuid,
      )
      .toArray()[0];
    if (!row) throw new Error(`no action ${uuid}`);
    return row;
  });
}

const logLines = (row: RowWithLog) => (row.logs === "" ? [] : row.logs.split("\n"));

/** Lets the time pass until the action's retry is due (its deadline moves to now). */
async function makeDue(f: Fixture, uuid: string) {
  await runInDurableObject(f.ns, (_o: NamespaceObject, state) => {
    state.storage.sql.exec("UPDATE actions SET due_at = ? WHERE uuid = ?", Date.now() - 1, uuid);
  });
}

/** The retry delay the object set: its deadline minus the end of the attempt, in whole seconds. */
// `|| 0`: a deadline a millisecond before the row's last touch is no delay (and not -0).
const retryDelay = (row: ActionRow) => Math.round(((row.due_at ?? 0) - row.touched_at) / 1000) || 0;

type Msg = { id: string; attempts: number; body: unknown };

/**
 * Runs one batch through the consumer and waits for the attempts it started
 * (waitUntil). This plugin's getQueueResult lists retried messages without
 * their delay, so each message's retry() is spied on and the delay it was
 * given is put back into retryMessages.
 */
async function runOperations(messages: Msg[], e: Env = delayEnv) {
  const batch = createMessageBatch<unknown>(
    OPERATIONS_QUEUE,
    messages.map((m) => ({ ...m, timestamp: new Date() })),
  );
  const spies = batch.messages.map((m) => vi.spyOn(m, "retry"));
  const ctx = createExecutionContext();
  await consumeOperations(batch, e, ctx);
  const result = await getQueueResult(batch, ctx);
  const delays = new Map(
    batch.messages.flatMap((m, i) => (spies[i]?.mock.calls ?? []).map((c) => [m.id, c[0]?.delaySeconds] as const)),
  );
  for (const spy of spies)
    expect(spy.mock.calls.length, "retry() called at most once per message").toBeLessThanOrEqual(1);
  return {
    ...result,
    retryMessages: result.retryMessages.map((r) => ({ msgId: r.msgId, delaySeconds: delays.get(r.msgId) })),
  };
}

const message = (f: Fixture, action: string, attempts = 1, id: string = crypto.randomUUID()): Msg => ({
  id,
  attempts,
  body: { namespace: f.user.username, action },
});

/** Counts and verifies every delivery to the fixture's webhook, answering with `answer`. */
function hook(f: Fixture, answer: (n: number) => Response | Promise<Response>) {
  const seen: { id: string | null; payload: unknown }[] = [];
  network.use(
    http.post(f.url, async ({ request }) => {
      const body = await request.text();
      const payload = new Webhook(f.secret).verify(body, Object.fromEntries(request.headers));
      seen.push({ id: request.headers.get("webhook-id"), payload });
      return answer(seen.length);
    }),
  );
  return seen;
}

describe("operations consumer: transient failures are retried with a capped exponential delay", () => {
  const transient: [string, () => Response | Promise<Response>, RegExp][] = [
    [
      "503",
      () => new HttpResponse("down for maintenance", { status: 503 }),
      /target answered 503: "down for maintenance"/,
    ],
    ["500", () => new HttpResponse(null, { status: 500 }), /target answered 500/],
    ["429", () => new HttpResponse("slow down", { status: 429 }), /target answered 429/],
    ["408", () => new HttpResponse(null, { status: 408 }), /target answered 408/],
    ["a network error", () => HttpResponse.error(), /network error/],
    [
      "no answer within TARGET_TIMEOUT_MS",
      () =>
        new Promise<Response>((resolve) => {
          held.push(() => resolve(new HttpResponse(null, { status: 200 })));
        }),
      /no answer within 300 ms/,
    ],
  ];

  it.each(transient)(
    "%s → message acked; the object schedules the retry after the delay for the attempt; action stays In progress",
    async (_name, answer, detail) => {
      const f = await fixture();
      const action = await insertAction(f);
      const seen = hook(f, answer);

      const m = message(f, action, 3);
      const result = await runOperations([m]);

      expect(result.explicitAcks).toEqual([m.id]);
      expect(result.retryBatch.retry).toBe(false);
      expect(result.retryMessages).toEqual([]);
      expect(seen).toHaveLength(1);
      expect(seen[0]?.id).toBe(action);

      const row = await actionRow(f, action);
      expect(row.state).toBe("In progress");
      expect(row.attempts).toBe(1);
      expect(row.end_at).toBeNull();
      // The action's own attempt count decides the delay, not the message's delivery count: 5 * 2^0.
      expect(row.dispatch).toBe("ready");
      expect(retryDelay(row)).toBe(5);
      expect(row.attempt_started_at).toBeNull();
      const lines = logLines(row);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/attempt 1: /);
      expect(lines[0]).toMatch(detail);
      expect(row.last_error).toMatch(detail);
    },
  );

  it("successive attempts wait 5, 10, 20, 40, 60, 60 s, log one line each, and the 7th failure ends the action", async () => {
    const f = await fixture();
    const action = await insertAction(f);
    const seen = hook(f, () => new HttpResponse("busy", { status: 503 }));
    const id = crypto.randomUUID();

    const delays: number[] = [];
    for (let attempt = 1; attempt <= 6; attempt++) {
      const result = await runOperations([message(f, action, 1, id)]);
      expect(result.explicitAcks, `attempt ${attempt}`).toEqual([id]);
      const row = await actionRow(f, action);
      expect(row.state).toBe("In progress");
      delays.push(retryDelay(row));
      await makeDue(f, action);
    }
    expect(delays).toEqual([5, 10, 20, 40, 60, 60]);

    await runOperations([message(f, action, 1, id)]);
    expect(seen).toHaveLength(7);
    expect(new Set(seen.map((s) => s.id))).toEqual(new Set([action]));
    const row = await actionRow(f, action);
    expect(row.state).toBe("Failed");
    expect(row.dispatch).toBe("done");
    expect(row.attempts).toBe(7);
    const lines = logLines(row);
    expect(lines).toHaveLength(8);
    for (const [i, line] of lines.slice(0, 7).entries())
      expect(line).toMatch(new RegExp(`attempt ${i + 1}: target answered 503: "busy"`));
    expect(lines[7]).toMatch(/gave up after 7 attempt\(s\); last error: target answered 503: "busy"/);
  });

  it("a message that arrives before the retry is due is acked and performs nothing", async () => {
    const f = await fixture();
    const action = await insertAction(f);
    const seen = hook(f, () => new HttpResponse(null, { status: 502 }));
    await runOperations([message(f, action, 1)]);
    const before = await actionRow(f, action);
    expect(before.dispatch).toBe("ready");

    const early = message(f, action, 1);
    const result = await runOperations([early]);
    expect(result.explicitAcks).toEqual([early.id]);
    expect(seen).toHaveLength(1);
    expect(await actionRow(f, action)).toEqual(before);
  });

  it("with RETRY_BASE_DELAY_SECONDS 0 the retry is due at once", async () => {
    const f = await fixture();
    await useDelays(f.ns, { ...DELAYS, RETRY_BASE_DELAY_SECONDS: "0" });
    const action = await insertAction(f);
    hook(f, () => new HttpResponse(null, { status: 502 }));
    await runOperations([message(f, action, 4)], env);
    const row = await actionRow(f, action);
    expect(row.dispatch).toBe("ready");
    expect(retryDelay(row)).toBe(0);
  });
});

describe("operations consumer: answers that end the action", () => {
  it.each([400, 401, 403, 404, 410, 422])("%i → acked, no retry, action Failed", async (status) => {
    const f = await fixture();
    const action = await insertAction(f);
    const seen = hook(f, () => new HttpResponse(`rejected with ${status}`, { status }));
    const m = message(f, action, 1);

    const result = await runOperations([m]);
    expect(result.explicitAcks).toEqual([m.id]);
    expect(result.retryMessages).toEqual([]);
    expect(result.retryBatch.retry).toBe(false);
    expect(seen).toHaveLength(1);

    const row = await actionRow(f, action);
    expect(row.state).toBe("Failed");
    expect(row.end_at).not.toBeNull();
    expect(row.dispatch).toBe("done");
    const lines = logLines(row);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`attempt 1: target answered ${status}: "rejected with ${status}"`));
  });

  it("a redirect is not followed: acked, Failed", async () => {
    const f = await fixture();
    const action = await insertAction(f);
    hook(f, () => new HttpResponse(null, { status: 302, headers: { location: "https://elsewhere.example.test/" } }));
    const m = message(f, action, 1);
    const result = await runOperations([m]);
    expect(result.explicitAcks).toEqual([m.id]);
    expect(result.retryMessages).toEqual([]);
    const row = await actionRow(f, action);
    expect(row.state).toBe("Failed");
    expect(row.logs).toMatch(/302 \(redirects are not followed\)/);
  });

  it.each([200, 202, 204])("%i → acked, action Success, registry updated", async (status) => {
    const f = await fixture({ target_num_containers: 3 });
    const action = await insertAction(f);
    const seen = hook(f, () => new HttpResponse(status === 204 ? null : "ok", { status }));
    const m = message(f, action, 2);

    const result = await runOperations([m]);
    expect(result.explicitAcks).toEqual([m.id]);
    expect(result.retryMessages).toEqual([]);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.payload).toMatchObject({
      type: "service.redeploy",
      data: { action: { uuid: action }, namespace: f.user.username, service: { uuid: f.svc.uuid } },
    });

    const row = await actionRow(f, action);
    expect(row.state).toBe("Success");
    expect(row.dispatch).toBe("done");
    expect(logLines(row)).toHaveLength(1);
    expect(row.logs).toMatch(new RegExp(`attempt 1: target answered ${status}`));
    const svc = await runInDurableObject(f.ns, (_o: NamespaceObject, state) =>
      state.storage.sql
        .exec<{ state: string; running_num_containers: number }>(
          "SELECT state, running_num_containers FROM services WHERE uuid = ?",
          f.svc.uuid,
        )
        .one(),
    );
    expect(svc).toEqual({ state: "Running", running_num_containers: 3 });
  });

  it("a message naming an action that does not exist is acked and calls nothing", async () => {
    const f = await fixture();
    const seen = hook(f, () => new HttpResponse(null, { status: 200 }));
    const m = message(f, crypto.randomUUID(), 1);
    const result = await runOperations([m]);
    expect(result.explicitAcks).toEqual([m.id]);
    expect(result.retryMessages).toEqual([]);
    expect(seen).toHaveLength(0);
  });
});

describe("operations consumer: malformed messages", () => {
  it.each([
    ["a string", "not json at all"],
    ["null", null],
    ["no action", { namespace: "someone" }],
    ["an action that is not a uuid", { namespace: "someone", action: "'; DROP TABLE actions; --" }],
    ["an empty namespace", { namespace: "", action: crypto.randomUUID() }],
  ])("%s → acked once (explicitAcks), never retried", async (_name, body) => {
    const m: Msg = { id: crypto.randomUUID(), attempts: 1, body };
    const result = await runOperations([m]);
    expect(result.explicitAcks).toEqual([m.id]);
    expect(result.retryMessages).toEqual([]);
    expect(result.retryBatch.retry).toBe(false);
    expect(result.ackAll).toBe(false);
  });

  it("a poison message does not stop the good message next to it", async () => {
    const f = await fixture();
    const action = await insertAction(f);
    const seen = hook(f, () => new HttpResponse(null, { status: 200 }));
    const bad: Msg = { id: crypto.randomUUID(), attempts: 1, body: { nope: true } };
    const good = message(f, action, 1);
    const result = await runOperations([bad, good]);
    expect([...result.explicitAcks].sort()).toEqual([bad.id, good.id].sort());
    expect(result.retryMessages).toEqual([]);
    expect(seen).toHaveLength(1);
    expect((await actionRow(f, action)).state).toBe("Success");
  });
});

describe("operations consumer: redelivery performs the operation once", () => {
  it("the same message delivered again after Success is acked and the target is not called again", async () => {
    const f = await fixture();
    const action = await insertAction(f);
    const seen = hook(f, () => new HttpResponse(null, { status: 200 }));
    const id = crypto.randomUUID();

    const first = await runOperations([message(f, action, 1, id)]);
    expect(first.explicitAcks).toEqual([id]);
    const done = await actionRow(f, action);
    expect(done.state).toBe("Success");

    const again = await runOperations([message(f, action, 2, id)]);
    expect(again.explicitAcks).toEqual([id]);
    expect(again.retryMessages).toEqual([]);
    expect(seen).toHaveLength(1);
    const after = await actionRow(f, action);
    expect(after.state).toBe("Success");
    expect(after.attempts).toBe(1);
    expect(after.logs).toBe(done.logs);
    expect(after.end_at).toBe(done.end_at);
  });

  it("a redelivered SCALEUP after Success does not scale the service a second time", async () => {
    const f = await fixture({ target_num_containers: 1, max_num_containers: 10 });
    const action = await insertAction(f, "scaleup", 2);
    const seen = hook(f, () => new HttpResponse(null, { status: 200 }));
    const id = crypto.randomUUID();
    await runOperations([message(f, action, 1, id)]);
    await runOperations([message(f, action, 1, id)]);
    await runOperations([message(f, action, 3, id)]);
    expect(seen).toHaveLength(1);
    const target = await runInDurableObject(
      f.ns,
      (_o: NamespaceObject, state) =>
        state.storage.sql
          .exec<{ t: number }>("SELECT target_num_containers AS t FROM services WHERE uuid = ?", f.svc.uuid)
          .one().t,
    );
    expect(target).toBe(3);
  });

  it("the same message delivered after Failed is acked and the target is not called again", async () => {
    const f = await fixture();
    const action = await insertAction(f);
    const seen = hook(f, () => new HttpResponse(null, { status: 404 }));
    const id = crypto.randomUUID();
    await runOperations([message(f, action, 1, id)]);
    const again = await runOperations([message(f, action, 2, id)]);
    expect(again.explicitAcks).toEqual([id]);
    expect(again.retryMessages).toEqual([]);
    expect(seen).toHaveLength(1);
    expect((await actionRow(f, action)).state).toBe("Failed");
  });

  it("two copies of the same message delivered at once perform the operation once", async () => {
    // docs/architecture.md: a message "can be redelivered, delayed or duplicated
    // without effect beyond one performance". Queues deliver at least once, so
    // two copies can be in flight together.
    const f = await fixture();
    const action = await insertAction(f);
    const seen = hook(
      f,
      () => new Promise<Response>((resolve) => setTimeout(() => resolve(new HttpResponse(null, { status: 200 })), 50)),
    );
    const id = crypto.randomUUID();
    const result = await runOperations([message(f, action, 1, id), message(f, action, 1, id)]);
    expect(result.retryMessages).toEqual([]);
    expect(seen).toHaveLength(1);
    const row = await actionRow(f, action);
    expect(row.state).toBe("Success");
    expect(row.attempts).toBe(1);
  });
});

describe("dead-letter consumer (the queue could not start the action)", () => {
  it("marks the action Failed with 'gave up' and the last error, and acks", async () => {
    const f = await fixture();
    const action = await insertAction(f);
    let n = 0;
    hook(f, () => {
      n += 1;
      return n === 1 ? HttpResponse.error() : new HttpResponse("upstream exploded", { status: 502 });
    });
    const id = crypto.randomUUID();
    for (let attempts = 1; attempts <= 2; attempts++) {
      const r = await runOperations([message(f, action, attempts, id)]);
      expect(r.explicitAcks).toEqual([id]);
      await makeDue(f, action);
    }
    expect((await actionRow(f, action)).state).toBe("In progress");

    const batch = createMessageBatch<unknown>(DLQ, [{ ...message(f, action, 1, id), timestamp: new Date() }]);
    const ctx = createExecutionContext();
    await consumeDeadLetters(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual([id]);
    expect(result.retryMessages).toEqual([]);

    const row = await actionRow(f, action);
    expect(row.state).toBe("Failed");
    expect(row.end_at).not.toBeNull();
    expect(row.dispatch).toBe("done");
    const lines = logLines(row);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/attempt 1: network error: "/);
    expect(lines[1]).toMatch(/attempt 2: target answered 502: "upstream exploded"/);
    expect(lines[2]).toMatch(/gave up after 2 attempt\(s\); last error: target answered 502: "upstream exploded"/);
  });

  it("the Worker's queue handler routes the -dlq queue to the dead-letter consumer", async () => {
    const f = await fixture();
    const action = await insertAction(f);
    const seen = hook(f, () => new HttpResponse(null, { status: 200 }));
    const id = crypto.randomUUID();
    const batch = createMessageBatch<unknown>(DLQ, [{ ...message(f, action, 1, id), timestamp: new Date() }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual([id]);
    expect(seen).toHaveLength(0);
    const row = await actionRow(f, action);
    expect(row.state).toBe("Failed");
    expect(row.logs).toMatch(/gave up after 0 attempt\(s\); last error: no attempt completed/);
  });

  it("a dead letter for an action that already succeeded changes nothing", async () => {
    const f = await fixture();
    const action = await insertAction(f);
    hook(f, () => new HttpResponse(null, { status: 200 }));
    await runOperations([message(f, action, 1)]);
    const before = await actionRow(f, action);
    expect(before.state).toBe("Success");

    const batch = createMessageBatch<unknown>(DLQ, [{ ...message(f, action, 1), timestamp: new Date() }]);
    const ctx = createExecutionContext();
    await consumeDeadLetters(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toHaveLength(1);
    expect(await actionRow(f, action)).toEqual(before);
  });

  it("a malformed dead letter is acked, not retried", async () => {
    const batch = createMessageBatch<unknown>(DLQ, [
      { id: "poison", timestamp: new Date(), attempts: 1, body: { action: 42 } },
    ]);
    const ctx = createExecutionContext();
    await consumeDeadLetters(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual(["poison"]);
    expect(result.retryMessages).toEqual([]);
  });

  it("giving up hands the next waiting action of the service to the queue", async () => {
    const f = await fixture();
    const first = await insertAction(f);
    // A second call behind the first one, as insertAction would record it.
    const second = crypto.randomUUID();
    await runInDurableObject(f.ns, (_o: NamespaceObject, state) => {
      const now = Date.now();
      state.storage.sql.exec(
        `INSERT INTO actions (uuid, service_uuid, object, kind, method, path, start_at, state, is_user_action,
           dispatch, touched_at)
         VALUES (?, ?, ?, 'redeploy', 'POST', '/test', ?, 'Pending', 0, 'waiting', ?)`,
        second,
        f.svc.uuid,
        f.svc.resource_uri,
        now,
        now,
      );
    });
    hook(f, () => new HttpResponse(null, { status: 503 }));
    await runOperations([message(f, first, 1)]);
    expect((await actionRow(f, second)).dispatch).toBe("waiting");

    // The second action will now be sent by the alarm; let it through quickly.
    network.use(http.post(f.url, () => new HttpResponse(null, { status: 200 })));
    const batch = createMessageBatch<unknown>(DLQ, [{ ...message(f, first, 1), timestamp: new Date() }]);
    await consumeDeadLetters(batch, env);
    expect((await actionRow(f, first)).state).toBe("Failed");
    expect((await actionRow(f, second)).dispatch).not.toBe("waiting");
    await vi.waitUntil(async () => (await actionRow(f, second)).state === "Success", { timeout: 10_000, interval: 50 });
  });
});
