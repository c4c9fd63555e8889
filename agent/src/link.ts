import { connectUrl, type Options } from "./args.ts";
import { reconnectDelayMs } from "./backoff.ts";

export const AGENT_VERSION = "0.1.0";

/**
 * Node's WebSocket (undici's) takes request headers in its second argument, an
 * extension the standard typing does not declare; the token goes in one.
 */
const NodeWebSocket = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => WebSocket;

const RECONNECT_BASE_MS = 1_000;
const RECONNECT_MAX_MS = 60_000;

/** Close codes after which dialling again cannot help (see the API's docs/architecture.md). */
const FINAL_CLOSES: Record<number, string> = {
  4000: "another process connected with this agent's token; only one may run",
  4001: "the agent was deleted; create a new one for a new token",
  4002: "the agent's namespace was deleted",
};

export type Link = {
  /** Closes the connection and stops dialling. */
  stop(): void;
  /** Settles with the process's exit code: 0 when stopped, 1 when the service ended the agent. */
  done: Promise<number>;
};

/**
 * The agent's connection to the service, kept up for as long as it runs: it
 * dials out (so it needs no inbound port), says hello, sends a heartbeat,
 * and when the connection drops or cannot be made, dials again after a
 * capped exponential delay with jitter. A connection whose heartbeat goes
 * unanswered for two periods is presumed dead and replaced.
 */
export function startLink(opts: Options, hello: Record<string, string | null>, log: (line: string) => void): Link {
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });
  let stopped = false;
  let failures = 0;
  let socket: WebSocket | null = null;
  let retry: NodeJS.Timeout | undefined;

  const dial = () => {
    const ws = new NodeWebSocket(connectUrl(opts.url), {
      headers: { authorization: `Bearer ${opts.token}`, "user-agent": `dockercloud-agent/${AGENT_VERSION}` },
    });
    socket = ws;
    let opened = false;
    let lastPong = Date.now();
    let heartbeat: NodeJS.Timeout | undefined;
    ws.addEventListener("open", () => {
      opened = true;
      failures = 0;
      log(`connected to ${new URL(opts.url).host}`);
      ws.send(JSON.stringify({ type: "hello", agent_version: AGENT_VERSION, ...hello }));
      heartbeat = setInterval(() => {
        if (Date.now() - lastPong > 2 * opts.heartbeatMs) {
          log("no answer to the heartbeat; reconnecting");
          ws.close(4100, "heartbeat timeout");
          return;
        }
        ws.send('{"type":"ping"}');
      }, opts.heartbeatMs);
    });
    ws.addEventListener("message", (event) => {
      lastPong = Date.now();
      const text = String(event.data);
      if (text.includes('"type":"error"')) log(`the service said: ${text.slice(0, 300)}`);
    });
    // Each socket ends once: by its close, or, for a dial refused before it opened, by its error (Node's
    // WebSocket reports a refused upgrade, a 401 say, with an error and no close).
    let ended = false;
    const end = (code: number, reason: string) => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      if (stopped) return;
      const final = FINAL_CLOSES[code];
      if (final) {
        log(`disconnected: ${final}`);
        stopped = true;
        finish(1);
        return;
      }
      failures += 1;
      const delay = reconnectDelayMs(failures, RECONNECT_BASE_MS, RECONNECT_MAX_MS);
      log(
        opened
          ? `disconnected (${code}${reason ? ` ${reason}` : ""}); dialling again in ${delay} ms`
          : `could not connect (is the URL right, the token valid?); dialling again in ${delay} ms`,
      );
      retry = setTimeout(dial, delay);
    };
    ws.addEventListener("close", (event) => end(event.code, event.reason));
    ws.addEventListener("error", () => {
      if (!opened) end(1006, "");
    });
  };

  dial();
  return {
    stop() {
      stopped = true;
      clearTimeout(retry);
      socket?.close(1000, "agent stopping");
      finish(0);
    },
    done,
  };
}
