import { fromBase64, randomHex, sha256Hex, toBase64 } from "./crypto";

/**
 * Stream tickets: a browser cannot set Authorization on a WebSocket, and credentials in a URL end
 * up in every proxy's access log. A page asks for a ticket with its credentials in a header, then
 * dials the stream with `?ticket=`: the ticket works once, for one user and one namespace, for
 * STREAM_TICKET_SECONDS.
 *
 * What is stored for a ticket cannot be used without the ticket: its row is found by the ticket's
 * SHA-256, and holds the caller's credentials sealed with a key derived from the ticket itself,
 * which is never stored. Redeeming a ticket unseals them and checks them as a Basic header is
 * checked, so a key revoked after the ticket was issued opens nothing, and a stream opened with a
 * ticket is tagged with its key and closes when the key is revoked, as any other.
 */
export const STREAM_TICKET_SECONDS = 60;
/** Tickets a user may hold unused at once (each page holds one or two for a moment). */
export const MAX_LIVE_TICKETS_PER_USER = 30;

/** `dst_`, two hex digits naming the user's shard, 256 random bits in hex. */
export const STREAM_TICKET = /^dst_([0-9a-f]{2})[0-9a-f]{64}$/;

export type TicketCredentials = { username: string; apikey: string };

const encoder = new TextEncoder();

/** The shard of a user's tickets: every ticket of one user is in one place, so a cap can count them. */
export async function ticketShard(username: string): Promise<string> {
  return (await sha256Hex(`stream-ticket-shard\n${username}`)).slice(0, 2);
}

export async function newTicket(username: string): Promise<string> {
  return `dst_${await ticketShard(username)}${randomHex(32)}`;
}

/** The shard a ticket names, or null for anything that is not a ticket. */
export function shardOf(ticket: string): string | null {
  return STREAM_TICKET.exec(ticket)?.[1] ?? null;
}

/** The row id of a ticket: its SHA-256 (a ticket is 256 random bits: no slow hash needed). */
export const ticketId = (ticket: string): Promise<string> => sha256Hex(`stream-ticket-id\n${ticket}`);

async function ticketKey(ticket: string): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey("raw", encoder.encode(ticket), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode("stream-ticket/v1") },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** The credentials, sealed with the ticket's own key: "v1.<iv>.<ciphertext>" in base64. */
export async function sealCredentials(ticket: string, creds: TicketCredentials): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plain = encoder.encode(JSON.stringify([creds.username, creds.apikey]));
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await ticketKey(ticket), plain);
  return `v1.${toBase64(iv)}.${toBase64(sealed)}`;
}

/** The credentials a ticket sealed, or null when the row was not sealed with this ticket. */
export async function openCredentials(ticket: string, sealed: string): Promise<TicketCredentials | null> {
  const [version, iv, data] = sealed.split(".");
  if (version !== "v1" || !iv || !data) return null;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: fromBase64(iv) },
      await ticketKey(ticket),
      fromBase64(data),
    );
    const [username, apikey] = JSON.parse(new TextDecoder().decode(plain)) as [unknown, unknown];
    return typeof username === "string" && typeof apikey === "string" ? { username, apikey } : null;
  } catch {
    return null;
  }
}
