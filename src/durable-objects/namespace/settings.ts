import type { Config } from "../../config";
import type { AgentJobSettings } from "./agents/jobs";
import type { AttemptSettings } from "./attempts";

/**
 * How long a started attempt may be running: its target timeout (two
 * requests for a Docker Cloud target's scale) plus a margin.
 */
const attemptWindowMs = (targetTimeoutMs: number) => 3 * targetTimeoutMs + 5_000;

/** The queue's attempts, as the Worker's settings say. */
export const attemptSettings = (cfg: Config): AttemptSettings => ({
  windowMs: attemptWindowMs(cfg.TARGET_TIMEOUT_MS),
  maxAttempts: cfg.MAX_ATTEMPTS,
  retryBaseSeconds: cfg.RETRY_BASE_DELAY_SECONDS,
  retryMaxSeconds: cfg.RETRY_MAX_DELAY_SECONDS,
});

/** Agents' jobs, as the Worker's settings say. */
export const agentJobSettings = (cfg: Config): AgentJobSettings => ({
  waitMs: cfg.AGENT_WAIT_SECONDS * 1000,
  convergeSeconds: cfg.AGENT_CONVERGE_SECONDS,
  maxDeliveries: cfg.MAX_ATTEMPTS,
});
