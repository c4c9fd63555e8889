// Starts the built Worker on the local workerd runtime through Miniflare's
// API, with the user worker's socket exposed directly (no development proxy
// in front of it), state in a temporary folder.
//
// extraWorkers: further Workers of the benchmark's own (e.g. bench/floor/),
// run in the same Miniflare instance, so by the same workerd process, after the
// product's Worker (which stays the entry worker). Each gets the product's
// compatibility date and flags unless it names its own, and a direct socket;
// `urls[name]` is its address.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

export async function startWorker({ root, tmp, bindings = {}, queueConsumers = {}, inspectorPort, extraWorkers = [] }) {
  const build = join(tmp, "build");
  execFileSync(
    process.execPath,
    [join(root, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", build],
    {
      cwd: root,
      stdio: "pipe",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    },
  );
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
    scriptPath: join(build, "index.js"),
    modulesRoot: build,
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
    queueConsumers: Object.fromEntries(
      Object.entries(workerOptions.queueConsumers ?? {}).map(([name, c]) => [
        name,
        { ...c, ...(queueConsumers[name] ?? {}) },
      ]),
    ),
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
  const mf = new Miniflare(
    convertV4MiniflareOptions(extras.length ? { ...shared, workers: [worker, ...extras] } : { ...shared, ...worker }),
  );
  await mf.ready;
  const directUrl = async (name) => (await mf.unsafeGetDirectURL(name)).toString().replace(/\/$/, "");
  const url = await directUrl();
  const urls = {};
  for (const extra of extras) urls[extra.name] = await directUrl(extra.name);
  return { mf, url, urls, adminToken, queueConsumers: worker.queueConsumers };
}
