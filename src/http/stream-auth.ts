import { sha256Hex } from "../domain/crypto";
import { type Credentials, credentialsHold, parseAuthorization } from "./credentials";
import { ApiError } from "./errors";

/** Whether `apikey` is a key of the user `username`. */
export type VerifyUser = (username: string, apikey: string) => Promise<boolean>;

/** A stream's caller: the user, and the SHA-256 of its key (the streams it opens are tagged with it). */
export type StreamCaller = { user: string; keyHash: string };

/**
 * Credentials refused a moment ago, answered from memory: a client that
 * re-dials in a loop (the Python SDK re-dials at once after any close) costs
 * one lookup here, not a trip to storage. Per isolate; bounded.
 */
const REFUSED_FOR_MS = 5_000;
const MAX_REMEMBERED = 10_000;
const refused = new Map<string, number>();

function refusedRecently(fingerprint: string, now: number): boolean {
  const until = refused.get(fingerprint);
  if (until === undefined) return false;
  if (until > now) return true;
  refused.delete(fingerprint);
  return false;
}

function remember(fingerprint: string, now: number): void {
  if (refused.size >= MAX_REMEMBERED) refused.delete(refused.keys().next().value as string);
  refused.set(fingerprint, now + REFUSED_FOR_MS);
}

const UNAUTHORIZED = "authentication required: send Authorization: Basic base64(username:apikey)";

/**
 * The caller of a stream or of an action's log: the Authorization header as
 * for REST, or, since Go's GetLogs sends no header, `?user=<user>&token=<apikey>`.
 * Every refusal is a 401 that echoes neither.
 */
export async function streamCaller(
  header: string | undefined,
  query: URLSearchParams,
  verify: VerifyUser,
): Promise<StreamCaller> {
  const creds = header
    ? parseAuthorization(header)
    : query.get("user") !== null && query.get("token") !== null
      ? { username: query.get("user") as string, apikey: query.get("token") as string }
      : null;
  if (!creds) throw new ApiError("unauthorized", UNAUTHORIZED);
  return verifiedCaller(creds, verify);
}

/**
 * The caller whose credentials these are, or the 401 every refused stream gets. A stream ticket's
 * credentials come through here too, when it is redeemed (routes/streams.ts).
 */
export async function verifiedCaller(creds: Credentials, verify: VerifyUser): Promise<StreamCaller> {
  const keyHash = await sha256Hex(creds.apikey);
  const fingerprint = await sha256Hex(`${creds.username}\n${keyHash}`);
  const now = Date.now();
  const valid = !refusedRecently(fingerprint, now) && (await credentialsHold(creds, verify));
  if (!valid) {
    remember(fingerprint, now);
    throw new ApiError("unauthorized", "invalid username or API key");
  }
  return { user: creds.username, keyHash };
}
