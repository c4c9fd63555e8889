import { parseFamiliarName, Reference } from "@swimlane/docker-reference";
import { isDigest, validateDigest } from "@swimlane/docker-reference/lib/digest";
import { anchoredNameRegexp, referenceRegexp } from "@swimlane/docker-reference/lib/regexp";
import semver, { type SemVer } from "semver";
import type { AutoredeployPolicy } from "./service";
import { quote } from "./text";

/**
 * Image references as Docker reads them, and which services a registry push
 * redeploys (Docker Cloud's autoredeploy).
 *
 * Parsing is @swimlane/docker-reference: a port of CNCF Distribution's
 * reference package (reference/regexp.go and the ParseNormalizedNamed rules
 * of normalize.go: docker.io by default, `library/` for official images,
 * index.docker.io read as docker.io, a repository that must be lower case,
 * 64-hex identifiers refused, sha256/384/512 digests of the right length).
 * The other candidate, parse-docker-image-name, is Distribution's Parse
 * compiled by GopherJS: no normalisation at all, and its Go runtime does not
 * start under the Workers test runtime (it compares functions to a global
 * `Function` that runtime wraps), costs about half a second of start-up per
 * isolate, and sets Error.stackTraceLimit to Infinity for the whole Worker.
 *
 * One piece of the port is not used as shipped. Its path-component grammar
 * still has Distribution's old separator `[-]*`, which lets a run of letters
 * split in exponentially many ways; Go's regexp engine never backtracks, but
 * JavaScript's does, so an invalid reference with a 20-letter word (a
 * trailing ':' is enough) ran for minutes. Distribution itself changed the
 * separator to `[-]+` for that reason (distribution/distribution#3818; the
 * language is the same, since `[a-z0-9]+` absorbs an empty separator).
 * parseFamiliarName takes the qualified-name parser as an argument, so
 * `parseQualified` below runs the package's own patterns with that one
 * correction, and its own digest check.
 *
 * Rules added here on top, for comparing references:
 *   - the registry host is lower-cased (host names are case-insensitive) and
 *     its port kept as written (docker.io:443 stays another address);
 *   - registry-1.docker.io, Docker Hub's real host, is docker.io too, as
 *     index.docker.io already is, `library/` included;
 *   - a digest with upper-case hex is refused, as Distribution's go-digest
 *     does;
 *   - a reference that is only a digest names no repository: null.
 * Known differences from today's Distribution: an upper-case first component
 * without '.' or ':' ("Foo/bar") is refused instead of being read as a host,
 * and [IPv6] hosts are not accepted.
 */

export type ImageRef = {
  /** host[:port], lower case; docker.io for Docker Hub. */
  registry: string;
  /** The full path, `library/` added for Docker Hub's official images. */
  repository: string;
  tag: string | null;
  digest: string | null;
};

export const DOCKER_HUB = "docker.io";
const DOCKER_HUB_HOSTS = new Set([DOCKER_HUB, "index.docker.io", "registry-1.docker.io"]);
const OFFICIAL_PREFIX = "library/";
/** Distribution's NameTotalLengthMax. */
const NAME_MAX_LENGTH = 255;
/**
 * Longer input is refused before any pattern runs, bounding the work an
 * untrusted string can cause; it is well above the longest valid reference
 * (a 255-character name, a 128-character tag and a sha512 digest).
 */
const MAX_REFERENCE_LENGTH = 1024;

const withSeparatorFix = (pattern: RegExp) => new RegExp(pattern.source.replaceAll("[-]*", "[-]+"), pattern.flags);
const REFERENCE = withSeparatorFix(referenceRegexp);
const NAME = withSeparatorFix(anchoredNameRegexp);

/** The package's qualified-name parser, with the corrected patterns (see above). */
function parseQualified(name: string): Reference {
  const found = REFERENCE.exec(name);
  const named = found?.[1];
  if (!found || named === undefined || named.length > NAME_MAX_LENGTH) throw new Error("invalid reference format");
  const parts = NAME.exec(named);
  const digest = found[3];
  if (digest !== undefined) validateDigest(digest);
  return new Reference({ domain: parts?.[1] ?? "", repository: parts?.[2] ?? named, tag: found[2], digest });
}

/** The registry as compared: lower case, Docker Hub's hosts as one. */
export function normaliseRegistry(host: string): string {
  const lower = host.toLowerCase();
  return DOCKER_HUB_HOSTS.has(lower) ? DOCKER_HUB : lower;
}

const officialPath = (registry: string, path: string) =>
  registry === DOCKER_HUB && !path.includes("/") ? OFFICIAL_PREFIX + path : path;

/** A reference in its normalised form, or null when Docker would refuse it. */
export function parseReference(ref: string): ImageRef | null {
  if (typeof ref !== "string" || ref.length > MAX_REFERENCE_LENGTH || isDigest(ref) === true) return null;
  let parsed: Reference;
  try {
    parsed = parseFamiliarName(ref, parseQualified);
  } catch {
    return null;
  }
  const { domain, repository, tag, digest } = parsed;
  if (!domain || !repository) return null;
  if (digest !== undefined && digest !== digest.toLowerCase()) return null;
  const registry = normaliseRegistry(domain);
  return { registry, repository: officialPath(registry, repository), tag: tag ?? null, digest: digest ?? null };
}

export function sameRepository(a: ImageRef, b: ImageRef): boolean {
  return a.registry === b.registry && a.repository === b.repository;
}

/** A push as a registry's payload tells it; `registry` is null when the payload does not say which. */
export type PushedTag = { registry: string | null; repository: string; tag: string };
export type PushDecision = { redeploy: true; tag: string } | { redeploy: false; reason: string };

const skip = (reason: string): PushDecision => ({ redeploy: false, reason });

/**
 * A host under which a pushed path is parsed, so that Docker's reading of a
 * familiar name (a first component with '.' taken for a host, docker.io
 * added) cannot reinterpret a bare path. `.invalid` is reserved (RFC 2606);
 * the host never leaves this function.
 */
const PATH_HOST = "registry.invalid";

/** The pushed repository as compared (registry null when unknown), or null when the push is not a valid reference. */
function pushedRepository(push: PushedTag): { registry: string | null; repository: string } | null {
  if (typeof push.repository !== "string" || typeof push.tag !== "string") return null;
  const parsed = parseReference(`${PATH_HOST}/${push.repository}:${push.tag}`);
  if (!parsed || parsed.registry !== PATH_HOST || parsed.digest !== null) return null;
  if (typeof push.registry !== "string") return { registry: null, repository: parsed.repository };
  const registry = normaliseRegistry(push.registry);
  return { registry, repository: officialPath(registry, parsed.repository) };
}

const pushName = (push: PushedTag) =>
  `${typeof push.registry === "string" ? `${push.registry}/` : ""}${push.repository}:${push.tag}`;

/**
 * Whether a push redeploys a service (its image as stored, its policy), and
 * to which tag: the pushed one, which the service moves to.
 *   - The repositories must be the same after normalisation; a push whose
 *     payload names no registry is matched on the path alone, as given (a
 *     bare "nginx" is then not Docker Hub's library/nginx).
 *   - A push of the tag the service runs always redeploys it (a re-push); a
 *     service image without tag or digest runs "latest"; one pinned by digest
 *     alone runs no tag, so no push moves it.
 *   - `tag` asks for nothing more. `patch`, `minor`, `major` also take a
 *     greater semantic version within that range (see decideSemver).
 */
export function decidePush(serviceImage: string | null, policy: AutoredeployPolicy, push: PushedTag): PushDecision {
  if (typeof serviceImage !== "string" || serviceImage === "") return skip("the service has no image");
  const running = parseReference(serviceImage);
  if (!running) return skip(`the service image ${quote(serviceImage)} is not a valid image reference`);
  const pushed = pushedRepository(push);
  if (!pushed) return skip(`the pushed image ${quote(pushName(push))} is not a valid image reference`);
  const sameRegistry = pushed.registry === null || pushed.registry === running.registry;
  if (!sameRegistry || pushed.repository !== running.repository) {
    return skip(`another repository: the service runs ${running.registry}/${running.repository}`);
  }
  const runningTag = running.tag ?? (running.digest === null ? "latest" : null);
  if (runningTag === null) return skip("the service runs a pinned digest, not a tag");
  if (push.tag === runningTag) return { redeploy: true, tag: push.tag };
  if (policy !== "patch" && policy !== "minor" && policy !== "major") {
    return skip(`the service runs tag ${runningTag}, not ${push.tag}`);
  }
  return decideSemver(policy, runningTag, push.tag);
}

/**
 * The version a tag names. A full semantic version, with or without a
 * leading "v" ("1.2.3", "v1.2.3-rc.1"); or a partial one that is exactly
 * major or major.minor ("1", "v1.2"), read as its lowest version (1.2 is
 * 1.2.0). semver.coerce alone would also find a version inside any tag
 * ("alpine-3.19", "1.2-slim"), so its result is kept only when it spells the
 * whole tag back.
 */
function versionOf(tag: string): SemVer | null {
  const full = semver.parse(tag);
  if (full) return full;
  const partial = semver.coerce(tag);
  if (!partial) return null;
  const bare = tag.startsWith("v") ? tag.slice(1) : tag;
  return bare === `${partial.major}` || bare === `${partial.major}.${partial.minor}` ? partial : null;
}

const sameCore = (a: SemVer, b: SemVer) => a.major === b.major && a.minor === b.minor && a.patch === b.patch;

function withinRange(policy: "patch" | "minor" | "major", from: SemVer, to: SemVer): boolean {
  if (policy === "major") return true;
  if (policy === "minor") return to.major === from.major;
  return to.major === from.major && to.minor === from.minor;
}

/**
 * Semver policies: both tags must be versions (versionOf), the pushed one
 * greater and within the range (patch: same major.minor; minor: same major;
 * major: any). A pre-release is taken only on the pre-release line the
 * service already runs (the same major.minor.patch), as node-semver's ranges
 * do: 1.2.3-rc.1 -> 1.2.3-rc.2 or 1.2.3, but never 1.2.3 -> 1.2.4-rc.1.
 */
function decideSemver(policy: "patch" | "minor" | "major", runningTag: string, pushedTag: string): PushDecision {
  const from = versionOf(runningTag);
  if (!from) return skip(`the service's tag ${runningTag} is not a semantic version, which the ${policy} policy needs`);
  const to = versionOf(pushedTag);
  if (!to) return skip(`${pushedTag} is not a semantic version, which the ${policy} policy needs`);
  const order = semver.compare(to, from);
  if (order < 0) return skip(`${pushedTag} is lower than ${runningTag}`);
  if (order === 0) return skip(`${pushedTag} is the version the service runs (as ${runningTag})`);
  if (to.prerelease.length > 0 && !(from.prerelease.length > 0 && sameCore(from, to))) {
    return skip(`${pushedTag} is a pre-release outside the line of ${runningTag}`);
  }
  if (!withinRange(policy, from, to)) return skip(`${pushedTag} is outside the ${policy} range of ${runningTag}`);
  return { redeploy: true, tag: pushedTag };
}
