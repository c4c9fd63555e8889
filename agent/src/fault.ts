/**
 * A crash on purpose, for the tests of what a crash leaves: with DOCKERCLOUD_AGENT_FAULT set to a
 * point's name, the process kills itself with SIGKILL on reaching that point, as the kernel's OOM
 * killer or a power cut would stop it (no handler runs, nothing is flushed). Unset, it does nothing.
 * Points: `docker:old-set-aside` (docker-rollout.ts: the old container stopped and renamed aside,
 * the new one not yet under its name nor started).
 */
export function faultPoint(point: string): void {
  if (process.env.DOCKERCLOUD_AGENT_FAULT === point) process.kill(process.pid, "SIGKILL");
}
