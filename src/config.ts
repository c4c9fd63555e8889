import { z } from "zod";
import { canonicalOrigin } from "./domain/origins";

const seconds = z.coerce.number().min(0).max(43_200);
/** The longest retention of finished actions a deployment or a namespace may set: ten years. */
export const MAX_RETENTION_DAYS = 3650;

/** The Worker's settings, read from `vars` and secrets and validated once. */
const Config = z.object({
  RETRY_BASE_DELAY_SECONDS: seconds.default(5),
  RETRY_MAX_DELAY_SECONDS: seconds.default(300),
  TARGET_TIMEOUT_MS: z.coerce.number().int().min(1).max(120_000).default(10_000),
  MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(7),
  DISPATCH_LEASE_SECONDS: z.coerce.number().int().min(1).max(86_400).default(30),
  MAX_TRIGGERS_PER_SERVICE: z.coerce.number().int().min(1).max(100_000).default(100),
  MAX_TARGET_HOPS: z.coerce.number().int().min(0).max(100).default(5),
  AGENT_WAIT_SECONDS: z.coerce.number().int().min(1).max(604_800).default(3600),
  AGENT_CONVERGE_SECONDS: z.coerce.number().int().min(1).max(3600).default(300),
  ACTION_RETENTION_DAYS: z.coerce.number().int().min(1).max(MAX_RETENTION_DAYS).default(90),
  SELF_ORIGINS: z
    .string()
    .default("")
    .transform((v, ctx) => {
      const origins = v.split(/[\s,]+/).filter((o) => o !== "");
      for (const o of origins) {
        if (canonicalOrigin(o) === null) ctx.addIssue({ code: "custom", message: `SELF_ORIGINS: '${o}' is not a URL` });
      }
      return origins;
    }),
  ALLOW_HTTP_LOCALHOST_TARGETS: z
    .string()
    .default("false")
    .transform((v) => v.toLowerCase() === "true"),
});
export type Config = z.infer<typeof Config> & { adminToken: string | null; secretsKey: string };

/** An admin token shorter than this is refused: the admin API then answers 503. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;

const cache = new WeakMap<object, Config>();

export function config(env: Env): Config {
  let c = cache.get(env);
  if (!c) {
    const parsed = Config.parse(env);
    const token = typeof env.ADMIN_TOKEN === "string" ? env.ADMIN_TOKEN : "";
    c = {
      ...parsed,
      adminToken: token.length >= MIN_ADMIN_TOKEN_LENGTH ? token : null,
      secretsKey: env.SECRETS_KEY ?? "",
    };
    cache.set(env, c);
  }
  return c;
}
