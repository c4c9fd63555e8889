// The registry-hook phase of `npm run bench`: a Distribution registry's notifications, sent by the
// bench to a hook of the bench user, for 100 services with autoredeploy whose target is an agent
// (a WebSocket client of the bench that speaks the agent protocol: it stamps each job as it
// arrives, then acks and reports it at once, as a dry run would).
//   - latency: one push at a time, from the notification sent to its job at the agent;
//   - burst: 1,000 notifications for the 100 services, mostly noise (for each service one push,
//     four repeats of it, five pulls of the tag), sent 32 at a time: exactly 100 actions must
//     come of it, and the time until the last one reached the agent is reported.

import { percentile } from "./agent-phase.mjs";
import { dialAgent } from "./agent-socket.mjs";

const SERVICES = 100;
const LATENCY_SAMPLES = 100;
const BURST_CONCURRENCY = 32;

const digestOf = (n) => `sha256:${n.toString(16).padStart(64, "0")}`;

/** A Distribution notification envelope of one event. */
function envelope(action, service, digest) {
  return JSON.stringify({
    events: [
      {
        id: crypto.randomUUID(),
        timestamp: new Date().toISOString(),
        action,
        target: {
          mediaType: "application/vnd.docker.distribution.manifest.v2+json",
          digest,
          repository: `bench/app-${service}`,
          tag: "1.0",
        },
        request: { host: "registry.local:5000", method: action === "pull" ? "GET" : "PUT" },
      },
    ],
  });
}

/** The agent's side: every job is stamped on arrival, acked and reported a success at once. */
async function benchAgent(base, token) {
  const arrived = new Map();
  const ws = await dialAgent(base, token, (m) => {
    if (m.type !== "job") return;
    if (!arrived.has(m.job.action)) arrived.set(m.job.action, performance.now());
    const { action, attempt } = m.job;
    ws.send(JSON.stringify({ type: "ack", action, attempt }));
    ws.send(JSON.stringify({ type: "report", action, attempt, result: "success", detail: "bench", observed: null }));
  });
  return { ws, arrived };
}

async function until(what, probe, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export async function registryPhase({ base, auth, api }) {
  const agent = await api(base, "POST", "/api/agent/v1/agent/", auth, { name: "bench-registry" });
  for (let i = 0; i < SERVICES; i++) {
    await api(base, "POST", "/api/app/v1/service/", auth, {
      name: `bench-push-${i}`,
      image: `registry.local:5000/bench/app-${i}:1.0`,
      autoredeploy: true,
      target: { type: "agent", agent: agent.uuid, swarm_service: `bench-push-${i}` },
    });
  }
  const hook = await api(base, "POST", "/api/app/v1/registryhook/", auth, { name: "bench", source: "distribution" });
  const link = await benchAgent(base, agent.token);
  const post = async (body) => {
    const res = await fetch(`${base}${hook.url}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${hook.secret}`,
        "content-type": "application/vnd.docker.distribution.events.v1+json",
      },
      body,
    });
    const answer = await res.json();
    if (res.status >= 300 && res.status !== 200) throw new Error(`bench: the hook answered ${res.status}`);
    return answer;
  };
  try {
    const latency = [];
    let n = 1;
    for (let s = 0; s < LATENCY_SAMPLES; s++) {
      const sent = performance.now();
      const { actions } = await post(envelope("push", s % SERVICES, digestOf(n++)));
      const uuid = actions?.[0]?.split("/").at(-2);
      if (!uuid) throw new Error("bench: a push started no action");
      await until(`the job of ${uuid}`, () => link.arrived.has(uuid), 10_000);
      latency.push(link.arrived.get(uuid) - sent);
    }
    const before = (await api(base, "GET", "/api/audit/v1/action/?limit=1", auth)).meta.total_count;
    const notifications = [];
    for (let s = 0; s < SERVICES; s++) {
      const push = envelope("push", s, digestOf(n++));
      notifications.push(push, push, push, push, push);
      for (let p = 0; p < 5; p++) notifications.push(envelope("pull", s, digestOf(n - 1)));
    }
    const start = performance.now();
    const started = new Set();
    let next = 0;
    await Promise.all(
      Array.from({ length: BURST_CONCURRENCY }, async () => {
        while (next < notifications.length) {
          const answer = await post(notifications[next++]);
          for (const uri of answer.actions ?? []) started.add(uri.split("/").at(-2));
        }
      }),
    );
    await until("every burst job at the agent", () => [...started].every((u) => link.arrived.has(u)), 60_000);
    const lastJob = Math.max(...[...started].map((u) => link.arrived.get(u)));
    const after = (await api(base, "GET", "/api/audit/v1/action/?limit=1", auth)).meta.total_count;
    return {
      registry_hooks: {
        notification_to_job_p50_ms: percentile(latency, 50),
        notification_to_job_p99_ms: percentile(latency, 99),
        samples: latency.length,
        burst_notifications: notifications.length,
        burst_actions: after - before,
        burst_actions_expected: SERVICES,
        burst_ms_to_last_job: lastJob - start,
      },
    };
  } finally {
    link.ws.close();
  }
}
