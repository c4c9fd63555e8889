import { config } from "../config";
import { encryptSecret } from "../domain/crypto";
import { ApiError } from "../http/errors";
import {
  newWebhookSecret,
  type PublicTarget,
  type TargetInput,
  type TargetSecrets,
  targetUrlProblem,
  webhookSecretProblem,
} from "./config";

export type PreparedTarget = {
  target_public: PublicTarget | null;
  target_sealed: string | null;
  /** Shown once, in the answer to the request that set it. */
  revealed: { secret: string } | null;
};

/** Checks a target, seals its secret (AES-GCM) and returns what is stored. */
export async function prepareTarget(env: Env, input: TargetInput): Promise<PreparedTarget> {
  if (input === null) return { target_public: null, target_sealed: null, revealed: null };
  const cfg = config(env);
  const urlProblem = targetUrlProblem(input.url, { allowHttpLocalhost: cfg.ALLOW_HTTP_LOCALHOST_TARGETS });
  if (urlProblem) throw new ApiError("bad_request", urlProblem);
  const secret = input.secret ?? newWebhookSecret();
  const secretProblem = webhookSecretProblem(secret);
  if (secretProblem) throw new ApiError("bad_request", secretProblem);
  const sealed = await encryptSecret(cfg.secretsKey, JSON.stringify({ secret } satisfies TargetSecrets));
  return {
    target_public: { type: "webhook", url: new URL(input.url).toString() },
    target_sealed: sealed,
    revealed: { secret },
  };
}
