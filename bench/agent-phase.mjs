// The agent path of `npm run bench`: services whose target is an agent, with
// the agent program connected in dry-run mode (it receives each job, checks it
// against the orchestrator if one answers, reports, and changes nothing).
// Measures calls accepted per second on those services, and the time from a
// call being sent to its job reaching the agent (read from the agent's log,
// which stamps each job with the time it arrived), next to the time from a
// call being sent to the first delivery of the webhook path (the receiver's
// clock). Both clocks are this machine's.
import { spawn } from "node:child_process";
import { join } from "node:path";

const JOB_LINE = /^(\S+) action ([0-9a-f-]{36}): /;

/** Percentile `p` (0–100) of a list of numbers, nearest rank. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const summary = (ms) => ({
  samples: ms.length,
  p50_ms: percentile(ms, 50),
  p99_ms: percentile(ms, 99),
  max_ms: percentile(ms, 100),
});

/** The agent program in its own process; `received` maps an action to when its first job arrived. */
function startAgent(root, base, token) {
  const child = spawn(
    process.execPath,
    [
      join(root, "agent/src/main.ts"),
      "--url",
      base,
      "--token",
      token,
      "--allow-all",
      "--dry-run",
      "--heartbeat-seconds",
      "5",
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: process.env },
  );
  const received = new Map();
  const output = [];
  let rest = "";
  child.stdout.on("data", (chunk) => {
    const lines = (rest + chunk.toString("utf8")).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) {
      output.push(line);
      const m = JOB_LINE.exec(line);
      if (m && !received.has(m[2])) received.set(m[2], Date.parse(m[1]));
    }
  });
  child.stderr.on("data", (chunk) => output.push(chunk.toString("utf8")));
  return { child, received, output };
}

async function until(what, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`bench: timed out waiting for ${what}`);
}

/** Calls one after the other (so no service has a job in flight), timing each from send to `arrived(uuid)`. */
async function sampleLatency(base, paths, samples, arrived) {
  const ms = [];
  for (let i = 0; i < samples; i++) {
    const sent = Date.now();
    const res = await fetch(`${base}${paths[i % paths.length]}`, { method: "POST", body: `{"sample":${i}}` });
    const { uuid } = await res.json();
    if (res.status !== 202) throw new Error(`bench: a call answered ${res.status}`);
    await until(`the delivery of ${uuid}`, () => arrived(uuid) !== undefined, 10_000);
    ms.push(arrived(uuid) - sent);
  }
  return ms;
}

/**
 * Runs the phase. `api(base, method, path, auth, body)` and `load(spec)` are
 * the bench's; `webhookCalls` are trigger URLs of webhook services whose
 * deliveries `receiver.verified` (webhook-id → time) records.
 */
export async function agentPhase({ root, base, auth, api, load, receiver, webhookCalls, duration, connections }) {
  const SERVICES = 16;
  const SAMPLES = 200;
  const swarmService = process.env.BENCH_SWARM_SERVICE ?? "bench-dry-run";
  const agent = await api(base, "POST", "/api/agent/v1/agent/", auth, { name: "bench" });
  const calls = [];
  for (let s = 0; s < SERVICES; s++) {
    const svc = await api(base, "POST", "/api/app/v1/service/", auth, {
      name: `agent-bench-${s}`,
      max_num_containers: 1000,
      target: { type: "agent", agent: agent.uuid, swarm_service: swarmService },
    });
    const t = await api(base, "POST", `${svc.resource_uri}trigger/`, auth, {
      operation: "REDEPLOY",
      rate_limit: 100_000,
    });
    calls.push(t.url);
  }
  const program = startAgent(root, base, agent.token);
  try {
    await until(
      "the agent to connect",
      async () => (await api(base, "GET", agent.resource_uri, auth)).state === "Connected",
      15_000,
    );
    const results = {};
    results.agent_latency = summary(await sampleLatency(base, calls, SAMPLES, (uuid) => program.received.get(uuid)));
    results.webhook_latency = summary(
      await sampleLatency(base, webhookCalls, SAMPLES, (uuid) => receiver.verified.get(uuid)),
    );
    results.agent_calls = await load({
      url: base,
      method: "POST",
      paths: calls,
      connections,
      duration,
      body: '{"ref":"main"}',
    });
    results.agent_jobs_received = program.received.size;
    results.agent_sample_output = program.output.filter((l) => l.includes("dry run")).slice(0, 1);
    return results;
  } finally {
    program.child.kill("SIGTERM");
  }
}
