import { namespaceNameProblem } from "../domain/names";

/** Username and API key from `Basic base64(user:key)` or the Tutum-era `ApiKey user:key`. */
export type Credentials = { username: string; apikey: string };

export function parseAuthorization(header: string | null | undefined): Credentials | null {
  if (!header) return null;
  const match = /^\s*(Basic|ApiKey)\s+(\S+)\s*$/i.exec(header);
  if (!match) return null;
  const [, scheme, value] = match as unknown as [string, string, string];
  let decoded = value;
  if (scheme.toLowerCase() === "basic") {
    try {
      decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
        Uint8Array.from(atob(value), (ch) => ch.charCodeAt(0)),
      );
    } catch {
      return null;
    }
  }
  const colon = decoded.indexOf(":");
  if (colon <= 0 || colon === decoded.length - 1) return null;
  return { username: decoded.slice(0, colon), apikey: decoded.slice(colon + 1) };
}

/**
 * Whether credentials are a user's: a well-formed name and a key of sane
 * length (anything else is refused without a lookup), then `verify`, the
 * user's own storage.
 */
export async function credentialsHold(
  creds: Credentials,
  verify: (username: string, apikey: string) => Promise<boolean>,
): Promise<boolean> {
  return (
    namespaceNameProblem(creds.username) === null &&
    creds.apikey.length <= 256 &&
    (await verify(creds.username, creds.apikey))
  );
}

export function bearerToken(header: string | null | undefined): string | null {
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1] ?? null;
}
