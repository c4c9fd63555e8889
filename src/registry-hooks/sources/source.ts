/**
 * A registry source: one kind of registry that calls a registry hook when an
 * image is pushed. Each source knows how its calls authenticate and how to
 * read what its payload states; what a push then redeploys is decided
 * elsewhere. Nothing here reads the environment or storage.
 */

export type SourceName = "dockerhub" | "distribution" | "github" | "harbor" | "quay" | "acr" | "generic";

/** One push of a tagged image, as the payload states it. */
export type Push = {
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

/** Something the payload reports that is not a push of a tagged image, and why it is left alone. */
export type Ignored = { kind: string; reason: string };

/** What a call reports; `error` (a 400) names the missing or wrong field. */
export type Parsed = { ok: true; pushes: Push[]; ignored: Ignored[] } | { ok: false; error: string };

export type SourceAuth = "hmac-sha256" | "authorization" | "standard-webhooks" | "none";

export type Source = {
  name: SourceName;
  /**
   * How a call authenticates: "hmac-sha256" (GitHub), "authorization" (a
   * static Authorization header: Harbor, Distribution), "standard-webhooks"
   * (generic), "none" (Docker Hub, Quay, ACR cannot sign).
   */
  auth: SourceAuth;
  /** A new secret for a hook of this source, or null for "none". */
  newSecret(): string | null;
  /** Whether the call is genuine for the hook's secret (constant time; never throws). */
  verify(secret: string, headers: Headers, body: string): Promise<boolean>;
  /** Never throws, whatever the body. */
  parse(headers: Headers, body: string): Parsed;
};
