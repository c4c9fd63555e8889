import { z } from "@hono/zod-openapi";
import { ACTION_KINDS } from "../domain/action";
import { fromBase64, toBase64 } from "../domain/crypto";
import { fail, ok } from "../domain/result";
import { triggerPublicId } from "../domain/trigger";
import { isVerdict } from "./http";
import type { Job } from "./job";
import { classifyStatus } from "./outcome";
import { signWebhook, webhookKey } from "./signing";
import type { Target } from "./target";
import { targetUrl } from "./url";

const Input = z
  .object({
    type: z.literal("webhook"),
    url: z.string().max(2048),
    secret: z.string().max(200).optional(),
  })
  .openapi("WebhookTarget");

const View = z.object({ type: z.literal("webhook"), url: z.string() }).openapi("WebhookTargetView");
const Secrets = z.object({ secret: z.string() });

/** Standard Webhooks secrets: "whsec_" then 24 to 64 random bytes in base64. */
function webhookSecretProblem(secret: string): string | null {
  if (!secret.startsWith("whsec_")) return 'target.secret must start with "whsec_"';
  try {
    const n = fromBase64(secret.slice(6)).byteLength;
    if (n < 24 || n > 64) return "target.secret must hold 24 to 64 bytes after whsec_";
  } catch {
    return "target.secret must be base64 after whsec_";
  }
  return null;
}

const newWebhookSecret = (): string => `whsec_${toBase64(crypto.getRandomValues(new Uint8Array(32)))}`;

/**
 * The JSON a webhook target receives. The trigger is named by its name and a non-secret id,
 * never by its uuid: that is the secret of its call URL, and receivers log what they get.
 */
export async function webhookPayload(job: Job, now: Date) {
  return {
    type: ACTION_KINDS[job.kind].webhook,
    timestamp: now.toISOString(),
    data: {
      action: job.action,
      namespace: job.namespace,
      service: {
        uuid: job.service.uuid,
        name: job.service.name,
        resource_uri: job.service.resource_uri,
        image_name: job.service.image_name,
        target_num_containers: job.service.target_num_containers,
      },
      trigger: job.trigger && { id: await triggerPublicId(job.trigger.uuid), name: job.trigger.name },
      scale_by: job.scale_by,
      target_num_containers: job.new_target_num_containers,
      trigger_body: job.trigger_body,
      reuse_volumes: job.reuse_volumes,
      image: job.image,
    },
  };
}

/**
 * A URL that receives each operation as a POST signed per Standard Webhooks,
 * with the action uuid as webhook-id, so receivers can drop a repeated
 * delivery. A secret not given is generated and shown once.
 */
export const webhookTarget: Target<z.infer<typeof Input>, z.infer<typeof View>, z.infer<typeof Secrets>> = {
  type: "webhook",
  delivery: "http",
  input: Input,
  view: View,
  secrets: Secrets,
  state: null,

  prepare(input, ctx) {
    const url = targetUrl(input.url, ctx.allowHttpLocalhost);
    if (!url.ok) return url;
    const secret = input.secret ?? newWebhookSecret();
    const problem = webhookSecretProblem(secret);
    if (problem) return fail("bad_request", problem);
    return ok({ view: { type: "webhook", url: url.value }, secrets: { secret }, revealed: { secret } });
  },

  // The HMAC key is the bytes after "whsec_": the scrubber hides them in every encoding, so the secret
  // with and without its prefix.
  secretsSent: (_view, secrets) => ({ bytes: [webhookKey(secrets.secret)] }),

  async perform({ job, target, secrets, send }) {
    const now = new Date();
    const body = JSON.stringify(await webhookPayload(job, now));
    const timestamp = Math.floor(now.getTime() / 1000);
    const signature = await signWebhook(secrets.secret, job.action.uuid, timestamp, body);
    const res = await send(target.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "dockercloud-triggers/1 (webhook)",
        "webhook-id": job.action.uuid,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signature,
      },
      body,
    });
    return isVerdict(res) ? res : classifyStatus(res.status, res.text);
  },
};
