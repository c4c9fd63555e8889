// End-to-end test of the Worker outside its runtime: `npm run dev` (wrangler dev
// on loopback, fresh persistence), a real Standard Webhooks receiver in Node,
// and requests sent over real HTTP exactly as the Docker Cloud clients send them.
//
// Run: npm run test:e2e   (node --test 'e2e/*.test.mjs', Node 22 from node_modules/.bin)
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { after, before, describe } from "node:test";
import { Webhook } from "standardwebhooks";
import {
  actionLogs,
  adminToken,
  apiRequest,
  createWorker,
  DELIVERY_TIMEOUT_MS,
  failureTracker,
  HOST,
  REQUEST_TIMEOUT_MS,
  rawRequest,
  UUID4,
  waitFor,
} from "./helpers.mjs";

// ---------------------------------------------------------------- the Worker

const worker = createWorker();
const outputTail = worker.outputTail;
const startWorker = worker.start;
const stopWorker = worker.stop;

// ---------------------------------------------------------------- the webhook receiver

const receiver = {
  /** @type {http.Server | undefined} */
  server: undefined,
  port: 0,
  secret: "",
  /** webhook-id -> { count, payload } of verified deliveries */
  verified: new Map(),
  rejected: 0,
  rejections: [],
};

function startReceiver() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      if (req.method !== "POST" || req.url !== "/hook" || !receiver.secret) {
        res.writeHead(404).end("not here");
        return;
      }
      let payload;
      try {
        payload = new Webhook(receiver.secret).verify(raw, req.headers);
      } catch (err) {
        receiver.rejected++;
        receiver.rejections.push(err.message);
        res.writeHead(401, { "content-type": "text/plain" }).end(`bad signature: ${err.message}`);
        return;
      }
      const id = req.headers["webhook-id"];
      const seen = receiver.verified.get(id);
      receiver.verified.set(id, { count: (seen?.count ?? 0) + 1, payload });
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  receiver.server = server;
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, HOST, () => {
      receiver.port = server.address().port;
      resolve();
    });
  });
}

function stopReceiver() {
  if (!receiver.server) return Promise.resolve();
  receiver.server.closeAllConnections?.();
  return new Promise((resolve) => receiver.server.close(() => resolve()));
}

// ---------------------------------------------------------------- the API client

/** JSON over fetch, bounded; `auth` is "admin", "user" or none. */
function api(method, path, { body, auth } = {}) {
  const authorization = auth === "admin" ? `Bearer ${state.adminToken}` : auth === "user" ? state.basic : undefined;
  return apiRequest(worker.base, method, path, { body, authorization });
}

const state = {
  adminToken: "",
  username: "",
  basic: "",
  service: undefined,
  triggers: {},
  actions: {},
};

// ---------------------------------------------------------------- the tests

const run = failureTracker();
const step = run.step;

describe("service triggers end to end (wrangler dev + real webhook receiver)", () => {
  before(async () => {
    try {
      await Promise.all([startWorker(), startReceiver()]);
      state.adminToken = adminToken();
    } catch (err) {
      run.failed = true;
      throw err;
    }
  });

  after(async () => {
    await Promise.allSettled([stopWorker(), stopReceiver()]);
    if (run.failed) console.error(`--- last wrangler output ---\n${outputTail(80)}`);
  });

  step("the receiver rejects a badly signed delivery with 401", async () => {
    receiver.secret = `whsec_${randomBytes(32).toString("base64")}`;
    const body = JSON.stringify({ type: "forged" });
    const res = await rawRequest(receiver.port, {
      method: "POST",
      path: "/hook",
      headers: {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "webhook-id": "msg_forged",
        "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
        "webhook-signature": `v1,${randomBytes(32).toString("base64")}`,
      },
      body,
    });
    assert.equal(res.status, 401);
    assert.equal(receiver.rejected, 1);
    assert.equal(receiver.verified.size, 0);
    receiver.secret = "";
    receiver.rejected = 0;
    receiver.rejections.length = 0;
  });

  step("the admin API creates a user and an API key", async () => {
    state.username = `e2e${randomBytes(5).toString("hex")}`;
    const user = await api("POST", "/api/admin/v1/user/", { auth: "admin", body: { username: state.username } });
    assert.equal(user.status, 201, user.text);
    assert.equal(user.json.username, state.username);

    const key = await api("POST", `/api/admin/v1/user/${state.username}/apikey/`, {
      auth: "admin",
      body: { label: "e2e" },
    });
    assert.equal(key.status, 201, key.text);
    assert.equal(typeof key.json.key, "string", key.text);
    assert.ok(key.json.key.length > 0);
    state.basic = `Basic ${Buffer.from(`${state.username}:${key.json.key}`).toString("base64")}`;
  });

  step("a service with a webhook target is created; its whsec_ secret is shown once", async () => {
    assert.ok(state.basic, "needs the API key of the previous step");
    const created = await api("POST", "/api/app/v1/service/", {
      auth: "user",
      body: {
        image: "nginx:1.27",
        name: "e2e-web",
        target: { type: "webhook", url: `http://${HOST}:${receiver.port}/hook` },
      },
    });
    assert.equal(created.status, 201, created.text);
    const svc = created.json;
    assert.match(svc.uuid, UUID4);
    assert.match(svc.resource_uri, /^\/api\/app\/v1\/.+\/$/);
    assert.equal(svc.target?.type, "webhook");
    assert.equal(svc.target?.url, `http://${HOST}:${receiver.port}/hook`);
    assert.match(svc.target?.secret ?? "", /^whsec_[A-Za-z0-9+/=]+$/, created.text);
    assert.equal(typeof svc.target_num_containers, "number");
    receiver.secret = svc.target.secret;
    state.service = svc;

    const again = await api("GET", svc.resource_uri, { auth: "user" });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.target?.secret, undefined, "the secret must not be shown again");
    assert.equal(again.json.target?.url, svc.target.url);
  });

  step("Go-style GET of the service (a {} body, no Content-Type) answers 200", async () => {
    assert.ok(state.service, "needs the service of the previous step");
    const { uuid, resource_uri } = state.service;
    // The Go SDK's GetService: namespaced when a namespace is configured, else not.
    for (const path of [`/api/app/v1/service/${uuid}/`, resource_uri]) {
      const res = await rawRequest(worker.port, {
        method: "GET",
        path,
        headers: {
          "user-agent": "Go-http-client/1.1",
          accept: "application/json",
          authorization: state.basic,
          "content-length": "2",
          "accept-encoding": "gzip",
        },
        body: "{}",
      });
      assert.equal(res.status, 200, `GET ${path}: ${res.text}`);
      assert.equal(res.json?.uuid, uuid);
      assert.equal(res.json?.resource_uri, resource_uri);
      assert.equal(typeof res.json?.target_num_containers, "number");
    }
  });

  step("REDEPLOY and SCALEUP triggers are created", async () => {
    assert.ok(state.service, "needs the service");
    for (const operation of ["REDEPLOY", "SCALEUP"]) {
      const res = await api("POST", `${state.service.resource_uri}trigger/`, {
        auth: "user",
        body: { name: `e2e-${operation.toLowerCase()}`, operation },
      });
      assert.equal(res.status, 201, res.text);
      const trigger = res.json;
      assert.equal(trigger.operation, operation);
      assert.match(trigger.uuid, UUID4);
      assert.match(trigger.url, /^\/api\/app\/v1\/.+\/trigger\/[^/]+\/call\/$/, "url is root-relative");
      assert.match(trigger.resource_uri, /\/$/);
      state.triggers[operation] = trigger;
    }
  });

  step("Python-style double-slash trigger list answers the envelope with both triggers", async () => {
    assert.equal(Object.keys(state.triggers).length, 2, "needs both triggers");
    const { uuid, resource_uri } = state.service;
    // The brief's non-namespaced form, and resource_uri + "/trigger/" as the SDK joins it.
    for (const path of [`/api/app/v1/service/${uuid}//trigger/`, `${resource_uri}/trigger/`]) {
      assert.ok(path.includes("//trigger/"));
      const res = await rawRequest(worker.port, {
        method: "GET",
        path,
        headers: {
          "user-agent": "python-dockercloud/1.0.12",
          accept: "*/*",
          "content-type": "application/json",
          authorization: state.basic,
        },
      });
      assert.equal(res.status, 200, `GET ${path}: ${res.text}`);
      const { meta, objects } = res.json ?? {};
      assert.ok(meta && Array.isArray(objects), `not an envelope: ${res.text}`);
      for (const k of ["limit", "next", "offset", "previous", "total_count"]) assert.ok(k in meta, `meta.${k}`);
      assert.equal(meta.total_count, 2);
      assert.deepEqual(
        objects.map((t) => t.uuid).sort(),
        [state.triggers.REDEPLOY.uuid, state.triggers.SCALEUP.uuid].sort(),
      );
    }
  });

  step("both triggers are called with no credentials: 202 and X-DockerCloud-Action-URI", async () => {
    assert.equal(Object.keys(state.triggers).length, 2, "needs both triggers");
    state.startTarget = state.service.target_num_containers;
    const calls = [
      ["REDEPLOY", state.triggers.REDEPLOY.url],
      ["SCALEUP", `${state.triggers.SCALEUP.url}2/`],
    ];
    for (const [operation, url] of calls) {
      const res = await fetch(`${worker.base}${url}`, {
        method: "POST",
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      assert.equal(res.status, 202, `${operation} call: ${text}`);
      const actionUri = res.headers.get("x-dockercloud-action-uri");
      assert.match(
        actionUri ?? "",
        /^\/api\/audit\/v1\/(?:[a-z0-9]+\/)?action\/[^/]+\/$/,
        `${operation}: ${actionUri}`,
      );
      const body = JSON.parse(text);
      assert.equal(typeof body, "object");
      assert.ok(body && !Array.isArray(body) && Object.keys(body).length > 0, "a non-empty JSON object");
      const uuid = actionUri.split("/").at(-2);
      state.actions[operation] = { uri: actionUri, uuid };
    }
  });

  step("the receiver verifies both deliveries, both actions succeed, the service grew by 2", async () => {
    assert.equal(Object.keys(state.actions).length, 2, "needs both calls");
    const ids = Object.values(state.actions).map((a) => a.uuid);
    const allVerified = () => {
      if (receiver.rejected > 0) {
        throw Object.assign(new Error(`the receiver rejected ${receiver.rejected} delivery(ies)`), { fatal: true });
      }
      return ids.every((id) => receiver.verified.has(id));
    };
    await waitFor("both signed deliveries to be verified", allVerified, {
      timeoutMs: DELIVERY_TIMEOUT_MS,
      describe: () =>
        `verified ids: [${[...receiver.verified.keys()].join(", ")}], expected [${ids.join(", ")}]; ` +
        `rejected: ${receiver.rejected} ${JSON.stringify(receiver.rejections)}`,
    });
    assert.equal(receiver.rejected, 0, `rejected deliveries: ${JSON.stringify(receiver.rejections)}`);

    const redeploy = receiver.verified.get(state.actions.REDEPLOY.uuid).payload;
    assert.equal(redeploy.type, "service.redeploy");
    assert.equal(redeploy.data.service.uuid, state.service.uuid);
    // The trigger is named by its name and a non-secret id: its uuid is the secret of its URL.
    assert.equal(redeploy.data.trigger?.name, state.triggers.REDEPLOY.name);
    assert.match(redeploy.data.trigger?.id ?? "", /^trg_[0-9a-f]{32}$/);
    for (const payload of [redeploy, receiver.verified.get(state.actions.SCALEUP.uuid).payload]) {
      const text = JSON.stringify(payload).toLowerCase();
      for (const t of Object.values(state.triggers)) {
        assert.ok(
          !text.includes(t.uuid) && !text.includes(t.uuid.replaceAll("-", "")),
          "a delivery shows a trigger uuid",
        );
      }
    }
    const scaleup = receiver.verified.get(state.actions.SCALEUP.uuid).payload;
    assert.equal(scaleup.type, "service.scaleup");
    assert.equal(scaleup.data.scale_by, 2);
    assert.equal(scaleup.data.service.uuid, state.service.uuid);

    const last = {};
    await waitFor(
      'both actions to read state "Success"',
      async () => {
        for (const [op, { uri }] of Object.entries(state.actions)) {
          const res = await api("GET", uri, { auth: "user" });
          assert.equal(res.status, 200, `GET ${uri}: ${res.text}`);
          last[op] = res.json;
          if (res.json.state === "Failed") {
            const logs = await actionLogs(worker.base, state.basic, uri);
            throw Object.assign(new Error(`${op} action failed: ${logs}`), { fatal: true });
          }
        }
        return Object.values(last).every((a) => a.state === "Success");
      },
      { timeoutMs: DELIVERY_TIMEOUT_MS, describe: () => JSON.stringify(last) },
    );

    for (const { count } of receiver.verified.values()) assert.equal(count, 1, "each delivery arrives once");

    const svc = await api("GET", state.service.resource_uri, { auth: "user" });
    assert.equal(svc.status, 200, svc.text);
    assert.equal(svc.json.target_num_containers, state.startTarget + 2);
  });
});
