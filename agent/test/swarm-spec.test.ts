import assert from "node:assert/strict";
import { test } from "node:test";
import {
  engineMessage,
  isVersionConflict,
  parseImage,
  pinImage,
  redeploySpec,
  replicasOf,
  type ServiceSpecJson,
  scaleSpec,
  withEnv,
} from "../src/swarm-spec.ts";

const DIGEST = "sha256:ef19c2e37764637622bf0d97bb3247598c7684dad2c0a36bfcd5ac128f0a6068";
const NEW = "sha256:c91ef6d7846c0e4d0b2f5d9b0d1b4b0a3b6ad50e8d5d1b3c7f1a0e3c9d8b7a61";

/** A service spec as dockerd 20.10 returns it (`docker service create --init --stop-grace-period 1s ...`). */
const SPEC: ServiceSpecJson = {
  Name: "web",
  Labels: { deploy: "auto" },
  TaskTemplate: {
    ContainerSpec: {
      Image: `127.0.0.1:34009/bb:1@${DIGEST}`,
      Args: ["sleep", "3600"],
      Env: ["A=1", "DOCKERCLOUD_TRIGGER_BODY=old", "B=2"],
      Init: true,
      StopGracePeriod: 1000000000,
      DNSConfig: {},
      Isolation: "default",
    },
    Resources: { Limits: {}, Reservations: {} },
    RestartPolicy: { Condition: "any", Delay: 5000000000, MaxAttempts: 0 },
    Placement: { Platforms: [{ Architecture: "amd64", OS: "linux" }] },
    ForceUpdate: 1,
    Runtime: "container",
  },
  Mode: { Replicated: { Replicas: 2 } },
  UpdateConfig: {
    Parallelism: 1,
    FailureAction: "pause",
    Monitor: 200000000,
    MaxFailureRatio: 0,
    Order: "start-first",
  },
  EndpointSpec: { Mode: "vip" },
};

test("an image reference: its digest stripped, its tag told from a registry's port", () => {
  assert.deepEqual(parseImage(`127.0.0.1:34009/bb:1@${DIGEST}`), {
    name: "127.0.0.1:34009/bb:1",
    tagged: true,
    digest: DIGEST,
  });
  assert.deepEqual(parseImage("127.0.0.1:34009/bb"), { name: "127.0.0.1:34009/bb", tagged: false, digest: null });
  assert.deepEqual(parseImage(`busybox@${DIGEST}`), { name: "busybox", tagged: false, digest: DIGEST });
  assert.deepEqual(parseImage("nginx:1.27-alpine"), { name: "nginx:1.27-alpine", tagged: true, digest: null });
  assert.equal(parseImage(`registry.example.com:5000/team/app:v2@${DIGEST}`).tagged, true);
  assert.equal(parseImage(`registry.example.com:5000/team/app@${DIGEST}`).tagged, false);
  assert.equal(pinImage("127.0.0.1:34009/bb:1", NEW), `127.0.0.1:34009/bb:1@${NEW}`);
});

test("the body's variable replaces an entry of its name in place; the others stay", () => {
  assert.deepEqual(withEnv(["A=1", "DOCKERCLOUD_TRIGGER_BODY=old", "B=2"], "DOCKERCLOUD_TRIGGER_BODY", "new"), [
    "A=1",
    "DOCKERCLOUD_TRIGGER_BODY=new",
    "B=2",
  ]);
  assert.deepEqual(withEnv(undefined, "X", "built abc"), ["X=built abc"]);
  assert.deepEqual(withEnv(["XY=1", "X"], "X", "a=b"), ["XY=1", "X=a=b"], "a bare name counts; a longer name does not");
  assert.deepEqual(withEnv(["X=1", "A=2", "X=3"], "X", ""), ["X=", "A=2"], "duplicates go");
});

test("a redeploy's spec: ForceUpdate + 1, the image re-pinned, the body set, the action recorded; all else as read", () => {
  const spec = redeploySpec(SPEC, { image: `127.0.0.1:34009/bb:1@${NEW}`, body: "built abc", action: "a-1" });
  assert.deepEqual(spec, {
    ...SPEC,
    Labels: { deploy: "auto", "io.dockercloud.action": "a-1" },
    TaskTemplate: {
      ...SPEC.TaskTemplate,
      ForceUpdate: 2,
      ContainerSpec: {
        ...SPEC.TaskTemplate?.ContainerSpec,
        Image: `127.0.0.1:34009/bb:1@${NEW}`,
        Env: ["A=1", "DOCKERCLOUD_TRIGGER_BODY=built abc", "B=2"],
      },
    },
  });
  assert.equal(SPEC.TaskTemplate?.ForceUpdate, 1, "the spec read is not changed");
  const noBody = redeploySpec(SPEC, { image: "x", body: null, action: "a-2" });
  assert.deepEqual(noBody.TaskTemplate?.ContainerSpec?.Env, SPEC.TaskTemplate?.ContainerSpec?.Env);
  const bare = redeploySpec(
    { Name: "t", TaskTemplate: { ContainerSpec: { Image: "i" } } },
    { image: "i", body: "", action: "b" },
  );
  assert.equal(bare.TaskTemplate?.ForceUpdate, 1, "a spec without ForceUpdate has 0");
  assert.deepEqual(bare.TaskTemplate?.ContainerSpec?.Env, ["DOCKERCLOUD_TRIGGER_BODY="]);
});

test("a scale's spec: the replicas and the record change; the tasks' template does not", () => {
  const spec = scaleSpec(SPEC, { replicas: 5, action: "a-3" });
  assert.deepEqual(spec, {
    ...SPEC,
    Labels: { deploy: "auto", "io.dockercloud.action": "a-3" },
    Mode: { Replicated: { Replicas: 5 } },
  });
  assert.equal(spec.TaskTemplate, SPEC.TaskTemplate);
  assert.equal(replicasOf(SPEC), 2);
  assert.equal(replicasOf({ Mode: { Global: {} } }), null);
});

test("a version conflict is told from other engine errors, as dockerode raises them", () => {
  const conflict = {
    statusCode: 500,
    json: { message: "rpc error: code = Unknown desc = update out of sequence" },
    reason: "server error",
    message: "(HTTP code 500) server error - rpc error: code = Unknown desc = update out of sequence ",
  };
  assert.equal(isVersionConflict(conflict), true);
  assert.equal(isVersionConflict({ statusCode: 409, json: { message: "version conflict" } }), true);
  const registryDown = {
    statusCode: 500,
    json: { message: 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused' },
    message:
      '(HTTP code 500) server error - Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused ',
  };
  assert.equal(isVersionConflict(registryDown), false);
  assert.equal(isVersionConflict(new Error("socket hang up")), false);
  assert.equal(
    engineMessage(registryDown),
    'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused',
  );
  assert.equal(
    engineMessage({ statusCode: 404, message: "(HTTP code 404) unexpected - manifest unknown: manifest unknown " }),
    "manifest unknown: manifest unknown",
  );
  assert.equal(engineMessage(new Error("connect ENOENT /tmp/x.sock")), "connect ENOENT /tmp/x.sock");
});
