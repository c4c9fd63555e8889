import { z } from "@hono/zod-openapi";
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

const Input = z
  .object({ type: z.literal("agent"), agent: agentRef, swarm_service: swarmService })
  .openapi("AgentTarget");
const View = z
  .object({ type: z.literal("agent"), agent: z.string(), swarm_service: z.string() })
  .openapi("AgentTargetView");
export type AgentTargetView = z.infer<typeof View>;

/**
 * A service run by an orchestrator next to one of the namespace's agents. The
 * namespace's object pushes each operation to the agent over its connection
 * and waits for its report (durable-objects/namespace/agents/jobs.ts): nothing
 * is sent from the Worker, so there is no secret and no attempt to perform
 * here. That the agent exists is checked by the object when the target is
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
