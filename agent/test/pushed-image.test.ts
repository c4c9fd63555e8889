import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Docker from "dockerode";
import { JobRunner } from "../src/jobs.ts";
import { parseMessage } from "../src/link.ts";
import type { AgentMessage, Job } from "../src/protocol.ts";
import { repositoryOf } from "../src/registry-auth.ts";
import { SwarmOrchestrator } from "../src/swarm.ts";
import type { TaskJson } from "../src/swarm-converge.ts";
import type { ServiceJson, ServiceSpecJson } from "../src/swarm-spec.ts";

/**
 * A redeploy of a registry push, run by the real runner and Swarm adapter
 * against a fake engine on a unix socket: the registry's answers to the
 * distribution inspect are set per test, and an update "converges" at once
 * (one running task of the new spec, the update completed).
 */
const REPO = "registry.example.com:5000/team/app";
const OLD = `sha256:${"a".repeat(64)}`;
const PUSHED = `sha256:${"b".repeat(64)}`;
const OTHER = `sha256:${"c".repeat(64)}`;

type Engine = {
  /** What the registry serves: a tag's digest; a tag not here is unknown to it. */
  tags: Map<string, string>;
  /** The registry cannot be reached. */
  down: boolean;
  service: ServiceJson;
  tasks: TaskJson[];
  lookups: string[];
  updates: ServiceSpecJson[];
};
let engine: Engine;

function reset(image = `${REPO}:1.2@${OLD}`, tags: Record<string, string> = {}) {
  engine = {
    tags: new Map(Object.entries(tags)),
    down: false,
    service: {
      ID: "svc1",
      Version: { Index: 7 },
      Spec: {
        Name: "web",
        Labels: { deploy: "auto" },
        TaskTemplate: { ContainerSpec: { Image: image }, ForceUpdate: 3 },
        Mode: { Replicated: { Replicas: 1 } },
      },
      UpdateStatus: null,
    },
    tasks: [task(3, image)],
    lookups: [],
    updates: [],
  };
}

const task = (force: number, image: string): TaskJson => ({
  ID: `task-${force}`,
  NodeID: "node1",
  Spec: { ForceUpdate: force, ContainerSpec: { Image: image } },
  Status: { State: "running", Timestamp: new Date().toISOString() },
  DesiredState: "running",
});

function json(res: import("node:http").ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

function distribution(ref: string, res: import("node:http").ServerResponse) {
  engine.lookups.push(ref);
  if (engine.down) {
    const message = 'Get "https://registry.example.com:5000/v2/": dial tcp: connect: connection refused';
    return json(res, 500, { message });
  }
  const digest = engine.tags.get(ref);
  if (!digest) return json(res, 404, { message: "manifest unknown: manifest unknown" });
  json(res, 200, { Descriptor: { mediaType: "application/vnd.docker.distribution.manifest.v2+json", digest } });
}

function update(body: string, res: import("node:http").ServerResponse) {
  const spec = JSON.parse(body) as ServiceSpecJson;
  engine.updates.push(spec);
  const s = engine.service;
  engine.service = {
    ...s,
    Version: { Index: (s.Version?.Index ?? 0) + 1 },
    Spec: spec,
    UpdateStatus: { State: "completed", StartedAt: new Date().toISOString() },
  };
  engine.tasks = [task(spec.TaskTemplate?.ForceUpdate ?? 0, spec.TaskTemplate?.ContainerSpec?.Image ?? "")];
  json(res, 200, { Warnings: null });
}

const server = createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => {
    body += chunk;
  });
  req.on("end", () => {
    const url = req.url ?? "";
    const dist = /^\/distribution\/(.+)\/json$/.exec(url);
    if (dist) return distribution(decodeURIComponent(dist[1] ?? ""), res);
    if (req.method === "POST" && url.startsWith("/services/svc1/update")) return update(body, res);
    if (url === "/services/svc1" || url === "/services/web") return json(res, 200, engine.service);
    if (url.startsWith("/tasks")) return json(res, 200, engine.tasks);
    json(res, 404, { message: "not here" });
  });
});
const dir = mkdtempSync(join(tmpdir(), "agent-push-"));
const socketPath = join(dir, "docker.sock");
await new Promise<void>((resolve) => server.listen(socketPath, resolve));
after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

const JOB: Job = {
  action: "5f0c6b7e-9a57-4a4e-8f1e-3d1f3c1f9b21",
  attempt: 1,
  kind: "redeploy",
  service: "web",
  scale_by: null,
  replicas: null,
  max_replicas: 4,
  body: null,
  converge_seconds: 5,
  applied: false,
};
const pushJob = (reference: string, digest: string | null, fields: Partial<Job> = {}): Job => ({
  ...JOB,
  image: { reference, digest },
  ...fields,
});

async function run(job: Job, dryRun = false) {
  const messages: AgentMessage[] = [];
  const runner = new JobRunner(new SwarmOrchestrator(new Docker({ socketPath })), {
    rules: { all: true, labels: [], services: [] },
    dryRun,
    pollMs: 10,
  });
  await runner.handle(job, (m) => {
    messages.push(m);
  });
  const report = messages.find((m) => m.type === "report");
  assert.ok(report?.type === "report", JSON.stringify(messages));
  const progress = messages.flatMap((m) => (m.type === "progress" ? [m.line] : []));
  return { report, progress, applied: messages.filter((m) => m.type === "applied").length };
}

const deployedImage = () => engine.updates[0]?.TaskTemplate?.ContainerSpec?.Image;

test("the pushed digest, served by the registry: exactly reference@digest is deployed, and the log says so", async () => {
  reset(undefined, { [`${REPO}:1.2`]: PUSHED });
  const { report, progress, applied } = await run(pushJob(`${REPO}:1.2`, PUSHED));
  assert.equal(report.result, "success", report.detail);
  assert.deepEqual(engine.lookups, [`${REPO}:1.2`], "asked once, before the update");
  assert.equal(engine.updates.length, 1);
  assert.equal(deployedImage(), `${REPO}:1.2@${PUSHED}`);
  assert.equal(engine.updates[0]?.TaskTemplate?.ForceUpdate, 4, "the tasks are replaced");
  assert.equal(engine.updates[0]?.Labels?.["io.dockercloud.action"], JOB.action, "the once-only record");
  assert.equal(engine.updates[0]?.TaskTemplate?.ContainerSpec?.Env, undefined, "a push passes no body");
  assert.equal(progress[0], `deploying ${REPO}:1.2@${PUSHED} (the pushed digest, verified)`);
  assert.ok(!progress.some((l) => l.includes("now resolves to")), "the tag is not resolved a second time");
  assert.equal(applied, 1);
  assert.equal(report.observed?.image, `${REPO}:1.2@${PUSHED}`);
});

test("the registry serves another digest for the tag: failed with both digests, the service not updated", async () => {
  reset(undefined, { [`${REPO}:1.2`]: OTHER });
  const { report, applied } = await run(pushJob(`${REPO}:1.2`, PUSHED));
  assert.equal(report.result, "failed");
  assert.equal(
    report.detail,
    `the registry serves ${OTHER} for ${REPO}:1.2, not the pushed ${PUSHED}; the service was left as it was`,
  );
  assert.equal(engine.updates.length, 0, "no update call");
  assert.equal(applied, 0);
  assert.equal(report.observed?.image, `${REPO}:1.2@${OLD}`, "the report shows the service as it runs");
});

test("a push that names no digest: the one the registry serves is deployed, and the log says it was resolved", async () => {
  reset(undefined, { [`${REPO}:1.2`]: PUSHED });
  const { report, progress } = await run(pushJob(`${REPO}:1.2`, null));
  assert.equal(report.result, "success", report.detail);
  assert.equal(deployedImage(), `${REPO}:1.2@${PUSHED}`);
  assert.equal(progress[0], `deploying ${REPO}:1.2@${PUSHED} (resolved: the push named no digest)`);
});

test("a push of another tag moves the service to that tag, pinned to the pushed digest", async () => {
  reset(undefined, { [`${REPO}:1.2`]: OLD, [`${REPO}:1.3`]: PUSHED });
  const { report, progress } = await run(pushJob(`${REPO}:1.3`, PUSHED));
  assert.equal(report.result, "success", report.detail);
  assert.deepEqual(engine.lookups, [`${REPO}:1.3`], "only the pushed tag is asked for");
  assert.equal(deployedImage(), `${REPO}:1.3@${PUSHED}`);
  assert.ok(progress.includes(`the service moves from ${REPO}:1.2 to ${REPO}:1.3`), progress.join("\n"));
});

test("a tag the registry does not have: failed, the service not updated", async () => {
  reset(undefined, {});
  const { report } = await run(pushJob(`${REPO}:1.3`, PUSHED));
  assert.equal(report.result, "failed");
  assert.equal(
    report.detail,
    `${REPO}:1.3 does not exist in the registry: manifest unknown: manifest unknown; the service was left as it was`,
  );
  assert.equal(engine.updates.length, 0);
});

test("a registry that cannot be reached: failed with its reason; no fallback to the digest the service runs", async () => {
  reset(undefined, { [`${REPO}:1.2`]: PUSHED });
  engine.down = true;
  for (const digest of [PUSHED, null]) {
    const { report } = await run(pushJob(`${REPO}:1.2`, digest));
    assert.equal(report.result, "failed");
    assert.equal(
      report.detail,
      `could not ask the registry for ${REPO}:1.2's digest (Get "https://registry.example.com:5000/v2/": dial tcp: connect: connection refused); the service was left as it was`,
    );
  }
  assert.equal(engine.updates.length, 0);
});

test("a dry run verifies the digest and says what it would deploy; it changes nothing", async () => {
  reset(undefined, { [`${REPO}:1.3`]: PUSHED });
  const ok = await run(pushJob(`${REPO}:1.3`, PUSHED), true);
  assert.equal(ok.report.result, "success");
  assert.equal(
    ok.report.detail,
    `dry run: would update service web: ForceUpdate 3 → 4, image ${REPO}:1.2 → ${REPO}:1.3@${PUSHED} (the pushed digest, verified)`,
  );
  assert.deepEqual(ok.progress, [ok.report.detail]);
  assert.equal(ok.applied, 0);
  const resolved = await run(pushJob(`${REPO}:1.3`, null), true);
  assert.match(resolved.report.detail, /@sha256:b{64} \(resolved: the push named no digest\)$/);
  const stale = await run(pushJob(`${REPO}:1.3`, OTHER), true);
  assert.equal(stale.report.result, "failed");
  assert.match(stale.report.detail, /^the registry serves sha256:b{64} for .*:1\.3, not the pushed sha256:c{64}/);
  assert.equal(engine.updates.length, 0);
  assert.equal(engine.lookups.length, 3, "each dry run asked the registry");
});

test("a push already applied only waits: the registry is not asked again, nothing is updated", async () => {
  reset(`${REPO}:1.2@${PUSHED}`, { [`${REPO}:1.2`]: OTHER });
  for (const job of [pushJob(`${REPO}:1.2`, PUSHED, { applied: true }), pushJob(`${REPO}:1.2`, PUSHED)]) {
    engine.service.Spec.Labels = job.applied ? {} : { "io.dockercloud.action": job.action };
    const { report, progress, applied } = await run(job);
    assert.equal(report.result, "success", report.detail);
    assert.equal(progress[0], "already applied: waiting for the service to converge");
    assert.equal(applied, 0);
  }
  assert.deepEqual(engine.lookups, []);
  assert.equal(engine.updates.length, 0);
});

test("a push of another repository, or without a tag, is not deployed on the service", async () => {
  reset(undefined, { "registry.example.com:5000/team/other:1.2": PUSHED, [REPO]: PUSHED });
  const other = await run(pushJob("registry.example.com:5000/team/other:1.2", PUSHED));
  assert.equal(
    other.report.detail,
    `the push is of registry.example.com:5000/team/other:1.2, not of the repository service 'web' runs (${REPO}:1.2@${OLD}); the service was left as it was`,
  );
  const untagged = await run(pushJob(REPO, PUSHED));
  assert.equal(
    untagged.report.detail,
    `the push names ${REPO}, not a repository and a tag to deploy; the service was left as it was`,
  );
  const pinned = await run(pushJob(`${REPO}:1.2@${PUSHED}`, PUSHED));
  assert.equal(pinned.report.result, "failed");
  assert.deepEqual(engine.lookups, [], "none of them reached the registry");
  assert.equal(engine.updates.length, 0);
});

test("a job without an image (a trigger, an older service) redeploys the tag it runs, as before", async () => {
  for (const job of [JOB, { ...JOB, image: null }]) {
    reset(undefined, { [`${REPO}:1.2`]: PUSHED });
    const { report, progress } = await run({ ...job, body: "built abc" });
    assert.equal(report.result, "success", report.detail);
    assert.equal(deployedImage(), `${REPO}:1.2@${PUSHED}`);
    assert.ok(progress.includes(`${REPO}:1.2 now resolves to ${PUSHED}`));
    assert.ok(!progress.some((l) => l.startsWith("deploying ")));
    assert.deepEqual(engine.updates[0]?.TaskTemplate?.ContainerSpec?.Env, ["DOCKERCLOUD_TRIGGER_BODY=built abc"]);
  }
  // Without an image, a registry that cannot be reached still only costs the re-resolution.
  reset(undefined, {});
  engine.down = true;
  const { report } = await run(JOB);
  assert.equal(report.result, "success", report.detail);
  assert.equal(deployedImage(), `${REPO}:1.2@${OLD}`);
});

test("a job's image on the wire: absent, null, or a reference with a digest or null; anything else is no job", () => {
  const wire = (image: unknown) => parseMessage(JSON.stringify({ type: "job", job: { ...JOB, image } }));
  assert.deepEqual(parseMessage(JSON.stringify({ type: "job", job: JOB })), { type: "job", job: JOB });
  assert.deepEqual(wire(null), { type: "job", job: { ...JOB, image: null } });
  const image = { reference: `${REPO}:1.3`, digest: PUSHED };
  assert.deepEqual(wire(image), { type: "job", job: { ...JOB, image } });
  assert.deepEqual(wire({ ...image, digest: null }), {
    type: "job",
    job: { ...JOB, image: { ...image, digest: null } },
  });
  for (const bad of [
    `${REPO}:1.3`,
    [],
    {},
    { reference: `${REPO}:1.3` },
    { reference: 13, digest: null },
    { reference: null, digest: PUSHED },
    { reference: `${REPO}:1.3`, digest: 1 },
    true,
  ]) {
    assert.equal(wire(bad), null, JSON.stringify(bad));
  }
});

test("a repository is compared however it is spelt", () => {
  assert.equal(repositoryOf("nginx:1.27"), "docker.io/library/nginx");
  assert.equal(repositoryOf(`docker.io/library/nginx@${OLD}`), "docker.io/library/nginx");
  assert.equal(repositoryOf("index.docker.io/team/app:2"), "docker.io/team/app");
  assert.equal(repositoryOf(`Registry.Example.com:5000/team/app:1.2@${OLD}`), `${REPO}`);
  assert.equal(repositoryOf("localhost/app"), "localhost/app");
  assert.notEqual(repositoryOf("team/app:1"), repositoryOf("registry.example.com/team/app:1"));
});
