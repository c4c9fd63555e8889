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
import { selfTargetProblem } from "./loops";

export type PreparedTarget = {
  target_public: PublicTarget | null;
  target_sealed: string | null;
  /** Shown once, in the answer to the request that set it (a webhook's secret). */
  revealed: { secret: string } | null;
};

/**
 * Checks a target, seals its secret (AES-GCM) and returns what is stored.
 * `self` is the service it is set on and the origin the request reached: a
 * Docker Cloud target that designates that very service is refused.
 */
export async function prepareTarget(
  env: Env,
  input: TargetInput,
  self: { origin: string; namespace: string; serviceUuid: string },
): Promise<PreparedTarget> {
  if (input === null) return { target_public: null, target_sealed: null, revealed: null };
  const cfg = config(env);
  const urlProblem = targetUrlProblem(input.url, { allowHttpLocalhost: cfg.ALLOW_HTTP_LOCALHOST_TARGETS });
  if (urlProblem) throw new ApiError("bad_request", urlProblem);
  const url = new URL(input.url).toString();
  const seal = (secrets: TargetSecrets) => encryptSecret(cfg.secretsKey, JSON.stringify(secrets));

  if (input.type === "dockercloud") {
    const loop = selfTargetProblem(input, {
      origins: [self.origin, ...cfg.SELF_ORIGINS],
      namespace: self.namespace,
      serviceUuid: self.serviceUuid,
    });
    if (loop) throw new ApiError("bad_request", loop);
    return {
      target_public: {
        type: "dockercloud",
        url,
        username: input.username,
        namespace: input.namespace ?? null,
        service_uuid: input.service_uuid?.toLowerCase() ?? null,
      },
      target_sealed: await seal({ apikey: input.apikey }),
      revealed: null,
    };
  }
  const secret = input.secret ?? newWebhookSecret();
  const secretProblem = webhookSecretProblem(secret);
  if (secretProblem) throw new ApiError("bad_request", secretProblem);
  return { target_public: { type: "webhook", url }, target_sealed: await seal({ secret }), revealed: { secret } };
}
