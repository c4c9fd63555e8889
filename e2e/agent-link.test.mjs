// End to end: the agent program (agent/, run as a user runs it, `node agent/src/main.ts`) against
// `npm run dev` over real sockets: it dials out, says hello, keeps its heartbeat, comes back after
// being killed, and stops for good when its agent is deleted.
//
// Run: npm run test:e2e   (node --test 'e2e/*.test.mjs', Node 22 from node_modules/.bin)
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import { apiRequest, createUserWithKey, createWorker, failureTracker, startAgentProcess, waitFor } from "./helpers.mjs";

const worker = createWorker();
const state = { basic: "", agent: null };
const api = (method, path, body) => apiRequest(worker.base, method, path, { body, authorization: state.basic });
const tracker = failureTracker();
const step = (...args) => tracker.step(...args);
const startAgent = (token) => startAgentProcess(worker.base, token);

const agentState = async () => (await api("GET", state.agent.resource_uri)).json;

describe("the agent program's connection", () => {
  /** @type {ReturnType<typeof startAgentProcess>[]} */
  const agents = [];

  before(async () => {
    await worker.start();
    state.basic = (await createUserWithKey(worker.base, { prefix: "agt" })).basic;
    const created = await api("POST", "/api/agent/v1/agent/", { name: "e2e" });
    assert.equal(created.status, 201, created.text);
    state.agent = created.json;
  });

  after(async () => {
    for (const a of agents) if (a.exit === null) a.child.kill("SIGKILL");
    if (tracker.failed) {
      console.error(`wrangler output (tail):\n${worker.outputTail(60)}`);
      for (const a of agents) console.error(`agent output:\n${a.output.join("\n")}`);
    }
    await worker.stop();
  });

  step("the agent dials out, says hello and shows Connected with its version", async () => {
    agents.push(startAgent(state.agent.token));
    const up = await waitFor(
      "the agent to connect",
      async () => {
        const a = await agentState();
        return a.state === "Connected" && a.agent_version !== null ? a : null;
      },
      { timeoutMs: 15_000 },
    );
    assert.equal(up.agent_version, "0.1.0");
    assert.ok(up.connected_since);
  });

  step("its heartbeat keeps last_seen moving while it is idle", async () => {
    const first = (await agentState()).last_seen;
    await waitFor("last_seen to move", async () => (await agentState()).last_seen !== first, { timeoutMs: 10_000 });
  });

  step("killed, it shows Disconnected; started again, Connected", async () => {
    const running = agents.at(-1);
    running.child.kill("SIGKILL");
    await waitFor("the agent to show Disconnected", async () => (await agentState()).state === "Disconnected", {
      timeoutMs: 15_000,
    });
    agents.push(startAgent(state.agent.token));
    await waitFor("the agent to connect again", async () => (await agentState()).state === "Connected", {
      timeoutMs: 15_000,
    });
  });

  step("deleting the agent closes its connection at once; the program says why and exits 1", async () => {
    const running = agents.at(-1);
    const deleted = await api("DELETE", state.agent.resource_uri);
    assert.equal(deleted.status, 200, deleted.text);
    await waitFor("the agent program to exit", async () => running.exit !== null, { timeoutMs: 5_000 });
    assert.equal(running.exit.code, 1);
    assert.ok(
      running.output.some((l) => l.includes("the agent was deleted")),
      `the program should say why it stopped:\n${running.output.join("\n")}`,
    );
  });

  step(
    "a program started with a deleted agent's token is told the token is refused, and stops after 3 tries (exit 3)",
    async () => {
      const stale = startAgent(state.agent.token);
      agents.push(stale);
      await waitFor(
        "the refusal to be named",
        async () => stale.output.some((l) => l.includes("the service refused the agent's token (401)")),
        { timeoutMs: 10_000 },
      );
      await waitFor("the program to stop after 3 refusals", async () => stale.exit !== null, { timeoutMs: 20_000 });
      assert.equal(stale.exit.code, 3, stale.output.join("\n"));
      assert.ok(stale.output.some((l) => l.includes("refused 3 times in a row, this process exits")));
    },
  );
});
