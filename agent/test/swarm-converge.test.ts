import assert from "node:assert/strict";
import { test } from "node:test";
import { observed, type SwarmTarget, type TaskJson, verdict } from "../src/swarm-converge.ts";
import type { ServiceJson } from "../src/swarm-spec.ts";

const OLD = "127.0.0.1:34009/bb:1@sha256:ef19c2e37764637622bf0d97bb3247598c7684dad2c0a36bfcd5ac128f0a6068";
const NEW = "127.0.0.1:34009/bb:1@sha256:c91ef6d7846c0e4d0b2f5d9b0d1b4b0a3b6ad50e8d5d1b3c7f1a0e3c9d8b7a61";
const BEFORE = "2026-12-01T03:09:29.978379971Z";
const OURS = "2026-12-01T03:10:02.102938475Z";

/** A task as GET /tasks returns it (dockerd 20.10), trimmed to what the decision reads plus its neighbours. */
function task(
  id: string,
  force: number,
  state: string,
  desired: string,
  extra: { err?: string; image?: string; node?: string } = {},
): TaskJson {
  return {
    ID: id,
    NodeID: extra.node ?? "m2xfilh25ff1ch2ze346uos4e",
    Spec: { ForceUpdate: force, ContainerSpec: { Image: extra.image ?? (force > 1 ? NEW : OLD) } },
    Status: {
      Timestamp: `2026-12-01T03:10:0${id.length % 10}.0Z`,
      State: state,
      ...(extra.err ? { Err: extra.err } : {}),
    },
    DesiredState: desired,
  };
}

function service(update: ServiceJson["UpdateStatus"], replicas: number | null = 1, image = NEW): ServiceJson {
  return {
    ID: "58n8b9qr66b3bay1y71l6est8",
    Version: { Index: 31 },
    Spec: {
      Name: "web",
      TaskTemplate: { ContainerSpec: { Image: image }, ForceUpdate: 2 },
      Mode: replicas === null ? { Global: {} } : { Replicated: { Replicas: replicas } },
    },
    ...(update === undefined ? {} : { UpdateStatus: update }),
  };
}

const redeploy: SwarmTarget = {
  id: "58n8",
  name: "web",
  kind: "redeploy",
  replicas: 1,
  forceUpdate: 2,
  since: BEFORE,
  earlier: false,
};
const completed = (startedAt: string) => ({
  State: "completed",
  StartedAt: startedAt,
  CompletedAt: startedAt,
  Message: "update completed",
});

test("a redeploy: the previous update's 'completed' is not ours", () => {
  const v = verdict(redeploy, service(completed(BEFORE)), [task("old1", 1, "running", "running")]);
  assert.equal(v.state, "waiting");
  assert.equal(v.line, "0 of 1 tasks updated to sha256:c91ef6d7846c; 1 running");
});

test("a rollout's first line counts the old tasks that still serve: none updated is not none running", () => {
  const two = { ...redeploy, replicas: 2 };
  const old = [task("old1", 1, "running", "running"), task("old2", 1, "running", "running")];
  assert.equal(
    verdict(two, service(completed(BEFORE), 2), old).line,
    "0 of 2 tasks updated to sha256:c91ef6d7846c; 2 running",
  );
  const updating = { State: "updating", StartedAt: OURS, Message: "update in progress" };
  const midway = [task("new1", 2, "running", "running"), task("old1", 1, "running", "shutdown"), old[1] as TaskJson];
  assert.equal(
    verdict(two, service(updating, 2), midway).line,
    "1 of 2 tasks updated to sha256:c91ef6d7846c; 2 running",
  );
  const done = [task("new1", 2, "running", "running"), task("new2", 2, "running", "running")];
  assert.deepEqual(verdict(two, service(completed(OURS), 2), done), {
    state: "converged",
    line: "update completed: 2 of 2 tasks on sha256:c91ef6d7846c",
    detail: "web redeployed: 2 tasks running sha256:c91ef6d7846c",
  });
});

test("a redeploy converges when our update completed and only our tasks are meant to run", () => {
  const updating = { State: "updating", StartedAt: OURS, Message: "update in progress" };
  const midway = [task("new1", 2, "running", "running"), task("old1", 1, "running", "running")];
  assert.deepEqual(verdict(redeploy, service(updating), midway), {
    state: "waiting",
    line: "1 of 1 tasks updated to sha256:c91ef6d7846c; 2 running",
    detail: "",
  });
  // Swarm may say completed a moment before the old task is told to stop: still waiting.
  assert.equal(verdict(redeploy, service(completed(OURS)), midway).state, "waiting");
  const done = [task("new1", 2, "running", "running"), task("old1", 1, "running", "shutdown")];
  assert.deepEqual(verdict(redeploy, service(completed(OURS)), done), {
    state: "converged",
    line: "update completed: 1 of 1 tasks on sha256:c91ef6d7846c",
    detail: "web redeployed: 1 tasks running sha256:c91ef6d7846c",
  });
  const two = { ...redeploy, replicas: 2 };
  assert.equal(verdict(two, service(completed(OURS), 2), done).state, "waiting", "1 of 2 is not converged");
});

test("a redeploy fails when Swarm rolls back or pauses ours, with the failed task's error", () => {
  const failedTask = task("new1", 2, "failed", "shutdown", { err: "task: non-zero exit (1)" });
  const back = [failedTask, task("rb1", 1, "running", "running", { image: OLD })];
  const rolledBack = { State: "rollback_completed", StartedAt: OURS, Message: "rollback completed" };
  assert.deepEqual(verdict(redeploy, service(rolledBack, 1, OLD), back), {
    state: "failed",
    line: "update rolled back: 0 of 1 tasks updated to sha256:c91ef6d7846c; 1 running",
    detail: "the update was rolled back: task: non-zero exit (1)",
  });
  const paused = {
    State: "paused",
    StartedAt: OURS,
    Message: "update paused due to failure or early termination of task new1",
  };
  assert.deepEqual(verdict(redeploy, service(paused), back), {
    state: "failed",
    line: "update paused: 0 of 1 tasks updated to sha256:c91ef6d7846c; 1 running",
    detail: "the update was paused: task: non-zero exit (1)",
  });
  const rbPaused = { State: "rollback_paused", StartedAt: OURS, Message: "rollback paused" };
  assert.equal(
    verdict(redeploy, service(rbPaused), [task("rb1", 1, "running", "running")]).detail,
    "the update failed and its rollback was paused: rollback paused",
  );
  // An earlier update's rollback is history: not a failure of ours.
  const oldRollback = { State: "rollback_completed", StartedAt: BEFORE, Message: "rollback completed" };
  assert.equal(verdict(redeploy, service(oldRollback), [task("old1", 1, "running", "running")]).state, "waiting");
  // While waiting, a failed task of ours is what the deadline's report will name.
  const updating = { State: "updating", StartedAt: OURS, Message: "update in progress" };
  assert.equal(
    verdict(redeploy, service(updating), back).detail,
    "a task of the update failed: task: non-zero exit (1)",
  );
});

test("a rollback under way or paused is said in words, with the tasks of the update and all running", () => {
  const failedTask = task("new1", 2, "failed", "shutdown", { err: "task: non-zero exit (1)" });
  const back = [failedTask, task("rb1", 1, "running", "running", { image: OLD })];
  const started = { State: "rollback_started", StartedAt: OURS, Message: "update rolled back due to failure" };
  assert.deepEqual(verdict(redeploy, service(started, 1, OLD), back), {
    state: "waiting",
    line: "update rolling back: 0 of 1 tasks updated to sha256:c91ef6d7846c; 1 running",
    detail: "a task of the update failed: task: non-zero exit (1)",
  });
  const rbPaused = { State: "rollback_paused", StartedAt: OURS, Message: "rollback paused" };
  assert.equal(
    verdict(redeploy, service(rbPaused, 1, OLD), back).line,
    "update rollback paused: 0 of 1 tasks updated to sha256:c91ef6d7846c; 1 running",
  );
});

test("waiting on a change applied earlier: the update under way counts, and none under way is settled", () => {
  const earlier = { ...redeploy, since: null, earlier: true };
  const tasks = [task("new1", 2, "running", "running")];
  assert.equal(verdict(earlier, service(completed(BEFORE)), tasks).state, "converged");
  assert.equal(verdict(earlier, service(undefined), tasks).state, "converged");
  assert.equal(verdict(earlier, service({ State: "updating", StartedAt: OURS }), tasks).state, "waiting");
});

test("a service with no task to run has nothing to wait for: Swarm starts no update for it", () => {
  const zero = { ...redeploy, replicas: 0 };
  assert.equal(
    verdict(zero, service(completed(BEFORE), 0), [task("old1", 1, "shutdown", "shutdown")]).state,
    "converged",
  );
  assert.equal(verdict(zero, service(null, 0), []).state, "converged");
});

test("a global service expects one task per node meant to run one", () => {
  const global = { ...redeploy, replicas: null };
  const nodes = [
    task("a", 2, "running", "running", { node: "n1" }),
    task("b", 2, "running", "running", { node: "n2" }),
  ];
  assert.equal(verdict(global, service(completed(OURS), null), nodes).state, "converged");
  const oneLeft = [nodes[0] as TaskJson, task("c", 1, "running", "running", { node: "n2" })];
  assert.equal(
    verdict(global, service(completed(OURS), null), oneLeft).line,
    "update completed: 1 of 2 tasks on sha256:c91ef6d7846c; 2 running",
  );
});

test("a scale converges when exactly the replicas run and the others have stopped", () => {
  const scale: SwarmTarget = { ...redeploy, kind: "scale", replicas: 3 };
  const starting = [
    task("a", 1, "running", "running"),
    task("b", 1, "starting", "running"),
    task("c", 1, "preparing", "running"),
  ];
  assert.deepEqual(verdict(scale, service(null, 3), starting), {
    state: "waiting",
    line: "1 of 3 tasks running",
    detail: "",
  });
  const up = starting.map((t) => ({ ...t, Status: { ...t.Status, State: "running" } }));
  assert.equal(verdict(scale, service(null, 3), up).state, "converged");
  const down: SwarmTarget = { ...scale, replicas: 1 };
  const stopping = [
    task("a", 1, "running", "running"),
    task("b", 1, "running", "shutdown"),
    task("c", 1, "shutdown", "shutdown"),
  ];
  assert.deepEqual(verdict(down, service(null), stopping), {
    state: "waiting",
    line: "1 of 1 tasks running, 1 stopping",
    detail: "",
  });
  const stopped = [task("a", 1, "running", "running"), task("b", 1, "shutdown", "shutdown")];
  assert.deepEqual(verdict(down, service(null), stopped), {
    state: "converged",
    line: "1 of 1 tasks running",
    detail: "web scaled to 1",
  });
});

test("the report's numbers: replicas asked, tasks meant to run, tasks running, the pinned image", () => {
  const tasks = [
    task("a", 2, "running", "running"),
    task("b", 2, "starting", "running"),
    task("c", 1, "running", "shutdown"),
  ];
  assert.deepEqual(observed(service(null, 2), tasks), { replicas: 2, desired: 2, running: 1, image: NEW });
  assert.deepEqual(observed(service(null, null), tasks), { replicas: null, desired: 2, running: 1, image: NEW });
});
