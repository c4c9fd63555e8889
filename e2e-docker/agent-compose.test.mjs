// Real plain Docker host, end to end: the agent program on the plain engine (no swarm) that
// scripts/swarm/up.sh starts, the shop project brought up by the real docker-compose 1.29, images
// pushed to the real loopback registry. The agent brings web and worker in as the API's services;
// a trigger's REDEPLOY after a push replaces web's container with one on exactly the new digest
// (same name, volume, env, alias, port); a new image that exits at once fails and the old
// container runs again; SCALEUP adds Compose-numbered workers and scale/ takes them away; a fixed
// host port refuses a second replica; the agent killed halfway through a replacement and started
// again finishes it once; a container the rules do not allow is never touched nor named.
//
// Run: npm run test:swarm   (as root: it starts and stops both engines)
import assert from "node:assert/strict";
import { after, describe } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, HOST, REQUEST_TIMEOUT_MS, waitFor } from "../e2e/helpers.mjs";
import { swarmSuite } from "../e2e-swarm/suite.mjs";
import { plainDocker, SWARM, uniqueName } from "../e2e-swarm/swarm.mjs";
import { composeProject } from "./compose.mjs";

const ALLOW = ["--allow-label", "deploy=auto"];
const AGENT_ARGS = ["--orchestrator", "docker", "--settle-seconds", "2"];

describe("a plain Docker host running Compose: redeploys and scales through the agent", () => {
  const s = swarmSuite();
  const repo = `${SWARM.REGISTRY}/${uniqueName("shop")}`;
  const image = `${repo}:1`;
  const state = { port: 0, shop: null, agent: null, program: null, web: null, worker: null, loner: null };
  const project = () => state.shop.name;
  const webName = () => `${project()}_web_1`;

  after(
    async () => {
      if (state.loner) await plainDocker(["rm", "--force", state.loner]).catch(() => {});
      if (state.shop) await state.shop.down().catch((err) => console.error(err.message));
    },
    { timeout: 30_000 },
  );

  /** The container of that name on the plain engine, inspected; null when there is none. */
  const container = async (name) => {
    const out = await plainDocker(["inspect", "--type", "container", name]).catch(() => null);
    return out ? JSON.parse(out)[0] : null;
  };
  /** Names of the project's containers, temporaries included. */
  const names = async () =>
    (
      await plainDocker([
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        `label=com.docker.compose.project=${project()}`,
      ])
    )
      .split("\n")
      .filter(Boolean)
      .sort();
  /** A new digest under `image`: `from` with a label of its own and `changes` (docker commit, no builder). */
  const pushNew = async (changes = [], from = image) => {
    const tmp = uniqueName("commit");
    await plainDocker(["create", "--name", tmp, "--network", "none", from, "sh"]);
    try {
      const flags = [`LABEL e2e.build=${Date.now()}`, ...changes].flatMap((c) => ["--change", c]);
      await plainDocker(["commit", ...flags, tmp, image]);
    } finally {
      await plainDocker(["rm", "--force", tmp]).catch(() => {});
    }
    const out = await plainDocker(["push", image], { timeoutMs: 60_000 });
    const digest = out.match(/digest: (sha256:[0-9a-f]{64})/)?.[1];
    assert.ok(digest, out);
    return digest;
  };
  const page = (path) =>
    fetch(`http://${HOST}:${state.port}/${path}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }).then((r) =>
      r.text(),
    );
  /** The API's service the agent's inventory brought in under `name`. */
  const broughtIn = (name) =>
    waitFor(
      `the agent's inventory to bring ${name} in`,
      async () => {
        const list = await s.api("GET", `/api/app/v1/service/?name=${name}`);
        const [found] = list.json.objects;
        return found?.target?.container_service === `${project()}/${name}` ? found : null;
      },
      { timeoutMs: 20_000, intervalMs: 200, describe: () => state.program?.outputTail() ?? "" },
    );

  s.step("the shop project up with Compose; the agent on the plain engine brings web and worker in", async () => {
    await plainDocker(["pull", SWARM.IMAGE], { timeoutMs: 60_000 });
    await plainDocker(["tag", SWARM.IMAGE, image]);
    await plainDocker(["push", image], { timeoutMs: 60_000 });
    state.port = await freePort();
    state.shop = composeProject("shop", { env: { IMAGE: image, WEB_PORT: String(state.port) } });
    await state.shop.up();
    await state.shop.waitService("worker", { healthy: true });
    const web = await state.shop.waitService("web");
    await plainDocker(["exec", web.Id, "sh", "-c", "echo kept-in-the-volume > /srv/index.html"]);
    assert.equal((await page("index.html")).trim(), "kept-in-the-volume");
    // A container the rules do not allow (no deploy=auto), named to the agent by its own label.
    state.loner = uniqueName("loner");
    await plainDocker([
      "run",
      "-d",
      "--name",
      state.loner,
      "--label",
      `io.dockercloud.service=${state.loner}`,
      image,
      "sleep",
      "3600",
    ]);

    state.agent = await s.createAgent("compose-host");
    state.program = await s.connectAgent(state.agent, { plain: true, allow: ALLOW, args: AGENT_ARGS });
    state.web = await broughtIn("web");
    state.worker = await broughtIn("worker");
    assert.equal(state.web.stack, project());
    assert.deepEqual(state.web.target, {
      type: "agent",
      agent: state.agent.uuid,
      container_service: `${project()}/web`,
    });
    assert.equal(state.worker.running_num_containers, 1);
    const agentShown = await s.agentState(state.agent);
    assert.equal(agentShown.orchestrator, "docker", JSON.stringify(agentShown));
  });

  s.step("REDEPLOY after a push: the new digest, the same name, volume, env, alias and port", async () => {
    const before = await container(webName());
    const digest = await pushNew();
    const trigger = await s.createTrigger(state.web, "REDEPLOY");
    const uri = await s.call(trigger, { body: "deploy-42" });
    const done = await s.waitAction(uri, "Success");
    const logs = await s.logsOf(done);
    const after = await container(webName());
    assert.notEqual(after.Id, before.Id, "a new container");
    assert.equal(after.Config.Image, `${image}@${digest}`, logs);
    assert.equal(after.State.Running, true);
    assert.ok(after.Config.Env.includes("GREETING=hello"), after.Config.Env.join(" "));
    assert.ok(after.Config.Env.includes("DOCKERCLOUD_TRIGGER_BODY=deploy-42"), after.Config.Env.join(" "));
    assert.equal(after.Config.Labels["com.docker.compose.service"], "web");
    assert.equal((await page("index.html")).trim(), "kept-in-the-volume", "the volume's data, on the same port");
    const worker = await state.shop.inspect("worker");
    const viaAlias = await plainDocker([
      "exec",
      worker.Id,
      "timeout",
      "5",
      "wget",
      "-q",
      "-O-",
      "http://shop-web/index.html",
    ]);
    assert.equal(viaAlias.trim(), "kept-in-the-volume", "reached by its network alias");
    assert.deepEqual(await names(), [webName(), `${project()}_worker_1`], "no container left aside");
    const ps = await state.shop.run(["ps"]);
    for (const name of [webName(), `${project()}_worker_1`]) {
      assert.match(ps, new RegExp(`${name}\\s.*\\sUp`), ps);
    }
    state.goodDigest = digest;
    state.webId = after.Id;
  });

  s.step(
    "a new image that exits at once: Failed with its exit code and log; the old container runs again",
    async () => {
      await pushNew(['ENTRYPOINT ["sh", "-c", "echo boom: the new image cannot start >&2; exit 3", "--"]']);
      const trigger = await s.createTrigger(state.web, "REDEPLOY");
      const uri = await s.call(trigger);
      const failed = await s.waitAction(uri, "Failed");
      const logs = await s.logsOf(failed);
      assert.match(logs, /exited with code 3/, logs);
      assert.match(logs, /boom: the new image cannot start/, logs);
      const now = await container(webName());
      assert.equal(now.Id, state.webId, "the old container, under its name");
      assert.equal(now.State.Running, true);
      assert.equal(now.Config.Image, `${image}@${state.goodDigest}`);
      assert.equal((await page("index.html")).trim(), "kept-in-the-volume", "the volume untouched");
      assert.deepEqual(await names(), [webName(), `${project()}_worker_1`]);
    },
  );

  s.step("SCALEUP by 2 of worker, then scale/ back to 1; scaling web (a fixed host port) is refused", async () => {
    const trigger = await s.createTrigger(state.worker, "SCALEUP");
    await s.waitAction(await s.call(trigger, { suffix: "2/" }), "Success");
    const workers = [1, 2, 3].map((n) => `${project()}_worker_${n}`);
    assert.deepEqual(await names(), [webName(), ...workers].sort());
    for (const name of workers) {
      const c = await container(name);
      assert.equal(c.State.Health?.Status, "healthy", name);
    }
    const ps = await state.shop.run(["ps", "worker"]);
    for (const name of workers) assert.match(ps, new RegExp(`${name}\\s.*\\sUp`), ps);
    assert.equal((await s.getService(state.worker)).target_num_containers, 3);

    const patched = await s.api("PATCH", state.worker.resource_uri, { target_num_containers: 1 });
    assert.equal(patched.status, 200, patched.text);
    await s.waitAction(await s.operate(state.worker, "scale"), "Success");
    assert.deepEqual(await names(), [webName(), workers[0]].sort());

    const webBefore = await container(webName());
    const up = await s.createTrigger(state.web, "SCALEUP");
    const refused = await s.waitAction(await s.call(up), "Failed");
    const logs = await s.logsOf(refused);
    assert.match(logs, /publishes a fixed host port \(127\.0\.0\.1:\d+->80\/tcp\)/, logs);
    const webAfter = await container(webName());
    assert.equal(webAfter.Id, webBefore.Id);
    assert.equal(webAfter.State.StartedAt, webBefore.State.StartedAt, "web not even restarted");
  });

  s.step(
    "the agent killed between setting the old container aside and starting the new one: finished once",
    async () => {
      // From the last good image: the tag now names the one that cannot start.
      const digest = await pushNew([], `${repo}@${state.goodDigest}`);
      state.program.child.kill("SIGTERM");
      await state.program.waitExit();
      const crashing = s.runAgent(state.agent, {
        plain: true,
        allow: ALLOW,
        args: AGENT_ARGS,
        env: { DOCKERCLOUD_AGENT_FAULT: "docker:old-set-aside" },
      });
      await s.waitConnected(state.agent, crashing);
      const trigger = await s.createTrigger(state.web, "REDEPLOY");
      const uri = await s.call(trigger);
      const exit = await crashing.waitExit(30_000);
      assert.equal(exit.signal, "SIGKILL", crashing.outputTail());
      const left = await names();
      assert.ok(
        left.some((n) => n.startsWith(`${webName()}.dcold-`)),
        `the old one set aside: ${left}`,
      );
      assert.ok(
        left.some((n) => n.startsWith(`${webName()}.dcnew-`)),
        `the new one not yet named: ${left}`,
      );
      assert.equal(await container(webName()), null, "nothing under the name while the agent is down");

      state.program = await s.connectAgent(state.agent, { plain: true, allow: ALLOW, args: AGENT_ARGS });
      const done = await s.waitAction(uri, "Success");
      const logs = await s.logsOf(done);
      const now = await container(webName());
      assert.equal(now.Config.Image, `${image}@${digest}`, logs);
      assert.equal(now.State.Running, true);
      assert.deepEqual(await names(), [webName(), `${project()}_worker_1`], "one container under the name, none aside");
      assert.equal((await page("index.html")).trim(), "kept-in-the-volume");
      await sleep(2_000);
      const again = await s.action(uri);
      assert.equal(again.state, "Success", "finished once");
      assert.equal((await container(webName())).Id, now.Id, "no second replacement came later");
    },
  );

  s.step("allow rules: a container without the label is never named to the API nor touched", async () => {
    const list = await s.api("GET", `/api/app/v1/service/?name=${state.loner}`);
    assert.equal(list.json.objects.length, 0, list.text);
    const before = await container(state.loner);
    const res = await s.api("POST", "/api/app/v1/service/", {
      name: state.loner,
      image,
      target: { type: "agent", agent: state.agent.uuid, container_service: state.loner },
    });
    assert.equal(res.status, 201, res.text);
    const trigger = await s.createTrigger(res.json, "REDEPLOY");
    const failed = await s.waitAction(await s.call(trigger), "Failed");
    const logs = await s.logsOf(failed);
    assert.match(logs, /rules do not allow it to act on service/, logs);
    const now = await container(state.loner);
    assert.equal(now.Id, before.Id);
    assert.equal(now.State.StartedAt, before.State.StartedAt);
    assert.ok(!state.program.output.some((line) => line.includes(state.loner) && line.includes("inventory")));
  });
});
