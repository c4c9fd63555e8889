// Real swarm, end to end: operations an agent must not or cannot perform end Failed with a clear
// reason and leave the swarm untouched (the service spec's Version.Index does not move): a
// service its allow rule excludes, a swarm service that does not exist, and an agent deleted
// (its token revoked) while services still target it.
//
// Run: npm run test:swarm   (as root: it starts and stops the swarm)
import assert from "node:assert/strict";
import { describe } from "node:test";
import { HOST, rawRequest, waitFor } from "../e2e/helpers.mjs";
import { swarmSuite } from "./suite.mjs";
import {
  describeTasks,
  docker,
  inspectService,
  runningTasks,
  uniqueName,
  versionOf,
  waitAgentOutput,
} from "./swarm.mjs";

/** How long an action waits for a missing agent in this suite's Worker before it fails. */
const WAIT_SECONDS = 5;

describe("operations an agent refuses or cannot perform, on a real swarm", () => {
  const s = swarmSuite({ vars: { AGENT_WAIT_SECONDS: String(WAIT_SECONDS) } });

  /** The swarm service as it was: same spec version, same running task. */
  async function assertUntouched(name, before, task) {
    const now = await inspectService(name);
    assert.equal(versionOf(now), versionOf(before), "the spec's Version.Index did not move");
    const running = await runningTasks(name);
    assert.deepEqual(
      running.map((t) => t.ID),
      [task.ID],
      `the same task runs: ${describeTasks(running)}`,
    );
  }

  s.step("a service the allow rule excludes: Failed, the rule's refusal in the logs, swarm untouched", async () => {
    const agent = await s.createAgent("narrow");
    await s.connectAgent(agent, { allow: ["--allow-service", "only-this"] });
    const name = uniqueName("excluded");
    const before = await s.swarmService(name);
    const [task] = await runningTasks(name);
    const service = await s.targetedService({ name, agent: agent.name });
    const trigger = await s.createTrigger(service, "REDEPLOY");

    const uri = await s.call(trigger, { body: "nope" });
    const failed = await s.waitAction(uri, "Failed");
    const logs = await s.logsOf(failed);
    assert.ok(logs.includes(`the agent's rules do not allow it to act on service '${name}'`), logs);
    await assertUntouched(name, before, task);
  });

  s.step("an unknown swarm service: Failed with 'no swarm service named', nothing created", async () => {
    const agent = await s.createAgent("wide");
    await s.connectAgent(agent);
    const bystander = uniqueName("bystander");
    const before = await s.swarmService(bystander);
    const [task] = await runningTasks(bystander);
    const missing = uniqueName("missing");
    const service = await s.targetedService({ name: missing, agent: agent.uuid });

    const uri = await s.operate(service, "redeploy");
    const failed = await s.waitAction(uri, "Failed");
    const logs = await s.logsOf(failed);
    assert.match(logs, /no swarm service named/, logs);
    assert.ok(logs.includes(missing), `the logs name the service: ${logs}`);
    assert.equal(await inspectService(missing), null, "no service of that name was created");
    const names = (await docker(["service", "ls", "--format", "{{.Name}}"])).split("\n");
    assert.ok(!names.includes(missing), names.join(", "));
    await assertUntouched(bystander, before, task);
  });

  const doomed = { agent: null, program: null, name: "", before: null, task: null, trigger: null };

  s.step("a service targets an agent that runs", async () => {
    doomed.agent = await s.createAgent("doomed");
    doomed.program = await s.connectAgent(doomed.agent);
    doomed.name = uniqueName("orphan");
    doomed.before = await s.swarmService(doomed.name);
    [doomed.task] = await runningTasks(doomed.name);
    const service = await s.targetedService({ name: doomed.name, agent: doomed.agent.name });
    doomed.trigger = await s.createTrigger(service, "REDEPLOY");
  });

  s.step("the agent deleted: its program exits 1 at once, and its token gets 401 from then on", async () => {
    assert.ok(doomed.program, "needs the running agent");
    const { agent, program } = doomed;
    const t0 = Date.now();
    const deleted = await s.api("DELETE", agent.resource_uri);
    assert.ok([200, 202, 204].includes(deleted.status), deleted.text);
    const exit = await program.waitExit(5_000);
    const elapsed = Date.now() - t0;
    assert.equal(exit.code, 1, program.outputTail());
    assert.ok(elapsed < 2_000, `the socket closed and the program exited ${elapsed} ms after the DELETE`);
    assert.ok(
      program.output.some((l) => l.includes("the agent was deleted")),
      `the program says why it stopped:\n${program.outputTail()}`,
    );

    // The old token is refused, whoever dials with it.
    const dial = await rawRequest(s.worker.port, {
      method: "GET",
      path: "/api/agent/v1/connect/",
      headers: {
        host: `${HOST}:${s.worker.port}`,
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": Buffer.from("0123456789abcdef").toString("base64"),
        authorization: `Bearer ${agent.token}`,
      },
    });
    assert.equal(dial.status, 401, dial.text);
    const stale = s.runAgent(agent, { args: ["--retry-forever"] });
    await waitAgentOutput(stale, "the service refused the agent's token (401)");
    assert.equal(stale.exit, null, "with --retry-forever the program keeps dialling");
  });

  s.step("an operation of a service targeting the deleted agent: never performed, Failed with why", async () => {
    assert.ok(doomed.trigger, "needs the service that targets the agent");
    // Waiting for the agent at first (it might come back, as far as the service knows), or
    // failing at once; either way it says so, and it fails for good within AGENT_WAIT_SECONDS.
    const uri = await s.call(doomed.trigger, { body: "orphaned" });
    const first = await waitFor(
      "the action to say what it waits for, or why it failed",
      async () => {
        const a = await s.action(uri);
        if (a.state === "Pending" && /waiting for agent/.test(await s.logsOf(a))) return a;
        if (a.state === "Failed") return a;
        return null;
      },
      { timeoutMs: 10_000 },
    );
    const firstLogs = await s.logsOf(first);
    assert.match(firstLogs, /agent/i, firstLogs);
    const failed = await s.waitAction(uri, "Failed", { timeoutMs: (WAIT_SECONDS + 30) * 1000 });
    const logs = await s.logsOf(failed);
    assert.match(logs, /agent/i, `a clear reason: ${logs}`);
    await assertUntouched(doomed.name, doomed.before, doomed.task);
  });
});
