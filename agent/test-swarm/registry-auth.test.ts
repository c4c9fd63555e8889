import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type Docker from "dockerode";
import { JobRunner } from "../src/jobs.ts";
import { RegistryCredentials } from "../src/registry-auth.ts";
import { SwarmOrchestrator } from "../src/swarm.ts";
import { parseImage } from "../src/swarm-spec.ts";
import {
  collector,
  createService,
  docker,
  IMAGE,
  inspect,
  job,
  pinnedImage,
  removeService,
  reportOf,
  repush,
  runner,
  running,
  serviceName,
  tasks,
  waitFor,
} from "./helpers.ts";

/**
 * A private registry: a proxy in front of up.sh's loopback registry that
 * answers 401 (with a Basic challenge) to any request without the right
 * credentials, and records what it was asked. The engine reaches it over
 * plain HTTP (127.0.0.0/8 is an insecure registry to it).
 */
const USER = "agent-test";
const PASSWORD = "dummy-Pa55:word";
const REGISTRY = process.env.REGISTRY ?? parseImage(IMAGE).name.split("/")[0] ?? "";
const [upstreamHost, upstreamPort] = REGISTRY.split(":");
const asked: { method: string; path: string; authorized: boolean }[] = [];
const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;
const proxy = createServer((req, res) => {
  const authorized = req.headers.authorization === expected;
  asked.push({ method: req.method ?? "", path: req.url ?? "", authorized });
  if (!authorized) {
    res.writeHead(401, { "content-type": "application/json", "www-authenticate": 'Basic realm="agent-test"' });
    res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
    return;
  }
  const headers = { ...req.headers, host: REGISTRY };
  delete headers.authorization;
  const upstream = request(
    { host: upstreamHost, port: Number(upstreamPort), method: req.method, path: req.url, headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on("error", () => res.writeHead(502).end());
  req.pipe(upstream);
});
await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
const PRIVATE_REGISTRY = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
const repo = parseImage(IMAGE).name.slice(REGISTRY.length); // "/bb:1"
const PRIVATE = `${PRIVATE_REGISTRY}${repo}`;

const dir = mkdtempSync(join(tmpdir(), "agent-regauth-"));
const configPath = join(dir, "config.json");
writeFileSync(
  configPath,
  JSON.stringify({
    auths: {
      [`http://${PRIVATE_REGISTRY}`]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString("base64") },
      // Dummy credentials for the registry without auth: it must not mind them.
      [REGISTRY]: { username: "nobody", password: "unused" },
    },
  }),
);
const agentLog: string[] = [];
const withCredentials = new JobRunner(
  new SwarmOrchestrator(docker, new RegistryCredentials(configPath, (l) => agentLog.push(l))),
  { rules: { all: true, labels: [], services: [] }, dryRun: false, pollMs: 150 },
);

const created: string[] = [];
after(async () => {
  for (const name of created) await removeService(name);
  proxy.close();
  rmSync(dir, { recursive: true, force: true });
});

test("the registry without auth: a redeploy with (dummy) credentials for it works as before", async () => {
  const name = serviceName("regauth-open");
  created.push(name);
  const before = await createService(name);
  const newDigest = await repush();
  const c = collector();
  await withCredentials.handle(job(name), c.send);
  const report = reportOf(c);
  assert.equal(report.result, "success", report.detail);
  assert.equal(
    (await inspect(before.ID)).Spec.TaskTemplate?.ContainerSpec?.Image,
    `${parseImage(IMAGE).name}@${newDigest}`,
  );
  assert.deepEqual(agentLog, [], "nothing to say about credentials");
});

test("a private registry: the agent's credentials resolve the new digest and let the node pull it", async () => {
  const oldDigest = parseImage(await pinnedImage()).digest;
  const name = serviceName("regauth-private");
  created.push(name);
  // Created without credentials: its task cannot pull, so only the update's X-Registry-Auth can make it run.
  const spec = {
    Name: name,
    Labels: { "test.suite": "agent" },
    TaskTemplate: {
      ContainerSpec: { Image: `${PRIVATE}@${oldDigest}`, Args: ["sleep", "3600"], Init: true, StopGracePeriod: 1e9 },
      RestartPolicy: { Condition: "any", Delay: 1e9 },
    },
    Mode: { Replicated: { Replicas: 1 } },
    UpdateConfig: { Parallelism: 1, Order: "start-first", Monitor: 200e6, FailureAction: "pause" },
  };
  const answer = (await docker.createService(spec as Docker.CreateServiceOptions)) as { id?: string; ID?: string };
  const id = answer.id ?? answer.ID ?? name;
  await waitFor("a task that could not pull", async () =>
    (await tasks(id)).some((t) => t.Status?.State === "rejected" || t.Status?.State === "failed"),
  );
  assert.equal((await running(id)).length, 0);

  // Without credentials the registry cannot say: a redeploy would keep the digest it runs.
  await assert.rejects(docker.getImage(PRIVATE).distribution(), /no basic auth credentials/);
  const plain = collector();
  await runner(undefined, true).handle(job(name), plain.send);
  assert.ok(reportOf(plain).detail.includes(`image ${PRIVATE}@${oldDigest}`), reportOf(plain).detail);

  const newDigest = await repush();
  asked.length = 0;
  const c = collector();
  await withCredentials.handle(job(name), c.send);
  const report = reportOf(c);
  assert.equal(report.result, "success", `${report.detail}\n${JSON.stringify(c.of("progress"))}`);
  assert.ok(c.of("progress").some((p) => p.line === `${PRIVATE} now resolves to ${newDigest}`));
  assert.equal((await inspect(id)).Spec.TaskTemplate?.ContainerSpec?.Image, `${PRIVATE}@${newDigest}`);
  assert.equal((await running(id)).length, 1, "the node pulled the new digest with the service's credentials");
  const tag = repo.slice(repo.lastIndexOf(":") + 1);
  const ok = (p: string) => asked.some((a) => a.authorized && a.path.endsWith(p));
  assert.ok(ok(`/manifests/${tag}`), `the tag was resolved with credentials: ${JSON.stringify(asked)}`);
  assert.ok(ok(`/manifests/${newDigest}`), `the digest was pulled with credentials: ${JSON.stringify(asked)}`);
  assert.deepEqual(agentLog, []);
});
