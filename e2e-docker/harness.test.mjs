// The Compose suite's own footing, with no product behaviour in it: the plain engine that
// scripts/swarm/up.sh starts beside the swarm is no swarm, and the real docker-compose 1.29 runs
// the shop fixture on it with what Compose users rely on: a service pulled from the loopback
// registry, a named volume, an env_file, a network alias resolved by the embedded DNS, a port
// published on 127.0.0.1, labels, and a healthcheck. When this fails, the other Compose tests'
// failures say nothing about the service or the agent.
//
// Run: npm run test:swarm   (as root: it starts and stops both engines), or after
//      scripts/swarm/up.sh: set -a; . "$SWARM_DIR/env"; set +a; node --test e2e-docker/harness.test.mjs
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import { failureTracker, freePort, HOST, REQUEST_TIMEOUT_MS } from "../e2e/helpers.mjs";
import { docker, plainDocker, SWARM } from "../e2e-swarm/swarm.mjs";
import { composeProject } from "./compose.mjs";

describe("the Compose suite's harness", () => {
  const tracker = failureTracker();
  const step = (name, fn, timeout = 60_000) => tracker.step(name, fn, timeout);
  /** @type {ReturnType<typeof composeProject>} */
  let shop;
  let webPort;
  const page = `hello from the volume ${Date.now()}`;

  before(
    async () => {
      webPort = await freePort();
      shop = composeProject("shop", { env: { IMAGE: SWARM.IMAGE, WEB_PORT: String(webPort) } });
    },
    { timeout: 10_000 },
  );

  // down -v leaves nothing of the project: containers, its network, its named volume.
  after(
    async () => {
      if (!shop) return;
      if (tracker.failed) console.error(`${shop.name} logs:\n${await shop.logs()}`);
      await shop.down();
      const label = `label=com.docker.compose.project=${shop.name}`;
      const left = [
        await plainDocker(["ps", "-aq", "--filter", label]),
        await plainDocker(["network", "ls", "-q", "--filter", label]),
        await plainDocker(["volume", "ls", "-q", "--filter", label]),
      ]
        .join(" ")
        .trim();
      assert.equal(left, "", `left after down -v: ${left}`);
    },
    { timeout: 30_000 },
  );

  step("the plain engine is not a swarm, and not the swarm's engine", async () => {
    assert.notEqual(SWARM.PLAIN_DOCKER_HOST, SWARM.DOCKER_HOST);
    assert.equal(await plainDocker(["info", "--format", "{{.Swarm.LocalNodeState}}"]), "inactive");
    assert.equal(await docker(["info", "--format", "{{.Swarm.LocalNodeState}}"]), "active");
  });

  step("docker-compose up: both services run, pulled from the registry, labelled", async () => {
    const t0 = Date.now();
    await shop.up();
    for (const service of ["web", "worker"]) {
      const c = await shop.waitService(service);
      assert.equal(c.Config.Image, SWARM.IMAGE);
      assert.equal(c.Config.Labels.deploy, "auto", JSON.stringify(c.Config.Labels));
      assert.equal(c.Config.Labels["com.docker.compose.project"], shop.name);
    }
    assert.ok(Date.now() - t0 < 30_000, `up in ${Date.now() - t0} ms`);
  });

  step("the worker's healthcheck turns it healthy", async () => {
    const worker = await shop.waitService("worker", { healthy: true });
    assert.equal(worker.Config.Healthcheck.Interval, 1e9);
  });

  step("web serves its named volume's file on 127.0.0.1, with its env_file's variables", async () => {
    // Written by a container of its own, through the volume's name: what web serves comes from the volume.
    await plainDocker([
      "run",
      "--rm",
      "--env",
      `PAGE=${page}`,
      "--volume",
      `${shop.name}_site:/srv`,
      SWARM.IMAGE,
      "sh",
      "-c",
      `printf '%s' "$PAGE" >/srv/index.html`,
    ]);
    const res = await fetch(`http://${HOST}:${webPort}/`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), page);
    const web = await shop.inspect("web");
    assert.ok(web.Config.Env.includes("GREETING=hello"), JSON.stringify(web.Config.Env));
    const bound = web.HostConfig.PortBindings["80/tcp"];
    assert.deepEqual(bound, [{ HostIp: HOST, HostPort: String(webPort) }]);
  });

  step("the worker reaches web by its network alias (embedded DNS)", async () => {
    const worker = await shop.inspect("worker");
    // busybox's wget has no working -T here (it crashes): `timeout` bounds it instead.
    const body = await plainDocker(["exec", worker.Id, "timeout", "5", "wget", "-q", "-O-", "http://shop-web/"]);
    assert.equal(body, page);
  });

  step("docker-compose ps lists both services", async () => {
    const services = (await shop.run(["ps", "--services"])).split("\n").sort();
    assert.deepEqual(services, ["web", "worker"]);
    const table = await shop.run(["ps"]);
    for (const service of ["web", "worker"]) {
      assert.match(table, new RegExp(`^${shop.name}_${service}_1 .* Up`, "m"), table);
    }
  });
});
