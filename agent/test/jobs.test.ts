import assert from "node:assert/strict";
import { test } from "node:test";
import { changeOf } from "../src/jobs.ts";
import { parseMessage } from "../src/link.ts";
import type { Service } from "../src/orchestrator.ts";
import type { Job } from "../src/protocol.ts";

const JOB: Job = {
  action: "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
  attempt: 1,
  kind: "redeploy",
  service: "web",
  scale_by: null,
  replicas: null,
  max_replicas: 4,
  body: "built abc",
  converge_seconds: 120,
  applied: false,
};
const WEB: Service = { id: "58n8", name: "web", labels: {}, mode: "replicated", replicas: 2, appliedAction: null };

test("a job's change: a redeploy carries the body; a scale-up adds to the replicas within the maximum", () => {
  assert.deepEqual(changeOf(JOB, WEB), { kind: "redeploy", body: "built abc" });
  assert.deepEqual(changeOf({ ...JOB, kind: "scaleup", scale_by: 2 }, WEB), { kind: "scale", replicas: 4 });
  assert.equal(
    changeOf({ ...JOB, kind: "scaleup", scale_by: 3 }, WEB),
    "scaling 'web' up by 3 would make 5 replicas, more than its maximum of 4",
  );
  assert.deepEqual(changeOf({ ...JOB, kind: "scale", replicas: 0 }, WEB), { kind: "scale", replicas: 0 });
  assert.match(String(changeOf({ ...JOB, kind: "scale", replicas: null }, WEB)), /needs a number of replicas/);
  assert.match(String(changeOf({ ...JOB, kind: "scaleup", scale_by: 0 }, WEB)), /positive number/);
});

test("a global service is redeployed but not scaled", () => {
  const global: Service = { ...WEB, mode: "global", replicas: null };
  assert.deepEqual(changeOf(JOB, global), { kind: "redeploy", body: "built abc" });
  assert.equal(
    changeOf({ ...JOB, kind: "scale", replicas: 3 }, global),
    "service 'web' is global (one task per node): it cannot be scaled",
  );
});

test("the service's messages: a job is taken only whole; anything unknown is ignored", () => {
  assert.deepEqual(parseMessage('{"type":"welcome"}'), { type: "welcome" });
  assert.deepEqual(parseMessage('{"type":"pong"}'), { type: "pong" });
  assert.deepEqual(parseMessage('{"type":"error","error":"bad hello"}'), { type: "error", error: "bad hello" });
  assert.deepEqual(parseMessage(JSON.stringify({ type: "job", job: JOB })), { type: "job", job: JOB });
  assert.equal(parseMessage(JSON.stringify({ type: "job", job: { ...JOB, kind: "exec" } })), null);
  assert.equal(parseMessage(JSON.stringify({ type: "job", job: { ...JOB, applied: undefined } })), null);
  assert.equal(parseMessage(JSON.stringify({ type: "run", command: "rm -rf /" })), null);
  assert.equal(parseMessage("not json"), null);
  assert.equal(parseMessage("null"), null);
});
