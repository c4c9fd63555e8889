import { config } from "../config";
import { decryptSecret } from "../domain/crypto";
import { type Hidden, secretScrubber } from "../domain/redact";
import type { Job } from "../queue/messages";
import type { DockerCloudSecrets, PublicTarget, TargetSecrets, WebhookSecrets } from "./config";
import { basicCredentials, performDockerCloud } from "./dockercloud";
import { targetFetcher } from "./http";
import { HOPS_HEADER } from "./loops";
import type { AttemptResult } from "./outcome";
import { webhookKey } from "./signing";
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
  // Every request to the target goes through one fetcher: it scrubs what the target sends back, and carries
  // the hop count, so targets that lead back here (a Docker Cloud API, a webhook at one of our trigger URLs)
  // are refused past the limit instead of looping for ever.
  const send = targetFetcher(config(env).TARGET_TIMEOUT_MS, secretScrubber(secretsSent(job.target, secrets)), {
    [HOPS_HEADER]: String(job.hops + 1),
  });
  if (job.target.type === "dockercloud") {
    return performDockerCloud(job, job.target, secrets as DockerCloudSecrets, send);
  }
  return deliverWebhook(job, job.target.url, secrets as WebhookSecrets, send);
}

/**
 * The secrets each adapter sends, as it sends them: a receiver may echo them
 * back in any encoding, and none may reach a log. A webhook's key is the bytes
 * after "whsec_" (so the secret with and without its prefix); a Docker Cloud
 * target's API key goes alone and inside the Basic credentials.
 */
function secretsSent(target: PublicTarget, secrets: TargetSecrets): Hidden {
  if (target.type === "dockercloud") {
    const { apikey } = secrets as DockerCloudSecrets;
    return { texts: [apikey], bytes: [basicCredentials(target.username, apikey)] };
  }
  return { bytes: [webhookKey((secrets as WebhookSecrets).secret)] };
}
