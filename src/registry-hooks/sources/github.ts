/**
 * GitHub Container Registry, through a repository's or organization's webhook:
 * the `package` event (X-GitHub-Event: package) and the older
 * `registry_package`, both with action "published" or "updated" and the
 * pushed version's container_metadata.tag {name, digest}. A multi-platform
 * push also publishes each platform manifest as an untagged version (empty
 * tag name). Signed with X-Hub-Signature-256; X-GitHub-Delivery is the id.
 */
import { z } from "zod";
import { hubSignature } from "./auth";
import { collect, guarded, idOf, ignored, type Outcome, pushOf, readJson, readShape, timeOfIso } from "./payload";
import { splitImage } from "./reference";
import type { Parsed, Source } from "./source";

const ContainerPackage = z.object({
  name: z.string().nullish(),
  namespace: z.string().nullish(),
  package_type: z.string().nullish(),
  ecosystem: z.string().nullish(),
  updated_at: z.string().nullish(),
  package_version: z
    .object({
      created_at: z.string().nullish(),
      package_url: z.string().nullish(),
      container_metadata: z
        .object({
          tag: z.object({ name: z.string().nullish(), digest: z.string().nullish() }).nullish(),
        })
        .nullish(),
    })
    .nullish(),
});
type ContainerPackage = z.infer<typeof ContainerPackage>;

const PackageEvent = z.object({ action: z.string(), package: ContainerPackage });
const RegistryPackageEvent = z.object({ action: z.string(), registry_package: ContainerPackage });

const PUSH_ACTIONS = new Set(["published", "updated"]);
const GHCR = "ghcr.io";

export const gitHubSource: Source = {
  name: "github",
  ...hubSignature,
  parse: guarded((headers, body) => {
    const event = headers.get("x-github-event");
    if (event === null) return { ok: false, error: "the X-GitHub-Event header is missing" };
    const json = readJson(body);
    if (!json.ok) return json;
    if (event === "package") return parsePackage(headers, json.value, PackageEvent, "package");
    if (event === "registry_package") {
      return parsePackage(headers, json.value, RegistryPackageEvent, "registry_package");
    }
    return collect([ignored("not-a-push", "a GitHub event other than package or registry_package (such as ping)")]);
  }),
};

function parsePackage<K extends "package" | "registry_package">(
  headers: Headers,
  json: unknown,
  shape: z.ZodType<{ action: string } & Record<K, ContainerPackage>>,
  key: K,
): Parsed {
  const read = readShape(shape, json);
  if (!read.ok) return { ok: false, error: read.error };
  if (!PUSH_ACTIONS.has(read.value.action)) {
    return collect([ignored("not-a-push", "a package action other than published or updated")]);
  }
  return collect([versionOutcome(read.value[key], key, idOf(headers.get("x-github-delivery")))]);
}

function versionOutcome(pkg: ContainerPackage, key: string, id: string | null): Outcome {
  const isContainer = [pkg.package_type, pkg.ecosystem].some((kind) => kind?.toLowerCase() === "container");
  if (!isContainer) return ignored("not-an-image", "a package that is not a container image");
  const version = pkg.package_version;
  if (!version) return { error: `${key}.package_version is missing` };
  const tag = version.container_metadata?.tag;
  if (!tag?.name) return ignored("untagged", "a version without a tag (a platform manifest or an untagged push)");
  const pushedAt = timeOfIso(`${key}.package_version.created_at`, version.created_at);
  if (!pushedAt.ok) return { error: pushedAt.error };
  const updatedAt = timeOfIso(`${key}.updated_at`, pkg.updated_at);
  if (!updatedAt.ok) return { error: updatedAt.error };
  const located = locate(pkg, tag.name);
  if (!located) return { error: `${key}.package_version.package_url is missing (and so is ${key}.namespace or name)` };
  return pushOf(
    {
      id,
      registry: located.registry,
      repository: located.repository,
      tag: tag.name,
      digest: tag.digest || null,
      // GitHub sends Go's zero time as a version's created_at: the package's updated_at is then the push's.
      pushedAt: pushedAt.value ?? updatedAt.value,
    },
    {
      id: "the X-GitHub-Delivery header",
      registry: `${key}.package_version.package_url`,
      repository: located.field(key),
      tag: `${key}.package_version.container_metadata.tag.name`,
      digest: `${key}.package_version.container_metadata.tag.digest`,
    },
  );
}

/**
 * Where the image lives: package_url ("ghcr.io/owner/name:tag", the name may
 * hold '/'), else namespace/name. Lower case, as image references must be:
 * GitHub keeps the owner's capitals there, ghcr.io does not.
 */
function locate(
  pkg: ContainerPackage,
  tag: string,
): { registry: string; repository: string; field: (key: string) => string } | null {
  const url = pkg.package_version?.package_url;
  const parts = url ? splitImage(url) : null;
  if (parts && parts.tag === tag && parts.digest === null) {
    return {
      registry: parts.registry ?? GHCR,
      repository: parts.repository.toLowerCase(),
      field: (key) => `${key}.package_version.package_url`,
    };
  }
  if (!pkg.namespace || !pkg.name) return null;
  return {
    registry: GHCR,
    repository: `${pkg.namespace}/${pkg.name}`.toLowerCase(),
    field: (key) => `${key}.namespace and ${key}.name`,
  };
}
