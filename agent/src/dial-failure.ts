import { randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";

/**
 * Why a dial failed before its connection opened. Node's WebSocket keeps the handshake's status and
 * the network error to itself, so the link asks again with node:http(s) and turns the answer into a
 * line that names what to fix (link.ts prints it; a refused token counts toward the exit).
 */

/**
 * What a plain request to the connect URL got: an HTTP status (101: the upgrade works now), an
 * error, or nothing in time. Most answers point at a value given on the command line: the token,
 * the URL, its host or port.
 */
export type Answer =
  | { status: number; text: string; location?: string }
  | { code: string; message: string }
  | { silent: true };

const UNRESOLVED = ["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME"];
const NO_ROUTE = ["EHOSTUNREACH", "ENETUNREACH"];
const TLS_CODE = /^(CERT_|ERR_TLS_|ERR_SSL_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT|EPROTO$)/;

/** Why a dial failed, in a line that names what to fix; `refused`: the service refused the token. */
export function explainAnswer(answer: Answer, url: string, ms: number): { why: string; refused: boolean } {
  const { host, hostname, port, protocol } = new URL(url);
  const why = (text: string) => ({ why: text, refused: false });
  if ("silent" in answer) return why(`no answer from ${host} within ${ms / 1000} s`);
  if ("status" in answer) {
    const { status, text } = answer;
    if (status === 401) {
      const fix = "check DOCKERCLOUD_AGENT_TOKEN / --token, or rotate it in the API";
      return { why: `the service refused the agent's token (401): ${fix}`, refused: true };
    }
    if (status === 404) return why(`no agent endpoint at ${url} (404): is --url the API's base URL?`);
    if (status === 101) {
      return why(`the dial failed, yet ${host} took a plain retry at once (a passing network fault?)`);
    }
    const answered = `${host} answered ${status}${text ? ` ${text}` : ""}`;
    if (status >= 300 && status < 400 && answer.location) {
      return why(
        `${answered}, to ${answer.location}: give --url the address the API answers at (a dial follows no redirect)`,
      );
    }
    const hint = status === 426 ? " (does a proxy on the way drop the Upgrade header?)" : "";
    return why(`${answered}: the URL is right, but the upgrade to a WebSocket failed${hint}`);
  }
  const { code, message } = answer;
  if (code === "ECONNREFUSED") {
    return why(`nothing listens at ${hostname}:${port || (protocol === "https:" ? 443 : 80)} (connection refused)`);
  }
  if (UNRESOLVED.includes(code)) return why(`the name ${hostname} does not resolve (${code})`);
  if (TLS_CODE.test(code) || /self[- ]signed|SSL routines/i.test(message)) {
    // OpenSSL's reason, e.g. "wrong version number" when the port does not speak TLS.
    const reason = /SSL routines:[^:]*:([^:]+)/.exec(message)?.[1] ?? message;
    const fix = `check that ${host} speaks HTTPS with a certificate this host trusts (NODE_EXTRA_CA_CERTS adds a CA)`;
    return why(`TLS failed: ${code} (${reason}): ${fix}`);
  }
  if (code === "ETIMEDOUT") return why(`no answer from ${host} (the connection timed out)`);
  if (NO_ROUTE.includes(code))
    return why(`${host} cannot be reached from this host (${code}): check the route and firewall`);
  return why(`${host}: ${message.includes(code) ? message : `${message} (${code})`}`);
}

/**
 * Dials the connect URL once more with node:http(s), for what Node's WebSocket keeps to itself. It asks
 * for the same upgrade with the same headers: the service answers a request without one 426 before it
 * reads the token, which would hide a refused token.
 */
export function askAgain(url: string, headers: Record<string, string>, ms: number, signal?: AbortSignal) {
  return new Promise<Answer>((resolve) => {
    const upgrade = { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13" };
    const key = randomBytes(16).toString("base64");
    const request = (url.startsWith("https:") ? https : http).request(url, {
      headers: { ...headers, ...upgrade, "sec-websocket-key": key },
      agent: false,
      signal,
    });
    const settle = (answer: Answer) => {
      clearTimeout(timer);
      resolve(answer);
      request.destroy();
    };
    const timer = setTimeout(() => settle({ silent: true }), ms);
    request.on("response", (res) => {
      settle({ status: res.statusCode ?? 0, text: res.statusMessage ?? "", location: res.headers.location });
    });
    request.on("upgrade", (res, socket) => {
      socket.destroy();
      settle({ status: res.statusCode ?? 101, text: "" });
    });
    request.on("error", (err: NodeJS.ErrnoException) => settle({ code: err.code ?? err.name, message: err.message }));
    request.end();
  });
}
