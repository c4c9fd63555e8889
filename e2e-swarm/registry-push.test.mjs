// Real swarm, end to end: push to deploy. A second CNCF registry (Debian's docker-registry, the
// binary up.sh runs) of this file's own, whose `notifications.endpoints` calls a registry hook of
// the API with `Authorization: Bearer <secret>`. A swarm service runs 127.0.0.1:<port>/team/app:1,
// the agent's inventory brings it in, autoredeploy is set; a new image pushed under the same tag
// redeploys it to exactly that digest (one action, Success), the registry's pulls are ignored, a
// push of another tag starts nothing, two quick pushes of the tag end on the second digest, and a
// signed `generic` call naming a digest the registry does not serve fails, the service untouched.
//
// Run: npm run test:swarm -- e2e-swarm/registry-push.test.mjs   (as root: it starts and stops the swarm)
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe } from "node:test";
import { Webhook } from "standardwebhooks";
import { freePort, waitFor } from "../e2e/helpers.mjs";
import { swarmSuite, TERMINAL } from "./suite.mjs";
import { docker, inspectService, SWARM, specImageOf, uniqueName, waitRunning } from "./swarm.mjs";

const LABEL = "deploy=auto";
/** How soon a push must have redeployed the service (push returned → action Success). */
const PUSH_TO_SUCCESS_MS = 20_000;

describe("push to deploy: a real registry's notifications redeploy an autoredeploy service", () => {
  const s = swarmSuite();
  const name = uniqueName("push-web");
  const dir = mkdtempSync(join(tmpdir(), "registry-push-"));
  const state = {
    registry: null,
    port: 0,
    hook: null,
    agent: null,
    program: null,
    service: null,
    actionsBefore: 0,
    newDigest: "",
    action: null,
  };
  const ref = (tag) => `127.0.0.1:${state.port}/team/app:${tag}`;
  const logFile = join(dir, "registry.log");
  const registryLog = () => {
    try {
      return readFileSync(logFile, "utf8").split("\n").slice(-40).join("\n");
    } catch {
      return "";
    }
  };

  after(
    async () => {
      if (state.registry && state.registry.exitCode === null && state.registry.signalCode === null) {
        state.registry.kill("SIGKILL");
        await new Promise((resolve) => {
          state.registry.once("exit", resolve);
          setTimeout(resolve, 5_000).unref();
        });
      }
      for (const tag of ["1", "2"]) await docker(["image", "rm", "--force", ref(tag)]).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
    { timeout: 30_000 },
  );

  const deliveries = async () => {
    const res = await s.api("GET", `${state.hook.resource_uri}delivery/?limit=100`);
    assert.equal(res.status, 200, res.text);
    return res.json.objects;
  };
  const actionsOfService = async () => {
    const res = await s.api("GET", `/api/audit/v1/action/?object=${state.service.resource_uri}&limit=100`);
    assert.equal(res.status, 200, res.text);
    return res.json;
  };
  const actionCount = async () => (await actionsOfService()).meta.total_count;
  /** A new digest under `tag`: the image with a label of its own (docker commit: no builder needed). */
  const newImage = async (tag) => {
    const tmp = uniqueName("push-commit");
    await docker(["create", "--name", tmp, "--network", "none", ref(tag), "sh"]);
    try {
      await docker(["commit", "--change", `LABEL e2e.push=${Date.now()}-${Math.random()}`, tmp, ref(tag)]);
    } finally {
      await docker(["rm", "--force", tmp]).catch(() => {});
    }
  };
  /** `docker push`, resolving with the digest it printed. */
  const push = async (reference) => {
    const out = await docker(["push", reference], { timeoutMs: 60_000 });
    const digest = out.match(/digest: (sha256:[0-9a-f]{64})/)?.[1];
    assert.ok(digest, `the push printed a digest: ${out}`);
    return digest;
  };

  s.step("a registry hook, and a second registry whose notifications call it", async () => {
    const res = await s.api("POST", "/api/app/v1/registryhook/", { name: "swarm-registry", source: "distribution" });
    assert.equal(res.status, 201, res.text);
    assert.match(res.json.url, /^\/api\/app\/v1\/[^/]+\/registryhook\/call\/[^/]+\/$/);
    assert.match(res.json.secret, /^rhs_/);
    state.hook = res.json;
    state.port = await freePort();
    const config = [
      "version: 0.1",
      "log:",
      "  level: info",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "data")}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${state.port}`,
      "notifications:",
      "  endpoints:",
      "    - name: hook",
      `      url: ${s.worker.base}${state.hook.url}`,
      "      headers:",
      `        Authorization: ["Bearer ${state.hook.secret}"]`,
      "      timeout: 2s",
      "      threshold: 5",
      "      backoff: 1s",
      "",
    ].join("\n");
    writeFileSync(join(dir, "config.yml"), config);
    const out = openSync(logFile, "a");
    state.registry = spawn("/usr/bin/docker-registry", ["serve", join(dir, "config.yml")], {
      stdio: ["ignore", out, out],
    });
    process.on("exit", () => state.registry?.kill("SIGKILL"));
    await waitFor(
      `the registry on 127.0.0.1:${state.port}`,
      async () => {
        if (state.registry.exitCode !== null) throw Object.assign(new Error("the registry exited"), { fatal: true });
        return (await fetch(`http://127.0.0.1:${state.port}/v2/`, { signal: AbortSignal.timeout(2_000) })).ok;
      },
      { timeoutMs: 15_000, intervalMs: 100, describe: registryLog },
    );
  });

  s.step("team/app:1 pushed there runs as a swarm service, brought in by the agent, autoredeploy set", async () => {
    await docker(["tag", SWARM.IMAGE, ref("1")]);
    await push(ref("1"));
    await s.swarmService(name, { image: ref("1"), extra: ["--label", LABEL] });
    state.agent = await s.createAgent("push");
    state.program = await s.connectAgent(state.agent, { allow: ["--allow-label", LABEL] });
    let last;
    const found = await waitFor(
      `the agent's inventory to bring ${name} in`,
      async () => {
        const list = await s.api("GET", `/api/app/v1/service/?name=${name}`);
        [last] = list.json.objects;
        return last?.state === "Running" ? last : null;
      },
      { timeoutMs: 15_000, intervalMs: 100, describe: () => `last: ${JSON.stringify(last ?? null)}` },
    );
    assert.match(found.image_name, new RegExp(`^127\\.0\\.0\\.1:${state.port}/team/app:1@sha256:`), found.image_name);
    const patched = await s.api("PATCH", found.resource_uri, { autoredeploy: true });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.autoredeploy, true, patched.text);
    state.service = patched.json;
  });

  s.step("a new image pushed under team/app:1: one action, Success, the service on exactly that digest", async () => {
    await newImage("1");
    state.actionsBefore = await actionCount();
    const oldImage = specImageOf(await inspectService(name));
    state.newDigest = await push(ref("1"));
    const pushed = Date.now();
    const repoDigest = await docker(["image", "inspect", "--format", "{{index .RepoDigests 0}}", ref("1")]);
    assert.ok(repoDigest.endsWith(`@${state.newDigest}`), `${repoDigest} vs the push's ${state.newDigest}`);
    assert.ok(!oldImage.endsWith(`@${state.newDigest}`), `a new digest: ${oldImage}`);

    // The action the push started, through the hook's deliveries.
    let seen = [];
    const redeployed = await waitFor(
      "a delivery that redeployed",
      async () => {
        seen = await deliveries();
        return seen.find((d) => d.verdict === "redeployed" && d.actions.length > 0);
      },
      {
        timeoutMs: PUSH_TO_SUCCESS_MS,
        intervalMs: 100,
        describe: () => `deliveries: ${JSON.stringify(seen)}\nregistry log:\n${registryLog()}`,
      },
    );
    const push1 = redeployed.pushes.find((p) => p.kind === "push");
    assert.equal(push1?.tag, "1", JSON.stringify(redeployed));
    assert.equal(push1?.digest, state.newDigest, JSON.stringify(redeployed));
    const [uri] = redeployed.actions;
    const left = PUSH_TO_SUCCESS_MS - (Date.now() - pushed);
    state.action = await s.waitAction(uri, "Success", { timeoutMs: Math.max(left, 1_000), intervalMs: 100 });
    const ms = Date.now() - pushed;
    console.log(`# registry push: docker push returned → action Success in ${ms} ms`);
    assert.equal(state.action.object, state.service.resource_uri);

    const svc = await inspectService(name);
    const image = specImageOf(svc);
    assert.equal(image, `${ref("1")}@${state.newDigest}`, "pinned to exactly the pushed digest");
    await waitRunning(name, 1);

    // The registry's pulls (the agent's lookup, the node's pull) come as notifications too: ignored.
    let kinds = [];
    await waitFor(
      "the pulls of the redeploy to be delivered, ignored",
      async () => {
        seen = await deliveries();
        kinds = seen.map((d) => `${d.verdict}:${d.pushes.map((p) => p.kind).join("+")}`);
        return seen.some((d) => d.verdict === "ignored" && d.pushes.some((p) => p.kind === "pull"));
      },
      { timeoutMs: 10_000, intervalMs: 200, describe: () => kinds.join(", ") },
    );
    assert.ok(
      seen.filter((d) => d.pushes.some((p) => p.kind === "pull")).every((d) => d.verdict !== "redeployed"),
      kinds.join(", "),
    );
    // Retries and the other events of that push join its action: exactly one for it.
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal(await actionCount(), state.actionsBefore + 1, "exactly one action for the push");
    seen = await deliveries();
    const started = new Set(seen.flatMap((d) => d.actions));
    assert.deepEqual([...started], [uri], `deliveries' actions: ${JSON.stringify(seen.map((d) => d.actions))}`);
    console.log(
      `# registry push: ${seen.length} deliveries (${seen.filter((d) => d.verdict === "redeployed").length} redeployed, ${seen.filter((d) => d.verdict === "ignored").length} ignored, ${seen.filter((d) => d.verdict === "refused").length} refused)`,
    );
    assert.equal(
      seen.filter((d) => d.verdict === "refused").length,
      0,
      JSON.stringify(seen.filter((d) => d.verdict === "refused")),
    );
  });

  s.step("a push of another tag (team/app:2): ignored, no new action", async () => {
    const count = await actionCount();
    await docker(["tag", ref("1"), ref("2")]);
    const digest = await push(ref("2"));
    let seen = [];
    const told = await waitFor(
      "the push of :2 to be delivered",
      async () => {
        seen = await deliveries();
        return seen.find((d) => d.pushes.some((p) => p.kind === "push" && p.tag === "2"));
      },
      { timeoutMs: 15_000, intervalMs: 100, describe: () => `${JSON.stringify(seen)}\n${registryLog()}` },
    );
    assert.equal(told.verdict, "ignored", JSON.stringify(told));
    assert.equal(told.pushes.find((p) => p.tag === "2").digest, digest);
    await new Promise((r) => setTimeout(r, 2_000));
    assert.equal(await actionCount(), count, "no new action");
    assert.equal(specImageOf(await inspectService(name)), `${ref("1")}@${state.newDigest}`, "the service unchanged");
  });

  s.step("two quick pushes of team/app:1: the service ends on the second digest, not on the first", async () => {
    const known = new Set((await actionsOfService()).objects.map((a) => a.resource_uri));
    await newImage("1");
    const first = await push(ref("1"));
    await newImage("1");
    const second = await push(ref("1"));
    assert.notEqual(first, second);
    let fresh = [];
    let image = "";
    await waitFor(
      "the service on the second digest, every action of the two pushes ended",
      async () => {
        fresh = (await actionsOfService()).objects.filter((a) => !known.has(a.resource_uri));
        image = specImageOf(await inspectService(name));
        return fresh.length > 0 && fresh.every((a) => TERMINAL.includes(a.state)) && image.endsWith(`@${second}`);
      },
      {
        timeoutMs: 2 * PUSH_TO_SUCCESS_MS,
        intervalMs: 200,
        describe: () => `image ${image}; actions ${JSON.stringify(fresh.map((a) => a.state))}\n${registryLog()}`,
      },
    );
    // One rollout when the second push found the first's action not yet started, two in order otherwise.
    assert.ok(fresh.length <= 2, `at most one action per push: ${fresh.length}`);
    assert.deepEqual(
      fresh.map((a) => a.state),
      fresh.map(() => "Success"),
    );
    console.log(`# registry push: two quick pushes made ${fresh.length} action(s), the service on the second digest`);
    // Late notifications of the first push (retries, its pulls) do not roll it back.
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal(specImageOf(await inspectService(name)), `${ref("1")}@${second}`);
    assert.equal(await actionCount(), known.size + fresh.length, "no action after the two pushes ended");
    await waitRunning(name, 1);
    state.newDigest = second;
  });

  s.step(
    "a signed generic call naming a digest the registry does not serve: Failed, the service untouched",
    async () => {
      const res = await s.api("POST", "/api/app/v1/registryhook/", { name: "ci-signed", source: "generic" });
      assert.equal(res.status, 201, res.text);
      const hook = res.json;
      const unknown = `sha256:${"0".repeat(64)}`;
      const before = await inspectService(name);
      const body = JSON.stringify({ image: ref("1"), digest: unknown });
      const id = `msg_${uniqueName("generic")}`;
      const at = new Date();
      const called = await fetch(`${s.worker.base}${hook.url}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "webhook-id": id,
          "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
          "webhook-signature": new Webhook(hook.secret).sign(id, at, body),
        },
        body,
      });
      const answer = await called.json();
      assert.equal(called.status, 202, JSON.stringify(answer));
      assert.equal(answer.actions.length, 1, JSON.stringify(answer));
      const failed = await s.waitAction(answer.actions[0], "Failed", { timeoutMs: PUSH_TO_SUCCESS_MS });
      const logs = await s.logsOf(failed);
      assert.ok(logs.includes(`for ${ref("1")}, not the pushed ${unknown}`), logs);
      const now = await inspectService(name);
      assert.equal(specImageOf(now), `${ref("1")}@${state.newDigest}`, "the image unchanged");
      assert.equal(now.Version.Index, before.Version.Index, "the service spec not updated at all");
    },
  );
});
