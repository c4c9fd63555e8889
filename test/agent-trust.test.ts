/**
 * A hostile agent, or whoever holds its token, against the namespace: the
 * protocol spoken by hand over a real WebSocket through the Worker.
 *   - what an agent causes to be written stays within a budget per delivery
 *     and per action, late reports are counted rather than logged each, and
 *     a line costs the same at any log size;
 *   - hellos and reconnects never take an action past MAX_ATTEMPTS, acks
 *     never move a delivery's deadline, and every action has a hard end;
 *   - what an agent reports passes the checks a user's values pass;
 *   - a connection is the agent only after its hello; a replacement is told,
 *     recorded and published; a token can be rotated.
 * Floods are bounded in count; costs are compared as rows touched, not time.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DELIVERY_LOG_BUDGET } from "../src/domain/agent-protocol";
import { unsafeTextProblem } from "../src/domain/text";
import type { NamespaceObject } from "../src/durable-objects/namespace";
import { ACTION_LOG_BUDGET } from "../src/durable-objects/namespace/action-logs";
import type { Rooms } from "../src/durable-objects/namespace/rooms";
import { logsOf, readJson, sleep, WAIT, waitForState } from "./helpers/actions";
import { connect, dial } from "./helpers/agent-socket";
import {
  type AgentJson,
  admin,
  as,
  call,
  createAgent,
  createService,
  createTrigger,
  createUser,
  type User,
} from "./helpers/api";
import { listen } from "./helpers/sockets";

type Action = { uuid: string; resource_uri: string; state: string };
const MAX_ATTEMPTS = 4; // vitest.config.ts
const nsOf = (user: User) => env.NAMESPACES.getByName(user.username);
/** The object's modules, to write lines the way the object does. */
const roomsOf = (o: NamespaceObject) => (o as unknown as { r: Rooms }).r;
const NASTY = "\u001b[31m\n\u202e\u0000".repeat(100); // 500 characters, each escaped to 6 bytes in a log

async function setup() {
  const user = await createUser();
  const agent = await createAgent(user);
  const svc = await createService(user, {
    target: { type: "agent", agent: agent.uuid, swarm_service: "web" },
    target_num_containers: 1,
    max_num_containers: 10,
  });
  const redeploy = await createTrigger(user, svc, { operation: "REDEPLOY" });
  return { user, agent, svc, redeploy };
}

async function fire(url: string): Promise<Action> {
  const r = await call(url, { method: "POST" });
  expect(r.status).toBe(202);
  return r.json<Action>();
}

/** The action's row as stored: its attempts, its log's counters and its deadline. */
const row = (user: User, uuid: string) =>
  runInDurableObject(nsOf(user), (_o: NamespaceObject, state) =>
    state.storage.sql
      .exec<{ attempts: number; log_lines: number; log_bytes: number; log_dropped: number; due_at: number | null }>(
        "SELECT attempts, log_lines, log_bytes, log_dropped, due_at FROM actions WHERE uuid = ?",
        uuid,
      )
      .one(),
  );

async function linesOf(user: User, a: Action): Promise<string[]> {
  return (await logsOf(user, a.resource_uri)).split("\n");
}

describe("log budgets: an agent cannot grow an action's log without bound", () => {
  it("progress past a delivery's budget is dropped and counted, said once; the report still ends the action", async () => {
    const { user, agent, redeploy } = await setup();
    const link = await connect(agent.token);
    await link.hello();
    const a = await fire(redeploy.url);
    const job = await link.job(1);
    const flood = DELIVERY_LOG_BUDGET.lines + 100;
    for (let i = 0; i < flood; i++) link.send({ type: "progress", action: job.action, line: NASTY });
    link.send({ type: "report", action: job.action, attempt: 1, result: "success", detail: "ok", observed: null });
    await waitForState(user, a.resource_uri, "Success");
    const lines = await linesOf(user, a);
    const progress = lines.filter((l) => l.includes(`agent '${agent.name}':`));
    const stored = await row(user, a.uuid);
    // Bytes bind first: 500 escaped characters are about 3 KB a line.
    expect(progress.length).toBeLessThan(DELIVERY_LOG_BUDGET.lines);
    expect(progress.reduce((n, l) => n + new TextEncoder().encode(l).length, 0)).toBeLessThanOrEqual(
      DELIVERY_LOG_BUDGET.bytes,
    );
    expect(lines.filter((l) => l.includes("are dropped and counted"))).toHaveLength(1);
    expect(stored.log_dropped).toBe(flood - progress.length);
    expect(lines.at(-1)).toContain(`${flood - progress.length} line(s) were not written`);
    for (const l of progress) expect(unsafeTextProblem("line", l), "every line is plain text").toBeNull();
  });

  it("reports of other deliveries are logged once and then only counted; a future one too", async () => {
    const { user, agent, redeploy } = await setup();
    const link = await connect(agent.token);
    await link.hello();
    const a = await fire(redeploy.url);
    const job = await link.job(1);
    for (let i = 0; i < 300; i++) {
      const attempt = i % 2 === 0 ? job.attempt + 1 : job.attempt + 5;
      link.send({ type: "report", action: job.action, attempt, result: "failed", detail: NASTY, observed: null });
    }
    await expect.poll(async () => (await row(user, a.uuid)).log_dropped, WAIT).toBe(299);
    expect((await readJson<Action>(user, a.resource_uri)).state, "a report of another delivery ends nothing").toBe(
      "In progress",
    );
    const lines = await linesOf(user, a);
    expect(lines.filter((l) => l.includes("not of the current one"))).toHaveLength(1);
    expect(lines.length).toBeLessThan(5);
  });

  it("the action's own budget bounds every optional line, whatever writes it", async () => {
    const { user, redeploy } = await setup();
    const a = await fire(redeploy.url);
    await runInDurableObject(nsOf(user), (o: NamespaceObject) => {
      for (let i = 0; i < ACTION_LOG_BUDGET.lines + 50; i++) roomsOf(o).actions.appendWithinBudget(a.uuid, `line ${i}`);
    });
    const stored = await row(user, a.uuid);
    expect(stored.log_lines).toBeLessThanOrEqual(ACTION_LOG_BUDGET.lines + 2);
    expect(stored.log_dropped).toBeGreaterThanOrEqual(50);
    const lines = await linesOf(user, a);
    expect(lines.filter((l) => l.includes("this log reached its budget"))).toHaveLength(1);
  });

  it("a line costs the same rows at any log size: the 1,000th as the 1st (a line per row)", async () => {
    const { user, redeploy } = await setup();
    const a = await fire(redeploy.url);
    const touched = await runInDurableObject(nsOf(user), (o: NamespaceObject, state) => {
      const sql = state.storage.sql;
      const exec = sql.exec.bind(sql);
      const costOf = (write: () => void) => {
        const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
        sql.exec = ((query: string, ...bindings: unknown[]) => {
          const c = exec(query, ...bindings);
          cursors.push(c);
          return c;
        }) as typeof sql.exec;
        try {
          write();
        } finally {
          sql.exec = exec;
        }
        return cursors.reduce((t, c) => ({ read: t.read + c.rowsRead, written: t.written + c.rowsWritten }), {
          read: 0,
          written: 0,
        });
      };
      const line = `${new Date().toISOString()} ${"x".repeat(200)}`;
      const first = costOf(() => roomsOf(o).actions.appendLog(a.uuid, line, null));
      for (let i = 0; i < 998; i++) roomsOf(o).actions.appendLog(a.uuid, line, null);
      const thousandth = costOf(() => roomsOf(o).actions.appendLog(a.uuid, line, null));
      const lines = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM action_logs WHERE action_uuid = ?", a.uuid);
      return { first, thousandth, lines: lines.one().n };
    });
    expect(touched.lines).toBeGreaterThanOrEqual(1000);
    expect(touched.first.written).toBeGreaterThan(0);
    expect(touched.thousandth.read / touched.first.read, "rows read, 1,000th line / 1st").toBe(1);
    expect(touched.thousandth.written / touched.first.written, "rows written, 1,000th line / 1st").toBe(1);
  });

  it("an action ends even when its last line cannot be written", async () => {
    const { user, redeploy } = await setup();
    const a = await fire(redeploy.url);
    // The line table gone for a moment: every line written now fails.
    await runInDurableObject(nsOf(user), (_o, state) => {
      state.storage.sql.exec("ALTER TABLE action_logs RENAME TO action_logs_away");
    });
    try {
      const canceled = await as(user, "POST", `${a.resource_uri}cancel/`);
      expect(canceled.status).toBe(200);
      expect((await readJson<Action>(user, a.resource_uri)).state).toBe("Canceled");
    } finally {
      await runInDurableObject(nsOf(user), (_o, state) => {
        state.storage.sql.exec("ALTER TABLE action_logs_away RENAME TO action_logs");
      });
    }
  });
});

describe("deliveries and deadlines: an agent cannot hold an action open", () => {
  it("hellos repeated on one connection redeliver nothing", async () => {
    const { user, agent, redeploy } = await setup();
    const link = await connect(agent.token);
    await link.hello();
    const a = await fire(redeploy.url);
    await link.job(1);
    for (let i = 0; i < 10; i++) {
      link.send({ type: "hello", agent_version: "0.1.0", orchestrator: "swarm", engine_version: "1", node_id: "n0de" });
    }
    await link.until(() => link.messages.filter((m) => m.includes("hello was already said")).length === 10, "errors");
    expect(link.jobs()).toHaveLength(1);
    expect((await row(user, a.uuid)).attempts).toBe(1);
  });

  it("reconnecting again and again never takes an action past MAX_ATTEMPTS deliveries", async () => {
    const { user, agent, redeploy } = await setup();
    const a = await fire(redeploy.url);
    for (let i = 0; i < MAX_ATTEMPTS + 4; i++) {
      const link = await connect(agent.token);
      await link.hello();
      await sleep(30);
      link.ws.close(1000, "again");
      await sleep(30);
      expect((await row(user, a.uuid)).attempts).toBeLessThanOrEqual(MAX_ATTEMPTS);
    }
    // Its last delivery's deadline passes: it fails, saying how many deliveries it had.
    await runInDurableObject(nsOf(user), (_o, state) => {
      state.storage.sql.exec("UPDATE actions SET due_at = ? WHERE uuid = ?", Date.now() - 1, a.uuid);
    });
    await runDurableObjectAlarm(nsOf(user));
    await waitForState(user, a.resource_uri, "Failed");
    expect(await logsOf(user, a.resource_uri)).toContain(`did not report on the operation after ${MAX_ATTEMPTS}`);
    expect((await row(user, a.uuid)).attempts).toBe(MAX_ATTEMPTS);
  });

  it("only the first ack of a delivery sets its deadline; acking again moves nothing", async () => {
    const { user, agent, redeploy } = await setup();
    const link = await connect(agent.token);
    await link.hello();
    const a = await fire(redeploy.url);
    const job = await link.job(1);
    link.send({ type: "ack", action: job.action, attempt: job.attempt });
    await expect.poll(async () => (await row(user, a.uuid)).due_at, WAIT).toBeGreaterThan(Date.now() + 60_000);
    const deadline = (await row(user, a.uuid)).due_at;
    for (let i = 0; i < 20; i++) {
      await sleep(5);
      link.send({ type: "ack", action: job.action, attempt: job.attempt });
    }
    link.send({ type: "progress", action: job.action, line: "after the acks" });
    await expect.poll(() => logsOf(user, a.resource_uri), WAIT).toContain("after the acks");
    expect((await row(user, a.uuid)).due_at).toBe(deadline);
  });

  it("an action has a hard end: past it, it fails whatever the agent says", async () => {
    const { user, agent, redeploy } = await setup();
    const link = await connect(agent.token);
    await link.hello();
    const a = await fire(redeploy.url);
    const job = await link.job(1);
    link.send({ type: "ack", action: job.action, attempt: job.attempt });
    await runInDurableObject(nsOf(user), (_o, state) => {
      state.storage.sql.exec("UPDATE agent_jobs SET ends_at = ? WHERE action_uuid = ?", Date.now() - 1, a.uuid);
      state.storage.sql.exec("UPDATE actions SET due_at = ? WHERE uuid = ?", Date.now() - 1, a.uuid);
    });
    await runDurableObjectAlarm(nsOf(user));
    await waitForState(user, a.resource_uri, "Failed");
    expect(await logsOf(user, a.resource_uri)).toMatch(/did not finish within \d+ min \(its hard end\)/);
  });
});

describe("what an agent reports passes the checks a user's values pass", () => {
  it("an observed state that is no valid image or count is refused, said, and the action still ends", async () => {
    const { user, agent, svc, redeploy } = await setup();
    const link = await connect(agent.token);
    await link.hello();
    for (const [n, observed, field] of [
      [1, { replicas: 2, desired: 2, running: 2, image: "evil\n\u001b[31mRED\u001b[0m\u202eabc" }, "observed.image"],
      [2, { replicas: 2, desired: 100_000, running: 2, image: "busybox:1" }, "observed.desired"],
      [3, { replicas: 2, desired: 2, running: 2, image: `busybox:${"1".repeat(300)}` }, "observed.image"],
    ] as const) {
      const a = await fire(redeploy.url);
      const job = await link.job(n);
      link.send({
        type: "report",
        action: job.action,
        attempt: job.attempt,
        result: "success",
        detail: "ok",
        observed,
      });
      await waitForState(user, a.resource_uri, "Success");
      await link.until(() => link.messages.some((m) => m.includes(field)), `the error naming ${field}`);
      expect(await logsOf(user, a.resource_uri)).toContain(`refused its observed state: ${field}`);
    }
    const after = await readJson<Record<string, unknown>>(user, svc.resource_uri);
    expect(after.image_name, "the registry keeps the user's image").toBe(svc.image_name);
    expect(after.current_num_containers, "not the 100,000 an agent claimed").toBe(svc.target_num_containers);
  });

  it("a hello whose text a terminal would misread is refused (4005); nothing of it is kept", async () => {
    const { user, agent } = await setup();
    const link = await connect(agent.token);
    link.send({ type: "hello", agent_version: "0.1.0", orchestrator: "swarm", node_id: "n\u001b[31m\u202e" });
    await link.until(() => link.closed() !== null, "the close");
    expect(link.closed()?.code).toBe(4005);
    expect(link.messages.join("")).toContain("node_id must not contain control characters");
    const shown = await readJson<AgentJson>(user, agent.resource_uri);
    expect(shown).toMatchObject({ state: "Disconnected", node_id: null, orchestrator: null });
  });
});

describe("a stolen token: no silent takeover", () => {
  it("a connection that has not said hello gets no job and takes no one's place", async () => {
    const { user, agent, redeploy } = await setup();
    const thief = await connect(agent.token);
    const a = await fire(redeploy.url);
    await sleep(200);
    expect(thief.jobs(), "no job, no call body, before a hello").toHaveLength(0);
    expect((await readJson<AgentJson>(user, agent.resource_uri)).state).toBe("Disconnected");
    expect((await readJson<Action>(user, a.resource_uri)).state).toBe("Pending");
    const owner = await connect(agent.token);
    await owner.hello();
    await owner.job(1);
    await thief.until(() => thief.closed() !== null, "the silent connection to close");
    expect(thief.closed()?.code, "a newer connection closed the one that never said hello").toBe(4006);
    expect(thief.jobs()).toHaveLength(0);
  });

  it("a replacement from another node is told to the replaced agent, recorded, and published", async () => {
    const { user, agent } = await setup();
    const events = await call("/api/audit/v1/events?type=agent", {
      headers: { upgrade: "websocket", authorization: user.auth },
    });
    expect(events.status).toBe(101);
    const stream = listen(events.webSocket as WebSocket);
    const owner = await connect(agent.token);
    await owner.hello();
    const thief = await connect(agent.token);
    thief.send({ type: "hello", agent_version: "0.1.0", orchestrator: "swarm", engine_version: "1", node_id: "th1ef" });
    await owner.until(() => owner.closed() !== null, "the replaced connection to close");
    expect(owner.closed()?.code).toBe(4000);
    const told = owner.parsed<{ type: string; error?: string }>().find((m) => m.type === "error")?.error ?? "";
    expect(told).toContain("replaced by a connection from another node (node th1ef");
    expect(told).toContain("this one was node n0de");
    expect(told).toContain("rotate the token");
    const shown = await readJson<AgentJson>(user, agent.resource_uri);
    expect(shown.state).toBe("Connected");
    expect(shown.node_id).toBe("th1ef");
    expect(shown.replaced_at).not.toBeNull();
    expect(shown.replacement).toMatchObject({ previous: { node_id: "n0de" }, current: { node_id: "th1ef" } });
    await stream.until(() => stream.messages.some((m) => m.includes('"replaced":true')), "the agent event");
    const event = stream.parsed<{ type: string; uuid: string; data: Record<string, unknown> }>().at(-1);
    expect(event).toMatchObject({ type: "agent", uuid: agent.uuid });
    expect(event?.data).toMatchObject({ replaced: true, previous_node_id: "n0de", node_id: "th1ef" });
    stream.ws.close(1000, "done");
  });

  it("rotating the token closes the connection (4004), refuses the old token at once, and the new one connects", async () => {
    const { user, agent, redeploy } = await setup();
    const old = await connect(agent.token);
    await old.hello();
    const rotated = await as(user, "POST", `${agent.resource_uri}token/`);
    expect(rotated.status).toBe(201);
    const fresh = await rotated.json<{ uuid: string; token: string }>();
    expect(fresh.uuid).toBe(agent.uuid);
    expect(fresh.token).not.toBe(agent.token);
    await old.until(() => old.closed() !== null, "the old connection to close");
    expect(old.closed()?.code).toBe(4004);
    expect((await dial(agent.token)).status).toBe(401);
    const link = await connect(fresh.token);
    await link.hello();
    await fire(redeploy.url);
    await link.job(1);
    const stranger = await createUser();
    expect((await as(stranger, "POST", `${agent.resource_uri}token/`)).status).toBe(403);
  });

  it("deleting a namespace closes agents with 4002 and streams with their own 4402", async () => {
    const { user, agent } = await setup();
    const link = await connect(agent.token);
    await link.hello();
    const events = await call("/api/audit/v1/events", { headers: { upgrade: "websocket", authorization: user.auth } });
    const stream = listen(events.webSocket as WebSocket);
    expect((await admin("DELETE", `/api/admin/v1/user/${user.username}/`)).status).toBe(200);
    await link.until(() => link.closed() !== null, "the agent's close");
    await stream.until(() => stream.closed() !== null, "the stream's close");
    expect(link.closed()?.code).toBe(4002);
    expect(stream.closed()?.code).toBe(4402);
  });
});
