// End to end: the live streams over real sockets against `npm run dev`, with a
// Node WebSocket client (`ws`, which can also send protocol pings as the
// Python SDK does): the events of a trigger call's action from Pending to
// Success, in order; a finished and a running action's log.
//
// Run: npm run test:e2e   (node --test 'e2e/*.test.mjs', Node 22 from node_modules/.bin)
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe } from "node:test";
import WebSocket from "ws";
import { apiRequest, createUserWithKey, createWorker, failureTracker, HOST, waitFor } from "./helpers.mjs";

const worker = createWorker();
const tracker = failureTracker();
const step = (...args) => tracker.step(...args);
const state = { basic: "", service: null, trigger: null };
const api = (method, path, body) => apiRequest(worker.base, method, path, { body, authorization: state.basic });

/**
 * A WebSocket to the API's host, as DOCKERCLOUD_STREAM_HOST=ws://<host>/ makes the SDKs dial it:
 * Node's own (undici's, which takes headers in its second argument), or, with `pings`, `ws`, which
 * can send protocol pings as the Python SDK does.
 */
function openStream(path, { pings = false, origin } = {}) {
  const url = `ws://${HOST}:${worker.port}${path}`;
  const headers = { authorization: state.basic, ...(origin ? { origin } : {}) };
  const ws = pings ? new WebSocket(url, { headers }) : new globalThis.WebSocket(url, { headers });
  const got = { ws, messages: [], closed: null, pongs: 0 };
  ws.addEventListener("message", (event) => got.messages.push(JSON.parse(String(event.data))));
  ws.addEventListener("close", (event) => {
    got.closed = { code: event.code, reason: event.reason };
  });
  if (pings) {
    ws.on("pong", () => {
      got.pongs += 1;
    });
  }
  return new Promise((resolve, reject) => {
    ws.addEventListener("open", () => resolve(got), { once: true });
    ws.addEventListener("error", () => reject(new Error(`could not open ${path}`)), { once: true });
  });
}

/** A webhook receiver that holds every delivery until released. */
const held = { server: null, url: "", release: () => {}, waiting: 0 };

describe("live streams (wrangler dev, real sockets)", () => {
  before(async () => {
    await worker.start();
    state.basic = (await createUserWithKey(worker.base, { prefix: "str" })).basic;
    let open;
    const gate = new Promise((resolve) => {
      open = resolve;
    });
    held.release = open;
    held.server = http.createServer((req, res) => {
      held.waiting += 1;
      req.resume();
      gate.then(() => res.writeHead(200).end("ok"));
    });
    await new Promise((resolve) => held.server.listen(0, HOST, resolve));
    held.url = `http://${HOST}:${held.server.address().port}/hook`;
  });

  after(async () => {
    held.release();
    held.server?.close();
    if (tracker.failed) console.error(`wrangler output (tail):\n${worker.outputTail(60)}`);
    await worker.stop();
  });

  step("the events stream shows a trigger call's action from Pending to Success, in order", async () => {
    const events = await openStream("/api/audit/v1/events", { pings: true });
    const svc = await api("POST", "/api/app/v1/service/", { name: "web" });
    assert.equal(svc.status, 201, svc.text);
    state.service = svc.json;
    const trigger = await api("POST", `${svc.json.resource_uri}trigger/`, { operation: "REDEPLOY" });
    state.trigger = trigger.json;
    const called = await fetch(`${worker.base}${trigger.json.url}`, { method: "POST", body: "built abc" });
    assert.equal(called.status, 202);
    const action = await called.json();
    await waitFor(
      "the action's Success on the stream",
      () => events.messages.some((e) => e.uuid === action.uuid && e.state === "Success"),
      { timeoutMs: 20_000 },
    );
    const seen = events.messages.filter((e) => e.uuid === action.uuid).map((e) => `${e.action} ${e.state}`);
    assert.deepEqual(seen, ["create Pending", "update In progress", "update Success"]);
    for (const e of events.messages) {
      for (const k of ["type", "action", "uuid", "resource_uri", "state", "parents", "datetime", "data"]) {
        assert.ok(e[k] !== undefined && e[k] !== null, `${k} in ${JSON.stringify(e)}`);
      }
    }
    events.ws.ping();
    await waitFor("a pong", () => events.pongs > 0, { timeoutMs: 5_000, intervalMs: 50 });
    events.ws.close();
  });

  step(
    "an Origin naming this host is served (Python's websocket-client sends one); another site's is refused",
    async () => {
      const python = await openStream("/api/audit/v1/events", { pings: true, origin: `http://${HOST}:${worker.port}` });
      python.ws.close();
      await assert.rejects(openStream("/api/audit/v1/events", { pings: true, origin: "https://evil.example" }));
    },
  );

  step("a finished action's log comes as lines, then the server closes", async () => {
    const list = await api("GET", "/api/audit/v1/action/?limit=1");
    const action = list.json.objects[0];
    assert.equal(action.state, "Success");
    assert.equal("logs" in action, false);
    const s = await openStream(`${action.resource_uri}logs/?follow=true`);
    await waitFor("the server to close", () => s.closed !== null, {
      timeoutMs: 10_000,
      describe: () => JSON.stringify(s.messages),
    });
    assert.equal(s.closed.code, 1000);
    assert.ok(s.messages.length > 0);
    for (const m of s.messages) {
      assert.equal(m.type, "log");
      assert.equal(typeof m.log, "string");
      assert.ok(Number.isInteger(m.timestamp));
    }
    const json = await api("GET", `${action.resource_uri}logs/`);
    assert.deepEqual(
      s.messages.map((m) => m.log),
      json.json.objects.map((m) => m.log),
    );
  });

  step("a running action's log follows its new lines until it finishes", async () => {
    const patched = await api("PATCH", state.service.resource_uri, { target: { type: "webhook", url: held.url } });
    assert.equal(patched.status, 200, patched.text);
    const called = await fetch(`${worker.base}${state.trigger.url}`, { method: "POST" });
    const action = await called.json();
    await waitFor("the delivery to be held", () => held.waiting > 0, { timeoutMs: 20_000 });
    const s = await openStream(`${action.resource_uri}logs/?follow=true`);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(s.closed, null, "still open while the action runs");
    const before = s.messages.length;
    held.release();
    await waitFor("the server to close once the action finished", () => s.closed !== null, { timeoutMs: 20_000 });
    assert.equal(s.closed.code, 1000);
    assert.ok(s.messages.length > before, "the attempt's line arrived while following");
    assert.match(s.messages.at(-1).log, /attempt 1: /);
  });
});
