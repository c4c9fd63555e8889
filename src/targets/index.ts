import { z } from "@hono/zod-openapi";
import { config } from "../config";
import { decryptSecret, encryptSecret } from "../domain/crypto";
import { secretScrubber } from "../domain/redact";
import { fail, ok, type Result } from "../domain/result";
import type { PublicTarget } from "../domain/service";
import { agentTarget } from "./agent";
import { dockerCloudTarget } from "./dockercloud";
import { targetFetcher } from "./http";
import type { AttemptResult, Job } from "./job";
import { HOPS_HEADER } from "./loops";
import type { PrepareContext, Target, TargetSchema } from "./target";
import { webhookTarget } from "./webhook";

/**
 * Every kind of target. Adding one is its adapter file plus its line here:
 * the input union, the view union, checking, sealing and performing follow.
 */
const ADAPTERS = [registered(webhookTarget), registered(dockerCloudTarget), registered(agentTarget)] as const;
const BY_TYPE = new Map(ADAPTERS.map((a) => [a.type, a]));
const TYPES = ADAPTERS.map((a) => `"${a.type}"`).join(" or ");

/** The `type` of every kind of target. */
export const TARGET_TYPES: readonly string[] = ADAPTERS.map((a) => a.type);

/** The types whose operations the queue's consumer performs over HTTP (the others go to an agent). */
export const HTTP_TARGET_TYPES: readonly string[] = ADAPTERS.filter((a) => a.delivery === "http").map((a) => a.type);

/** A service's `target` as a client sends it; `null` is the embedded default (the registry only). */
export const TargetInput = z
  .discriminatedUnion("type", [ADAPTERS[0].input, ...ADAPTERS.slice(1).map((a) => a.input)], {
    error: `target.type must be ${TYPES} (or target must be null)`,
  })
  .nullable()
  .openapi("TargetInput");
export type TargetInput = z.infer<typeof TargetInput>;

/** A service's `target` as the API shows it (never a secret), or null. */
export const TargetView = z
  .union([ADAPTERS[0].view, ...ADAPTERS.slice(1).map((a) => a.view)])
  .nullable()
  .openapi("TargetView");

export type PreparedTarget = {
  target_public: PublicTarget | null;
  target_sealed: string | null;
  /** Shown once, in the answer to the request that set it (a webhook's secret). */
  revealed: Record<string, string> | null;
};

/**
 * Checks a target and seals its secrets (AES-GCM). `self` is the service it is
 * set on and the origin the request reached: a target that designates that
 * very service is refused.
 */
export async function prepareTarget(
  env: Env,
  input: TargetInput,
  self: { origin: string; namespace: string; serviceUuid: string },
): Promise<Result<PreparedTarget>> {
  if (input === null) return ok({ target_public: null, target_sealed: null, revealed: null });
  const adapter = typeof input.type === "string" ? BY_TYPE.get(input.type) : undefined;
  if (!adapter) return fail("bad_request", `target.type must be ${TYPES} (or target must be null)`);
  const cfg = config(env);
  const prepared = adapter.prepare(input, {
    allowHttpLocalhost: cfg.ALLOW_HTTP_LOCALHOST_TARGETS,
    self: { origins: [self.origin, ...cfg.SELF_ORIGINS], namespace: self.namespace, serviceUuid: self.serviceUuid },
  });
  if (!prepared.ok) return prepared;
  const { view, secrets, revealed } = prepared.value;
  const sealed = await encryptSecret(cfg.secretsKey, JSON.stringify(secrets));
  return ok({ target_public: view, target_sealed: sealed, revealed });
}

/** Performs one attempt of a job against the service's target. */
export async function perform(env: Env, job: Job): Promise<AttemptResult> {
  if (job.target === null) return { result: "success", detail: "no target configured; applied to the registry only" };
  const adapter = BY_TYPE.get(job.target.type);
  if (!adapter)
    return { result: "failed", detail: `the target type ${job.target.type} is not supported; set the target again` };
  let secrets: unknown;
  try {
    secrets = JSON.parse(await decryptSecret(config(env).secretsKey, job.target_sealed ?? ""));
  } catch {
    return {
      result: "failed",
      detail: "the target's secret cannot be read (was SECRETS_KEY changed?); set the target again",
    };
  }
  return adapter.perform(job, secrets, env);
}

/** An adapter behind one untyped face: what the core stores is read back through the adapter's own schemas. */
type Registered = {
  type: string;
  delivery: "http" | "agent";
  input: TargetSchema<string>;
  view: z.ZodType;
  prepare(
    input: unknown,
    ctx: PrepareContext,
  ): Result<{ view: PublicTarget; secrets: unknown; revealed: Record<string, string> | null }>;
  perform(job: Job, secrets: unknown, env: Env): Promise<AttemptResult>;
};

function registered<I extends { type: string }, V extends PublicTarget, S, St>(t: Target<I, V, S, St>): Registered {
  return {
    type: t.type,
    delivery: t.delivery,
    input: t.input,
    view: t.view,
    prepare(input, ctx) {
      const parsed = t.input.safeParse(input);
      if (!parsed.success) return fail("bad_request", `target: ${parsed.error.issues[0]?.message ?? "invalid"}`);
      return t.prepare(parsed.data, ctx);
    },
    async perform(job, rawSecrets, env) {
      const view = t.view.safeParse(job.target);
      const secrets = t.secrets.safeParse(rawSecrets);
      const state = job.target_state === null || !t.state ? null : t.state.safeParse(parseJson(job.target_state));
      if (!view.success || !secrets.success || (state && !state.success)) {
        return { result: "failed", detail: `the stored ${t.type} target cannot be read; set the target again` };
      }
      // Every request to the target goes through one fetcher: it scrubs what the target sends back, and
      // carries the hop count, so targets that lead back here (a Docker Cloud API, a webhook at one of our
      // trigger URLs) are refused past the limit instead of looping for ever.
      const send = targetFetcher(
        config(env).TARGET_TIMEOUT_MS,
        secretScrubber(t.secretsSent(view.data, secrets.data)),
        {
          [HOPS_HEADER]: String(job.hops + 1),
        },
      );
      const { state: kept, ...verdict } = await t.perform({
        job,
        target: view.data,
        secrets: secrets.data,
        state: state?.data ?? null,
        send,
      });
      return kept === undefined ? verdict : { ...verdict, state: JSON.stringify(kept) };
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
