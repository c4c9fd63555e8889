import { z } from "@hono/zod-openapi";
import { fromBase64, toBase64 } from "../domain/crypto";
import { refuseUnsafeText } from "../domain/text";

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

const NAMESPACE = /^[a-z0-9]{4,30}$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Any server speaking the Docker Cloud service API, this project included. */
export const DockerCloudTargetInput = z
  .object({
    type: z.literal("dockercloud"),
    url: z.string().max(2048),
    // Both go into an Authorization header, which cannot carry control characters.
    username: z.string().min(1).max(100).superRefine(refuseUnsafeText("target.username")),
    apikey: z.string().min(1).max(256).superRefine(refuseUnsafeText("target.apikey")),
    namespace: z
      .string()
      .regex(NAMESPACE, { error: "target.namespace must be 4 to 30 of a-z0-9" })
      .nullable()
      .optional(),
    service_uuid: z.string().regex(UUID, { error: "target.service_uuid must be a uuid" }).nullable().optional(),
  })
  .openapi("DockerCloudTarget");

export const TargetInput = z
  .discriminatedUnion("type", [WebhookTargetInput, DockerCloudTargetInput], {
    error: 'target.type must be "webhook" or "dockercloud" (or target must be null)',
  })
  .nullable()
  .openapi("TargetInput");
export type TargetInput = z.infer<typeof TargetInput>;

/** What the API shows of a target: never its secret or API key. */
export type PublicWebhookTarget = { type: "webhook"; url: string };
export type PublicDockerCloudTarget = {
  type: "dockercloud";
  url: string;
  username: string;
  namespace: string | null;
  service_uuid: string | null;
};
export type PublicTarget = PublicWebhookTarget | PublicDockerCloudTarget;

/** What is sealed with AES-GCM before it is stored. */
export type WebhookSecrets = { secret: string };
export type DockerCloudSecrets = { apikey: string };
export type TargetSecrets = WebhookSecrets | DockerCloudSecrets;

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
