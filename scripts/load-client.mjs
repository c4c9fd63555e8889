// The load client of `npm run test:load`, run as its own process so that it
// shares no event loop with the Worker's runtime driver or the webhook
// receiver: `concurrency` workers POST to a list of call paths (fetch, that is
// undici, keep-alive), each path once, and print one JSON line per call:
//
//   {"i":0,"op":"REDEPLOY","status":202,"action":"<uuid>","latency_ms":12.3}
//   ... and last {"summary":{"calls":N,"duration_ms":...}}
//
// A call that gets no answer prints "status":0 and "error". Usage:
//   node scripts/load-client.mjs <spec.json>
//   spec: {"base":"http://127.0.0.1:PORT","calls":[{"path":"/api/...","op":"SCALEUP"}],"concurrency":64,
//          "body":"...","timeout_ms":30000}
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { base, calls } = spec;
const concurrency = spec.concurrency ?? 64;
const timeoutMs = spec.timeout_ms ?? 30_000;

const out = [];
const flush = () => {
  if (out.length) process.stdout.write(`${out.splice(0).join("\n")}\n`);
};

let next = 0;
async function worker() {
  while (next < calls.length) {
    const i = next++;
    const { path, op } = calls[i];
    const started = performance.now();
    const line = { i, op };
    try {
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: spec.body ?? "",
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      line.status = res.status;
      if (res.status === 202) {
        try {
          line.action = JSON.parse(text).uuid ?? null;
        } catch {
          line.action = null;
        }
      } else {
        line.body = text.slice(0, 200);
      }
    } catch (err) {
      line.status = 0;
      line.error = `${err.name}: ${err.message}`.slice(0, 200);
    }
    line.latency_ms = Math.round((performance.now() - started) * 10) / 10;
    out.push(JSON.stringify(line));
    if (out.length >= 256) flush();
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: Math.min(concurrency, calls.length) }, worker));
const durationMs = performance.now() - started;
flush();
process.stdout.write(
  `${JSON.stringify({ summary: { calls: calls.length, concurrency, duration_ms: Math.round(durationMs) } })}\n`,
);
