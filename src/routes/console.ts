/**
 * The console: static files (console/, Workers static assets) served at / by the Worker, which
 * adds the headers a page needs and a JSON file does not. Every path outside /api/ is the
 * console's; a file it does not have falls through to the API's own 404.
 *
 * The pages hold nothing secret: they are the same for everyone, and everything they show comes
 * from the API, with the credentials the person typed in (docs/console.md).
 */

/** The console's Content-Security-Policy: its own files only, no inline script, no eval, no framing. */
export function consolePolicy(url: URL): string {
  const ws = `${url.protocol === "https:" ? "wss" : "ws"}://${url.host}`;
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self' ${ws}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

const PAGE_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
  // Revalidated on each load (the files carry an ETag), so a deployment shows at once.
  "Cache-Control": "no-cache",
} as const;

/** Whether a request is the console's: a GET or HEAD outside /api/ (repeated slashes count as one). */
export function isConsoleRequest(request: Request): boolean {
  const method = request.method.toUpperCase();
  if (method !== "GET" && method !== "HEAD") return false;
  const path = new URL(request.url).pathname.replace(/\/{2,}/g, "/");
  return path !== "/api" && !path.startsWith("/api/");
}

/** The console's file for this request, with its headers; null when there is none (the API answers). */
export async function serveConsole(request: Request, env: Env): Promise<Response | null> {
  if (!isConsoleRequest(request)) return null;
  const file = await env.ASSETS.fetch(new Request(request.url, { method: request.method, headers: request.headers }));
  if (file.status === 404) return null;
  const answer = new Response(file.body, file);
  for (const [name, value] of Object.entries(PAGE_HEADERS)) answer.headers.set(name, value);
  answer.headers.set("Content-Security-Policy", consolePolicy(new URL(request.url)));
  return answer;
}
