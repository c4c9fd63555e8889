export type AttemptResult = {
  result: "success" | "retry" | "failed";
  detail: string;
  /** Docker Cloud target, SCALEUP: the remote count this action sets, kept for its retries. */
  remoteTarget?: number;
};

/** 2xx succeeds; 408, 429 and 5xx are worth another try; any other answer fails at once. */
export function classifyStatus(status: number, excerpt: string): AttemptResult {
  const text = excerpt.trim().replace(/\s+/g, " ").slice(0, 120);
  const tail = text ? `: ${text}` : "";
  if (status >= 200 && status < 300) return { result: "success", detail: `target answered ${status}` };
  if (status === 408 || status === 429 || status >= 500) {
    return { result: "retry", detail: `target answered ${status}${tail}` };
  }
  if (status >= 300 && status < 400) {
    return { result: "failed", detail: `target answered ${status} (redirects are not followed)` };
  }
  return { result: "failed", detail: `target answered ${status}${tail}` };
}

export function describeError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return `no answer within ${timeoutMs} ms`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `network error: ${message.slice(0, 160)}`;
}
