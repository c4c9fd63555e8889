import { type AttemptResult, describeError } from "./outcome";

/** Bytes of a target's answer that are read, at most. */
export const MAX_RESPONSE_READ = 64 * 1024;

export type TargetResponse = { status: number; headers: Headers; text: string };

/**
 * One request to a target: bounded in time, redirects not followed, the
 * answer read up to a limit. A network error or timeout comes back as a
 * retryable AttemptResult instead of a throw.
 */
export async function targetFetch(
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<TargetResponse | AttemptResult> {
  try {
    const res = await fetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, headers: res.headers, text: await readCapped(res) };
  } catch (err) {
    return { result: "retry", detail: describeError(err, timeoutMs) };
  }
}

export const isAttemptResult = (r: TargetResponse | AttemptResult): r is AttemptResult => "result" in r;

async function readCapped(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < MAX_RESPONSE_READ) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  await reader.cancel().catch(() => {});
  const all = new Uint8Array(Math.min(size, MAX_RESPONSE_READ));
  let at = 0;
  for (const c of chunks) {
    const part = c.subarray(0, all.byteLength - at);
    all.set(part, at);
    at += part.byteLength;
  }
  return new TextDecoder().decode(all);
}
