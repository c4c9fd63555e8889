/**
 * Harbor project webhooks, in either payload format a policy can choose:
 * "Default" {type, occur_at (seconds), operator, event_data: {resources:
 * [{digest, tag, resource_url}], repository: {name, namespace,
 * repo_full_name, repo_type}}}, with type PUSH_ARTIFACT (Harbor 2) or
 * pushImage (Harbor 1, and registries built on it); or "CloudEvents"
 * {specversion, id, type: "harbor.artifact.pushed", time, data: event_data}.
 * The policy's "Auth Header" is sent as the Authorization header. Harbor puts
 * the digest in `tag` when an artifact is pushed without one.
 */
import { z } from "zod";
import { bearerToken } from "./auth";
import {
  collect,
  guarded,
  ignored,
  type Outcome,
  pushOf,
  readJson,
  readShape,
  timeOfIso,
  timeOfSeconds,
} from "./payload";
import { hostOfLocation } from "./reference";
import type { Parsed, Source } from "./source";

const Resource = z.object({
  tag: z.string().nullish(),
  digest: z.string().nullish(),
  resource_url: z.string().nullish(),
});
const EventData = z.object({
  resources: z.array(Resource).nullish(),
  repository: z.object({ repo_full_name: z.string().nullish() }).nullish(),
});
type EventData = z.infer<typeof EventData>;

const DefaultFormat = z.object({ type: z.string(), occur_at: z.number().nullish(), event_data: EventData.nullish() });
const CloudEventsFormat = z.object({
  specversion: z.string(),
  id: z.string().nullish(),
  type: z.string(),
  time: z.string().nullish(),
  data: EventData.nullish(),
});

const PUSH_TYPES = new Set(["PUSH_ARTIFACT", "pushImage", "harbor.artifact.pushed"]);
const PULL_TYPES = new Set(["PULL_ARTIFACT", "pullImage", "harbor.artifact.pulled"]);
const DELETE_TYPES = new Set(["DELETE_ARTIFACT", "deleteImage", "harbor.artifact.deleted"]);

/** One Harbor event, whichever its format, with the names its fields go by in that format. */
type HarborEvent = { type: string; id: string | null; pushedAt: number | null; data: EventData | null; at: string };

export const harborSource: Source = {
  name: "harbor",
  ...bearerToken,
  parse: guarded((_headers, body) => {
    const event = readEvent(body);
    if ("error" in event) return { ok: false, error: event.error };
    if (PULL_TYPES.has(event.type)) return collect([ignored("pull", "a pull, not a push")]);
    if (DELETE_TYPES.has(event.type)) return collect([ignored("delete", "a deletion")]);
    if (!PUSH_TYPES.has(event.type)) return collect([ignored("not-a-push", "a Harbor event that is not a push")]);
    return pushesOf(event);
  }),
};

function readEvent(body: string): HarborEvent | { error: string } {
  const json = readJson(body);
  if (!json.ok) return json;
  const isCloudEvent = typeof json.value === "object" && json.value !== null && "specversion" in json.value;
  if (isCloudEvent) {
    const event = readShape(CloudEventsFormat, json.value);
    if (!event.ok) return event;
    const time = timeOfIso("time", event.value.time);
    if (!time.ok) return time;
    const { type, id, data } = event.value;
    return { type, id: id || null, pushedAt: time.value, data: data ?? null, at: "data" };
  }
  const event = readShape(DefaultFormat, json.value);
  if (!event.ok) return event;
  const time = timeOfSeconds("occur_at", event.value.occur_at);
  if (!time.ok) return time;
  const { type, event_data } = event.value;
  return { type, id: null, pushedAt: time.value, data: event_data ?? null, at: "event_data" };
}

function pushesOf(event: HarborEvent): Parsed {
  const resources = event.data?.resources;
  if (!resources || resources.length === 0) return { ok: false, error: `${event.at}.resources is missing` };
  const repository = event.data?.repository?.repo_full_name;
  return collect(
    resources.map((resource, i) => resourceOutcome(event, repository, resource, `${event.at}.resources[${i}].`)),
  );
}

function resourceOutcome(
  event: HarborEvent,
  fullName: string | null | undefined,
  resource: z.infer<typeof Resource>,
  at: string,
): Outcome {
  const tag = resource.tag ?? "";
  if (tag === "" || tag.startsWith("sha256:")) return ignored("untagged", "an artifact pushed without a tag");
  // Harbor writes resource_url as "<its external host[:port]>/<repo_full_name>:<tag>".
  const url = resource.resource_url ?? "";
  const host = hostOfLocation(url);
  const suffix = `:${tag}`;
  const path = host && url.endsWith(suffix) ? url.slice(host.length + 1, -suffix.length) : null;
  const repository = fullName || path;
  if (!repository) return { error: `${event.at}.repository.repo_full_name is missing` };
  return pushOf(
    { id: event.id, registry: host, repository, tag, digest: resource.digest || null, pushedAt: event.pushedAt },
    {
      id: "id",
      registry: `${at}resource_url`,
      repository: fullName ? `${event.at}.repository.repo_full_name` : `${at}resource_url`,
      tag: `${at}tag`,
      digest: `${at}digest`,
    },
  );
}
