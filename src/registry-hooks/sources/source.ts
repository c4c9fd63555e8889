/**
 * A registry source: one kind of registry that calls a registry hook when an
 * image is pushed. Each source knows how its calls authenticate and how to
 * read what its payload states; what a push then redeploys is decided
 * elsewhere. Nothing here reads the environment or storage.
 */

import type { PushedImage, RegistrySource } from "../../domain/registry-hook";

/** The sources are the registry hooks' own list (domain/registry-hook.ts), so a hook's source always has a module. */
export type SourceName = RegistrySource;

/** One push of a tagged image, as the payload states it. */
export type Push = PushedImage;

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
