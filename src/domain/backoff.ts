/** Seconds to wait before attempt `attempts + 1`: base * 2^(attempts - 1), capped. */
export function backoffSeconds(attempts: number, baseSeconds: number, capSeconds: number): number {
  if (baseSeconds <= 0) return 0;
  const exp = Math.min(Math.max(attempts - 1, 0), 30);
  return Math.min(Math.round(baseSeconds * 2 ** exp), capSeconds);
}
