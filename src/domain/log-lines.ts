/**
 * An action's log as the streams and the logs route give it: one message per
 * line, Docker Cloud's shape (`{"type": "log", "log", "timestamp"}`, the
 * timestamp in whole seconds, as Go decodes it). Every line is written with
 * its time first (ISO 8601); a line without one takes `fallback`.
 */
export type LogMessage = { type: "log"; log: string; timestamp: number };

/** Lines `tail` gives when none is asked for (Docker Cloud's default). */
export const DEFAULT_TAIL = 300;
/** The most lines one request may ask for. */
export const MAX_TAIL = 10_000;

const STAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) /;

export function logMessage(line: string, fallbackMs: number): LogMessage {
  const stamp = STAMP.exec(line);
  const at = stamp ? Date.parse(stamp[1] as string) : Number.NaN;
  return { type: "log", log: line, timestamp: Math.floor((Number.isNaN(at) ? fallbackMs : at) / 1000) };
}

/** Stored lines, as messages. */
export const logMessages = (lines: string[], fallbackMs: number): LogMessage[] =>
  lines.map((l) => logMessage(l, fallbackMs));
