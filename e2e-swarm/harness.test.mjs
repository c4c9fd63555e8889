// The swarm suite's own footing, with no product behaviour in it: the swarm and registry that
// scripts/swarm/up.sh started answer, the helpers read what the engine reports (a forced update
// with an env and a label, a scale), `npm run dev` starts with the agent settings, and the agent
// program connects with DOCKER_HOST set. When this fails, the other swarm suites' failures say
// nothing about the service or the agent.
//
// Run: npm run test:swarm   (as root: it starts and stops the swarm)
import assert from "node:assert/strict";
import { describe } from "node:test";
import { waitFor } from "../e2e/helpers.mjs";
import { swarmSuite } from "./suite.mjs";
import {
  containerEnv,
  describeTasks,
  docker,
  forceUpdateOf,
  inspectService,
  labelsOf,
  SWARM,
  serviceTasks,
  specImageOf,
  uniqueName,
  versionOf,
  waitRunning,
} from "./swarm.mjs";

describe("the swarm suite's harness", () => {
  const s = swarmSuite({ vars: { AGENT_WAIT_SECONDS: "5" } });
  const name = uniqueName("harness");

  s.step("the swarm is active and a fast service converges, pinned to the registry's digest", async () => {
    assert.equal(await docker(["info", "--format", "{{.Swarm.LocalNodeState}}"]), "active");
    const t0 = Date.now();
    const svc = await s.swarmService(name);
    assert.ok(Date.now() - t0 < 15_000, `converged in ${Date.now() - t0} ms`);
    assert.match(specImageOf(svc), new RegExp(`^${SWARM.IMAGE.replace(/[.]/g, "\\.")}@sha256:[0-9a-f]{64}$`));
    assert.equal(forceUpdateOf(svc), 0);
  });

  s.step("a forced update with an env and a label: ForceUpdate +1, the env in the new container", async () => {
    const before = await inspectService(name);
    const [old] = await waitRunning(name, 1);
    await docker([
      "service",
      "update",
      "--detach",
      "--force",
      "--env-add",
      "DOCKERCLOUD_TRIGGER_BODY=built abc",
      "--label-add",
      "io.dockercloud.action=harness",
      name,
    ]);
    const after = await inspectService(name);
    assert.equal(forceUpdateOf(after), forceUpdateOf(before) + 1);
    assert.ok(versionOf(after) > versionOf(before));
    assert.equal(labelsOf(after)["io.dockercloud.action"], "harness");
    const [fresh] = await waitFor(
      "a new task to run",
      async () => {
        const running = await waitRunning(name, 1);
        return running[0].ID !== old.ID ? running : null;
      },
      { timeoutMs: 15_000 },
    );
    const env = await containerEnv(fresh.Status.ContainerStatus.ContainerID);
    assert.ok(env.includes("DOCKERCLOUD_TRIGGER_BODY=built abc"), JSON.stringify(env));
    const tasks = await serviceTasks(name);
    assert.equal(tasks.find((t) => t.ID === old.ID)?.DesiredState, "shutdown", describeTasks(tasks));
  });

  s.step("scaled to 3 and back to 1, the task helpers follow", async () => {
    await docker(["service", "scale", "--detach", `${name}=3`]);
    assert.equal((await waitRunning(name, 3)).length, 3);
    await docker(["service", "scale", "--detach", `${name}=1`]);
    assert.equal((await waitRunning(name, 1)).length, 1);
  });

  s.step("the agent program connects with --allow-all and DOCKER_HOST set", async () => {
    const agent = await s.createAgent("harness");
    const program = await s.connectAgent(agent);
    assert.equal(program.exit, null, program.outputTail());
    const shown = await s.agentState(agent);
    assert.equal(shown.state, "Connected");
    await program.kill("SIGKILL");
    await waitFor("the agent to show Disconnected", async () => (await s.agentState(agent)).state === "Disconnected", {
      timeoutMs: 15_000,
    });
  });
});
