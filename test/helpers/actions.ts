import { afterEach, expect, vi } from "vitest";
import { as, type User } from "./api";

/** How long a test waits for an action to reach a state. */
export const WAIT = { timeout: 15_000, interval: 50 };

/** The states an action ends in. */
export const FINISHED = ["Success", "Failed", "Canceled"];

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Releases for resolvers a test holds; run after each test even when it fails. */
const releases: (() => void)[] = [];
afterEach(() => {
  for (const release of releases.splice(0)) release();
});

/** A promise a mocked target can wait on, released by the test (or after it). */
export function gate(): { wait: Promise<void>; release: () => void } {
  let release!: () => void;
  const wait = new Promise<void>((r) => {
    release = r;
  });
  releases.push(() => release());
  return { wait, release };
}

/** GET an object the user may read; it must answer 200. */
export async function readJson<T>(user: User, uri: string): Promise<T> {
  const r = await as(user, "GET", uri);
  expect(r.status, uri).toBe(200);
  return r.json<T>();
}

/** Waits until the action at `uri` is in `state`, and returns it. */
export const waitForState = <T extends { state: string }>(user: User, uri: string, state: string, opts = WAIT) =>
  vi.waitUntil(async () => {
    const a = await readJson<T>(user, uri);
    return a.state === state ? a : false;
  }, opts);

/** The keys of an action object, sorted; a call's answer keeps them all, so it has one shape whatever it joined. */
export const ACTION_KEYS = [
  "action",
  "can_be_canceled",
  "can_be_retried",
  "end_date",
  "ip",
  "is_user_action",
  "location",
  "method",
  "object",
  "path",
  "resource_uri",
  "retry_of",
  "start_date",
  "state",
  "trigger",
  "user",
  "user_agent",
  "uuid",
];

/** An action's log, read where the clients read it (GET <action>logs/): its lines, joined as they are stored. */
export async function logsOf(user: User, actionUri: string): Promise<string> {
  const r = await as(user, "GET", `${actionUri}logs/?tail=10000`);
  expect(r.status, `${actionUri}logs/`).toBe(200);
  const body = await r.json<{ objects: { log: string }[] }>();
  return body.objects.map((o) => o.log).join("\n");
}
