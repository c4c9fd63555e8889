import type Docker from "dockerode";
import { DockerOrchestrator } from "./docker.ts";
import { DockerInventorySource } from "./docker-inventory.ts";
import type { InventorySource } from "./inventory.ts";
import type { Change, Orchestrator, Progress, Service } from "./orchestrator.ts";
import type { Credentials } from "./registry-lookup.ts";
import { SwarmOrchestrator } from "./swarm.ts";
import { SwarmInventorySource } from "./swarm-inventory.ts";

/**
 * Which orchestrator the agent drives: the one its command line names, or else the engine's own
 * answer: Swarm when the engine is an active swarm manager, a plain Docker host otherwise. The
 * engine may not answer when the agent starts (it connects anyway): the choice is made at the
 * first answer, and kept for the life of the process.
 */
export type Kind = "swarm" | "docker";

type InfoJson = { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } };

export const kindOf = (info: InfoJson): Kind =>
  info.Swarm?.LocalNodeState === "active" && info.Swarm.ControlAvailable === true ? "swarm" : "docker";

type Pair = { orchestrator: Orchestrator<unknown>; inventory: InventorySource };

export class Chooser {
  private chosen: Promise<Pair> | null = null;
  private current: Pair | null = null;
  private readonly docker: Docker;
  private readonly make: (kind: Kind) => Pair;
  private readonly fixed: Kind | null;

  constructor(docker: Docker, fixed: Kind | null, credentials: Credentials, settleMs: number) {
    this.docker = docker;
    this.fixed = fixed;
    this.make = (kind) =>
      kind === "swarm"
        ? { orchestrator: new SwarmOrchestrator(docker, credentials), inventory: new SwarmInventorySource(docker) }
        : {
            orchestrator: new DockerOrchestrator(docker, credentials, { settleMs }),
            inventory: new DockerInventorySource(docker),
          };
  }

  /** The orchestrator, once known; a failure to ask the engine is asked again at the next call. */
  get(): Promise<Pair> {
    this.chosen ??= (async () => {
      this.current = this.make(this.fixed ?? kindOf((await this.docker.info()) as InfoJson));
      return this.current;
    })();
    this.chosen.catch(() => {
      this.chosen = null;
    });
    return this.chosen;
  }

  /** An orchestrator that asks for the choice at each call. */
  orchestrator(): Orchestrator<unknown> {
    const o = async () => (await this.get()).orchestrator;
    return {
      describe: async () => (await o()).describe(),
      // Only called after `find`, so the choice is made by then.
      unknownService: (ref) => this.current?.orchestrator.unknownService(ref) ?? `no service '${ref}'`,
      find: async (ref) => (await o()).find(ref),
      lookUp: async (ref) => (await o()).lookUp(ref),
      plan: async (s: Service, c: Change) => (await o()).plan(s, c),
      apply: async (s: Service, c: Change, a: string, p: Progress, d: number) => (await o()).apply(s, c, a, p, d),
      applied: async (s: Service, c: Change, a: string, p: Progress, d: number) => (await o()).applied(s, c, a, p, d),
      check: async (t) => (await o()).check(t),
      observe: async (s) => (await o()).observe(s),
    };
  }

  /** An inventory source that asks for the choice at each read. */
  inventory(): InventorySource {
    return {
      read: async (ids) => (await this.get()).inventory.read(ids),
      watch: async (changed) => (await this.get()).inventory.watch(changed),
    };
  }
}
