/**
 * How long to wait before dialling again after `failures` failed attempts in
 * a row: exponential from `baseMs`, capped at `maxMs`, with full jitter (a
 * random point in [0, delay]) so that many agents cut off at once do not all
 * come back at the same moment.
 */
export function reconnectDelayMs(failures: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(random() * ceiling);
}
