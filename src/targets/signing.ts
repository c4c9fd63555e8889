import { fromBase64, toBase64 } from "../domain/crypto";

/** The HMAC key of a Standard Webhooks secret: the bytes of the base64 after "whsec_". */
export const webhookKey = (secret: string): Uint8Array => fromBase64(secret.replace(/^whsec_/, ""));

/**
 * Standard Webhooks signature: HMAC-SHA256 over "<id>.<timestamp>.<body>"
 * with the base64 part of a "whsec_" secret as the key, sent as "v1,<base64>".
 */
export async function signWebhook(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", webhookKey(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestamp}.${body}`));
  return `v1,${toBase64(mac)}`;
}
