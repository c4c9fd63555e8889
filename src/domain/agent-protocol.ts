import { z } from "zod";
import type { ActionKind } from "./action";
import type { ImageToDeploy } from "./registry-hook";
import { count, imageName } from "./service";
import { refuseUnsafeText } from "./text";

/**
 * The messages of an agent's connection (docs/architecture.md, "The agent
 * protocol"); the agent program keeps its own copy (agent/src/protocol.ts).
 * Whatever an agent sends is checked here, with the same rules as the same
 * field coming from the API: it is shown to users (log lines, the agent's
 * object) and changes the registry (observed counts and image).
 */

/** Characters of an agent's progress line or report detail that are kept. */
export const MAX_AGENT_LINE = 500;
/** Characters of each field of a hello. */
export const MAX_HELLO_FIELD = 100;

/**
 * What one delivery of a job may add to its action's log (progress lines,
 * late reports); past it, lines are dropped and counted, said once. The
 * action's own budget (action-logs.ts) bounds all its deliveries together.
 */
export const DELIVERY_LOG_BUDGET = { lines: 200, bytes: 64 * 1024 } as const;

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, {
  error: "action must be an action's uuid, in lowercase",
});
const attempt = z.number().int().min(1).max(1_000_000);
// Kept as sent, and written into logs as a JSON string literal (text.ts quote): one line whatever it holds.
const line = z.string().transform((s) => s.slice(0, MAX_AGENT_LINE));

/** What the orchestrator runs after an operation: the same checks as a user's image_name and counts. */
export const Observed = z.object({
  replicas: count("observed.replicas").nullable(),
  desired: count("observed.desired"),
  running: count("observed.running"),
  image: imageName("observed.image"),
});
export type Observed = z.infer<typeof Observed>;

/** Text a hello reports, shown to users as is: short, and nothing a terminal would misread. */
const helloField = (field: string) =>
  z
    .string({ error: `${field} must be a string or null` })
    .max(MAX_HELLO_FIELD, { error: `${field} must be at most ${MAX_HELLO_FIELD} characters` })
    .superRefine(refuseUnsafeText(field))
    .nullable()
    .optional()
    .transform((v) => (v ? v : null));

/** The first message of a connection: no job goes to a connection before it. */
export const Hello = z.object({
  type: z.literal("hello"),
  agent_version: helloField("agent_version"),
  orchestrator: helloField("orchestrator"),
  engine_version: helloField("engine_version"),
  node_id: helloField("node_id"),
});
export type Hello = z.infer<typeof Hello>;

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
    // Checked apart (Observed): a report whose observed state is refused still ends its action.
    observed: z.unknown(),
  }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

/** The first problem zod found, as one sentence naming the field. */
export function firstProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "invalid message";
  const path = issue.path.join(".");
  // The schemas' own messages name their field ("observed.image is not ..."); zod's defaults do not.
  return path === "" || issue.message.includes(path) ? issue.message : `${path}: ${issue.message}`;
}

/** An operation pushed to an agent: the head action of one service. */
export type AgentJob = {
  action: string;
  attempt: number;
  kind: ActionKind;
  /** What the agent acts on, as the target names it: its swarm_service, or its container_service. */
  service: string;
  scale_by: number | null;
  replicas: number | null;
  max_replicas: number;
  body: string | null;
  converge_seconds: number;
  applied: boolean;
  /** redeploy of a registry push: the image to deploy, verified against the registry first; null otherwise. */
  image: ImageToDeploy | null;
};
