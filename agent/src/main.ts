#!/usr/bin/env node
import Docker from "dockerode";
import { describe } from "./allow.ts";
import { parseArgs, USAGE } from "./args.ts";
import { Chooser } from "./choose.ts";
import { Inventory } from "./inventory.ts";
import { JobRunner } from "./jobs.ts";
import { AGENT_VERSION, startLink } from "./link.ts";
import { defaultConfigPath, RegistryCredentials } from "./registry-auth.ts";

/**
 * The agent: run it next to an orchestrator with the URL of the API and the
 * token shown when the agent was created. It keeps a connection to the API
 * open, performs the jobs the API sends where its rules allow, and stops on
 * SIGINT or SIGTERM. A job cut short by a stop is redelivered to the next
 * run, which finds it applied (jobs.ts) and only waits for it.
 */
const argv = process.argv.slice(2);
if (argv.includes("--help") || argv.includes("-h")) {
  console.log(USAGE);
  process.exit(0);
}
const options = parseArgs(argv, process.env);
if (typeof options === "string") {
  console.error(options);
  process.exit(2);
}
const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
const dry = options.dryRun ? " (dry run: changes nothing)" : "";
log(`dockercloud-agent ${AGENT_VERSION}; may act on: ${describe(options.allow)}${dry}`);

const credentials = new RegistryCredentials(options.registryConfig ?? defaultConfigPath(process.env), log);
log(`registry credentials: the "auths" of ${credentials.path} (credential helpers are not run)`);
const chooser = new Chooser(new Docker(), options.orchestrator, credentials, options.settleMs);
const orchestrator = chooser.orchestrator();
// The inventory is read-only: a dry run sends it too.
const inventory = new Inventory(chooser.inventory(), {
  rules: options.allow,
  send: (message) => link.send(message),
  log,
});
const DESCRIBE_TIMEOUT_MS = 10_000;
let engineReported: boolean | undefined;

/**
 * What the agent runs on, read for each connection's hello. An engine that
 * cannot be reached does not keep the agent from connecting: the API then
 * shows it connected with no engine (and jobs fail, saying why), and the next
 * connection's hello reports the engine once it is back.
 */
async function hello() {
  try {
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no answer in ${DESCRIBE_TIMEOUT_MS / 1000} s`)), DESCRIBE_TIMEOUT_MS).unref(),
    );
    const about = await Promise.race([orchestrator.describe(), timeout]);
    if (engineReported !== true) {
      log(`docker engine ${about.engine_version}, ${about.orchestrator} on ${about.node_id ?? "an unnamed node"}`);
    }
    engineReported = true;
    return about;
  } catch (err) {
    if (engineReported !== false) {
      const host = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
      log(`cannot reach the docker engine at ${host} (${err instanceof Error ? err.message : err}); connecting anyway`);
    }
    engineReported = false;
    return { orchestrator: null, engine_version: null, node_id: null };
  }
}

const runner = new JobRunner(orchestrator, { rules: options.allow, dryRun: options.dryRun, log });
const link = startLink(
  options,
  hello,
  {
    onJob: (job) => {
      log(`action ${job.action}: ${job.kind} ${job.service} (attempt ${job.attempt})`);
      void runner.handle(job, (message) => link.send(message));
    },
    onWelcome: () => void inventory.sendFull(),
  },
  log,
);
inventory.start();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    inventory.stop();
    link.stop(signal);
  });
}
// Exit even with a job's wait under way: its report could no longer be sent.
process.exit(await link.done);
