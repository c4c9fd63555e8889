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

/** The lines of a stored log (newline-separated; an empty log has none). */
export const logLines = (logs: string): string[] => (logs === "" ? [] : logs.split("\n"));

/** The last `tail` lines of a stored log, as messages. */
export function tailMessages(logs: string, tail: number, fallbackMs: number): LogMessage[] {
  const lines = logLines(logs);
  return lines.slice(Math.max(0, lines.length - tail)).map((l) => logMessage(l, fallbackMs));
}
