import { z } from "zod";
import type { ActionKind } from "./action";

/**
 * The messages of an agent's connection after its hello (docs/architecture.md,
 * "The agent protocol"); the agent program keeps its own copy
 * (agent/src/protocol.ts). Whatever an agent sends is checked here: it is
 * shown to users (log lines) and changes the registry (observed counts).
 */

/** Characters of an agent's progress line or report detail that are kept. */
export const MAX_AGENT_LINE = 500;
/** Progress lines one delivery of a job may add to the action's log; later ones are dropped. */
export const MAX_PROGRESS_LINES = 200;

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
const attempt = z.number().int().min(1).max(1_000_000);
const line = z.string().transform((s) => s.slice(0, MAX_AGENT_LINE));
const count = z.number().int().min(0).max(100_000);

export const Observed = z.object({
  replicas: count.nullable(),
  desired: count,
  running: count,
  image: z.string().min(1).max(512),
});
export type Observed = z.infer<typeof Observed>;

export const AgentMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ack"), action: uuid, attempt }),
  z.object({ type: z.literal("progress"), action: uuid, line }),
  z.object({ type: z.literal("applied"), action: uuid }),
  z.object({
    type: z.literal("report"),
    action: uuid,
    attempt,
    result: z.enum(["success", "failed"]),
    detail: line,
    observed: Observed.nullable(),
  }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

/** An operation pushed to an agent: the head action of one service. */
export type AgentJob = {
  action: string;
  attempt: number;
  kind: ActionKind;
  service: string;
  scale_by: number | null;
  replicas: number | null;
  max_replicas: number;
  body: string | null;
  converge_seconds: number;
  applied: boolean;
};
