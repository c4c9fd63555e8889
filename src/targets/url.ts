import { fail, ok, type Result } from "../domain/result";

/**
 * A target URL as it is stored: absolute, without credentials, https (or
 * http://localhost when local development allows it), normalized by URL.
 */
export function targetUrl(raw: string, allowHttpLocalhost: boolean): Result<string> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail("bad_request", "target.url is not a valid absolute URL");
  }
  if (url.username || url.password) return fail("bad_request", "target.url must not carry credentials");
  if (url.protocol === "https:") return ok(url.toString());
  const local = url.hostname === "localhost" || url.hostname === "127.0.0.1";
  if (url.protocol === "http:" && local) {
    return allowHttpLocalhost
      ? ok(url.toString())
      : fail(
          "bad_request",
          "target.url must use https:// (http://localhost is allowed only when ALLOW_HTTP_LOCALHOST_TARGETS is on)",
        );
  }
  return fail("bad_request", "target.url must use https://");
}
