// Real swarm, end to end: what happens to an operation when its agent program is not there, or
// dies halfway. Each operation must be performed exactly once (the spec's ForceUpdate goes up by
// one, never two), however often it is delivered, and end Success once Swarm converged.
//
// Run: npm run test:swarm   (as root: it starts and stops the swarm)
import assert from "node:assert/strict";
import { describe } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor } from "../e2e/helpers.mjs";
import { swarmSuite, TERMINAL } from "./suite.mjs";
import {
  describeTasks,
  forceUpdateOf,
  inspectService,
  labelsOf,
  serviceTasks,
  uniqueName,
  versionOf,
  waitRunning,
} from "./swarm.mjs";

/** "waiting for agent 'late' to connect" (the name quoted). */
const waitingFor = (name) => new RegExp(`waiting for agent ['"]?${name}\\b`);
const actionUuid = (uri) => uri.split("/").filter(Boolean).at(-1);

describe("an agent program absent or killed while an operation is under way, on a real swarm", () => {
  const s = swarmSuite();

  /**
   * After the action ended Success: ForceUpdate is `before + 1`, still so a moment later (no
   * second, late update), the spec names the action, and one task runs.
   */
  async function assertPerformedOnce(name, before, action) {
    let now = await inspectService(name);
    assert.equal(forceUpdateOf(now), forceUpdateOf(before) + 1, "ForceUpdate went up by exactly one");
    assert.equal(labelsOf(now)["io.dockercloud.action"], action.uuid, "the spec names the action");
    await sleep(2_000);
    now = await inspectService(name);
    assert.equal(forceUpdateOf(now), forceUpdateOf(before) + 1, "no second update came later");
    await waitRunning(name, 1, { timeoutMs: 10_000 });
    const tasks = await serviceTasks(name);
    assert.equal(tasks.length, 2, `the first task and one replacement, no more: ${describeTasks(tasks)}`);
  }

  s.step("agent offline when called: the action waits Pending; the agent starts: performed once", async () => {
    const agent = await s.createAgent("late");
    const name = uniqueName("offline");
    const before = await s.swarmService(name);
    const service = await s.targetedService({ name, agent: agent.name });
    const trigger = await s.createTrigger(service, "REDEPLOY");

    const uri = await s.call(trigger);
    const pending = await waitFor(
      "the action to say it waits for the agent",
      async () => {
        const a = await s.action(uri);
        if (a.state !== "Pending") {
          throw Object.assign(new Error(`${a.state} while no agent is connected: ${await s.logsOf(a)}`), {
            fatal: true,
          });
        }
        return waitingFor(agent.name).test(await s.logsOf(a)) ? a : null;
      },
      { timeoutMs: 15_000 },
    );
    assert.equal(pending.state, "Pending");
    await sleep(2_000);
    assert.equal((await s.action(uri)).state, "Pending", "still Pending while the agent is away");
    assert.equal(versionOf(await inspectService(name)), versionOf(before), "the swarm is untouched meanwhile");

    await s.connectAgent(agent);
    const done = await s.waitAction(uri, "Success");
    await assertPerformedOnce(name, before, done);
  });

  s.step("the agent SIGKILLed mid-rollout and restarted: Success, ForceUpdate up by exactly one", async () => {
    const agent = await s.createAgent("crashy");
    const first = await s.connectAgent(agent);
    const name = uniqueName("midroll");
    // Swarm watches a new task for 5 s before it calls the update complete: time to kill the agent.
    const before = await s.swarmService(name, { extra: ["--update-monitor", "5s"] });
    const service = await s.targetedService({ name, agent: agent.name });

    const uri = await s.operate(service, "redeploy");
    await waitFor(
      "the action to be In progress with the update applied",
      async () => {
        const a = await s.action(uri);
        if (TERMINAL.includes(a.state)) {
          throw Object.assign(new Error(`ended ${a.state} before the kill: ${await s.logsOf(a)}`), { fatal: true });
        }
        const svc = await inspectService(name);
        return a.state === "In progress" && forceUpdateOf(svc) > forceUpdateOf(before);
      },
      { timeoutMs: 20_000, intervalMs: 100, describe: () => `agent output:\n${first.outputTail()}` },
    );
    await first.kill("SIGKILL");
    const rolling = await inspectService(name);
    assert.equal(rolling.UpdateStatus?.State, "updating", "killed while Swarm still rolls out");
    const mid = await s.action(uri);
    assert.ok(!TERMINAL.includes(mid.state), `not ended by the kill: ${mid.state} ${await s.logsOf(mid)}`);

    await s.connectAgent(agent);
    const done = await s.waitAction(uri, "Success");
    assert.match(await s.logsOf(done), /\(delivery 2\)/, "the job went out again to the new connection");
    await assertPerformedOnce(name, before, done);
  });

  s.step("the same job delivered twice (agent killed before it reported): one update", async () => {
    const agent = await s.createAgent("twice");
    const first = await s.connectAgent(agent);
    const name = uniqueName("twice");
    const before = await s.swarmService(name, { extra: ["--update-monitor", "3s"] });
    const service = await s.targetedService({ name, agent: agent.name });
    const trigger = await s.createTrigger(service, "REDEPLOY");

    const uri = await s.call(trigger, { body: "once" });
    const uuid = actionUuid(uri);
    // Killed as soon as the job is there (the action In progress, or the agent naming it), well
    // before Swarm's 3 s watch of the new task lets it report.
    await waitFor(
      "the job to reach the agent",
      async () => {
        if (first.output.some((l) => l.includes(uuid))) return true;
        const a = await s.action(uri);
        if (TERMINAL.includes(a.state)) {
          throw Object.assign(new Error(`ended ${a.state} before the kill: ${await s.logsOf(a)}`), { fatal: true });
        }
        return a.state === "In progress";
      },
      { timeoutMs: 20_000, intervalMs: 50, describe: () => `agent output:\n${first.outputTail()}` },
    );
    await first.kill("SIGKILL");
    const mid = await s.action(uri);
    assert.ok(!TERMINAL.includes(mid.state), `not reported before the kill: ${mid.state} ${await s.logsOf(mid)}`);

    await s.connectAgent(agent);
    const done = await s.waitAction(uri, "Success");
    assert.match(await s.logsOf(done), /\(delivery 2\)/, "the job went out a second time");
    await assertPerformedOnce(name, before, done);
  });
});
