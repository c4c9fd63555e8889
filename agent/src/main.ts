#!/usr/bin/env node
import { describe } from "./allow.ts";
import { parseArgs } from "./args.ts";
import { AGENT_VERSION, startLink } from "./link.ts";

/**
 * The agent: run it next to an orchestrator with the URL of the API and the
 * token shown when the agent was created. It keeps a connection to the API
 * open and stops on SIGINT or SIGTERM.
 */
const options = parseArgs(process.argv.slice(2), process.env);
if (typeof options === "string") {
  console.error(options);
  process.exit(2);
}
const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
log(`dockercloud-agent ${AGENT_VERSION}; may act on: ${describe(options.allow)}`);
// What the agent runs on is reported once the orchestrator adapters exist; until then only its version.
const link = startLink(options, { orchestrator: null, engine_version: null, node_id: null }, log);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => link.stop());
process.exitCode = await link.done;
