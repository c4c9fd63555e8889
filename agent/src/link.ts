import { connectUrl, type Options } from "./args.ts";
import { reconnectDelayMs } from "./backoff.ts";
import { askAgain, explainAnswer } from "./dial-failure.ts";
import type { AgentMessage, Job, ServerMessage } from "./protocol.ts";

export const AGENT_VERSION = "0.1.0";

/**
 * Node's WebSocket (undici's) takes request headers in its second argument, an
 * extension the standard typing does not declare; the token goes in one.
 */
const NodeWebSocket = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => WebSocket;

const RECONNECT_MAX_MS = 60_000;

/**
 * Refusals of the token in a row after which the agent stops dialling and exits EXIT_REFUSED: a token
 * the service does not know will not become valid by itself, and a supervisor restarting the agent on a
 * non-zero exit brings it back with whatever token it is given next. More than one, so a refusal in a
 * passing fault of the service does not stop the agent.
 */
export const MAX_REFUSALS = 3;
export const EXIT_REFUSED = 3;

/**
 * How long a dial may take to open (Node's WebSocket gives a silent server minutes), how long the plain
 * request that explains a failed dial may take, and the first delay before dialling again.
 */
export type LinkLimits = { dialMs: number; askMs: number; retryBaseMs: number };
const LIMITS: LinkLimits = { dialMs: 20_000, askMs: 10_000, retryBaseMs: 1_000 };

/**
 * Close codes after which dialling again cannot help (see the API's docs/architecture.md), and
 * what to tell the user. With `told`, the service's last error message on the connection says it
 * better: the replacement names the node and address that now hold the token, so its owner can
 * tell a second copy of their own from a stolen token; a refused hello says which field is wrong.
 */
const FINAL_CLOSES: Record<number, { why: string; told?: (error: string) => string }> = {
  4000: { why: "another process connected with this agent's token; only one may run", told: (error) => error },
  4001: { why: "the agent was deleted; create a new one for a new token" },
  4002: { why: "the agent's namespace was deleted" },
  4004: { why: "the agent's token was rotated; restart the agent with the new token" },
  4005: {
    why: "the service refused the agent's hello",
    told: (error) => `the service refused the agent's hello, saying: ${error}`,
  },
};

/** Close codes after which the agent dials again, with why, for the log. */
const RETRIED_CLOSES: Record<number, string> = {
  4003: "the service heard nothing from the agent for 90 s",
  4006: "the hello did not reach the service within 10 s, or another connection with this token came first",
};

/** How long an error message of the service waits for the close it may explain before it is printed alone. */
const ERROR_HOLD_MS = 1_000;
/** The most of one error message printed: the service's are sentences, not documents. */
const ERROR_MAX_CHARS = 1_000;

/** What the hello says of the orchestrator; read again for each connection, so a late engine is reported. */
export type Hello = () => Promise<{
  orchestrator: string | null;
  engine_version: string | null;
  node_id: string | null;
}>;

/**
 * What the engine reports, as the service accepts it (at most 100 characters, none a terminal would
 * misread): an odd engine must not get the agent's hello refused (4005), which would stop it.
 */
function helloFields(about: Awaited<ReturnType<Hello>>): Awaited<ReturnType<Hello>> {
  const clean = (v: string | null) => (v === null ? null : v.replace(UNSAFE, "").slice(0, 100) || null);
  const { orchestrator, engine_version, node_id } = about;
  return { orchestrator: clean(orchestrator), engine_version: clean(engine_version), node_id: clean(node_id) };
}

/** C0 and C1 controls, DEL, line separators and bidirectional-text controls (the service's own list). */
const UNSAFE_SOURCE =
  "[\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]";
const UNSAFE = new RegExp(UNSAFE_SOURCE, "g");

/** A hello that reports nothing of the orchestrator: the service then shows the agent with no engine. */
const UNKNOWN = { orchestrator: null, engine_version: null, node_id: null };

export type Link = {
  /**
   * Sends on the current connection. A message sent while there is none is
   * lost: the service redelivers every job not yet reported once the agent is
   * back, and the job runner answers a redelivery.
   */
  send(message: AgentMessage): void;
  /** Closes the connection and stops dialling; given the signal that asked for it, says so. */
  stop(signal?: string): void;
  /**
   * Settles with the process's exit code: 0 when stopped, 1 when the service ended the agent,
   * EXIT_REFUSED when it refused the token MAX_REFUSALS times in a row (unless told to retry forever).
   */
  done: Promise<number>;
};

/**
 * The agent's connection to the service, kept up for as long as it runs: it
 * dials out (so it needs no inbound port), says hello, sends a heartbeat,
 * and when the connection drops or cannot be made, dials again after a
 * capped exponential delay with jitter. A connection whose heartbeat goes
 * unanswered for two periods is presumed dead and replaced.
 */
/** What the link hands on: each job, and each welcome (a connection became the agent's: time to send the inventory). */
export type LinkEvents = { onJob: (job: Job) => void; onWelcome?: () => void };

export function startLink(
  opts: Options,
  hello: Hello,
  events: LinkEvents,
  log: (line: string) => void,
  limits: LinkLimits = LIMITS,
): Link {
  const link = new AgentLink(opts, hello, events, log, limits);
  void link.dial();
  return {
    send: (message) => link.send(message),
    stop: (signal) => link.stop(signal),
    done: link.done,
  };
}

class AgentLink {
  readonly done: Promise<number>;
  private finish: (code: number) => void = () => {};
  private stopped = false;
  private failures = 0;
  /** The token's refusals in a row. */
  private refusals = 0;
  private socket: WebSocket | null = null;
  private retry: NodeJS.Timeout | undefined;
  /** Ends the request that explains a failed dial, when the agent stops meanwhile. */
  private asking = new AbortController();
  private readonly opts: Options;
  private readonly hello: Hello;
  private readonly events: LinkEvents;
  private readonly log: (line: string) => void;
  private readonly limits: LinkLimits;
  private readonly host: string;
  private readonly headers: Record<string, string>;

  constructor(opts: Options, hello: Hello, events: LinkEvents, log: (line: string) => void, limits: LinkLimits) {
    this.opts = opts;
    this.hello = hello;
    this.events = events;
    this.log = log;
    this.limits = limits;
    this.host = new URL(opts.url).host;
    this.headers = { authorization: `Bearer ${opts.token}`, "user-agent": `dockercloud-agent/${AGENT_VERSION}` };
    this.done = new Promise<number>((resolve) => {
      this.finish = resolve;
    });
  }

  /** Dials the service; the hello is read first, so a slow engine does not use up the service's time for it. */
  async dial() {
    const about = helloFields(await this.hello().catch(() => UNKNOWN));
    if (this.stopped) return;
    const ws = new NodeWebSocket(connectUrl(this.opts.url), { headers: this.headers });
    this.socket = ws;
    const errors = new ServiceErrors(this.log);
    let opened = false;
    let lastPong = Date.now();
    let heartbeat: NodeJS.Timeout | undefined;
    ws.addEventListener("open", () => {
      opened = true;
      clearTimeout(slow);
      this.failures = 0;
      this.refusals = 0;
      // The hello comes first on a connection: until it arrives the service does not count this one as the agent.
      ws.send(JSON.stringify({ type: "hello", agent_version: AGENT_VERSION, ...about }));
      lastPong = Date.now();
      heartbeat = this.startHeartbeat(ws, () => lastPong);
    });
    ws.addEventListener("message", (event) => {
      lastPong = Date.now();
      this.received(String(event.data), errors);
    });
    // Each socket ends once: by its close, or, for a dial refused before it opened, by its error (Node's
    // WebSocket reports a refused upgrade, a 401 say, with an error and no close), or by the dial's deadline.
    let ended = false;
    const end = (code: number, reason: string, silent?: string) => {
      if (ended) return;
      ended = true;
      clearTimeout(slow);
      clearInterval(heartbeat);
      if (opened) this.ended(code, reason, errors);
      else void this.failed(silent);
    };
    const slow = setTimeout(() => {
      end(1006, "", `no answer from ${this.host} within ${this.limits.dialMs / 1000} s`);
      ws.close();
    }, this.limits.dialMs);
    ws.addEventListener("close", (event) => end(event.code, event.reason));
    ws.addEventListener("error", () => {
      if (!opened) end(1006, "");
    });
  }

  send(message: AgentMessage) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  stop(signal?: string) {
    if (signal && !this.stopped) {
      this.log(`stopping on ${signal}: closing the connection; a job under way is redelivered to the next run`);
    }
    this.stopped = true;
    clearTimeout(this.retry);
    this.asking.abort();
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

  private received(text: string, errors: ServiceErrors) {
    const message = parseMessage(text);
    if (message?.type === "job") this.events.onJob(message.job);
    else if (message?.type === "welcome") {
      this.log(`connected to ${this.host}; the service welcomed this agent`);
      this.events.onWelcome?.();
    } else if (message?.type === "error") errors.add(message.error.slice(0, ERROR_MAX_CHARS));
    else if (!message) this.log(`ignored a message the agent does not understand: ${text.slice(0, 200)}`);
  }

  /** A connection that opened has ended: the agent exits if dialling again cannot help, else dials again. */
  private ended(code: number, reason: string, errors: ServiceErrors) {
    if (this.stopped) {
      errors.drop();
      return;
    }
    const final = FINAL_CLOSES[code];
    if (final) {
      const told = final.told && errors.last !== null ? final.told(errors.last) : null;
      if (told) errors.drop();
      else errors.flush();
      this.exit(1, `disconnected: ${told ?? final.why}; this process exits`);
      return;
    }
    errors.flush();
    const retried = RETRIED_CLOSES[code];
    this.again(`disconnected (${retried ? `${code}: ${retried}` : `${code}${reason ? ` ${reason}` : ""}`})`, "");
  }

  /**
   * A dial that never opened: why, asked again over plain HTTP(S) unless already known, since Node's
   * WebSocket tells neither a refused upgrade's status nor a failed connection's error.
   */
  private async failed(known: string | undefined) {
    if (this.stopped) return;
    const url = connectUrl(this.opts.url).replace(/^ws/, "http");
    const failure = known
      ? { why: known, refused: false }
      : explainAnswer(await askAgain(url, this.headers, this.limits.askMs, this.asking.signal), url, this.limits.askMs);
    if (this.stopped) return;
    this.refusals = failure.refused ? this.refusals + 1 : 0;
    const line = `could not connect: ${failure.why}`;
    if (!failure.refused) this.again(line, "");
    else if (this.opts.retryForever) this.again(line, " (--retry-forever)");
    else if (this.refusals < MAX_REFUSALS) {
      this.again(line, ` (${this.refusals} in a row; at ${MAX_REFUSALS} this process exits)`);
    } else {
      const why = `refused ${this.refusals} times in a row, this process exits (--retry-forever keeps it dialling)`;
      this.exit(EXIT_REFUSED, `${line}; ${why}`);
    }
  }

  private again(line: string, note: string) {
    this.failures += 1;
    const delay = reconnectDelayMs(this.failures, this.limits.retryBaseMs, RECONNECT_MAX_MS);
    this.log(`${line}; dialling again in ${delay} ms${note}`);
    this.retry = setTimeout(() => void this.dial(), delay);
  }

  private exit(code: number, line: string) {
    this.log(line);
    this.stopped = true;
    this.finish(code);
  }
}

/**
 * The service's error messages on one connection. One sent right before a final close says why
 * the agent must stop, so each is held a moment: the close's line then carries it, printed once;
 * one that no close follows is printed on its own.
 */
class ServiceErrors {
  /** The last error message of the connection, printed or not. */
  last: string | null = null;
  private held = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly log: (line: string) => void;

  constructor(log: (line: string) => void) {
    this.log = log;
  }

  add(error: string) {
    this.flush();
    this.last = error;
    this.held = true;
    this.timer = setTimeout(() => this.flush(), ERROR_HOLD_MS).unref();
  }

  /** Prints the held message, if any. */
  flush() {
    if (this.held && this.last !== null) this.log(`the service said: ${this.last}`);
    this.drop();
  }

  /** Forgets the held message: it was printed with the close, or no one is listening. */
  drop() {
    clearTimeout(this.timer);
    this.held = false;
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
  const image = job?.image as { reference?: unknown; digest?: unknown } | null | undefined;
  return (
    typeof job?.action === "string" &&
    typeof job.attempt === "number" &&
    ["redeploy", "scaleup", "scale"].includes(job.kind as string) &&
    typeof job.service === "string" &&
    typeof job.max_replicas === "number" &&
    typeof job.converge_seconds === "number" &&
    (job.body === null || typeof job.body === "string") &&
    typeof job.applied === "boolean" &&
    // Absent: a service from before registry pushes, meaning the same as null.
    (image === undefined ||
      image === null ||
      (typeof image === "object" &&
        typeof image.reference === "string" &&
        (image.digest === null || typeof image.digest === "string")))
  );
}
