import { config } from "../config";
import { decryptSecret } from "../domain/crypto";
import type { Job } from "../queue/messages";
import type { DockerCloudSecrets, TargetSecrets, WebhookSecrets } from "./config";
import { performDockerCloud } from "./dockercloud";
import type { AttemptResult } from "./outcome";
import { deliverWebhook } from "./webhook";

/** Performs one attempt of a job against the service's target. */
export async function perform(env: Env, job: Job): Promise<AttemptResult> {
  if (job.target === null) {
    return { result: "success", detail: "no target configured; applied to the registry only" };
  }
  let secrets: TargetSecrets;
  try {
    secrets = JSON.parse(await decryptSecret(config(env).secretsKey, job.target_sealed ?? "")) as TargetSecrets;
  } catch {
    return {
      result: "failed",
      detail: "the target's secret cannot be read (was SECRETS_KEY changed?); set the target again",
    };
  }
  const timeout = config(env).TARGET_TIMEOUT_MS;
  if (job.target.type === "dockercloud") {
    return performDockerCloud(job, job.target, secrets as DockerCloudSecrets, timeout);
  }
  return deliverWebhook(job, job.target.url, secrets as WebhookSecrets, timeout);
}
