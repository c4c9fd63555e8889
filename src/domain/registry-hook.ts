import { z } from "@hono/zod-openapi";
import { rfc1123 } from "./dates";
import { parseReference } from "./image-ref";
import { refuseUnsafeText } from "./text";

/**
 * Registry hooks: secret URLs a container registry posts to when an image
 * is pushed; the push redeploys the namespace's services that run it with
 * `autoredeploy` on. A resource of a namespace, like an agent.
 */

export const REGISTRY_SOURCES = ["dockerhub", "distribution", "github", "harbor", "quay", "acr", "generic"] as const;
export type RegistrySource = (typeof REGISTRY_SOURCES)[number];

/** Hooks a namespace may hold; deliveries each keeps. */
export const MAX_HOOKS_PER_NAMESPACE = 100;
export const DELIVERIES_KEPT = 100;
/** How long the URL and secret before a rotation keep working, by default, and at most. */
export const DEFAULT_GRACE_SECONDS = 86_400;
export const MAX_GRACE_SECONDS = 30 * 86_400;

const hookName = z
  .string({ error: "name must be a string" })
  .min(1, { error: "name must not be empty" })
  .max(64, { error: "name must be at most 64 characters" })
  .superRefine(refuseUnsafeText("name"));

export const RegistryHookCreate = z
  .object({
    name: hookName,
    source: z.enum(REGISTRY_SOURCES, { error: `source must be one of: ${REGISTRY_SOURCES.join(", ")}` }),
  })
  .openapi("RegistryHookCreate");
export type RegistryHookCreate = z.infer<typeof RegistryHookCreate>;

export const RegistryHookRotate = z
  .object({
    grace_seconds: z
      .number({ error: "grace_seconds must be a whole number" })
      .int({ error: "grace_seconds must be a whole number" })
      .min(0, { error: "grace_seconds must be 0 or more" })
      .max(MAX_GRACE_SECONDS, { error: `grace_seconds must be at most ${MAX_GRACE_SECONDS}` })
      .optional(),
  })
  .openapi("RegistryHookRotate");

export type RegistryHookRow = {
  seq: number;
  uuid: string;
  name: string;
  source: RegistrySource;
  token: string;
  secret_sealed: string | null;
  previous_token: string | null;
  previous_secret_sealed: string | null;
  previous_until: number | null;
  created_at: number;
};

export const registryHookUri = (ns: string, uuid: string) => `/api/app/v1/${ns}/registryhook/${uuid}/`;
/** The path a registry posts to: its token is the secret (with a signature, for sources that sign). */
export const registryHookUrl = (ns: string, token: string) => `/api/app/v1/${ns}/registryhook/call/${token}/`;

export function serializeRegistryHook(ns: string, row: RegistryHookRow) {
  return {
    uuid: row.uuid,
    name: row.name,
    source: row.source,
    resource_uri: registryHookUri(ns, row.uuid),
    url: registryHookUrl(ns, row.token),
    signed: row.secret_sealed !== null,
    created: rfc1123(row.created_at),
    previous_url_until: row.previous_token && row.previous_until ? rfc1123(row.previous_until) : null,
  };
}
export type RegistryHookJson = ReturnType<typeof serializeRegistryHook>;

/**
 * One push of a tagged image, as a source's payload states it
 * (registry-hooks/sources); what an autoredeploy action deploys, with the
 * tag the service moves to.
 */
export type PushedImage = {
  /** The event's or delivery's id, for de-duplication, if the payload has one. */
  id: string | null;
  /** The registry's host[:port], lower case, if the payload names it. */
  registry: string | null;
  /** The repository path without host, e.g. "team/app". */
  repository: string;
  tag: string;
  /** "sha256:<64 hex>" when the payload states it. */
  digest: string | null;
  /** Milliseconds since the epoch, from the payload's timestamp, when given. */
  pushedAt: number | null;
};
export type DeployedPush = PushedImage & { hook: string; deploy_tag: string };

/** The image a push's action deploys: the service's own repository at the pushed tag, and the pushed digest. */
export type ImageToDeploy = { reference: string; digest: string | null };

/**
 * What an autoredeploy action sends its target: the repository as the
 * service names it (the push matched it after normalising), so the agent
 * checks and deploys the reference its registry knows.
 */
export function imageToDeploy(serviceImage: string | null, push: string | null): ImageToDeploy | null {
  if (push === null) return null;
  const p = JSON.parse(push) as DeployedPush;
  const running = serviceImage ? parseReference(serviceImage) : null;
  const registry = running?.registry ?? p.registry ?? "docker.io";
  const repository = running?.repository ?? p.repository;
  return { reference: `${registry}/${repository}:${p.deploy_tag}`, digest: p.digest };
}

/** What one call to a hook was, as its deliveries list shows it. */
export type DeliveryVerdict = "redeployed" | "ignored" | "refused";
export type DeliveryRow = {
  seq: number;
  hook_uuid: string;
  received_at: number;
  verdict: DeliveryVerdict;
  reason: string | null;
  pushes: string;
  actions: string;
  status: number;
  via_previous: number;
};

export function serializeDelivery(row: DeliveryRow, source: RegistrySource) {
  return {
    received: rfc1123(row.received_at),
    source,
    verdict: row.verdict,
    reason: row.reason,
    pushes: JSON.parse(row.pushes) as { repository: string; tag: string; digest: string | null; kind: string }[],
    actions: JSON.parse(row.actions) as string[],
    status: row.status,
    via_previous_url: row.via_previous === 1,
  };
}
export type DeliveryJson = ReturnType<typeof serializeDelivery>;
