import assert from "node:assert/strict";
import { test } from "node:test";
import { parseImage } from "../src/swarm-spec.ts";
import {
  collector,
  containerEnv,
  docker,
  IMAGE,
  inspect,
  job,
  pinnedImage,
  reportOf,
  repush,
  runner,
  running,
  servicesOfThisFile,
  swarm,
  tasks,
  waitFor,
} from "./helpers.ts";

const service = servicesOfThisFile();

test("describe names the swarm, the engine's version and this node", async () => {
  const about = await swarm.describe();
  assert.equal(about.orchestrator, "swarm");
  assert.match(about.engine_version ?? "", /^\d+\.\d+/);
  assert.equal(about.node_id, (await docker.info()).Swarm.NodeID);
});

test("a redeploy replaces the tasks, passes the body and records the action", async () => {
  const before = await service("redeploy");
  const name = before.Spec.Name ?? "";
  const oldTask = (await running(before.ID))[0];
  const j = job(name, { body: "built abc" });
  const c = collector();
  const started = Date.now();
  await runner().handle(j, c.send);
  const report = reportOf(c);
  assert.equal(report.result, "success", report.detail);
  assert.equal(report.attempt, 1);
  assert.deepEqual(c.of("applied"), [{ type: "applied", action: j.action }]);
  assert.ok(
    c.of("progress").some((p) => /tasks updated to |^update completed: /.test(p.line)),
    "progress lines",
  );

  const after = await inspect(before.ID);
  assert.equal(after.Spec.TaskTemplate?.ForceUpdate, (before.Spec.TaskTemplate?.ForceUpdate ?? 0) + 1);
  assert.equal(after.Spec.Labels?.["io.dockercloud.action"], j.action);
  assert.equal(after.Spec.Labels?.["test.suite"], "agent", "the other labels stay");
  assert.deepEqual(after.Spec.TaskTemplate?.ContainerSpec?.Args, ["sleep", "3600"], "the rest of the spec stays");
  const now = await running(before.ID);
  assert.equal(now.length, 1);
  assert.notEqual(now[0]?.ID, oldTask?.ID, "a new task runs");
  assert.ok((await containerEnv(now[0] ?? { ID: "" })).includes("DOCKERCLOUD_TRIGGER_BODY=built abc"));
  assert.deepEqual(report.observed, {
    replicas: 1,
    desired: 1,
    running: 1,
    image: after.Spec.TaskTemplate?.ContainerSpec?.Image,
  });
  console.log(`redeploy converged in ${Date.now() - started} ms`);
});

test("a redeploy after a push under the same tag runs the new digest", async () => {
  const before = await service("repush");
  const oldDigest = parseImage(before.Spec.TaskTemplate?.ContainerSpec?.Image ?? "").digest;
  const newDigest = await repush();
  assert.notEqual(newDigest, oldDigest);
  const c = collector();
  await runner().handle(job(before.Spec.Name ?? "", { body: null }), c.send);
  const report = reportOf(c);
  assert.equal(report.result, "success", report.detail);
  const after = await inspect(before.ID);
  assert.equal(after.Spec.TaskTemplate?.ContainerSpec?.Image, `${parseImage(IMAGE).name}@${newDigest}`);
  assert.equal(after.Spec.TaskTemplate?.ContainerSpec?.Env, undefined, "no body: the environment is untouched");
  const now = await running(before.ID);
  assert.equal(now[0]?.Spec?.ContainerSpec?.Image, after.Spec.TaskTemplate?.ContainerSpec?.Image);
  assert.ok(c.of("progress").some((p) => p.line.includes(`now resolves to ${newDigest}`)));
});

test("a failing update is rolled back: failed with the task's error, the old spec running again", async () => {
  const before = await service("rollback", {
    TaskTemplate: {
      ContainerSpec: {
        Image: IMAGE,
        Command: ["sh", "-c", 'test "$DOCKERCLOUD_TRIGGER_BODY" != fail || exit 1; exec sleep 3600'],
        Init: true,
        StopGracePeriod: 1e9,
      },
      RestartPolicy: { Condition: "any", Delay: 1e9 },
    },
    UpdateConfig: { Parallelism: 1, Order: "start-first", Monitor: 1e9, FailureAction: "rollback" },
    RollbackConfig: { Parallelism: 1, Order: "start-first", Monitor: 1e9, FailureAction: "pause" },
  });
  const force = before.Spec.TaskTemplate?.ForceUpdate ?? 0;
  const c = collector();
  await runner().handle(job(before.Spec.Name ?? "", { body: "fail" }), c.send);
  const report = reportOf(c);
  assert.equal(report.result, "failed");
  assert.equal(report.detail, "the update was rolled back: task: non-zero exit (1)");
  assert.equal(c.of("applied").length, 1, "it was applied: a redelivery must only wait");
  const after = await inspect(before.ID);
  assert.equal(after.UpdateStatus?.State, "rollback_completed");
  assert.equal(after.Spec.TaskTemplate?.ForceUpdate, force, "the spec is the old one again");
  assert.equal(after.Spec.Labels?.["io.dockercloud.action"], undefined, "the rollback took the label back too");
  // Swarm's rollback starts a task of the old spec in the slot (it does not keep the very same task).
  await waitFor("a task of the old spec to run", async () => (await running(before.ID)).length === 1);
  const now = (await running(before.ID))[0];
  assert.equal(now?.Spec?.ForceUpdate ?? 0, force);
  assert.ok(!(await containerEnv(now ?? { ID: "" })).some((e) => e.startsWith("DOCKERCLOUD_TRIGGER_BODY=")));
  const failedTask = (await tasks(before.ID)).find((t) => t.Status?.State === "failed");
  assert.equal(failedTask?.Spec?.ForceUpdate, force + 1, "the failed task was of our update");
});

test("a registry that cannot be reached: the redeploy goes on with the digest it runs, and says so", async () => {
  const pinned = `127.0.0.1:1/bb:1@${parseImage(await pinnedImage()).digest}`;
  // No replica: nothing needs pulling from the registry that is not there.
  const before = await service("noregistry", {
    TaskTemplate: { ContainerSpec: { Image: pinned, Args: ["sleep", "3600"], Init: true } },
    Mode: { Replicated: { Replicas: 0 } },
  });
  const c = collector();
  await runner().handle(job(before.Spec.Name ?? "", { body: "x" }), c.send);
  const report = reportOf(c);
  assert.equal(report.result, "success", report.detail);
  const line = c.of("progress").find((p) => p.line.startsWith("could not ask the registry"))?.line ?? "";
  assert.match(
    line,
    /^could not ask the registry for 127\.0\.0\.1:1\/bb:1's current digest \(.*connection refused\); keeping sha256:/,
  );
  const after = await inspect(before.ID);
  assert.equal(after.Spec.TaskTemplate?.ContainerSpec?.Image, pinned);
  assert.equal(after.Spec.TaskTemplate?.ForceUpdate, (before.Spec.TaskTemplate?.ForceUpdate ?? 0) + 1);
  assert.deepEqual(report.observed, { replicas: 0, desired: 0, running: 0, image: pinned });
});

test("an unknown service fails; nothing is created", async () => {
  const c = collector();
  await runner().handle(job("agt-no-such-service"), c.send);
  const report = reportOf(c);
  assert.deepEqual(
    { result: report.result, detail: report.detail, observed: report.observed },
    { result: "failed", detail: "no swarm service named 'agt-no-such-service' on this swarm", observed: null },
  );
});

test("a dry run says what it would do and changes nothing", async () => {
  const before = await service("dry");
  const c = collector();
  await runner(undefined, true).handle(job(before.Spec.Name ?? "", { body: "x" }), c.send);
  const report = reportOf(c);
  assert.equal(report.result, "success");
  const force = before.Spec.TaskTemplate?.ForceUpdate ?? 0;
  assert.match(
    report.detail,
    new RegExp(
      `^dry run: would update service \\S+: ForceUpdate ${force} → ${force + 1}, image \\S+@sha256:[0-9a-f]{64}, DOCKERCLOUD_TRIGGER_BODY set$`,
    ),
  );
  assert.equal(c.of("progress")[0]?.line, report.detail);
  assert.equal(c.of("applied").length, 0);
  assert.equal((await inspect(before.ID)).Version?.Index, before.Version?.Index, "the spec is unchanged");
  assert.deepEqual(report.observed, {
    replicas: 1,
    desired: 1,
    running: 1,
    image: before.Spec.TaskTemplate?.ContainerSpec?.Image,
  });
});
