// Compose projects on the plain engine that scripts/swarm/up.sh starts beside the swarm (a Docker
// host with no swarm, as Compose users have one), driven with the real docker-compose 1.29 and
// the docker CLI. A project is one of the fixtures/ folders under a unique project name, so that
// runs never meet each other's containers, networks or volumes.

import { join } from "node:path";
import { ROOT, waitFor } from "../e2e/helpers.mjs";
import { compose, plainDocker, uniqueName } from "../e2e-swarm/swarm.mjs";

export const FIXTURES = join(ROOT, "e2e-docker/fixtures");
/** How long a container may take to run, or to turn healthy (1 s healthcheck interval), here. */
export const SETTLE_TIMEOUT_MS = 20_000;

/**
 * The fixture `fixture` (a folder of fixtures/) as project `<fixture>-<unique>`, with `env` for the
 * compose file's ${VARS}. Nothing runs until `up()`.
 */
export function composeProject(fixture, { env = {} } = {}) {
  const dir = join(FIXTURES, fixture);
  const name = uniqueName(fixture);
  const p = {
    name,
    dir,
    env,
    /** `docker-compose -p <name> ...args`; resolves with its stdout. */
    run: (args, opts = {}) => compose(dir, args, { project: name, env, ...opts }),
    up: () => p.run(["up", "-d", "--no-color"]),
    /** `down -v`: containers, the project's network and its named volumes. */
    down: () => p.run(["down", "-v", "--remove-orphans", "--timeout", "2"]),

    /** Ids of the service's containers (any state), as the engine labels them. */
    async containerIds(service) {
      const out = await plainDocker([
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        `label=com.docker.compose.project=${name}`,
        "--filter",
        `label=com.docker.compose.service=${service}`,
      ]);
      return out.split("\n").filter(Boolean);
    },
    /** `docker inspect` of the service's one container. */
    async inspect(service) {
      const ids = await p.containerIds(service);
      if (ids.length !== 1) throw new Error(`${name}: ${ids.length} containers for service ${service}`);
      return JSON.parse(await plainDocker(["inspect", "--type", "container", ids[0]]))[0];
    },
    /** Resolves with the inspected container once it runs (and, with `healthy`, is healthy). */
    async waitService(service, { healthy = false, timeoutMs = SETTLE_TIMEOUT_MS } = {}) {
      let last;
      return waitFor(
        `service ${service} of ${name} to run${healthy ? " healthy" : ""}`,
        async () => {
          last = await p.inspect(service);
          if (!last.State.Running) return null;
          return !healthy || last.State.Health?.Status === "healthy" ? last : null;
        },
        {
          timeoutMs,
          intervalMs: 200,
          describe: () => `state: ${JSON.stringify(last?.State?.Health?.Log?.at(-1) ?? last?.State ?? null)}`,
        },
      );
    },
    /** The project's logs (last lines), for a failure report; never throws. */
    logs: (tail = 40) => p.run(["logs", "--no-color", "--tail", String(tail)]).catch((err) => err.message),
  };
  return p;
}
