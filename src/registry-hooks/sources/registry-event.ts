/**
 * The event CNCF Distribution sends in its notification envelopes, which
 * Azure Container Registry's webhooks send one at a time:
 * {id, timestamp, action, target: {mediaType, digest, repository, url, tag},
 * request: {id, addr, host, method, useragent}, actor, source}.
 */
import { z } from "zod";
import { type Fields, idOf, ignored, type Outcome, pushOf, timeOfIso } from "./payload";
import { hostOfUrl } from "./reference";

export const RegistryEvent = z.object({
  id: z.string().nullish(),
  timestamp: z.string().nullish(),
  action: z.string(),
  target: z
    .object({
      mediaType: z.string().nullish(),
      digest: z.string().nullish(),
      repository: z.string().nullish(),
      url: z.string().nullish(),
      tag: z.string().nullish(),
    })
    .nullish(),
  request: z.object({ host: z.string().nullish() }).nullish(),
});
export type RegistryEvent = z.infer<typeof RegistryEvent>;

/**
 * Manifests that name a runnable image, Docker v2 or OCI, single-platform or
 * index. Layers and configs are pushed as blobs before them (other media
 * types, never a tag); a Helm chart or other artifact has a media type of its own.
 */
const IMAGE_MANIFESTS = new Set([
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
]);

/**
 * What one event means. Only `push` of an image manifest with a tag is a
 * push. A pull is never one, even with its tag: the registry reports the
 * pulls that a redeploy itself makes, and a receiver that took them for
 * pushes would redeploy for ever. `at` names the event in errors ("events[3].").
 */
export function eventOutcome(event: RegistryEvent, at: string): Outcome {
  const where = at === "" ? "" : `${at.slice(0, -1)}: `;
  switch (event.action) {
    case "push":
      break;
    case "pull":
      return ignored("pull", `${where}a pull, not a push`);
    case "mount":
      return ignored("mount", `${where}a blob mounted from another repository`);
    case "delete":
    case "chart_delete":
      return ignored("delete", `${where}a deletion`);
    case "chart_push":
      return ignored("not-an-image", `${where}a Helm chart push`);
    default:
      return ignored("not-a-push", `${where}an event that is not a push`);
  }
  const target = event.target;
  if (!target) return { error: `${at}target is missing` };
  if (!target.mediaType || !IMAGE_MANIFESTS.has(target.mediaType)) {
    return ignored("layer", `${where}a blob (layer or config) or a non-image artifact, not an image manifest`);
  }
  if (!target.tag)
    return ignored("untagged", `${where}a manifest pushed by digest (a platform manifest or a referrer)`);
  if (!target.repository) return { error: `${at}target.repository is missing` };
  const pushedAt = timeOfIso(`${at}timestamp`, event.timestamp);
  if (!pushedAt.ok) return { error: pushedAt.error };
  const fields: Fields = {
    id: `${at}id`,
    registry: event.request?.host ? `${at}request.host` : `${at}target.url`,
    repository: `${at}target.repository`,
    tag: `${at}target.tag`,
    digest: `${at}target.digest`,
  };
  return pushOf(
    {
      id: idOf(event.id),
      registry: event.request?.host || (target.url ? hostOfUrl(target.url) : null),
      repository: target.repository,
      tag: target.tag,
      digest: target.digest || null,
      pushedAt: pushedAt.value,
    },
    fields,
  );
}
