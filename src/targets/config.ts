import { z } from "@hono/zod-openapi";
import { fromBase64, toBase64 } from "../domain/crypto";

/**
 * Where a service's operations are sent (the service's `target` field).
 * `null` is the embedded default: the operation is applied to the registry only.
 */
export const WebhookTargetInput = z
  .object({
    type: z.literal("webhook"),
    url: z.string().max(2048),
    secret: z.string().max(200).optional(),
  })
  .openapi("WebhookTarget");

export const TargetInput = z
  .discriminatedUnion("type", [WebhookTargetInput], {
    error: 'target.type must be "webhook" (or target must be null)',
  })
  .nullable()
  .openapi("TargetInput");
export type TargetInput = z.infer<typeof TargetInput>;

/** What the API shows of a target: never its secret. */
export type PublicTarget = { type: "webhook"; url: string };
/** What is sealed with AES-GCM before it is stored. */
export type TargetSecrets = { secret: string };

export type TargetRules = { allowHttpLocalhost: boolean };

/** A problem with a target URL, or null when it may be used. */
export function targetUrlProblem(raw: string, rules: TargetRules): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "target.url is not a valid absolute URL";
  }
  if (url.username || url.password) return "target.url must not carry credentials";
  if (url.protocol === "https:") return null;
  const local = url.hostname === "localhost" || url.hostname === "127.0.0.1";
  if (url.protocol === "http:" && local) {
    return rules.allowHttpLocalhost
      ? null
      : "target.url must use https:// (http://localhost is allowed only when ALLOW_HTTP_LOCALHOST_TARGETS is on)";
  }
  return "target.url must use https://";
}

/** Standard Webhooks secrets: "whsec_" then 24 to 64 random bytes in base64. */
export function webhookSecretProblem(secret: string): string | null {
  if (!secret.startsWith("whsec_")) return 'target.secret must start with "whsec_"';
  try {
    const n = fromBase64(secret.slice(6)).byteLength;
    if (n < 24 || n > 64) return "target.secret must hold 24 to 64 bytes after whsec_";
  } catch {
    return "target.secret must be base64 after whsec_";
  }
  return null;
}

export function newWebhookSecret(): string {
  return `whsec_${toBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
}
