/**
 * The grammar of the parts of an image reference, as CNCF Distribution's
 * reference package states it (reference/regexp.go), for values that come
 * from a payload: a repository, tag or registry that does not fit could not
 * have been pushed, so it is refused rather than matched against services.
 */

const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const REPOSITORY = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const REPOSITORY_MAX_LENGTH = 255;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?";
const REGISTRY = new RegExp(`^(?:${HOST_LABEL}(?:\\.${HOST_LABEL})*|\\[[0-9A-Fa-f:]+\\])(?::[0-9]{1,5})?$`);
const REGISTRY_MAX_LENGTH = 255;

// Length first: the patterns then run on short strings only, whatever a payload holds.
export const isRepository = (value: string): boolean => value.length <= REPOSITORY_MAX_LENGTH && REPOSITORY.test(value);
export const isTag = (value: string): boolean => TAG.test(value);
export const isDigest = (value: string): boolean => DIGEST.test(value);
export const isRegistry = (value: string): boolean => value.length <= REGISTRY_MAX_LENGTH && REGISTRY.test(value);

export const REPOSITORY_RULE =
  "lower-case path components of letters and digits joined by '.', '_', '__' or '-', separated by '/', at most 255 characters";
export const TAG_RULE = "1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'";
export const DIGEST_RULE = '"sha256:" and 64 lower-case hex digits';
export const REGISTRY_RULE = "a host name or [IPv6 address], with an optional :port";

/**
 * Tags that cosign and the OCI referrers tag schema attach to an image
 * ("sha256-<digest>.sig", ".att", ".sbom", or the bare "sha256-<digest>"): a
 * push of one of them adds to an image, it does not change what runs.
 */
const ATTACHED_TAG = /^sha256-[0-9a-f]{64}(?:\.(sig|att|sbom))?$/;

export function attachedArtifact(tag: string): { kind: string; reason: string } | null {
  const found = ATTACHED_TAG.exec(tag);
  if (!found) return null;
  switch (found[1]) {
    case "sig":
      return { kind: "signature", reason: "a signature attached to an image (cosign tag)" };
    case "att":
      return { kind: "attestation", reason: "an attestation attached to an image (cosign tag)" };
    case "sbom":
      return { kind: "attestation", reason: "an SBOM attached to an image (cosign tag)" };
    default:
      return { kind: "attestation", reason: "an index of artifacts referring to an image (OCI referrers tag)" };
  }
}

/** The host[:port] of a URL, or null when the text is not one. */
export function hostOfUrl(text: string): string | null {
  try {
    const host = new URL(text).host;
    return host === "" ? null : host;
  } catch {
    return null;
  }
}

/** "harbor.example.com/project/app:1.0" -> "harbor.example.com": the part before the first '/', if there is one. */
export function hostOfLocation(location: string): string | null {
  const slash = location.indexOf("/");
  return slash > 0 ? location.slice(0, slash) : null;
}

export type ImageParts = { registry: string | null; repository: string; tag: string | null; digest: string | null };

/**
 * Splits "[registry/]repository[:tag][@digest]" by Docker's rule, without
 * checking the parts: the first path component is a registry when it holds
 * '.' or ':' or is "localhost"; the tag follows the last ':' after the last '/'.
 */
export function splitImage(image: string): ImageParts {
  const at = image.indexOf("@");
  const named = at === -1 ? image : image.slice(0, at);
  const digest = at === -1 ? null : image.slice(at + 1);
  const slash = named.indexOf("/");
  const first = slash === -1 ? "" : named.slice(0, slash);
  const hasRegistry = first !== "" && (first.includes(".") || first.includes(":") || first === "localhost");
  const path = hasRegistry ? named.slice(slash + 1) : named;
  const colon = path.lastIndexOf(":");
  const hasTag = colon > path.lastIndexOf("/");
  return {
    registry: hasRegistry ? first : null,
    repository: hasTag ? path.slice(0, colon) : path,
    tag: hasTag ? path.slice(colon + 1) : null,
    digest,
  };
}
