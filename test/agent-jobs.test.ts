/**
 * Agent targets: a service's operations go to its agent over the agent's
 * connection, straight from the namespace's object, one per service at a
 * time, and the action ends with the agent's report. An agent that is not
 * connected keeps them waiting; a new connection gets them again, marked
 * `applied` once the agent said so; the registry shows what the agent
 * observed. The agent here is a real WebSocket through the Worker that
 * speaks the protocol by hand.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { HttpResponse, http } from "msw";
import { describe, expect, it } from "vitest";
import type { AgentJob } from "../src/domain/agent-protocol";
import type { NamespaceObject } from "../src/durable-objects/namespace";
import { ACK_MS } from "../src/durable-objects/namespace/agents/jobs";
import { logsOf, readJson, sleep, WAIT, waitForState } from "./helpers/actions";
import { connect } from "./helpers/agent-socket";
import {
  as,
  call,
  createAgent,
  createService,
  createTrigger,
  createUser,
  type NewAgentJson,
  type ServiceJson,
  type User,
} from "./helpers/api";
import { network } from "./helpers/msw";

type Action = { uuid: string; resource_uri: string; state: string };

const OBSERVED = { replicas: 3, desired: 3, running: 3, image: `127.0.0.1:5000/bb:1@sha256:${"a".repeat(64)}` };

async function agentService(user: User, agent: string, extra: Record<string, unknown> = {}) {
  return createService(user, {
    target: { type: "agent", agent, swarm_service: "web" },
    target_num_containers: 1,
    max_num_containers: 5,
    ...extra,
  });
}

async function fire(url: string, body?: string): Promise<Action> {
  const r = await call(url, { method: "POST", ...(body === undefined ? {} : { body }) });
  expect(r.status, await r.clone().text()).toBe(202);
  return r.json<Action>();
}

async function setup(extra: Record<string, unknown> = {}) {
  const user = await createUser();
  const agent = await createAgent(user);
  const svc = await agentService(user, agent.name, extra);
  const redeploy = await createTrigger(user, svc, { operation: "REDEPLOY" });
  const scaleup = await createTrigger(user, svc, { operation: "SCALEUP" });
  return { user, agent, svc, redeploy, scaleup };
}

const actionOf = (user: User, a: Action) => readJson<Action>(user, a.resource_uri);
const nsOf = (user: User) => env.NAMESPACES.getByName(user.username);

describe("setting an agent target", () => {
  it("names an agent of the namespace by name or uuid, and is stored by its uuid", async () => {
    const user = await createUser();
    const agent = await createAgent(user, "edge-1");
    const byName = await agentService(user, "edge-1");
    expect(byName.target).toEqual({ type: "agent", agent: agent.uuid, swarm_service: "web" });
    const byUuid = await agentService(user, agent.uuid, { name: "other" });
    expect(byUuid.target).toEqual({ type: "agent", agent: agent.uuid, swarm_service: "web" });
    // Renaming the agent changes nothing for the services that name it.
    expect((await as(user, "PATCH", agent.resource_uri, { name: "edge-2" })).status).toBe(200);
    expect((await readJson<ServiceJson>(user, byName.resource_uri)).target).toEqual(byName.target);
  });

  it("refuses an agent the namespace does not have (another namespace's included) and a bad service name", async () => {
    const user = await createUser();
    const stranger = await createAgent(await createUser(), "theirs");
    for (const agent of ["nobody", stranger.uuid, "theirs"]) {
      const r = await as(user, "POST", "/api/app/v1/service/", {
        image: "busybox",
        target: { type: "agent", agent, swarm_service: "web" },
      });
      expect(r.status).toBe(400);
      const { error } = await r.json<{ error: string }>();
      expect(error).toContain("this namespace has no agent by that name or uuid");
      expect(error, "a uuid from the request is never repeated").not.toContain(stranger.uuid);
    }
    await createAgent(user, "mine");
    const bad = await as(user, "POST", "/api/app/v1/service/", {
      image: "busybox",
      target: { type: "agent", agent: "mine", swarm_service: "bad name; rm -rf /" },
    });
    expect(bad.status).toBe(400);
    expect((await bad.json<{ error: string }>()).error).toContain("target.swarm_service");
    expect((await (await as(user, "GET", "/api/app/v1/service/")).json<{ objects: unknown[] }>()).objects).toEqual([]);
  });
});

describe("delivery to a connected agent", () => {
  it("a call's job reaches the agent at once; its progress is logged; Success comes with its report", async () => {
    const { user, agent, svc, redeploy } = await setup();
    const link = await connect(agent.token);
    await link.hello();
    const action = await fire(redeploy.url, "built abc");
    const job = await link.job(1);
    expect(job).toEqual({
      action: action.uuid,
      attempt: 1,
      kind: "redeploy",
      service: "web",
      scale_by: null,
      replicas: null,
      max_replicas: 5,
      body: "built abc",
      converge_seconds: 300,
      applied: false,
      image: null,
    } satisfies AgentJob);
    expect((await actionOf(user, action)).state).toBe("In progress");
    link.send({ type: "ack", action: action.uuid, attempt: 1 });
    link.send({ type: "applied", action: action.uuid });
    link.send({ type: "progress", action: action.uuid, line: "2/3 tasks running image sha256:aaa" });
    link.send({
      type: "report",
      action: action.uuid,
      attempt: 1,
      result: "success",
      detail: "converged",
      observed: OBSERVED,
    });
    await waitForState(user, action.resource_uri, "Success");
    const logs = await logsOf(user, action.resource_uri);
    expect(logs).toContain("sent to agent 'edge' (delivery 1)");
    expect(logs).toContain(`agent 'edge': "2/3 tasks running image sha256:aaa"`);
    expect(logs).toContain('attempt 1: "converged"');
    const mirrored = await readJson<Record<string, unknown>>(user, svc.resource_uri);
    expect(mirrored).toMatchObject({
      target_num_containers: 3,
      current_num_containers: 3,
      running_num_containers: 3,
      image_name: OBSERVED.image,
      image_tag: "1",
      state: "Running",
    });
    expect(mirrored.deployed_datetime).not.toBeNull();
  });

  it("one job per service at a time, in call order; the next goes out when the first is reported", async () => {
    const { user, agent, redeploy, scaleup } = await setup();
    const link = await connect(agent.token);
    await link.hello();
    const first = await fire(redeploy.url);
    const second = await fire(`${scaleup.url}2/`);
    await link.job(1);
    await sleep(200);
    expect(link.jobs()).toHaveLength(1);
    link.send({
      type: "report",
      action: first.uuid,
      attempt: 1,
      result: "failed",
      detail: "rolled back: task: non-zero exit (1)",
      observed: null,
    });
    const next = await link.job(2);
    expect(next).toMatchObject({ action: second.uuid, kind: "scaleup", scale_by: 2, replicas: null });
    const failed = await actionOf(user, first);
    expect(failed.state).toBe("Failed");
    expect(await logsOf(user, failed.resource_uri)).toContain("task: non-zero exit (1)");
  });

  it("a report from another agent, or for an earlier delivery, changes nothing", async () => {
    const { user, agent, redeploy } = await setup();
    const other = await createAgent(user, "other");
    const link = await connect(agent.token);
    await link.hello();
    const intruder = await connect(other.token);
    await intruder.hello();
    const action = await fire(redeploy.url);
    await link.job(1);
    const report = {
      type: "report",
      action: action.uuid,
      attempt: 1,
      result: "success",
      detail: "ok",
      observed: OBSERVED,
    };
    intruder.send(report);
    link.send({ ...report, attempt: 7 });
    await sleep(200);
    expect((await actionOf(user, action)).state).toBe("In progress");
    link.send(report);
    await waitForState(user, action.resource_uri, "Success");
  });

  it("a scale-up past max_num_containers is refused without reaching the agent; scale/ sends the target", async () => {
    const { user, agent, svc, scaleup } = await setup({ target_num_containers: 4, max_num_containers: 5 });
    const link = await connect(agent.token);
    await link.hello();
    const refused = await call(`${scaleup.url}2/`, { method: "POST" });
    expect(refused.status).toBe(409);
    await sleep(100);
    expect(link.jobs()).toHaveLength(0);
    expect((await as(user, "PATCH", svc.resource_uri, { target_num_containers: 2 })).status).toBe(200);
    expect((await as(user, "POST", `${svc.resource_uri}scale/`)).status).toBe(202);
    expect(await link.job(1)).toMatchObject({ kind: "scale", replicas: 2, scale_by: null });
  });
});

describe("an agent that is not connected", () => {
  it("keeps the actions Pending, saying so; they go out in order when it connects", async () => {
    const { user, agent, redeploy, scaleup } = await setup();
    const other = await agentService(user, agent.uuid, { name: "second" });
    const otherTrigger = await createTrigger(user, other, { operation: "REDEPLOY" });
    const a = await fire(redeploy.url);
    const b = await fire(otherTrigger.url);
    const c = await fire(`${scaleup.url}1/`);
    for (const x of [a, b]) {
      const waiting = await actionOf(user, x);
      expect(waiting.state).toBe("Pending");
      expect(await logsOf(user, waiting.resource_uri)).toContain("waiting for agent 'edge' to connect");
    }
    const link = await connect(agent.token);
    await link.hello();
    await link.job(2);
    expect(link.jobs().map((j) => j.action)).toEqual([a.uuid, b.uuid]);
    link.send({ type: "report", action: a.uuid, attempt: 1, result: "success", detail: "ok", observed: OBSERVED });
    expect((await link.job(3)).action).toBe(c.uuid);
  });

  it("past AGENT_WAIT_SECONDS they fail with that reason", async () => {
    const { user, redeploy } = await setup();
    const a = await fire(redeploy.url);
    await waitForLog(user, a, "waiting for agent");
    const ns = nsOf(user);
    await runInDurableObject(ns, (_o: NamespaceObject, state) => {
      state.storage.sql.exec(
        "UPDATE agent_jobs SET waiting_since = ? WHERE action_uuid = ?",
        Date.now() - 3_601_000,
        a.uuid,
      );
      state.storage.sql.exec("UPDATE actions SET due_at = ? WHERE uuid = ?", Date.now() - 1, a.uuid);
    });
    await runDurableObjectAlarm(ns);
    const failed = await waitForState<Action>(user, a.resource_uri, "Failed");
    expect(await logsOf(user, failed.resource_uri)).toContain("agent 'edge' did not connect within 3600 s");
  });

  it("a job lost with its connection is delivered again on the next, marked applied once the agent said so", async () => {
    const { user, agent, redeploy } = await setup();
    const first = await connect(agent.token);
    await first.hello();
    const action = await fire(redeploy.url, "x");
    await first.job(1);
    first.send({ type: "ack", action: action.uuid, attempt: 1 });
    first.send({ type: "applied", action: action.uuid });
    await sleep(100);
    first.ws.close(1001, "agent crashed");
    const second = await connect(agent.token);
    await second.hello();
    const again = await second.job(1);
    expect(again).toMatchObject({ action: action.uuid, attempt: 2, applied: true, body: "x" });
    second.send({
      type: "report",
      action: action.uuid,
      attempt: 2,
      result: "success",
      detail: "converged",
      observed: OBSERVED,
    });
    const done = await waitForState<Action>(user, action.resource_uri, "Success");
    expect(await logsOf(user, done.resource_uri)).toContain("delivery 2");
  });

  it("a job never acknowledged is delivered again once its deadline passes", async () => {
    const { user, agent, redeploy } = await setup();
    const link = await connect(agent.token);
    await link.hello();
    const action = await fire(redeploy.url);
    await link.job(1);
    const ns = nsOf(user);
    await runDurableObjectAlarm(ns);
    expect(link.jobs()).toHaveLength(1);
    await runInDurableObject(ns, (_o: NamespaceObject, state) => {
      state.storage.sql.exec("UPDATE actions SET due_at = ? WHERE uuid = ?", Date.now() - ACK_MS, action.uuid);
    });
    await runDurableObjectAlarm(ns);
    expect(await link.job(2)).toMatchObject({ action: action.uuid, attempt: 2, applied: false });
  });

  it("a deleted agent's actions wait, saying why, and go to the agent the service is pointed at next", async () => {
    const { user, agent, svc, redeploy } = await setup();
    const action = await fire(redeploy.url);
    expect((await as(user, "DELETE", agent.resource_uri)).status).toBe(200);
    await waitForLog(user, action, "it was deleted: set the service's target to another agent");
    const next: NewAgentJson = await createAgent(user, "edge-2");
    const link = await connect(next.token);
    await link.hello();
    const patched = await as(user, "PATCH", svc.resource_uri, {
      target: { type: "agent", agent: "edge-2", swarm_service: "web" },
    });
    expect(patched.status).toBe(200);
    expect((await link.job(1)).action).toBe(action.uuid);
  });
});

describe("a service pointed away from its agent", () => {
  it("hands its waiting actions to the new target at once", async () => {
    const { user, svc, redeploy } = await setup();
    const a = await fire(redeploy.url);
    await waitForLog(user, a, "waiting for agent 'edge' to connect");
    const url = `https://${crypto.randomUUID().slice(0, 8)}.hooks.example.test/deploy`;
    let delivered = 0;
    network.use(
      http.post(url, () => {
        delivered += 1;
        return new HttpResponse(null, { status: 204 });
      }),
    );
    const patched = await as(user, "PATCH", svc.resource_uri, { target: { type: "webhook", url } });
    expect(patched.status).toBe(200);
    await waitForState(user, a.resource_uri, "Success");
    expect(delivered).toBe(1);
  });
});

describe("what the queue does with an agent's action", () => {
  it("nothing: a delivery from the queue hands it to the agent path", async () => {
    const { user, redeploy } = await setup();
    const a = await fire(redeploy.url);
    const begun = await nsOf(user).beginAttempt(a.uuid);
    expect(begun).toEqual({ status: "done", reason: "the action goes to its agent" });
    expect((await actionOf(user, a)).state).toBe("Pending");
  });
});

async function waitForLog(user: User, a: Action, text: string) {
  return expect.poll(() => logsOf(user, a.resource_uri), WAIT).toContain(text);
}
