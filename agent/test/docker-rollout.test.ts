/**
 * The plain-Docker rollout (docker-rollout.ts through docker.ts) against an in-memory engine
 * (fake-engine.ts): examples, then properties of a crash at any mutating call followed by the
 * job's redelivery (or by another job). Jobs go through the real runner (jobs.ts), so a
 * redelivery takes `applied()` or `apply()` exactly as the agent would; the API's `job.applied`
 * is true on a redelivery only when the crashed run got to send `applied`.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { type ContainerJson, NUMBER_LABEL, nameOf, temporaryOf } from "../src/containers.ts";
import { DockerOrchestrator } from "../src/docker.ts";
import { JobRunner } from "../src/jobs.ts";
import type { AgentMessage, Job } from "../src/protocol.ts";
import { ACTION_LABEL, BODY_ENV } from "../src/swarm-spec.ts";
import { Crash, FakeEngine } from "./fake-engine.ts";

const ACTION = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d";
const OTHER = "1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5";
const OLD = "example/web:1";
const BODY = "built 42";
const RUNS = Number(process.env.ROLLOUT_RUNS ?? 100);

type Host = { engine: FakeEngine; o: DockerOrchestrator; before: Map<string, string>; names: string[] };
type Delivery = { report: Extract<AgentMessage, { type: "report" }>; applied: boolean; crashed: boolean };

/** Project `shop`, service `web`: `count` containers as Compose 1.29 runs them, on two networks. */
function host(count: number, fixedPort = false): Host {
  const engine = new FakeEngine();
  for (let n = 1; n <= count; n++) {
    engine.seed({
      name: `shop_web_${n}`,
      image: OLD,
      labels: {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
        [NUMBER_LABEL]: String(n),
        "com.docker.compose.oneoff": "False",
      },
      env: ["GREETING=hello"],
      networks: ["shop_default", "shop_back"],
      binds: ["shop_data:/data"],
      ...(fixedPort ? { ports: { "80/tcp": [{ HostIp: "", HostPort: "8080" }] } } : {}),
    });
  }
  const o = new DockerOrchestrator(engine.asDocker(), undefined, { settleMs: 1000, pollMs: 1 });
  const before = new Map(engine.all().map((c) => [nameOf(c), c.Id]));
  return { engine, o, before, names: [...before.keys()] };
}

function job(action: string, more: Partial<Job>): Job {
  return {
    action,
    attempt: 1,
    kind: "redeploy",
    service: "shop/web",
    scale_by: null,
    replicas: null,
    max_replicas: 8,
    body: BODY,
    converge_seconds: 60,
    applied: false,
    image: null,
    ...more,
  };
}

/** A redeploy job on a new image published now: pushed (the job names it), or the service's tag moved. */
function redeploy(h: Host, action: string, bad: boolean, push: boolean, tag = "2"): { job: Job; image: string } {
  if (!push) return { job: job(action, {}), image: h.engine.publish(OLD, bad) };
  const reference = `example/web:${bad ? "bad" : ""}${tag}`;
  const image = h.engine.publish(reference);
  return { job: job(action, { image: { reference, digest: image.split("@")[1] ?? null } }), image };
}

/** One delivery through the agent's job runner; a crash of the engine ends it as the process would end. */
async function deliver(h: Host, j: Job): Promise<Delivery> {
  const sent: AgentMessage[] = [];
  const runner = new JobRunner(h.o, { rules: { all: true, labels: [], services: [] }, dryRun: false, pollMs: 1 });
  await runner.handle(j, (m) => sent.push(m));
  const report = sent.find((m) => m.type === "report");
  assert.ok(report?.type === "report");
  // A process that died sends nothing more, whatever the runner made of the crash.
  const crashed = h.engine.crashed;
  return { report, applied: !crashed && sent.some((m) => m.type === "applied"), crashed };
}

/** One delivery with the engine crashing at its `crash`-th mutating call (none when null). */
async function attempt(h: Host, j: Job, crash: number | null): Promise<Delivery> {
  h.engine.crashAt = crash === null ? null : h.engine.mutations + crash;
  const run = await deliver(h, j);
  h.engine.reset();
  return run;
}

/**
 * `first` crashing at its k-th mutating call, then `next` delivered (crashing at its k2-th, when
 * given, then delivered once more): every delivery, in order. A delivery of the same action
 * again is `applied` when an earlier one sent `applied`, as the API records it.
 */
async function crashAndGoOn(h: Host, first: Job, next: Job, k: number, k2: number | null): Promise<Delivery[]> {
  const runs = [await attempt(h, first, k)];
  let j = first;
  for (const crash of [k2, null]) {
    const again = j.action === next.action;
    j = { ...next, attempt: again ? j.attempt + 1 : 1, applied: again && (j.applied || runs.at(-1)?.applied === true) };
    runs.push(await attempt(h, j, crash));
    if (!runs.at(-1)?.crashed) break;
  }
  return runs;
}

const temporaries = (all: ContainerJson[]) => all.map(nameOf).filter((n) => temporaryOf(n) !== null);

/** Each slot held by one running container, nothing else on the host, no temporary name. */
function assertSlotsRun(h: Host, names: string[]): void {
  const all = h.engine.all();
  assert.deepEqual(temporaries(all), [], "no temporary name is left");
  assert.deepEqual(all.map(nameOf).sort(), [...names].sort(), "the slots, and only they, are held");
  for (const c of all) {
    assert.ok(c.State.Running, `${nameOf(c)} runs (${c.State.Status}, exit ${c.State.ExitCode})`);
    assert.equal(c.Config.Labels?.[NUMBER_LABEL], nameOf(c).split("_").at(-1), `${nameOf(c)} keeps its number`);
  }
}

/** Every slot on `image`, made by `action` (none of the containers from before is left). */
function assertReplaced(h: Host, image: string, action: string): void {
  for (const c of h.engine.all()) {
    assert.equal(c.Config.Image, image, `${nameOf(c)} runs the new image`);
    assert.equal(c.Config.Labels?.[ACTION_LABEL], action, `${nameOf(c)} carries the action`);
    assert.notEqual(c.Id, h.before.get(nameOf(c)), `${nameOf(c)} is a new container`);
  }
}

/** Every slot still the container it was before, and no container carries `action`. */
function assertUntouched(h: Host, action: string): void {
  for (const c of h.engine.all()) {
    assert.equal(c.Id, h.before.get(nameOf(c)), `${nameOf(c)} is its old container again`);
    assert.notEqual(c.Config.Labels?.[ACTION_LABEL], action);
  }
}

// ---- examples ----

test("the fake engine answers as dockerd, and a crash changes nothing and ends every later call", async () => {
  const h = host(1);
  const d = h.engine.asDocker();
  await assert.rejects(d.getContainer("shop_web_1").start(), { statusCode: 304 });
  const create = { _query: { name: "shop_web_1" }, _body: { Image: OLD } };
  await assert.rejects(d.createContainer(create as never), { statusCode: 409 });
  await assert.rejects(d.getContainer("shop_web_9").inspect(), { statusCode: 404 });
  h.engine.crashAt = h.engine.mutations + 1;
  await assert.rejects(d.getContainer("shop_web_1").stop(), Crash);
  await assert.rejects(d.listContainers(), Crash);
  h.engine.reset();
  assert.equal(h.engine.peek("shop_web_1")?.State.Running, true);
  assert.deepEqual(h.engine.calls, ["start /shop_web_1", "create shop_web_1", "stop /shop_web_1"]);
});

test("a redeploy of a 2-container Compose service replaces both, on the tag's new digest", async () => {
  const h = host(2);
  const { job: j, image } = redeploy(h, ACTION, false, false);
  const { report } = await deliver(h, j);
  assert.equal(report.result, "success", report.detail);
  assert.match(image, /^example\/web:1@sha256:[0-9a-f]{64}$/);
  assertSlotsRun(h, ["shop_web_1", "shop_web_2"]);
  assertReplaced(h, image, ACTION);
  for (const c of h.engine.all()) {
    assert.ok(c.Config.Env?.includes(`${BODY_ENV}=${BODY}`));
    assert.deepEqual(Object.keys(c.NetworkSettings?.Networks ?? {}).sort(), ["shop_back", "shop_default"]);
    assert.deepEqual(c.HostConfig.Binds, ["shop_data:/data"]);
  }
  assert.equal(h.engine.most, 3, "one container at a time");
  const creates = h.engine.calls.filter((c) => c.startsWith("create")).map((c) => c.split(" ")[1]);
  assert.deepEqual(creates, [`shop_web_1.dcnew-${ACTION}`, `shop_web_2.dcnew-${ACTION}`]);
});

test("a redeploy on an image that exits fails and puts the old container back under its name", async () => {
  const h = host(2);
  const { job: j } = redeploy(h, ACTION, true, true);
  const { report } = await deliver(h, j);
  assert.equal(report.result, "failed");
  assert.match(report.detail, /shop_web_1: it exited with code 3/);
  assert.match(report.detail, /fatal: the configuration does not parse/);
  assert.match(report.detail, /the old container runs again under its name/);
  assertSlotsRun(h, h.names);
  assertUntouched(h, ACTION);
  assert.ok(!h.engine.calls.some((c) => c.includes("shop_web_2")), "the second container was not touched");
});

test("a scale from 1 to 3 adds shop_web_2 and shop_web_3, numbered as Compose numbers them", async () => {
  const h = host(1);
  const { report } = await deliver(h, job(ACTION, { kind: "scale", replicas: 3 }));
  assert.equal(report.result, "success", report.detail);
  assertSlotsRun(h, ["shop_web_1", "shop_web_2", "shop_web_3"]);
  assert.equal(h.engine.peek("shop_web_1")?.Id, h.before.get("shop_web_1"));
  for (const n of [2, 3]) {
    const c = h.engine.peek(`shop_web_${n}`);
    assert.equal(c?.Config.Labels?.[NUMBER_LABEL], String(n));
    assert.equal(c?.Config.Labels?.[ACTION_LABEL], ACTION);
    assert.match(c?.Config.Image ?? "", /^example\/web:1@sha256:/, "pinned to what shop_web_1 runs");
  }
});

test("a scale from 3 to 1 removes shop_web_3, then shop_web_2", async () => {
  const h = host(3);
  const { report } = await deliver(h, job(ACTION, { kind: "scale", replicas: 1 }));
  assert.equal(report.result, "success", report.detail);
  assertSlotsRun(h, ["shop_web_1"]);
  assert.equal(h.engine.peek("shop_web_1")?.Id, h.before.get("shop_web_1"));
  // Each is named as going before it stops, so a crash in between leaves a name that says so.
  const order = ["shop_web_3", "shop_web_2"].flatMap((n) => [
    `rename /${n} ${n}.dcgone-${ACTION}`,
    `stop /${n}.dcgone-${ACTION}`,
    `remove /${n}.dcgone-${ACTION}`,
  ]);
  assert.deepEqual(h.engine.calls, order);
});

test("a scale to 2 of a service holding a fixed host port is refused before anything changes", async () => {
  const h = host(1, true);
  const { report } = await deliver(h, job(ACTION, { kind: "scale", replicas: 2 }));
  assert.equal(report.result, "failed");
  assert.match(report.detail, /publishes a fixed host port \(8080->80\/tcp\)/);
  assert.equal(h.engine.mutations, 0);
});

// ---- crashes ----

type Crashes = { k: number; k2: number | null };
type Cases<C> = { arb: fc.Arbitrary<C>; every: C[] };

/**
 * Each shape crashed at each mutating call a whole run of it makes, and once past its end (no
 * crash): all of those, run as examples; then drawn ones, with a crash of the next delivery too.
 */
async function crashCases<S extends object>(shapes: S[], whole: (s: S) => Promise<Host>): Promise<Cases<S & Crashes>> {
  const totals = await Promise.all(shapes.map(async (s) => (await whole(s)).engine.mutations));
  const every = shapes.flatMap((s, i) =>
    Array.from({ length: (totals[i] ?? 0) + 1 }, (_, k) => ({ ...s, k: k + 1, k2: null })),
  );
  const arb = fc.nat(shapes.length - 1).chain((i) =>
    fc
      .record({
        k: fc.integer({ min: 1, max: (totals[i] ?? 0) + 1 }),
        k2: fc.option(fc.integer({ min: 1, max: 12 })),
      })
      .map((c) => ({ ...(shapes[i] as S), ...c })),
  );
  return { arb, every };
}

async function check<C>(cases: Cases<C>, property: (c: C) => Promise<unknown>): Promise<void> {
  const examples = cases.every.map((c): [C] => [c]);
  const run = async (c: C) => {
    await property(c);
  };
  await fc.assert(fc.asyncProperty(cases.arb, run), { numRuns: RUNS, includeErrorInReport: true, examples });
}

/** A job's change: a redeploy on a good or a bad image (pushed, or a trigger's), or a scale to m. */
type What = { kind: "redeploy"; bad: boolean; push: boolean } | { kind: "scale"; m: number };
const REDEPLOYS: What[] = [false, true].map((bad) => ({ kind: "redeploy", bad, push: true }));
const SCALES: What[] = [1, 2, 3, 4].map((m) => ({ kind: "scale", m }));

function jobFor(h: Host, action: string, w: What, tag: string): { job: Job; image: string | null } {
  if (w.kind === "scale") return { job: job(action, { kind: "scale", replicas: w.m }), image: null };
  return redeploy(h, action, w.bad, w.push, tag);
}

type Case = Crashes & { n: number; first: What; after: What | null };

/** Services of 1 to 3 containers, each `first` job crashed anywhere, then delivered again or followed by each of `afters`. */
function cases(firsts: What[], afters: (What | null)[] = [null], ns = [1, 2, 3]): Promise<Cases<Case>> {
  const shapes = ns.flatMap((n) => firsts.flatMap((first) => afters.map((after) => ({ n, first, after }))));
  return crashCases(shapes, async (s) => {
    const h = host(s.n);
    await deliver(h, jobFor(h, ACTION, s.first, "2").job);
    return h;
  });
}

const numbered = (count: number) => Array.from({ length: count }, (_, i) => `shop_web_${i + 1}`);

/** A redeploy crashed at its k-th mutating call, then delivered again: it ends as an uncrashed one would. */
async function redeployResumes(c: Case): Promise<Host> {
  const h = host(c.n);
  const { job: j, image } = jobFor(h, ACTION, c.first, "2");
  const runs = await crashAndGoOn(h, j, j, c.k, c.k2);
  const last = runs.at(-1) as Delivery;
  assertSlotsRun(h, h.names);
  assert.ok(h.engine.most <= c.n + 1, `at most one container more than before (${h.engine.most})`);
  if (c.first.kind === "redeploy" && c.first.bad) {
    assert.equal(last.report.result, "failed");
    assert.match(runs.find((r) => !r.crashed)?.report.detail ?? "", /exited with code 3/);
    assertUntouched(h, ACTION);
  } else {
    assert.equal(last.report.result, "success", last.report.detail);
    assertReplaced(h, image ?? "", ACTION);
  }
  return h;
}

/** A scale from n to m crashed at its k-th call, then delivered again: m containers, numbered 1..m, running. */
async function scaleResumes(c: Case): Promise<{ h: Host; last: Delivery }> {
  const h = host(c.n);
  const m = c.first.kind === "scale" ? c.first.m : c.n;
  const j = jobFor(h, ACTION, c.first, "2").job;
  const runs = await crashAndGoOn(h, j, j, c.k, c.k2);
  assertSlotsRun(h, numbered(m));
  assert.ok(h.engine.most <= Math.max(c.n, m), `never more than ${Math.max(c.n, m)} (${h.engine.most})`);
  for (const name of numbered(Math.min(c.n, m))) assert.equal(h.engine.peek(name)?.Id, h.before.get(name), name);
  for (const name of numbered(m).slice(c.n)) assert.equal(h.engine.peek(name)?.Config.Labels?.[ACTION_LABEL], ACTION);
  return { h, last: runs.at(-1) as Delivery };
}

/** A job crashed at its k-th call, then another job: that one puts back what was left, then does its own. */
async function anotherTidies(c: Case): Promise<void> {
  const h = host(c.n);
  const first = jobFor(h, ACTION, c.first, "2").job;
  const after = c.after as What;
  const { job: next, image } = jobFor(h, OTHER, after, "3");
  const last = (await crashAndGoOn(h, first, next, c.k, c.k2)).at(-1) as Delivery;
  const sizes = [c.n, c.first.kind === "scale" ? c.first.m : c.n];
  const count = after.kind === "scale" ? after.m : h.engine.containers.size;
  if (after.kind !== "scale") assert.ok(count >= Math.min(...sizes) && count <= Math.max(...sizes), `${count}`);
  assert.ok(h.engine.most <= Math.max(...sizes, count) + 1, `at most one container more (${h.engine.most})`);
  assertSlotsRun(h, numbered(count));
  const fails = after.kind === "redeploy" && after.bad;
  assert.equal(last.report.result, fails ? "failed" : "success", last.report.detail);
  if (image && !fails) assertReplaced(h, image, OTHER);
}

/** Every container on both of the service's networks. */
function assertNetworks(h: Host): void {
  for (const c of h.engine.all()) {
    const networks = Object.keys(c.NetworkSettings?.Networks ?? {}).sort();
    assert.deepEqual(networks, ["shop_back", "shop_default"], `${nameOf(c)}'s networks`);
  }
}

test("a redeploy of a push crashed at any call, then delivered again, ends as if it had not crashed", async () => {
  await check(await cases(REDEPLOYS), redeployResumes);
});

test("a scale crashed at any call, then delivered again, leaves exactly the replicas asked for", async () => {
  await check(await cases(SCALES, [null], [1, 2, 3, 4]), scaleResumes);
});

test("another redeploy after a crashed one puts back what that one left, then replaces every container", async () => {
  await check(await cases(REDEPLOYS, REDEPLOYS), anotherTidies);
});

// ---- cases these properties once found wrong, kept as their own tests ----

test("a redeploy of a trigger crashed at any call, then delivered again, ends as uncrashed", async () => {
  await check(await cases(REDEPLOYS.map((w) => ({ ...w, push: false }))), redeployResumes);
});

test("any job after any crashed job leaves every container running", async () => {
  await check(await cases([...REDEPLOYS, ...SCALES], [...REDEPLOYS, ...SCALES]), anotherTidies);
});

test("a crash within another job's tidy, then that job again, leaves every container running", async () => {
  // The first redeploy dies with shop_web_2 stopped under its name; the other one dies after removing the new one.
  await anotherTidies({ n: 2, first: REDEPLOYS[0] as What, after: REDEPLOYS[1] as What, k: 11, k2: 2 });
});

test("a replacement made by a crashed run and taken up joins every network", async () => {
  await check(await cases(REDEPLOYS), async (c) => assertNetworks(await redeployResumes(c)));
});
test("a replica made by a crashed run and taken up joins every network", async () => {
  await check(await cases(SCALES, [null], [1, 2, 3, 4]), async (c) => assertNetworks((await scaleResumes(c)).h));
});

test("a scale delivered again after it completed reports success", async () => {
  await check(await cases(SCALES, [null], [1, 2, 3, 4]), async (c) => {
    const { last } = await scaleResumes(c);
    assert.equal(last.report.result, "success", last.report.detail);
  });
});

test("a scale-up by 2 from 1 delivered again after a crash ends with 3 containers", async () => {
  const j = job(ACTION, { kind: "scaleup", scale_by: 2 });
  for (let k = 1; k <= 7; k++) {
    const h = host(1);
    await crashAndGoOn(h, j, j, k, null);
    assert.deepEqual(h.engine.all().map(nameOf).sort(), numbered(3), `crash at call ${k}`);
  }
});
