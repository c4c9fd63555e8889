import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after } from "node:test";
import Docker from "dockerode";
import type { AllowRules } from "../src/allow.ts";
import { JobRunner } from "../src/jobs.ts";
import type { AgentMessage, Job } from "../src/protocol.ts";
import { SwarmOrchestrator } from "../src/swarm.ts";
import type { TaskJson } from "../src/swarm-converge.ts";
import { parseImage, type ServiceJson, type ServiceSpecJson } from "../src/swarm-spec.ts";

/**
 * The swarm suite runs against a real dockerd in swarm mode: DOCKER_HOST
 * names it and IMAGE a tagged image in a registry it can pull from (both
 * written by scripts/swarm/up.sh to $SWARM_DIR/env).
 */
export const IMAGE = process.env.IMAGE ?? "";
if (!process.env.DOCKER_HOST || !IMAGE) {
  throw new Error("the swarm suite needs DOCKER_HOST and IMAGE: run scripts/swarm/up.sh and load $SWARM_DIR/env");
}

export const docker = new Docker();
export const swarm = new SwarmOrchestrator(docker);

const ALL: AllowRules = { all: true, labels: [], services: [] };

/** A runner over the real swarm, polling faster than the agent does so that the suite stays short. */
export const runner = (rules: AllowRules = ALL, dryRun = false) => new JobRunner(swarm, { rules, dryRun, pollMs: 150 });

/** The transport, collected: every message the runner sends to one connection. */
export function collector() {
  const messages: AgentMessage[] = [];
  const send = (m: AgentMessage) => {
    messages.push(m);
  };
  const of = <T extends AgentMessage["type"]>(type: T) =>
    messages.filter((m): m is Extract<AgentMessage, { type: T }> => m.type === type);
  return { messages, send, of };
}

export function job(service: string, fields: Partial<Job> = {}): Job {
  return {
    action: randomUUID(),
    attempt: 1,
    kind: "redeploy",
    service,
    scale_by: null,
    replicas: null,
    max_replicas: 10,
    body: null,
    converge_seconds: 30,
    applied: false,
    ...fields,
  };
}

/** The image pinned to its digest now, as `docker service create` pins it. */
export async function pinnedImage(): Promise<string> {
  const found = await docker.getImage(IMAGE).distribution();
  return `${IMAGE}@${found.Descriptor.digest}`;
}

/** A unique service name: the suite's files may run side by side, and a failed run may leave one behind. */
export const serviceName = (what: string) => `agt-${what}-${randomUUID().slice(0, 6)}`;

/**
 * Creates a service that converges in about a second (an init process so that
 * it stops at once, start-first updates watched for 200 ms), and waits until
 * its tasks run.
 */
export async function createService(name: string, extra: Partial<ServiceSpecJson> = {}): Promise<ServiceJson> {
  const spec = {
    Name: name,
    Labels: { "test.suite": "agent" },
    TaskTemplate: {
      ContainerSpec: { Image: await pinnedImage(), Args: ["sleep", "3600"], Init: true, StopGracePeriod: 1e9 },
      RestartPolicy: { Condition: "any", Delay: 1e9 },
    },
    Mode: { Replicated: { Replicas: 1 } },
    UpdateConfig: { Parallelism: 1, Order: "start-first", Monitor: 200e6, FailureAction: "pause" },
    ...extra,
  };
  const created = (await docker.createService(spec as Docker.CreateServiceOptions)) as { id?: string; ID?: string };
  const id = created.id ?? created.ID ?? name;
  const replicas = spec.Mode.Replicated?.Replicas ?? 1;
  await waitFor(`${name} to run ${replicas} tasks`, async () => (await running(id)).length === replicas);
  return inspect(id);
}

/**
 * A test file's services: `service(what, extra)` creates one with a unique
 * name, and every one created is removed once the file's tests are done.
 */
export function servicesOfThisFile() {
  const created: string[] = [];
  after(async () => {
    for (const name of created) await removeService(name);
  });
  return async (what: string, extra: Partial<ServiceSpecJson> = {}) => {
    const name = serviceName(what);
    created.push(name);
    return createService(name, extra);
  };
}

export async function removeService(name: string) {
  await docker
    .getService(name)
    .remove()
    .catch(() => {});
}

export const inspect = async (id: string) => (await docker.getService(id).inspect()) as ServiceJson;
export const tasks = async (id: string) => (await docker.listTasks({ filters: { service: [id] } })) as TaskJson[];
export const running = async (id: string) =>
  (await tasks(id)).filter((t) => t.Status?.State === "running" && t.DesiredState === "running");

/** The environment of a task's container, as `docker inspect` shows it. */
export async function containerEnv(task: TaskJson): Promise<string[]> {
  const id = (task.Status as { ContainerStatus?: { ContainerID?: string } }).ContainerStatus?.ContainerID ?? "";
  const container = await docker.getContainer(id).inspect();
  return container.Config.Env ?? [];
}

export async function waitFor(what: string, ok: () => Promise<boolean>, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  while (!(await ok())) {
    assert.ok(Date.now() < deadline, `timed out after ${seconds} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

/** The report the runner sent, after checking that the ack came first. */
export function reportOf(c: ReturnType<typeof collector>) {
  assert.equal(c.messages[0]?.type, "ack", "the ack comes first");
  const reports = c.of("report");
  assert.equal(reports.length, 1, `one report: ${JSON.stringify(c.messages)}`);
  return reports[0] as Extract<AgentMessage, { type: "report" }>;
}

/** Pushes a new build under IMAGE's tag (a commit of a container of it: a new config, so a new digest). */
export async function repush(): Promise<string> {
  const container = await docker.createContainer({ Image: IMAGE, Cmd: ["true"] });
  const ref = parseImage(IMAGE).name;
  const repo = ref.slice(0, ref.lastIndexOf(":"));
  const tag = ref.slice(ref.lastIndexOf(":") + 1);
  await container.commit({ repo, tag, comment: `rebuilt ${Date.now()}` });
  await container.remove();
  // The engine wants an X-Registry-Auth header even for a registry without auth: "{}" in base64.
  const stream = await docker.getImage(IMAGE).push({ authconfig: { key: "e30=" } });
  await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve(null))),
  );
  return (await docker.getImage(IMAGE).distribution()).Descriptor.digest;
}
