// Starts the built Worker on the local workerd runtime through Miniflare's
// API, with the user worker's socket exposed directly (no development proxy
// in front of it), state in a temporary folder.
//
// extraWorkers: further Workers of the benchmark's own (e.g. bench/floor/),
// run in the same Miniflare instance, so by the same workerd process, after the
// product's Worker (which stays the entry worker). Each gets the product's
// compatibility date and flags unless it names its own, and a direct socket;
// `urls[name]` is its address.
//
// entry: another entry module to build instead of wrangler.jsonc's `main` (the bench's
// instrumented build, bench/instrumented/worker.ts), with the same configuration.
// `pid` is the workerd process's, for its CPU time (`cpuMs`).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

/** The workerd processes this process started (Miniflare spawns workerd directly). */
function workerdChildren() {
  const pids = new Set();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /^\d+ \((.*)\) \S (\d+)/.exec(readFileSync(`/proc/${name}/stat`, "utf8"));
      if (m?.[1] === "workerd" && Number(m[2]) === process.pid) pids.add(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

/** User + system CPU time of a process (all its threads) so far, in ms (Linux /proc). */
export function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name and state.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** Bundles the Worker as `wrangler deploy` would (`entry`: another entry module); the bundle's path. */
function build(root, tmp, entry) {
  const outdir = join(tmp, "build");
  const wrangler = join(root, "node_modules/wrangler/bin/wrangler.js");
  execFileSync(process.execPath, [wrangler, "deploy", ...(entry ? [entry] : []), "--dry-run", "--outdir", outdir], {
    cwd: root,
    stdio: "pipe",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  return { outdir, script: join(outdir, entry ? basename(entry).replace(/\.[cm]?[jt]s$/, ".js") : "index.js") };
}

/** wrangler.jsonc's queue consumers, with the settings `overrides` names (by queue) changed. */
const consumersOf = (workerOptions, overrides) =>
  Object.fromEntries(
    Object.entries(workerOptions.queueConsumers ?? {}).map(([name, c]) => [name, { ...c, ...(overrides[name] ?? {}) }]),
  );

export async function startWorker({
  root,
  tmp,
  entry,
  bindings = {},
  queueConsumers = {},
  inspectorPort,
  extraWorkers = [],
}) {
  const bundle = build(root, tmp, entry);
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(root, "wrangler.jsonc"));
  const adminToken = randomBytes(24).toString("hex");
  const base = { ...workerOptions.bindings };
  const worker = {
    compatibilityDate: workerOptions.compatibilityDate,
    compatibilityFlags: workerOptions.compatibilityFlags,
    durableObjects: workerOptions.durableObjects,
    queueProducers: workerOptions.queueProducers,
    name: "bench",
    modules: true,
    scriptPath: bundle.script,
    modulesRoot: bundle.outdir,
    bindings: {
      RETRY_BASE_DELAY_SECONDS: base.RETRY_BASE_DELAY_SECONDS,
      RETRY_MAX_DELAY_SECONDS: base.RETRY_MAX_DELAY_SECONDS,
      TARGET_TIMEOUT_MS: base.TARGET_TIMEOUT_MS,
      MAX_TRIGGERS_PER_SERVICE: base.MAX_TRIGGERS_PER_SERVICE,
      ADMIN_TOKEN: adminToken,
      SECRETS_KEY: randomBytes(24).toString("hex"),
      ALLOW_HTTP_LOCALHOST_TARGETS: "true",
      ...bindings,
    },
    queueConsumers: consumersOf(workerOptions, queueConsumers),
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
  };
  const shared = {
    rootPath: root,
    resourcePersistencePath: join(tmp, "state"),
    ...(inspectorPort ? { inspectorPort } : {}),
  };
  const extras = extraWorkers.map((extra) => ({
    compatibilityDate: worker.compatibilityDate,
    compatibilityFlags: worker.compatibilityFlags,
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    ...extra,
  }));
  const before = workerdChildren();
  const mf = new Miniflare(
    convertV4MiniflareOptions(extras.length ? { ...shared, workers: [worker, ...extras] } : { ...shared, ...worker }),
  );
  await mf.ready;
  const pid = [...workerdChildren()].find((p) => !before.has(p)) ?? null;
  const directUrl = async (name) => (await mf.unsafeGetDirectURL(name)).toString().replace(/\/$/, "");
  const url = await directUrl();
  const urls = {};
  for (const extra of extras) urls[extra.name] = await directUrl(extra.name);
  return { mf, url, urls, adminToken, pid, queueConsumers: worker.queueConsumers };
}
