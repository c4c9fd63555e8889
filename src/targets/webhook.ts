import type { Job } from "../queue/messages";
import type { TargetSecrets } from "./config";
import { type AttemptResult, classifyStatus, describeError } from "./outcome";
import { signWebhook } from "./signing";

/** The JSON a webhook target receives. */
export function webhookPayload(job: Job, now: Date) {
  return {
    type: job.kind === "redeploy" ? "service.redeploy" : "service.scaleup",
    timestamp: now.toISOString(),
    data: {
      action: job.action,
      namespace: job.namespace,
      service: job.service,
      trigger: job.trigger,
      scale_by: job.scale_by,
      target_num_containers: job.new_target_num_containers,
      trigger_body: job.trigger_body,
    },
  };
}

/** Bytes of a target's answer that are read, at most: enough for an error line. */
const MAX_RESPONSE_READ = 4096;

/**
 * Delivers one attempt to a webhook target, signed per Standard Webhooks with
 * the action uuid as webhook-id, so receivers can drop a repeated delivery.
 * Redirects are not followed.
 */
export async function deliverWebhook(
  job: Job,
  url: string,
  secrets: TargetSecrets,
  timeoutMs: number,
): Promise<AttemptResult> {
  const now = new Date();
  const body = JSON.stringify(webhookPayload(job, now));
  const timestamp = Math.floor(now.getTime() / 1000);
  const signature = await signWebhook(secrets.secret, job.action.uuid, timestamp, body);
  try {
    const res = await fetch(url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
      headers: {
        "content-type": "application/json",
        "user-agent": "dockercloud-triggers/1 (webhook)",
        "webhook-id": job.action.uuid,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signature,
      },
      body,
    });
    const text = await readCapped(res);
    return classifyStatus(res.status, text);
  } catch (err) {
    return { result: "retry", detail: describeError(err, timeoutMs) };
  }
}

async function readCapped(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < MAX_RESPONSE_READ) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  await reader.cancel().catch(() => {});
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all).slice(0, 200);
}
