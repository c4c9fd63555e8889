// The load generator, run as its own process by bench/run.mjs so that it
// does not share an event loop with the receiver: autocannon against one
// URL, cycling through a list of paths. Prints one JSON summary on stdout.
//
//   node bench/load.mjs '{"url":"http://127.0.0.1:8787","method":"POST","paths":["/a/","/b/"],
//                         "connections":64,"duration":10,"headers":{}}'
import autocannon from "autocannon";

const spec = JSON.parse(process.argv[2]);
let next = 0;

const result = await autocannon({
  url: spec.url,
  method: spec.method ?? "GET",
  connections: spec.connections ?? 64,
  duration: spec.duration ?? 10,
  headers: spec.headers ?? {},
  body: spec.body,
  timeout: 30,
  requests: [
    {
      setupRequest(req) {
        req.path = spec.paths[next++ % spec.paths.length];
        return req;
      },
    },
  ],
});

const codes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([k, v]) => [k, v.count]));
process.stdout.write(
  `${JSON.stringify({
    requests: result.requests.total,
    duration_s: result.duration,
    rps: result.requests.total / result.duration,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    max_ms: result.latency.max,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    status: codes,
  })}\n`,
);
