// End to end: an agent's token used by a second party, against `npm run dev` over real sockets.
// The agent program runs as a user runs it (its node as a stand-in Docker engine reports it); the
// "thief" is a raw WebSocket client speaking the agent protocol from another node. The thief's hello
// takes the agent's place: the program prints who took it and exits 1, the API records the
// replacement and the events stream tells of it. Rotating the token then closes the thief (4004),
// refuses the old token, and the program started with the new token connects; rotated once more,
// that program says why it stops.
//
// Run: npm run test:e2e   (node --test 'e2e/*.test.mjs', Node 22 from node_modules/.bin)
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import WebSocket from "ws";
import {
  apiRequest,
  createUserWithKey,
  createWorker,
  failureTracker,
  fakeDockerEngine,
  HOST,
  startAgentProcess,
  waitFor,
} from "./helpers.mjs";

const OWNER_NODE = "ownernode0000000000000001";
const THIEF_NODE = "thiefnode0000000000000002";
const THIEF_HELLO = {
  type: "hello",
  agent_version: "0.1.0",
  orchestrator: "swarm",
  engine_version: "27.3.1",
  node_id: THIEF_NODE,
};

const worker = createWorker();
const tracker = failureTracker();
const step = (...args) => tracker.step(...args);
const state = { basic: "", agent: null, newToken: "", engine: null, events: null, thief: null };
const api = (method, path, body) => apiRequest(worker.base, method, path, { body, authorization: state.basic });
const agentState = async () => (await api("GET", state.agent.resource_uri)).json;
/** @type {ReturnType<typeof startAgentProcess>[]} */
const agents = [];

/** The agent program on the owner's node (the stand-in engine), with `token`. */
function startOwner(token) {
  const env = { DOCKER_HOST: state.engine.dockerHost, DOCKER_TLS_VERIFY: undefined, DOCKER_CERT_PATH: undefined };
  const agent = startAgentProcess(worker.base, token, { env });
  agents.push(agent);
  return agent;
}

/** A WebSocket of `ws` (which reports a refused upgrade's status) to `path` with `headers`; its messages and close are kept. */
function socket(path, headers) {
  const ws = new WebSocket(`ws://${HOST}:${worker.port}${path}`, { headers });
  const got = { ws, messages: [], closed: null, refused: null };
  ws.on("message", (data) => got.messages.push(JSON.parse(String(data))));
  ws.on("close", (code, reason) => {
    got.closed = { code, reason: String(reason) };
  });
  ws.on("error", (err) => {
    got.refused = err.message;
  });
  return got;
}

/** A raw client dialling as the agent with `token` and saying `hello`; resolves once it is welcomed. */
async function dialAsAgent(token, hello) {
  const got = socket("/api/agent/v1/connect/", { authorization: `Bearer ${token}` });
  got.ws.on("open", () => got.ws.send(JSON.stringify(hello)));
  await waitFor("the welcome", () => got.messages.some((m) => m.type === "welcome"), {
    timeoutMs: 5_000,
    intervalMs: 50,
    describe: () => JSON.stringify({ messages: got.messages, closed: got.closed, refused: got.refused }),
  });
  return got;
}

const dump = (agent) => `agent output:\n${agent.output.join("\n")}`;

describe("an agent's token taken by another node, then rotated", () => {
  before(async () => {
    await worker.start();
    state.basic = (await createUserWithKey(worker.base, { prefix: "tko" })).basic;
    const created = await api("POST", "/api/agent/v1/agent/", { name: "takeover" });
    assert.equal(created.status, 201, created.text);
    state.agent = created.json;
    state.engine = await fakeDockerEngine(OWNER_NODE);
  });

  after(async () => {
    for (const a of agents) if (a.exit === null) a.child.kill("SIGKILL");
    for (const s of [state.events, state.thief]) s?.ws.terminate();
    if (tracker.failed) {
      console.error(`wrangler output (tail):\n${worker.outputTail(60)}`);
      for (const a of agents) console.error(dump(a));
    }
    await state.engine?.close();
    await worker.stop();
  });

  step("the owner's agent connects and reports its node", async () => {
    state.events = socket("/api/audit/v1/events", { authorization: state.basic });
    await waitFor("the events stream to open", () => state.events.ws.readyState === WebSocket.OPEN, {
      timeoutMs: 5_000,
      intervalMs: 50,
      describe: () => state.events.refused ?? "",
    });
    const owner = startOwner(state.agent.token);
    const up = await waitFor(
      "the agent to connect",
      async () => {
        const a = await agentState();
        return a.state === "Connected" && a.node_id !== null ? a : null;
      },
      { timeoutMs: 10_000, describe: () => dump(owner) },
    );
    assert.equal(up.node_id, OWNER_NODE);
    assert.equal(up.orchestrator, "swarm");
    assert.equal(up.replaced_at, null);
    assert.equal(up.replacement, null);
  });

  step(
    "a connection from another node with the token takes the agent's place; the program says who, and exits 1",
    async (t) => {
      const owner = agents.at(-1);
      state.thief = await dialAsAgent(state.agent.token, THIEF_HELLO);
      await waitFor("the owner's program to exit", () => owner.exit !== null, {
        timeoutMs: 5_000,
        describe: () => dump(owner),
      });
      assert.equal(owner.exit.code, 1, dump(owner));
      const said = owner.output.find((l) => l.includes("disconnected: replaced by a connection from another node"));
      assert.ok(said, `the program should print the replacement:\n${dump(owner)}`);
      assert.ok(said.includes(`(node ${THIEF_NODE}, address `), said);
      assert.ok(said.includes(`this one was node ${OWNER_NODE}, address `), said);
      assert.ok(said.includes("rotate the token"), said);
      assert.ok(said.endsWith("; this process exits"), said);
      t.diagnostic(said);
    },
  );

  step("the API shows the replacement: when, and both ends' nodes", async () => {
    const a = await agentState();
    assert.equal(a.state, "Connected");
    assert.equal(a.node_id, THIEF_NODE);
    assert.ok(a.replaced_at, JSON.stringify(a));
    assert.equal(a.replacement?.previous?.node_id, OWNER_NODE, JSON.stringify(a));
    assert.equal(a.replacement?.current?.node_id, THIEF_NODE, JSON.stringify(a));
  });

  step("the events stream, open before, told of the replacement", async () => {
    const event = await waitFor(
      "the agent's replaced event",
      () => state.events.messages.find((e) => e.type === "agent" && e.data?.replaced === true),
      { timeoutMs: 5_000, intervalMs: 50, describe: () => JSON.stringify(state.events.messages) },
    );
    assert.equal(event.action, "update");
    assert.equal(event.state, "Connected");
    assert.equal(event.uuid, state.agent.uuid);
    assert.equal(event.data.previous_node_id, OWNER_NODE);
    assert.equal(event.data.node_id, THIEF_NODE);
    assert.match(event.data.note, /^replaced by a connection from another node/);
  });

  step("rotating the token closes the thief's connection with 4004", async () => {
    const rotated = await api("POST", `${state.agent.resource_uri}token/`);
    assert.equal(rotated.status, 201, rotated.text);
    assert.match(rotated.json.token, /^dca_[a-z0-9]+_[0-9a-f]{40}$/);
    assert.notEqual(rotated.json.token, state.agent.token);
    state.newToken = rotated.json.token;
    await waitFor("the thief's connection to close", () => state.thief.closed !== null, {
      timeoutMs: 5_000,
      intervalMs: 50,
    });
    assert.equal(state.thief.closed.code, 4004, JSON.stringify(state.thief.closed));
    assert.match(state.thief.closed.reason, /token was replaced/);
  });

  step("the old token is refused: its dial answers 401", async () => {
    const stale = socket("/api/agent/v1/connect/", { authorization: `Bearer ${state.agent.token}` });
    await waitFor("the dial to be refused", () => stale.refused !== null || stale.closed !== null, {
      timeoutMs: 5_000,
      intervalMs: 50,
    });
    assert.match(String(stale.refused), /Unexpected server response: 401/);
  });

  step("the program started with the new token connects", async () => {
    const owner = startOwner(state.newToken);
    await waitFor(
      "the agent to connect with the new token",
      async () => {
        const a = await agentState();
        return a.state === "Connected" && a.node_id === OWNER_NODE;
      },
      { timeoutMs: 10_000, describe: () => dump(owner) },
    );
    assert.equal(owner.exit, null, dump(owner));
  });

  step("rotated again, the running program says to restart it with the new token, and exits 1", async () => {
    const owner = agents.at(-1);
    const rotated = await api("POST", `${state.agent.resource_uri}token/`);
    assert.equal(rotated.status, 201, rotated.text);
    await waitFor("the program to exit", () => owner.exit !== null, { timeoutMs: 5_000, describe: () => dump(owner) });
    assert.equal(owner.exit.code, 1, dump(owner));
    assert.ok(
      owner.output.some((l) =>
        l.endsWith(
          "disconnected: the agent's token was rotated; restart the agent with the new token; this process exits",
        ),
      ),
      dump(owner),
    );
  });
});
