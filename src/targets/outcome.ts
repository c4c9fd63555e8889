import { quote } from "../domain/text";
import type { Verdict } from "./job";

/** Characters of a target's answer shown in a log line. */
const EXCERPT = 120;

/**
 * 2xx succeeds; 408, 429 and 5xx are worth another try; any other answer fails
 * at once. The answer's excerpt is quoted: the target wrote it.
 */
export function classifyStatus(status: number, answer: string): Verdict {
  let text = answer.trim().replace(/\s+/g, " ").slice(0, EXCERPT);
  if (/[\ud800-\udbff]$/.test(text)) text = text.slice(0, -1); // not half a character
  const tail = text ? `: ${quote(text)}` : "";
  if (status >= 200 && status < 300) return { result: "success", detail: `target answered ${status}` };
  if (status === 408 || status === 429 || status >= 500) {
    return { result: "retry", detail: `target answered ${status}${tail}` };
  }
  if (status >= 300 && status < 400) {
    return { result: "failed", detail: `target answered ${status} (redirects are not followed)` };
  }
  return { result: "failed", detail: `target answered ${status}${tail}` };
}

/** A failed request, for the log; its message is scrubbed of the target's secrets, then quoted. */
export function describeError(err: unknown, timeoutMs: number, scrub: (text: string) => string = (t) => t): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return `no answer within ${timeoutMs} ms`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `network error: ${quote(scrub(message).slice(0, 160))}`;
}
