import { connectUrl, type Options } from "./args.ts";
import { reconnectDelayMs } from "./backoff.ts";
import type { AgentMessage, Job, ServerMessage } from "./protocol.ts";

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

/** What the hello says of the orchestrator; read again for each connection, so a late engine is reported. */
export type Hello = () => Promise<{
  orchestrator: string | null;
  engine_version: string | null;
  node_id: string | null;
}>;

export type Link = {
  /**
   * Sends on the current connection. A message sent while there is none is
   * lost: the service redelivers every job not yet reported once the agent is
   * back, and the job runner answers a redelivery.
   */
  send(message: AgentMessage): void;
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
export function startLink(opts: Options, hello: Hello, onJob: (job: Job) => void, log: (line: string) => void): Link {
  const link = new AgentLink(opts, hello, onJob, log);
  link.dial();
  return {
    send: (message) => link.send(message),
    stop: () => link.stop(),
    done: link.done,
  };
}

class AgentLink {
  readonly done: Promise<number>;
  private finish: (code: number) => void = () => {};
  private stopped = false;
  private failures = 0;
  private socket: WebSocket | null = null;
  private retry: NodeJS.Timeout | undefined;
  private readonly opts: Options;
  private readonly hello: Hello;
  private readonly onJob: (job: Job) => void;
  private readonly log: (line: string) => void;

  constructor(opts: Options, hello: Hello, onJob: (job: Job) => void, log: (line: string) => void) {
    this.opts = opts;
    this.hello = hello;
    this.onJob = onJob;
    this.log = log;
    this.done = new Promise<number>((resolve) => {
      this.finish = resolve;
    });
  }

  dial() {
    const ws = new NodeWebSocket(connectUrl(this.opts.url), {
      headers: { authorization: `Bearer ${this.opts.token}`, "user-agent": `dockercloud-agent/${AGENT_VERSION}` },
    });
    this.socket = ws;
    let opened = false;
    let lastPong = Date.now();
    let heartbeat: NodeJS.Timeout | undefined;
    ws.addEventListener("open", async () => {
      opened = true;
      this.failures = 0;
      this.log(`connected to ${new URL(this.opts.url).host}`);
      // The hello comes first on a connection: the heartbeat starts once it is sent.
      const about = await this.hello();
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify({ type: "hello", agent_version: AGENT_VERSION, ...about }));
      lastPong = Date.now();
      heartbeat = this.startHeartbeat(ws, () => lastPong);
    });
    ws.addEventListener("message", (event) => {
      lastPong = Date.now();
      this.received(String(event.data));
    });
    // Each socket ends once: by its close, or, for a dial refused before it opened, by its error (Node's
    // WebSocket reports a refused upgrade, a 401 say, with an error and no close).
    let ended = false;
    const end = (code: number, reason: string) => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      this.ended(opened, code, reason);
    };
    ws.addEventListener("close", (event) => end(event.code, event.reason));
    ws.addEventListener("error", () => {
      if (!opened) end(1006, "");
    });
  }

  send(message: AgentMessage) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    this.socket?.close(1000, "agent stopping");
    this.finish(0);
  }

  private startHeartbeat(ws: WebSocket, lastPong: () => number): NodeJS.Timeout {
    return setInterval(() => {
      if (Date.now() - lastPong() > 2 * this.opts.heartbeatMs) {
        this.log("no answer to the heartbeat; reconnecting");
        ws.close(4100, "heartbeat timeout");
        return;
      }
      ws.send('{"type":"ping"}');
    }, this.opts.heartbeatMs);
  }

  private received(text: string) {
    const message = parseMessage(text);
    if (message?.type === "job") this.onJob(message.job);
    else if (message?.type === "error") this.log(`the service said: ${message.error.slice(0, 300)}`);
    else if (!message) this.log(`ignored a message the agent does not understand: ${text.slice(0, 200)}`);
  }

  private ended(opened: boolean, code: number, reason: string) {
    if (this.stopped) return;
    const final = FINAL_CLOSES[code];
    if (final) {
      this.log(`disconnected: ${final}`);
      this.stopped = true;
      this.finish(1);
      return;
    }
    this.failures += 1;
    const delay = reconnectDelayMs(this.failures, RECONNECT_BASE_MS, RECONNECT_MAX_MS);
    this.log(
      opened
        ? `disconnected (${code}${reason ? ` ${reason}` : ""}); dialling again in ${delay} ms`
        : `could not connect (is the URL right, the token valid?); dialling again in ${delay} ms`,
    );
    this.retry = setTimeout(() => this.dial(), delay);
  }
}

/** A message of the service, or null for one this agent does not know (a newer service's, say). */
export function parseMessage(text: string): ServerMessage | null {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  const m = data as { type?: unknown; job?: Partial<Job>; error?: unknown };
  if (m?.type === "welcome" || m?.type === "pong") return { type: m.type };
  if (m?.type === "error") return { type: "error", error: String(m.error) };
  if (m?.type === "job" && isJob(m.job)) return { type: "job", job: m.job };
  return null;
}

function isJob(job: Partial<Job> | undefined): job is Job {
  return (
    typeof job?.action === "string" &&
    typeof job.attempt === "number" &&
    ["redeploy", "scaleup", "scale"].includes(job.kind as string) &&
    typeof job.service === "string" &&
    typeof job.max_replicas === "number" &&
    typeof job.converge_seconds === "number" &&
    (job.body === null || typeof job.body === "string") &&
    typeof job.applied === "boolean"
  );
}
