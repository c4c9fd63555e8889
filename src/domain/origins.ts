const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * An origin as a deployment is reached: scheme, host (case-folded by URL, a
 * trailing dot dropped, every loopback name as one) and port (the default one
 * implied). Null for anything that is not an absolute URL.
 */
export function canonicalOrigin(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  const host = url.hostname.replace(/\.$/, "");
  const port = url.port || (url.protocol === "https:" ? "443" : url.protocol === "http:" ? "80" : "");
  return `${url.protocol}//${LOOPBACK.has(host) ? "loopback" : host}:${port}`;
}
