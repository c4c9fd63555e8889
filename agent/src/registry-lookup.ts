import type Docker from "dockerode";
import type { TagLookup } from "./orchestrator.ts";
import type { RegistryAuth } from "./registry-auth.ts";
import { engineMessage, parseImage, pinImage } from "./swarm-spec.ts";

/** Where registry credentials come from (registry-auth.ts reads the docker CLI's config file). */
export type Credentials = { for(image: string): RegistryAuth | undefined };
export const NO_CREDENTIALS: Credentials = { for: () => undefined };

/**
 * The digest a registry serves now for a tagged reference, asked through the engine's
 * distribution inspect (GET /distribution/{name}/json), with the agent's credentials for it.
 * Both orchestrators ask this way: the engine reaches the registry as it will to pull.
 */
export async function lookUpTag(docker: Docker, credentials: Credentials, reference: string): Promise<TagLookup> {
  try {
    const authconfig = credentials.for(reference);
    const found = await docker.getImage(reference).distribution(authconfig ? { authconfig } : {});
    const digest = found.Descriptor?.digest;
    return digest ? { digest } : { unreachable: "the engine's answer carries no digest" };
  } catch (err) {
    // The engine answers 404 (manifest unknown) for a tag or repository the registry does not have.
    const missing = (err as { statusCode?: number }).statusCode === 404;
    return missing ? { missing: engineMessage(err) } : { unreachable: engineMessage(err) };
  }
}

/**
 * The image's tag pinned to the digest the registry has for it now, so that a redeploy runs what
 * was pushed last under that tag. An image without a tag stays as it is; so does one whose
 * registry cannot say (it is then redeployed on the digest it runs, and the log says why).
 */
export async function resolveTag(
  lookUp: (reference: string) => Promise<TagLookup>,
  image: string,
  progress: (line: string) => void,
): Promise<string> {
  const ref = parseImage(image);
  if (!ref.tagged) return image;
  const found = await lookUp(ref.name);
  if ("digest" in found) {
    if (found.digest !== ref.digest) progress(`${ref.name} now resolves to ${found.digest}`);
    return pinImage(ref.name, found.digest);
  }
  const why = "missing" in found ? found.missing : found.unreachable;
  progress(
    `could not ask the registry for ${ref.name}'s current digest (${why}); keeping ${ref.digest ?? "the current image"}`,
  );
  return image;
}
