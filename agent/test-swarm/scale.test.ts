import assert from "node:assert/strict";
import { test } from "node:test";
import { collector, inspect, job, reportOf, runner, running, servicesOfThisFile, tasks } from "./helpers.ts";

const service = servicesOfThisFile();

test("a scale-up adds replicas, a scale sets them; no task is replaced", async () => {
  const before = await service("scale");
  const name = before.Spec.Name ?? "";
  const first = (await running(before.ID))[0]?.ID;
  const up = collector();
  let started = Date.now();
  await runner().handle(job(name, { kind: "scaleup", scale_by: 2, max_replicas: 3 }), up.send);
  const upReport = reportOf(up);
  assert.equal(upReport.result, "success", upReport.detail);
  assert.equal(upReport.detail, `${name} scaled to 3`);
  assert.equal(up.of("applied").length, 1);
  assert.deepEqual(upReport.observed, {
    replicas: 3,
    desired: 3,
    running: 3,
    image: before.Spec.TaskTemplate?.ContainerSpec?.Image,
  });
  assert.ok(
    (await running(before.ID)).some((t) => t.ID === first),
    "the first task still runs",
  );
  const scaled = await inspect(before.ID);
  assert.equal(scaled.Spec.TaskTemplate?.ForceUpdate ?? 0, before.Spec.TaskTemplate?.ForceUpdate ?? 0);
  console.log(`scale 1 → 3 converged in ${Date.now() - started} ms`);

  const down = collector();
  started = Date.now();
  await runner().handle(job(name, { kind: "scale", replicas: 1 }), down.send);
  const downReport = reportOf(down);
  assert.equal(downReport.result, "success", downReport.detail);
  assert.equal(downReport.observed?.running, 1);
  assert.equal(downReport.observed?.replicas, 1);
  const left = await tasks(before.ID);
  assert.equal(left.filter((t) => t.DesiredState === "running").length, 1);
  assert.equal(left.filter((t) => t.Status?.State === "running").length, 1, "the others have stopped");
  console.log(`scale 3 → 1 converged in ${Date.now() - started} ms`);
});

test("a scale-up beyond the maximum is refused; the swarm is untouched", async () => {
  const before = await service("max");
  const c = collector();
  await runner().handle(job(before.Spec.Name ?? "", { kind: "scaleup", scale_by: 3, max_replicas: 3 }), c.send);
  const report = reportOf(c);
  assert.equal(report.result, "failed");
  assert.match(report.detail, /would make 4 replicas, more than its maximum of 3/);
  assert.equal(c.of("applied").length, 0);
  assert.equal((await inspect(before.ID)).Version?.Index, before.Version?.Index);
  assert.equal(report.observed?.replicas, 1);
});

test("a service the rules do not allow is refused; the swarm is untouched", async () => {
  const before = await service("rules");
  const name = before.Spec.Name ?? "";
  const rules = { all: false, labels: [{ key: "deploy", value: "auto" }], services: ["web"] };
  const c = collector();
  await runner(rules).handle(job(name, { body: "x" }), c.send);
  const report = reportOf(c);
  assert.equal(report.result, "failed");
  assert.equal(
    report.detail,
    `the agent's rules do not allow it to act on service '${name}' (allowed: service web, label deploy=auto)`,
  );
  assert.equal(report.observed, null, "a service the agent may not act on is not reported on");
  assert.equal(c.of("progress").length + c.of("applied").length, 0);
  assert.equal((await inspect(before.ID)).Version?.Index, before.Version?.Index);

  // The same job is allowed by the service's label.
  const allowed = collector();
  await runner({ ...rules, labels: [{ key: "test.suite", value: "agent" }] }).handle(job(name), allowed.send);
  assert.equal(reportOf(allowed).result, "success");
});

test("a global service redeploys but cannot be scaled", async () => {
  const before = await service("global", { Mode: { Global: {} } });
  const name = before.Spec.Name ?? "";
  const c = collector();
  await runner().handle(job(name, { kind: "scaleup", scale_by: 1 }), c.send);
  const report = reportOf(c);
  assert.equal(report.result, "failed");
  assert.equal(report.detail, `service '${name}' is global (one task per node): it cannot be scaled`);
  assert.equal((await inspect(before.ID)).Version?.Index, before.Version?.Index);
  assert.deepEqual(report.observed && { ...report.observed, image: "" }, {
    replicas: null,
    desired: 1,
    running: 1,
    image: "",
  });

  const r = collector();
  await runner().handle(job(name, { body: "global" }), r.send);
  assert.equal(reportOf(r).result, "success", reportOf(r).detail);
});
