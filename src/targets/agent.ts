import { z } from "@hono/zod-openapi";
import { containerService, isComposeService } from "../domain/container-service";
import { ok } from "../domain/result";
import type { PublicTarget } from "../domain/service";
import type { Target } from "./target";

/** An agent by uuid or by name, as a client names it; stored as its uuid (names can change). */
const agentRef = z
  .string({ error: "target.agent must be the uuid or the name of an agent of the namespace" })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
    error: "target.agent must be the uuid or the name of an agent of the namespace",
  });

/** A Swarm service's name or id, as `docker service` takes it. */
const swarmService = z
  .string({ error: "target.swarm_service must be the name or the id of a Swarm service" })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, {
    error: "target.swarm_service must be the name or the id of a Swarm service (letters, digits, '-', '_', '.')",
  });

const EXACTLY_ONE =
  "an agent target names either swarm_service (a Swarm service) or container_service (a Compose service or labelled containers), not both";
const NEITHER =
  "an agent target names what its agent acts on: swarm_service (a Swarm service) or container_service (<compose project>/<compose service>, or the io.dockercloud.service label of standalone containers)";

/** What the agent acts on: exactly one of the two, checked once the fields themselves are right. */
function oneService(
  t: { swarm_service?: string | undefined; container_service?: string | undefined },
  ctx: z.RefinementCtx,
) {
  const given = (t.swarm_service !== undefined ? 1 : 0) + (t.container_service !== undefined ? 1 : 0);
  if (given !== 1) ctx.addIssue({ code: "custom", message: given === 0 ? NEITHER : EXACTLY_ONE });
}

const Input = z
  .object({
    type: z.literal("agent"),
    agent: agentRef,
    swarm_service: swarmService.optional(),
    container_service: containerService("target.container_service").optional(),
  })
  .superRefine(oneService)
  .openapi("AgentTarget", {
    description:
      "Exactly one of swarm_service (a Swarm service) and container_service (a Compose service or labelled containers).",
  });
const View = z
  .object({
    type: z.literal("agent"),
    agent: z.string(),
    swarm_service: z.string().optional(),
    container_service: z.string().optional(),
  })
  .superRefine(oneService)
  .openapi("AgentTargetView", { description: "Exactly one of swarm_service and container_service is present." });
export type AgentTargetView = z.infer<typeof View>;

/**
 * A service run by an orchestrator next to one of the namespace's agents: a
 * Swarm service, or on a plain Docker host a Compose service or standalone
 * containers labelled io.dockercloud.service. The namespace's object pushes
 * each operation to the agent over its connection and waits for its report
 * (durable-objects/namespace/agents/jobs.ts): nothing is sent from the
 * Worker, so there is no secret and no attempt to perform here. That the agent exists is checked by the object when the target is
 * set, which also replaces a name by the agent's uuid.
 */
export const agentTarget: Target<z.infer<typeof Input>, AgentTargetView, Record<string, never>> = {
  type: "agent",
  delivery: "agent",
  input: Input,
  view: View,
  secrets: z.object({}).strict() as unknown as z.ZodType<Record<string, never>>,
  state: null,
  prepare: (input) => ok({ view: { ...input }, secrets: {}, revealed: null }),
  secretsSent: () => ({}),
  perform: async () => ({
    result: "failed",
    detail: "an agent target is performed by its agent, not from the queue; set the target again",
  }),
};

/** A service's stored target, when it is an agent's. */
export function agentTargetOf(target: PublicTarget | string | null): AgentTargetView | null {
  const value = typeof target === "string" ? parse(target) : target;
  // Every call asks this of its service: another target's type answers it without the schema.
  if ((value as { type?: unknown } | null)?.type !== "agent") return null;
  const parsed = View.safeParse(value);
  return parsed.success ? parsed.data : null;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** What the agent is told to act on: the Swarm service, or the Compose service or label (container_service). */
export function orchestratorServiceOf(view: AgentTargetView): string {
  // The view's check lets exactly one of the two through.
  return view.swarm_service ?? view.container_service ?? "";
}

/** The sentence that says the target's agent no longer finds what it acts on, named as the agent knows it. */
export function orchestratorServiceGone(view: AgentTargetView): string {
  const name = orchestratorServiceOf(view);
  if (view.swarm_service !== undefined) return `the swarm service '${name}' is not on the swarm`;
  return isComposeService(name)
    ? `the Compose service '${name}' is not on its Docker host`
    : `no container labelled io.dockercloud.service=${name} is on its Docker host`;
}
