/**
 * Stands in for the `ssh2` package in the bundle: docker-modem loads it for
 * ssh:// DOCKER_HOSTs only, and it carries native optional parts that one
 * bundled file cannot. The agent talks to a local socket or tcp:// engine.
 */
export class Client {
  constructor() {
    throw new Error("an ssh:// DOCKER_HOST is not supported by the agent; use unix:// or tcp://");
  }
}
