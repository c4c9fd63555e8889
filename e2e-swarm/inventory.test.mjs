// Real swarm, end to end: the agent program's inventory brings the swarm services its rules allow
// into the API, and the API follows what Swarm runs, whoever changes it: `docker service scale`,
// `update --image`, `rm` and a create again, each within 5 s, with the service's events in order
// and its triggers kept. A service outside the rules is named nowhere; a service of the API whose
// target is not the agent is never touched; calls are refused at the call by the true count.
//
// Run: npm run test:swarm   (as root: it starts and stops the swarm)
import assert from "node:assert/strict";
import { describe } from "node:test";
import WebSocket from "ws";
import { waitFor } from "../e2e/helpers.mjs";
import { swarmSuite } from "./suite.mjs";
import { docker, SWARM, uniqueName, waitRunning } from "./swarm.mjs";

/** How soon a change on the swarm must show in the API. */
const FOLLOW_MS = 5_000;
const LABEL = "deploy=auto";

describe("the orchestrator is the truth: an agent's inventory, on a real swarm", () => {
  const s = swarmSuite();
  const names = { allowed: uniqueName("inv-web"), hidden: uniqueName("inv-secret"), stack: uniqueName("inv") };
  const state = { agent: null, program: null, events: [], stream: null, service: null, trigger: null, latencies: [] };

  /** The API's services named `name`, as REST lists them (namespaced and not must agree). */
  async function servicesNamed(name) {
    const plain = await s.api("GET", `/api/app/v1/service/?name=${name}`);
    const spaced = await s.api("GET", `/api/app/v1/${s.username}/service/?name=${name}`);
    assert.deepEqual(spaced.json.objects, plain.json.objects);
    return plain.json.objects;
  }

  /** Polls until the API's service `name` passes `probe`; resolves with it and the ms it took. */
  async function follows(name, probe, what) {
    const start = Date.now();
    let last;
    const found = await waitFor(
      `${name}: ${what}`,
      async () => {
        [last] = await servicesNamed(name);
        return last && probe(last) ? last : null;
      },
      { timeoutMs: FOLLOW_MS, intervalMs: 50, describe: () => `last: ${JSON.stringify(last ?? null)}` },
    );
    const ms = Date.now() - start;
    state.latencies.push(ms);
    return found;
  }

  s.step("an events stream is open, and the agent program runs with an allow label", async () => {
    const ws = new WebSocket(`${s.worker.base.replace("http", "ws")}/api/audit/v1/events?type=service`, {
      headers: { authorization: s.basic },
    });
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    ws.on("message", (data) => state.events.push(JSON.parse(String(data))));
    state.stream = ws;
    await s.swarmService(names.allowed, { replicas: 2, extra: ["--label", LABEL] });
    await s.swarmService(names.hidden, { extra: ["--label", "deploy=manual"] });
    state.agent = await s.createAgent("inventory");
    state.program = await s.connectAgent(state.agent, { allow: ["--allow-label", LABEL] });
  });

  s.step("the allowed service appears with Swarm's figures; the other is named nowhere", async () => {
    const web = await follows(names.allowed, (w) => w.running_num_containers === 2, "brought in, 2 running");
    assert.equal(web.target_num_containers, 2);
    assert.equal(web.state, "Running");
    assert.match(web.image_name, /@sha256:[0-9a-f]{64}$/, "the image as it runs, pinned");
    assert.deepEqual(web.target, { type: "agent", agent: state.agent.uuid, swarm_service: names.allowed });
    assert.ok(web.synchronized_at, "synchronized_at");
    state.service = web;
    const everything = await s.api("GET", "/api/app/v1/service/?limit=100");
    assert.ok(!everything.text.includes(names.hidden), "the disallowed service is in no answer");
    assert.ok(!JSON.stringify(state.events).includes(names.hidden), "nor in any event");
    assert.ok(!state.program.output.join("\n").includes(names.hidden), "nor in the agent's output");
    state.trigger = await s.createTrigger(web, "SCALEUP");
  });

  s.step(
    "docker service scale by hand: followed within 5 s; call/N/ past the max by the true count is a 409",
    async () => {
      await s.api("PATCH", state.service.resource_uri, { max_num_containers: 4 });
      await docker(["service", "scale", "--detach", `${names.allowed}=3`]);
      await follows(names.allowed, (w) => w.target_num_containers === 3 && w.running_num_containers === 3, "3 running");
      const res = await fetch(`${s.worker.base}${state.trigger.url}2/`, { method: "POST" });
      assert.equal(res.status, 409, await res.text());
      const actions = await s.api("GET", `/api/audit/v1/action/?object=${state.service.resource_uri}`);
      assert.equal(actions.json.meta.total_count, 0, "nothing was queued");
    },
  );

  s.step("docker service update --image: the new digest shows within 5 s", async () => {
    const before = (await servicesNamed(names.allowed))[0].image_name;
    await docker(["service", "update", "--detach", "--image", SWARM.IMAGE, "--env-add", "X=1", names.allowed]);
    await waitRunning(names.allowed, 3);
    await follows(names.allowed, (w) => w.state === "Running" && w.deployed_datetime !== null, "updated");
    const after = (await servicesNamed(names.allowed))[0];
    assert.match(after.image_name, /@sha256:/, `before ${before}`);
  });

  s.step("docker service rm: Not running within 5 s, triggers kept, calls refused; created again: back", async () => {
    await docker(["service", "rm", names.allowed]);
    await follows(names.allowed, (w) => w.state === "Not running", "gone");
    const triggers = await s.api("GET", `${state.service.resource_uri}trigger/`);
    assert.equal(triggers.json.meta.total_count, 1, "the trigger is kept");
    const refused = await fetch(`${s.worker.base}${state.trigger.url}`, { method: "POST" });
    assert.equal(refused.status, 409);
    assert.match(await refused.text(), /is not on the swarm/);
    await s.swarmService(names.allowed, { replicas: 1, extra: ["--label", LABEL] });
    const back = await follows(names.allowed, (w) => w.state === "Running" && w.running_num_containers === 1, "back");
    assert.equal(back.uuid, state.service.uuid, "the same API service, its trigger with it");
    assert.equal((await servicesNamed(names.allowed)).length, 1, "never two");
  });

  s.step("the service's events came in order: brought in, scaled, updated, gone, back", async () => {
    const events = state.events.filter((e) => e.uuid === state.service.uuid);
    assert.equal(events[0]?.action, "create", JSON.stringify(events[0]));
    const mine = events.map((e) => e.state);
    const gone = mine.indexOf("Not running");
    assert.ok(gone > 0, `Not running among ${mine.join(", ")}`);
    assert.equal(mine.at(-1), "Running", mine.join(", "));
    assert.ok(
      mine.slice(gone + 1).every((x) => x !== "Not running"),
      mine.join(", "),
    );
  });

  s.step("the agent killed while services change, then restarted: the API converges to the truth", async () => {
    await state.program.kill();
    await docker(["service", "scale", "--detach", `${names.allowed}=2`]);
    const stack = `${names.stack}_api`;
    await s.swarmService(stack, { extra: ["--label", LABEL, "--label", `com.docker.stack.namespace=${names.stack}`] });
    state.program = await s.connectAgent(state.agent, { allow: ["--allow-label", LABEL] });
    await follows(names.allowed, (w) => w.running_num_containers === 2 && w.target_num_containers === 2, "2 again");
    const api = await follows(stack, (w) => w.state === "Running", "the stack's service");
    assert.equal(api.stack, names.stack);
  });

  s.step("a service of the API whose target is a webhook is never adopted nor changed", async () => {
    const name = uniqueName("inv-hook");
    const hook = await s.api("POST", "/api/app/v1/service/", {
      name,
      target: { type: "webhook", url: "https://hooks.example.com/deploy" },
    });
    assert.equal(hook.status, 201, hook.text);
    const [before] = await servicesNamed(name);
    await s.swarmService(name, { extra: ["--label", LABEL] });
    await waitFor(
      "the agent to say it did not bring it in",
      async () => state.program.output.some((l) => l.includes(`'${name}' not brought in`)),
      { timeoutMs: FOLLOW_MS, describe: () => state.program.outputTail() },
    );
    const [same] = await servicesNamed(name);
    assert.deepEqual(same, before, "unchanged");
    console.log(
      `# inventory: swarm change → API, ${state.latencies.length} changes: p50 ${percentile(state.latencies, 50)} ms, max ${Math.max(...state.latencies)} ms (polled every 50 ms)`,
    );
    state.stream.close();
  });
});

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
