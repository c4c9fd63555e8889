// Real swarm, end to end: `npm run dev`, the agent program as users run it (the one-file bundle,
// `node agent/dist/agent.mjs --allow-all`) and a Docker Swarm with a local registry (scripts/swarm/up.sh), none mocked. A service whose
// target is the agent is redeployed and scaled through trigger calls and the API; each action
// ends Success only once Swarm converged, and Failed with the task's error when it cannot.
//
// Run: npm run test:swarm   (as root: it starts and stops the swarm)
import assert from "node:assert/strict";
import { describe } from "node:test";
import { waitFor } from "../e2e/helpers.mjs";
import { swarmSuite } from "./suite.mjs";
import {
  containerEnv,
  describeTasks,
  forceUpdateOf,
  inspectService,
  labelsOf,
  repushImage,
  runningTasks,
  SWARM,
  serviceTasks,
  specImageOf,
  uniqueName,
  waitRunning,
} from "./swarm.mjs";

const BODY = "built abc";

describe("operations of a service whose target is an agent, on a real swarm", () => {
  const s = swarmSuite();
  const state = { agent: null };

  s.step("the agent program (its one-file bundle) connects and names the engine", async () => {
    state.agent = await s.createAgent("ops");
    await s.connectAgent(state.agent, { bundle: true });
    const shown = await waitFor(
      "the hello's engine version",
      async () => {
        const a = await s.agentState(state.agent);
        return a.engine_version ? a : null;
      },
      { timeoutMs: 10_000 },
    );
    assert.equal(shown.orchestrator, "swarm");
    assert.ok(shown.node_id, "the swarm node id");
  });

  s.step("a REDEPLOY call with a body: Success once the new task runs with the body in its env", async () => {
    assert.ok(state.agent, "needs the agent");
    const name = uniqueName("redeploy");
    const before = await s.swarmService(name);
    const [old] = await runningTasks(name);
    const service = await s.targetedService({ name, agent: state.agent.name });
    const trigger = await s.createTrigger(service, "REDEPLOY");

    const uri = await s.call(trigger, { body: BODY });
    const done = await s.waitAction(uri, "Success");

    // Success is said only once Swarm converged: the new task runs now, the old one is told to stop.
    const tasks = await serviceTasks(name);
    const running = tasks.filter((t) => t.DesiredState === "running" && t.Status.State === "running");
    assert.equal(running.length, 1, `one task runs at Success: ${describeTasks(tasks)}`);
    const [fresh] = running;
    assert.notEqual(fresh.ID, old.ID, `a new task runs: ${describeTasks(tasks)}`);
    assert.equal(tasks.find((t) => t.ID === old.ID)?.DesiredState, "shutdown", describeTasks(tasks));
    const env = await containerEnv(fresh.Status.ContainerStatus.ContainerID);
    assert.ok(env.includes(`DOCKERCLOUD_TRIGGER_BODY=${BODY}`), `the new container's env: ${JSON.stringify(env)}`);
    await waitFor(
      "the old task to be shut down",
      async () => {
        const t = (await serviceTasks(name)).find((x) => x.ID === old.ID);
        return t && ["shutdown", "complete"].includes(t.Status.State);
      },
      { timeoutMs: 10_000 },
    );

    const after = await inspectService(name);
    assert.equal(forceUpdateOf(after), forceUpdateOf(before) + 1, "ForceUpdate went up by one");
    assert.equal(labelsOf(after)["io.dockercloud.action"], done.uuid, "the spec names the action");
    const shown = await s.getService(service);
    assert.equal(shown.running_num_containers, 1, JSON.stringify(shown));
    assert.equal(shown.current_num_containers, 1, JSON.stringify(shown));
    assert.equal(shown.target_num_containers, 1, JSON.stringify(shown));
  });

  s.step("SCALEUP call/2/ on one replica: three tasks run, then Success; scale/ back to 1 converges", async () => {
    assert.ok(state.agent, "needs the agent");
    const name = uniqueName("scale");
    await s.swarmService(name);
    const service = await s.targetedService({ name, agent: state.agent.uuid });
    const trigger = await s.createTrigger(service, "SCALEUP");

    const up = await s.call(trigger, { suffix: "2/" });
    await s.waitAction(up, "Success");
    const tasks = await serviceTasks(name);
    const running = tasks.filter((t) => t.DesiredState === "running" && t.Status.State === "running");
    assert.equal(running.length, 3, `three tasks run at Success: ${describeTasks(tasks)}`);
    assert.equal((await inspectService(name)).Spec.Mode.Replicated.Replicas, 3);
    let shown = await s.getService(service);
    assert.equal(shown.target_num_containers, 3, JSON.stringify(shown));
    assert.equal(shown.running_num_containers, 3, JSON.stringify(shown));
    assert.equal(shown.current_num_containers, 3, JSON.stringify(shown));

    const patched = await s.api("PATCH", service.resource_uri, { target_num_containers: 1 });
    assert.equal(patched.status, 200, patched.text);
    const down = await s.operate(service, "scale");
    await s.waitAction(down, "Success");
    assert.equal((await inspectService(name)).Spec.Mode.Replicated.Replicas, 1);
    await waitRunning(name, 1, { timeoutMs: 10_000 });
    shown = await s.getService(service);
    assert.equal(shown.target_num_containers, 1, JSON.stringify(shown));
    assert.equal(shown.running_num_containers, 1, JSON.stringify(shown));
  });

  s.step("redeploy/ after a new push of the same tag: the new task runs the new digest", async () => {
    assert.ok(state.agent, "needs the agent");
    const name = uniqueName("repush");
    const before = await s.swarmService(name);
    const oldDigest = specImageOf(before).split("@")[1];
    assert.ok(oldDigest, `the swarm pins a digest: ${specImageOf(before)}`);
    const service = await s.targetedService({ name, agent: state.agent.name });

    const digest = await repushImage();
    assert.notEqual(digest, oldDigest);
    const uri = await s.operate(service, "redeploy");
    await s.waitAction(uri, "Success");

    const after = await inspectService(name);
    assert.equal(specImageOf(after), `${SWARM.IMAGE}@${digest}`, "the spec is pinned to the new digest");
    const running = await runningTasks(name);
    assert.equal(running.length, 1, describeTasks(running));
    assert.ok(running[0].Spec.ContainerSpec.Image.endsWith(`@${digest}`), describeTasks(running));
  });

  s.step("a redeploy whose new task fails: Failed with the task's error, the old task still runs", async () => {
    assert.ok(state.agent, "needs the agent");
    const name = uniqueName("failing");
    // A health check: the new task counts as started only once healthy, so the old one is not
    // stopped before the new one has failed (a start-first update then rolls back around it).
    await s.swarmService(name, {
      script: 'test "$DOCKERCLOUD_TRIGGER_BODY" != fail || exit 1',
      extra: ["--health-cmd", "true", "--health-interval", "1s", "--health-retries", "1"],
    });
    const [old] = await runningTasks(name);
    const service = await s.targetedService({ name, agent: state.agent.name });
    const trigger = await s.createTrigger(service, "REDEPLOY");

    const uri = await s.call(trigger, { body: "fail" });
    const failed = await s.waitAction(uri, "Failed");
    const logs = await s.logsOf(failed);
    assert.match(logs, /task: non-zero exit \(1\)/, logs);

    const running = await waitRunning(name, 1, { timeoutMs: 15_000 });
    assert.equal(running[0].ID, old.ID, `the old task runs on: ${describeTasks(await serviceTasks(name))}`);
    const env = await containerEnv(running[0].Status.ContainerStatus.ContainerID);
    assert.ok(!env.includes("DOCKERCLOUD_TRIGGER_BODY=fail"), JSON.stringify(env));
    const shown = await s.getService(service);
    assert.equal(shown.running_num_containers, 1, JSON.stringify(shown));
  });
});
