import { triggerPublicId } from "../domain/trigger";
import type { Job } from "../queue/messages";
import type { WebhookSecrets } from "./config";
import { isAttemptResult, type TargetFetch } from "./http";
import { type AttemptResult, classifyStatus } from "./outcome";
import { signWebhook } from "./signing";

const WEBHOOK_TYPE = {
  redeploy: "service.redeploy",
  scaleup: "service.scaleup",
  scale: "service.scale",
} as const;

/**
 * The JSON a webhook target receives. The trigger is named by its name and a non-secret id,
 * never by its uuid: that is the secret of its call URL, and receivers log what they get.
 */
export async function webhookPayload(job: Job, now: Date) {
  return {
    type: WEBHOOK_TYPE[job.kind],
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
    },
  };
}

/**
 * Delivers one attempt to a webhook target, signed per Standard Webhooks with
 * the action uuid as webhook-id, so receivers can drop a repeated delivery.
 * `send` scrubs the secret from whatever the receiver answers.
 */
export async function deliverWebhook(
  job: Job,
  url: string,
  secrets: WebhookSecrets,
  send: TargetFetch,
): Promise<AttemptResult> {
  const now = new Date();
  const body = JSON.stringify(await webhookPayload(job, now));
  const timestamp = Math.floor(now.getTime() / 1000);
  const signature = await signWebhook(secrets.secret, job.action.uuid, timestamp, body);
  const res = await send(url, {
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
  return isAttemptResult(res) ? res : classifyStatus(res.status, res.text);
}
