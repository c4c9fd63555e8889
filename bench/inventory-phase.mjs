// The inventory phase of `npm run bench`: an agent's connection spoken by
// hand (a WebSocket client in this process, as the agent program speaks it)
// sends a full inventory of 1,000 services, the same inventory again
// (nothing changed: the resend every agent makes as its safety net), then 100
// changes of one service each. Each is timed from its send to the object's
// answer to a marker sent right after it (messages apply in order), so the
// time is the whole apply, pointers and events included. The time from an
// engine change to the API is measured against a real swarm
// (e2e-swarm/inventory.test.mjs), not here.

import { percentile } from "./agent-phase.mjs";
import { dialAgent } from "./agent-socket.mjs";

const SERVICES = 1_000;
const CHANGES = 100;

const item = (i, replicas) => ({
  id: `benchsvc${i}`,
  name: `bench-svc-${i}`,
  image: `registry.local:5000/bench:${i % 7}@sha256:${"d".repeat(64)}`,
  mode: "replicated",
  replicas,
  desired: replicas,
  running: replicas,
  update: { state: "completed", message: null },
  stack: i % 10 === 0 ? "benchstack" : null,
  max_num_containers: null,
  updated_at: "2026-12-01T10:00:00.000Z",
});

/** An agent's socket that times each message until the object has applied it. */
async function agentSocket(base, token) {
  const answers = [];
  let wake = () => {};
  const ws = await dialAgent(base, token, (message) => {
    answers.push(message);
    wake();
  });
  const until = async (probe) => {
    const deadline = Date.now() + 60_000;
    while (!probe()) {
      if (Date.now() > deadline) throw new Error("bench: the inventory was not applied within 60 s");
      await new Promise((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
  };
  let markers = 0;
  /** Sends `message`, then a marker; resolves with the milliseconds until the marker's answer. */
  const timed = async (message) => {
    const start = performance.now();
    ws.send(JSON.stringify(message));
    ws.send('{"type":"bench-marker"}');
    markers += 1;
    const want = markers;
    await until(
      () => answers.filter((m) => m.type === "error" && m.error.startsWith("unknown message")).length >= want,
    );
    return performance.now() - start;
  };
  const refusals = () => answers.filter((m) => m.type === "error" && m.error.startsWith("inventory:"));
  return { ws, timed, refusals };
}

export async function inventoryPhase({ base, auth, api }) {
  const agent = await api(base, "POST", "/api/agent/v1/agent/", auth, { name: "bench-inventory" });
  const link = await agentSocket(base, agent.token);
  try {
    const all = Array.from({ length: SERVICES }, (_, i) => item(i, 2));
    const first_full_ms = await link.timed({ type: "inventory", full: true, services: all, gone: [] });
    const listed = await api(base, "GET", "/api/app/v1/service/?limit=1&name=bench-svc-999", auth);
    if (listed.meta.total_count !== 1) throw new Error("bench: the inventory's services are not in the API");
    const resend_unchanged_ms = await link.timed({ type: "inventory", full: true, services: all, gone: [] });
    const changes = [];
    for (let c = 0; c < CHANGES; c++) {
      const changed = item((c * 7) % SERVICES, 3 + (c % 4));
      changes.push(await link.timed({ type: "inventory", full: false, services: [changed], gone: [] }));
    }
    return {
      inventory: {
        services: SERVICES,
        first_full_ms,
        resend_unchanged_ms,
        change_p50_ms: percentile(changes, 50),
        change_p99_ms: percentile(changes, 99),
        changes: CHANGES,
        refused: link.refusals().length,
      },
    };
  } finally {
    link.ws.close();
  }
}
