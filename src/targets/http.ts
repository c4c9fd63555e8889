import { readAtMost } from "../domain/bytes";
import type { Scrub } from "../domain/redact";
import type { Verdict } from "./job";
import { describeError } from "./outcome";

/** Bytes of a target's answer that are read, at most. */
export const MAX_RESPONSE_READ = 64 * 1024;

/** A target's answer, its secrets already scrubbed. */
export type TargetResponse = { status: number; text: string; header: (name: string) => string | null };

/** One request to a target; see `targetFetcher`. */
export type TargetFetch = (url: string, init: RequestInit) => Promise<TargetResponse | Verdict>;

/**
 * Requests to one target: bounded in time, redirects not followed, the answer
 * read up to a limit, and the target's secrets scrubbed from all that comes
 * back (the answer, its headers, a network error's message) before anything
 * can reach a log; `headers` go on every request. A network error or timeout
 * comes back as a retryable verdict instead of a throw.
 */
export function targetFetcher(timeoutMs: number, scrub: Scrub, headers: Record<string, string> = {}): TargetFetch {
  return async (url, init) => {
    const sent = new Headers(init.headers);
    for (const [name, value] of Object.entries(headers)) sent.set(name, value);
    try {
      const res = await fetch(url, {
        ...init,
        headers: sent,
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
      const { text, cut } = await readCapped(res);
      return {
        status: res.status,
        text: scrub(text, cut),
        header: (name) => {
          const value = res.headers.get(name);
          return value === null ? null : scrub(value);
        },
      };
    } catch (err) {
      return { result: "retry", detail: describeError(err, timeoutMs, scrub) };
    }
  };
}

export const isVerdict = (r: TargetResponse | Verdict): r is Verdict => "result" in r;

async function readCapped(res: Response): Promise<{ text: string; cut: boolean }> {
  if (!res.body) return { text: "", cut: false };
  const { bytes, ended } = await readAtMost(res.body, MAX_RESPONSE_READ);
  return { text: new TextDecoder().decode(bytes), cut: !ended };
}
