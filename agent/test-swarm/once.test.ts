import assert from "node:assert/strict";
import { test } from "node:test";
import { redeploySpec } from "../src/swarm-spec.ts";
import { collector, docker, inspect, job, reportOf, runner, running, servicesOfThisFile } from "./helpers.ts";

const service = servicesOfThisFile();
const forceUpdate = async (id: string) => (await inspect(id)).Spec.TaskTemplate?.ForceUpdate ?? 0;

test("the same job run twice, one after the other, is applied once", async () => {
  const before = await service("twice");
  const j = job(before.Spec.Name ?? "", { body: "once" });
  const first = collector();
  await runner().handle(j, first.send);
  assert.equal(reportOf(first).result, "success");
  // A new process (a new runner) gets the job again, as after a crash before the report was sent.
  const second = collector();
  await runner().handle({ ...j, attempt: 2 }, second.send);
  const report = reportOf(second);
  assert.equal(report.result, "success", report.detail);
  assert.equal(report.attempt, 2);
  assert.equal(second.of("applied").length, 0, "not applied again");
  assert.ok(second.of("progress").some((p) => p.line.startsWith("already applied")));
  assert.equal(await forceUpdate(before.ID), (before.Spec.TaskTemplate?.ForceUpdate ?? 0) + 1);
});

test("the same job delivered again while it runs joins the run", async () => {
  const before = await service("joined");
  const j = job(before.Spec.Name ?? "", { body: "joined" });
  const r = runner();
  const conn = collector();
  const otherConn = collector();
  await Promise.all([
    r.handle(j, conn.send),
    r.handle({ ...j, attempt: 2 }, conn.send),
    r.handle({ ...j, attempt: 3 }, otherConn.send),
  ]);
  assert.deepEqual(
    conn.of("ack").map((a) => a.attempt),
    [1, 2],
  );
  const report = reportOf(conn);
  assert.equal(report.result, "success", report.detail);
  assert.equal(report.attempt, 2, "one report per connection, for the latest attempt it delivered");
  assert.equal(reportOf(otherConn).attempt, 3);
  assert.equal(conn.of("applied").length, 1);
  assert.equal(await forceUpdate(before.ID), (before.Spec.TaskTemplate?.ForceUpdate ?? 0) + 1);
  assert.equal((await running(before.ID)).length, 1);
});

test("a job whose change the service already records (a crash after applying) only waits", async () => {
  const before = await service("crashed");
  const j = job(before.Spec.Name ?? "", { body: "before the crash" });
  // What a run that died right after the engine accepted its update left behind.
  const spec = redeploySpec(before.Spec, {
    image: before.Spec.TaskTemplate?.ContainerSpec?.Image ?? "",
    body: j.body,
    action: j.action,
  });
  await docker.getService(before.ID).update({ _query: { version: before.Version?.Index }, _body: spec });
  const c = collector();
  await runner().handle(j, c.send);
  const report = reportOf(c);
  assert.equal(report.result, "success", report.detail);
  assert.equal(c.of("applied").length, 0);
  assert.equal(await forceUpdate(before.ID), (before.Spec.TaskTemplate?.ForceUpdate ?? 0) + 1);
});

test("a job the API says was applied only waits, even without the label", async () => {
  const before = await service("applied");
  const c = collector();
  await runner().handle(job(before.Spec.Name ?? "", { applied: true }), c.send);
  const report = reportOf(c);
  assert.equal(report.result, "success", report.detail);
  assert.equal(c.of("applied").length, 0);
  assert.equal((await inspect(before.ID)).Version?.Index, before.Version?.Index, "the spec is untouched");
});
