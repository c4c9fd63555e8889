// End-to-end test of the Docker Cloud target: two Workers under `npm run dev`
// (each on its own loopback port, inspector port and fresh persistence). The
// "local" one holds a service S whose target is the "remote" one's service R;
// S's REDEPLOY and SCALEUP triggers, called with no credentials, must redeploy
// R and scale it up through the remote Docker Cloud service API.
//
// Run: npm run test:e2e   (node --test 'e2e/*.test.mjs', Node 22 from node_modules/.bin)
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe } from "node:test";
import {
  actionLogs,
  adminToken,
  apiRequest,
  basicAuth,
  createWorker,
  DELIVERY_TIMEOUT_MS,
  failureTracker,
  fatal,
  HOST,
  REQUEST_TIMEOUT_MS,
  UUID4,
  waitFor,
} from "./helpers.mjs";

const remote = createWorker({ inspectorPort: true, persistPrefix: "dockercloud-e2e-remote-" });
const local = createWorker({ inspectorPort: true, persistPrefix: "dockercloud-e2e-local-" });

const REMOTE_ACTION_IN_LOG = /remote action "(\/api\/audit\/v1\/(?:[a-z0-9]+\/)?action\/[^/\s"]+\/)"/g;

const state = {
  adminToken: "",
  remoteUser: "",
  remoteKey: "",
  remoteBasic: "",
  localUser: "",
  localKey: "",
  localBasic: "",
  /** R, on the remote instance */
  remoteService: undefined,
  /** S, on the local instance */
  service: undefined,
  triggers: {},
  /** operation -> { uri, uuid } of the local actions */
  actions: {},
  /** { redeploy, scale, objects } of the remote audit log */
  remoteActions: undefined,
  /** operation -> the local action once it succeeded */
  finished: {},
};

/** A user and an API key made through the admin API of `worker`. */
async function makeUser(worker) {
  const username = `e2e${randomBytes(5).toString("hex")}`;
  const admin = `Bearer ${state.adminToken}`;
  const user = await apiRequest(worker.base, "POST", "/api/admin/v1/user/", {
    authorization: admin,
    body: { username },
  });
  assert.equal(user.status, 201, user.text);
  assert.equal(user.json.username, username);
  const key = await apiRequest(worker.base, "POST", `/api/admin/v1/user/${username}/apikey/`, {
    authorization: admin,
    body: { label: "e2e" },
  });
  assert.equal(key.status, 201, key.text);
  assert.equal(typeof key.json.key, "string", key.text);
  assert.ok(key.json.key.length > 0);
  return { username, key: key.json.key, basic: basicAuth(username, key.json.key) };
}

/** Asserts that an answer about S shows its target but never the remote API key. */
function assertNoApikey(res, what) {
  assert.ok(state.remoteKey, "needs the remote API key");
  assert.ok(!res.text.includes(state.remoteKey), `${what} shows the API key: ${res.text}`);
  const services = res.json?.objects ?? [res.json];
  for (const svc of services) {
    if (svc?.target) assert.equal("apikey" in svc.target, false, `${what}: target.apikey present`);
  }
}

/** Every action of a namespace on `worker`, oldest first. */
async function allActions(worker, authorization) {
  const res = await apiRequest(worker.base, "GET", "/api/audit/v1/action/?limit=100", { authorization });
  if (res.status !== 200) throw fatal(`GET /api/audit/v1/action/: ${res.status} ${res.text}`);
  return [...res.json.objects].reverse();
}

const FINISHED = ["Success", "Failed", "Canceled"];

// ---------------------------------------------------------------- the tests

const run = failureTracker();
const step = run.step;

describe("Docker Cloud target end to end (two wrangler dev instances)", () => {
  before(async () => {
    try {
      // allSettled: when one start fails, the other is still awaited, then both are stopped in `after`.
      const started = await Promise.allSettled([remote.start(), local.start()]);
      for (const s of started) if (s.status === "rejected") throw s.reason;
      state.adminToken = adminToken();
    } catch (err) {
      run.failed = true;
      throw err;
    }
  });

  after(async () => {
    await Promise.allSettled([remote.stop(), local.stop()]);
    if (run.failed) {
      console.error(`--- last wrangler output (remote) ---\n${remote.outputTail(60)}`);
      console.error(`--- last wrangler output (local) ---\n${local.outputTail(60)}`);
    }
  });

  step("the two instances listen on distinct loopback ports", () => {
    const ports = [remote.port, remote.inspectorPort, local.port, local.inspectorPort];
    assert.equal(new Set(ports).size, 4, `ports: ${ports.join(", ")}`);
    assert.ok(remote.base.startsWith(`http://${HOST}:`) && local.base.startsWith(`http://${HOST}:`));
  });

  step("remote: a user, an API key and a service R with target_num_containers 1", async () => {
    const user = await makeUser(remote);
    state.remoteUser = user.username;
    state.remoteKey = user.key;
    state.remoteBasic = user.basic;
    const created = await apiRequest(remote.base, "POST", "/api/app/v1/service/", {
      authorization: state.remoteBasic,
      body: { image: "nginx:1.27", name: "e2e-remote", target_num_containers: 1 },
    });
    assert.equal(created.status, 201, created.text);
    const svc = created.json;
    assert.match(svc.uuid, UUID4);
    assert.equal(svc.resource_uri, `/api/app/v1/${state.remoteUser}/service/${svc.uuid}/`);
    assert.equal(svc.target_num_containers, 1);
    assert.equal(svc.deployed_datetime, null, "R has not been deployed yet");
    state.remoteService = svc;
  });

  step("local: a service S targets R with the remote credentials; the API key is never shown", async () => {
    assert.ok(state.remoteService, "needs R");
    const user = await makeUser(local);
    state.localUser = user.username;
    state.localKey = user.key;
    state.localBasic = user.basic;
    const target = {
      type: "dockercloud",
      url: remote.base,
      username: state.remoteUser,
      apikey: state.remoteKey,
      namespace: state.remoteUser,
      service_uuid: state.remoteService.uuid,
    };
    const created = await apiRequest(local.base, "POST", "/api/app/v1/service/", {
      authorization: state.localBasic,
      body: { image: "nginx:1.27", name: "e2e-local", target },
    });
    assert.equal(created.status, 201, created.text);
    assertNoApikey(created, "the create answer");
    const svc = created.json;
    assert.match(svc.uuid, UUID4);
    assert.notEqual(svc.uuid, state.remoteService.uuid);
    assert.deepEqual(svc.target, {
      type: "dockercloud",
      url: new URL(remote.base).toString(),
      username: state.remoteUser,
      namespace: state.remoteUser,
      service_uuid: state.remoteService.uuid,
    });
    state.service = svc;

    for (const path of [svc.resource_uri, `/api/app/v1/service/${svc.uuid}/`]) {
      const res = await apiRequest(local.base, "GET", path, { authorization: state.localBasic });
      assert.equal(res.status, 200, `GET ${path}: ${res.text}`);
      assert.equal(res.json.uuid, svc.uuid);
      assert.deepEqual(res.json.target, svc.target);
      assertNoApikey(res, `GET ${path}`);
    }
    const list = await apiRequest(local.base, "GET", "/api/app/v1/service/", { authorization: state.localBasic });
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json.objects?.length, 1, list.text);
    assertNoApikey(list, "GET /api/app/v1/service/");
  });

  step("local: REDEPLOY and SCALEUP triggers are created on S", async () => {
    assert.ok(state.service, "needs S");
    for (const operation of ["REDEPLOY", "SCALEUP"]) {
      const res = await apiRequest(local.base, "POST", `${state.service.resource_uri}trigger/`, {
        authorization: state.localBasic,
        body: { name: `e2e-${operation.toLowerCase()}`, operation },
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.operation, operation);
      assert.match(res.json.url, /^\/api\/app\/v1\/.+\/trigger\/[^/]+\/call\/$/, "url is root-relative");
      state.triggers[operation] = res.json;
    }
  });

  step("local: both triggers are called with no credentials: 202 and X-DockerCloud-Action-URI", async () => {
    assert.equal(Object.keys(state.triggers).length, 2, "needs both triggers");
    const calls = [
      ["REDEPLOY", state.triggers.REDEPLOY.url],
      ["SCALEUP", `${state.triggers.SCALEUP.url}2/`],
    ];
    for (const [operation, url] of calls) {
      const res = await fetch(`${local.base}${url}`, {
        method: "POST",
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      assert.equal(res.status, 202, `${operation} call: ${text}`);
      const uri = res.headers.get("x-dockercloud-action-uri");
      assert.match(uri ?? "", /^\/api\/audit\/v1\/(?:[a-z0-9]+\/)?action\/[^/]+\/$/, `${operation}: ${uri}`);
      state.actions[operation] = { uri, uuid: uri.split("/").at(-2) };
    }
  });

  step("local: both actions read Success", async () => {
    assert.equal(Object.keys(state.actions).length, 2, "needs both calls");
    const last = {};
    await waitFor(
      'both local actions to read state "Success"',
      async () => {
        for (const [op, { uri }] of Object.entries(state.actions)) {
          const res = await apiRequest(local.base, "GET", uri, { authorization: state.localBasic });
          if (res.status !== 200) throw fatal(`GET ${uri}: ${res.status} ${res.text}`);
          last[op] = res.json;
          if (res.json.state === "Failed" || res.json.state === "Canceled") {
            const logs = await actionLogs(local.base, state.localBasic, uri);
            throw fatal(`${op} action ended ${res.json.state}: ${logs}`);
          }
        }
        return Object.values(last).every((a) => a.state === "Success");
      },
      { timeoutMs: DELIVERY_TIMEOUT_MS, describe: () => JSON.stringify(last) },
    );
    state.finished = last;
    assert.equal(last.REDEPLOY.action, "Service Redeploy");
    assert.equal(last.SCALEUP.action, "Service Scale");
  });

  step("remote: the audit log lists a Service Redeploy and a Service Scale in Success", async () => {
    assert.equal(Object.keys(state.finished).length, 2, "needs both local actions finished");
    let last;
    const found = await waitFor(
      "the remote audit log to show both actions in Success",
      async () => {
        const res = await apiRequest(remote.base, "GET", "/api/audit/v1/action/", {
          authorization: state.remoteBasic,
        });
        if (res.status !== 200) throw fatal(`GET /api/audit/v1/action/: ${res.status} ${res.text}`);
        last = res.json;
        const objects = res.json?.objects ?? [];
        for (const a of objects) {
          if (a.state === "Failed" || a.state === "Canceled")
            throw fatal(`remote action ${a.state}: ${JSON.stringify(a)}`);
        }
        const ok = (label) =>
          objects.find(
            (a) => a.action === label && a.state === "Success" && a.object === state.remoteService.resource_uri,
          );
        const redeploy = ok("Service Redeploy");
        const scale = ok("Service Scale");
        return redeploy && scale ? { redeploy, scale, objects } : false;
      },
      { timeoutMs: DELIVERY_TIMEOUT_MS, describe: () => JSON.stringify(last) },
    );
    state.remoteActions = found;
    assert.equal(found.redeploy.method, "POST");
    assert.match(found.redeploy.path, /\/service\/[^/]+\/redeploy\/$/);
    assert.equal(found.scale.method, "POST");
    assert.match(found.scale.path, /\/service\/[^/]+\/scale\/$/);
  });

  step("remote: R has target_num_containers 3 and a deployed_datetime", async () => {
    assert.ok(state.remoteActions, "needs the remote actions");
    const res = await apiRequest(remote.base, "GET", state.remoteService.resource_uri, {
      authorization: state.remoteBasic,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.target_num_containers, 3, res.text);
    assert.equal(typeof res.json.deployed_datetime, "string", res.text);
    assert.ok(!Number.isNaN(Date.parse(res.json.deployed_datetime)), res.json.deployed_datetime);
  });

  step("local: each action's logs hold the URI of the remote action it caused", async (t) => {
    assert.ok(state.remoteActions, "needs the remote actions");
    const byUri = new Map(state.remoteActions.objects.map((a) => [a.resource_uri, a]));
    const label = { REDEPLOY: "Service Redeploy", SCALEUP: "Service Scale" };
    for (const op of ["REDEPLOY", "SCALEUP"]) {
      const logs = await actionLogs(local.base, state.localBasic, state.finished[op].resource_uri);
      t.diagnostic(`${op} logs: ${logs}`);
      const inLog = [...logs.matchAll(REMOTE_ACTION_IN_LOG)].map((m) => m[1]);
      assert.ok(inLog.length > 0, `${op}: no remote action URI in the logs:\n${logs}`);
      for (const uri of inLog) {
        const remoteAction = byUri.get(uri);
        assert.ok(remoteAction, `${op}: ${uri} is not in the remote audit log`);
        assert.equal(remoteAction.action, label[op], `${op}: ${uri}`);
        const res = await apiRequest(remote.base, "GET", uri, { authorization: state.remoteBasic });
        assert.equal(res.status, 200, `GET ${uri} on the remote: ${res.text}`);
        assert.equal(res.json.state, "Success", `${op}: ${uri}`);
      }
    }
  });

  step(
    "local: S's target set to S itself on this instance (by 127.0.0.1 or localhost) is refused with 400",
    async () => {
      assert.ok(state.service, "needs S");
      for (const url of [local.base, `http://localhost:${local.port}/`]) {
        const target = { type: "dockercloud", url, username: state.localUser, apikey: state.localKey };
        const res = await apiRequest(local.base, "PATCH", state.service.resource_uri, {
          authorization: state.localBasic,
          body: { target },
        });
        assert.equal(res.status, 400, `${url}: ${res.text}`);
        assert.match(res.json.error, /this service itself/);
      }
      const res = await apiRequest(local.base, "GET", state.service.resource_uri, { authorization: state.localBasic });
      assert.equal(res.json.target.service_uuid, state.remoteService.uuid, "S still targets R");
    },
  );

  step(
    "two instances pointing at each other: one redeploy/ of S stops after 6 actions, the last Failed as a loop",
    async (t) => {
      assert.ok(state.remoteActions, "needs the earlier operations finished");
      // R now targets S: S → R → S → ... across the two instances.
      const target = {
        type: "dockercloud",
        url: local.base,
        username: state.localUser,
        apikey: state.localKey,
        service_uuid: state.service.uuid,
      };
      const patched = await apiRequest(remote.base, "PATCH", state.remoteService.resource_uri, {
        authorization: state.remoteBasic,
        body: { target },
      });
      assert.equal(patched.status, 200, patched.text);
      const before = {
        local: (await allActions(local, state.localBasic)).length,
        remote: (await allActions(remote, state.remoteBasic)).length,
      };
      const res = await apiRequest(local.base, "POST", `${state.service.resource_uri}redeploy/`, {
        authorization: state.localBasic,
      });
      assert.equal(res.status, 202, res.text);

      // Hops 0, 2, 4 on S (here) and 1, 3, 5 on R (there); R's hop-5 action sends hop 6, refused.
      let last;
      const [mine, theirs] = await waitFor(
        "three new actions on each instance, all finished",
        async () => {
          const m = (await allActions(local, state.localBasic)).slice(before.local);
          const r = (await allActions(remote, state.remoteBasic)).slice(before.remote);
          last = { m, r };
          const all = [...m, ...r];
          return m.length >= 3 && r.length >= 3 && all.every((a) => FINISHED.includes(a.state)) ? [m, r] : false;
        },
        { timeoutMs: DELIVERY_TIMEOUT_MS, describe: () => JSON.stringify(last) },
      );
      // Room for anything still going round to show up.
      await new Promise((r) => setTimeout(r, 3_000));
      assert.equal((await allActions(local, state.localBasic)).length, before.local + 3);
      assert.equal((await allActions(remote, state.remoteBasic)).length, before.remote + 3);
      assert.deepEqual(
        mine.map((a) => a.state),
        ["Success", "Success", "Success"],
      );
      assert.deepEqual(
        theirs.map((a) => a.state),
        ["Success", "Success", "Failed"],
      );
      const logs = await actionLogs(remote.base, state.remoteBasic, theirs[2].resource_uri);
      t.diagnostic(`the last action's logs: ${logs}`);
      assert.match(logs, /attempt 1: redeploy: target answered 409: .*a loop of Docker Cloud targets was detected/);
      assert.equal(logs.split("\n").filter((l) => /attempt \d+:/.test(l)).length, 1, logs);
    },
  );
});
