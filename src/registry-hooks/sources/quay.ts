/**
 * Quay (quay.io and Red Hat Quay) "Push to Repository" notifications, sent by
 * a Webhook POST notification method: {repository: "ns/repo", namespace,
 * name, docker_url: "quay.io/ns/repo", homepage, updated_tags}. updated_tags
 * is a list of tags in the current documentation and was an object {tag:
 * value} before; the old values are image ids, not manifest digests, so a
 * value is kept as the digest only when it has a digest's form. Quay does not
 * sign the call: the hook's URL is the credential. The same URL may be chosen
 * for Quay's other events (builds, vulnerabilities), which are left alone.
 */
import { z } from "zod";
import { urlOnly } from "./auth";
import { collect, guarded, ignored, pushOf, readJson, readShape } from "./payload";
import { hostOfLocation, isDigest } from "./reference";
import type { Parsed, Source } from "./source";

const QuayPush = z.object({
  repository: z.string(),
  docker_url: z.string().nullish(),
  updated_tags: z.union([z.array(z.string()), z.record(z.string(), z.unknown())], {
    error: "must be a list of tags, or an object whose keys are tags",
  }),
});

const QUAY_IO = "quay.io";
/** Fields that only Quay's build and vulnerability notifications carry. */
const OTHER_EVENT_FIELDS = ["build_id", "vulnerability"];

export const quaySource: Source = {
  name: "quay",
  ...urlOnly,
  parse: guarded((_headers, body) => {
    const json = readJson(body);
    if (!json.ok) return json;
    const value = json.value;
    const isOtherEvent =
      typeof value === "object" && value !== null && OTHER_EVENT_FIELDS.some((field) => field in value);
    if (isOtherEvent) return collect([ignored("not-a-push", "a Quay build or vulnerability notification")]);
    const payload = readShape(QuayPush, value);
    if (!payload.ok) return payload;
    return pushesOf(payload.value);
  }),
};

function pushesOf({ repository, docker_url, updated_tags }: z.infer<typeof QuayPush>): Parsed {
  const registry = (docker_url ? hostOfLocation(docker_url) : null) ?? QUAY_IO;
  const listed = Array.isArray(updated_tags);
  const tags: [string, string | null][] = listed
    ? updated_tags.map((tag) => [tag, null])
    : Object.entries(updated_tags).map(([tag, value]) => [
        tag,
        typeof value === "string" && isDigest(value) ? value : null,
      ]);
  if (tags.length === 0) return collect([ignored("not-a-push", "a push notification that names no tag")]);
  return collect(
    tags.map(([tag, digest], i) =>
      pushOf(
        { id: null, registry, repository, tag, digest, pushedAt: null },
        {
          registry: "docker_url",
          repository: "repository",
          tag: listed ? `updated_tags[${i}]` : "updated_tags (a key)",
          digest: "updated_tags (a value)",
        },
      ),
    ),
  );
}
