import { type AllowRules, refusal } from "./allow.ts";
import { reconnectDelayMs } from "./backoff.ts";
import type { AgentMessage, InventoryItem } from "./protocol.ts";

/**
 * The agent's inventory: the orchestrator's services its rules let it act on,
 * kept up to date in the service. After each welcome it sends every one of
 * them; in between, only what changed, read again shortly after the
 * orchestrator says something happened; and every minute everything again, so
 * that a missed event or a lost message heals by itself. A service outside the
 * rules is never named to the service, not even as gone.
 *
 * The orchestrator's side (reading services, watching for changes) is an
 * InventorySource: Swarm's is swarm-inventory.ts.
 */

/** A service as the source read it. */
export type InventoryEntry = {
  item: InventoryItem;
  /** The service's labels, for the allow rules. */
  labels: Record<string, string>;
  /** Why the orchestrator's service cannot be an inventory item at all (a Swarm job, say), or null. */
  unfit: string | null;
};

/** A watch of the orchestrator's changes under way. */
export type Watch = { ended: Promise<unknown>; close(): void };

export interface InventorySource {
  /** The services with these ids (those that still exist), or every service for null. */
  read(ids: readonly string[] | null): Promise<InventoryEntry[]>;
  /** Starts watching: `changed` gets the id of each service that may have changed. Rejects when it cannot. */
  watch(changed: (id: string) => void): Promise<Watch>;
}

export type InventoryOptions = {
  rules: AllowRules;
  send: (message: AgentMessage) => void;
  log: (line: string) => void;
  /** How long changes are collected before the services they name are read again. */
  debounceMs?: number;
  /** How often a service still converging is read again (the orchestrator tells nothing of other nodes' tasks). */
  pollMs?: number;
  /** How often everything is sent again. */
  fullEveryMs?: number;
  /** The first delay before watching again after the watch ended or failed; it doubles up to watchRetryMaxMs. */
  watchRetryMs?: number;
  watchRetryMaxMs?: number;
};

/** Entries (services and gone together) one message may carry, and services one agent may bring in. */
export const MAX_INVENTORY_ENTRIES = 1_000;
/** The API's ceiling on a container count. */
const COUNT_MAX = 1_000;
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const SERVICE_ID = /^[A-Za-z0-9]{1,64}$/;
/** A service converging this long is read again less often: it may stay so (unschedulable, a pull that fails). */
const SLOW_AFTER_MS = 120_000;
const SLOW_POLL_MS = 10_000;
/** A watch that lasted this long was a working one: the next failure starts the back-off over. */
const WATCH_STABLE_MS = 30_000;

/** C0 and C1 controls, DEL, line separators and bidirectional-text controls (the service's own list). */
const UNSAFE_SOURCE =
  "[\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]";
const UNSAFE = new RegExp(UNSAFE_SOURCE, "g");

/** Text as the service accepts it: without the characters it refuses, at most `max` characters, or null. */
export function safeText(text: string | null | undefined, max: number): string | null {
  let clean = (text ?? "").replace(UNSAFE, "").trim().slice(0, max);
  // A cut must not leave half of a surrogate pair behind.
  if (/[\ud800-\udbff]$/.test(clean)) clean = clean.slice(0, -1);
  return clean || null;
}

/** Why the service would refuse this item (it checks each with the rules of its own fields), or null. */
export function whyUnfit(item: InventoryItem): string | null {
  if (!SERVICE_ID.test(item.id)) return "its id is not 1 to 64 letters or digits";
  if (!SERVICE_NAME.test(item.name)) {
    return "the API's service names are 1 to 64 letters, digits, '-' or '_', starting with a letter or digit";
  }
  const counts = { replicas: item.replicas, "tasks meant to run": item.desired, "running tasks": item.running };
  for (const [what, count] of Object.entries(counts)) {
    if (count !== null && count > COUNT_MAX) return `it has ${count} ${what}, more than the API's ${COUNT_MAX}`;
  }
  return null;
}

/** Whether the service is still on its way somewhere: tasks starting or stopping, an update or rollback running. */
export const isConverging = (item: InventoryItem) =>
  item.running !== item.desired || item.update.state === "updating" || item.update.state === "rollback_started";

/** The changes as messages of at most `max` entries each: services first, then the removals. */
export function changeMessages(
  services: readonly InventoryItem[],
  gone: readonly string[],
  max = MAX_INVENTORY_ENTRIES,
): AgentMessage[] {
  const messages: AgentMessage[] = [];
  let s = 0;
  let g = 0;
  while (s < services.length || g < gone.length) {
    const part = services.slice(s, s + max);
    s += part.length;
    const removed = gone.slice(g, g + max - part.length);
    g += removed.length;
    messages.push({ type: "inventory", full: false, services: part, gone: removed });
  }
  return messages;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));
/** A name as written into the agent's own log: quoted, one line whatever it holds. */
const quoted = (text: string) => JSON.stringify(text.replace(UNSAFE, "?"));

export class Inventory {
  private readonly source: InventorySource;
  private readonly options: InventoryOptions;
  private readonly debounceMs: number;
  private readonly pollMs: number;
  /** What the service was last sent of each service (the item's JSON): only what differs is sent again. */
  private sent = new Map<string, string>();
  /** Services that may have changed, read again once the debounce ends. */
  private readonly dirty = new Set<string>();
  /** Services still converging: since when, and when to read them next. */
  private readonly converging = new Map<string, { since: number; next: number }>();
  /** Services left out for not fitting the API, with why: each is told once. */
  private readonly toldUnfit = new Map<string, string>();
  /** Reads and sends one at a time, in order, so `sent` always says what the service holds. */
  private queue: Promise<void> = Promise.resolve();
  private welcomed = false;
  private overLimit = false;
  private engineDown = false;
  private stopped = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private fullTimer: NodeJS.Timeout | undefined;
  private watching: Watch | null = null;
  private wake: (() => void) | null = null;

  constructor(source: InventorySource, options: InventoryOptions) {
    this.source = source;
    this.options = options;
    this.debounceMs = options.debounceMs ?? 250;
    this.pollMs = options.pollMs ?? 1_000;
  }

  /** Starts watching the orchestrator and the minute's full resend; the first full one waits for a welcome. */
  start(): void {
    const every = this.options.fullEveryMs ?? 60_000;
    this.fullTimer = setInterval(() => {
      if (this.welcomed) void this.enqueue(() => this.full());
    }, every).unref();
    void this.watchLoop();
  }

  /** Sends every service the rules allow (on each welcome: the connection is new to the service). */
  sendFull(): Promise<void> {
    this.welcomed = true;
    return this.enqueue(() => this.full(true));
  }

  /** Settles once every read asked for so far is done and sent. */
  idle(): Promise<void> {
    return this.queue;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.flushTimer);
    clearTimeout(this.pollTimer);
    clearInterval(this.fullTimer);
    this.watching?.close();
    this.wake?.();
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    this.queue = this.queue
      .then(() => (this.stopped ? undefined : task()))
      .catch((err: unknown) => this.options.log(`inventory: ${errorText(err)}`));
    return this.queue;
  }

  /** `announce`: say how many went (once per connection, not on every resend). */
  private async full(announce = false): Promise<void> {
    // The read that follows covers every change heard of so far.
    this.dirty.clear();
    const entries = await this.read(null);
    if (!entries) return;
    const present = new Set(entries.map((e) => e.item.id));
    for (const id of this.toldUnfit.keys()) if (!present.has(id)) this.toldUnfit.delete(id);
    const items = this.allowed(entries);
    if (this.tooMany(items.length)) return;
    this.options.send({ type: "inventory", full: true, services: items });
    if (announce) this.options.log(`inventory: ${items.length} service(s) the rules allow, sent to the service`);
    this.sent = new Map(items.map((item) => [item.id, JSON.stringify(item)]));
    this.converging.clear();
    this.track(items);
  }

  private async changes(ids: string[]): Promise<void> {
    // Until a full inventory went out there is nothing to change; while there are too many, nothing is sent.
    if (!this.welcomed || this.overLimit) return;
    const entries = await this.read(ids);
    if (!entries) return;
    const items = this.allowed(entries);
    const found = new Set(items.map((item) => item.id));
    const changed = items.filter((item) => this.sent.get(item.id) !== JSON.stringify(item));
    const gone = ids.filter((id) => this.sent.has(id) && !found.has(id));
    const added = changed.filter((item) => !this.sent.has(item.id)).length;
    if (this.tooMany(this.sent.size + added - gone.length)) return;
    for (const item of changed) this.sent.set(item.id, JSON.stringify(item));
    for (const id of gone) this.sent.delete(id);
    for (const id of ids) if (!found.has(id)) this.converging.delete(id);
    this.track(items);
    for (const message of changeMessages(changed, gone)) this.options.send(message);
  }

  /**
   * More services than the API takes from one agent: rather than a partial
   * inventory (which would look like the others were removed), none is sent
   * until there are few enough again.
   */
  private tooMany(count: number): boolean {
    const over = count > MAX_INVENTORY_ENTRIES;
    if (over && !this.overLimit) {
      this.options.log(
        `inventory: the rules allow ${count} services, more than the ${MAX_INVENTORY_ENTRIES.toLocaleString("en")} the API takes from one agent; none is brought in until the rules (or the services' labels) narrow`,
      );
      this.converging.clear();
    } else if (!over && this.overLimit) {
      this.options.log(`inventory: the rules allow ${count} services now; bringing them in`);
    }
    this.overLimit = over;
    return over;
  }

  /** The items the rules allow and the API takes; those it would refuse are told once each. */
  private allowed(entries: readonly InventoryEntry[]): InventoryItem[] {
    const items: InventoryItem[] = [];
    for (const { item, labels, unfit } of entries) {
      // The rules come first: a service the agent may not act on is not looked at further, nor named anywhere.
      if (refusal(this.options.rules, { name: item.container_service ?? item.name, labels }) !== null) continue;
      const why = unfit ?? whyUnfit(item);
      if (why === null) {
        this.toldUnfit.delete(item.id);
        items.push(item);
        continue;
      }
      if (this.toldUnfit.get(item.id) !== why) {
        this.options.log(`inventory: service ${quoted(item.name)} (${item.id}) cannot be brought in: ${why}`);
      }
      this.toldUnfit.set(item.id, why);
    }
    return items;
  }

  private async read(ids: readonly string[] | null): Promise<InventoryEntry[] | null> {
    try {
      const entries = await this.source.read(ids);
      this.reachable();
      return entries;
    } catch (err) {
      // The next full read (every minute, and when the watch is back) makes up for this one.
      this.unreachable(err);
      return null;
    }
  }

  private reachable() {
    if (this.engineDown) this.options.log("inventory: the orchestrator answers again");
    this.engineDown = false;
  }

  private unreachable(err: unknown) {
    if (!this.engineDown) {
      this.options.log(`inventory: cannot read the orchestrator's services (${errorText(err)}); trying again`);
    }
    this.engineDown = true;
  }

  /** Something happened to a service: it is read again with whatever else happens within the debounce. */
  private changed(id: string) {
    if (this.stopped) return;
    this.dirty.add(id);
    this.flushTimer ??= setTimeout(() => this.flush(), this.debounceMs).unref();
  }

  private flush() {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const ids = [...this.dirty];
    this.dirty.clear();
    if (ids.length > 0) void this.enqueue(() => this.changes(ids));
  }

  /** Notes which of these services converge, and reads those again while they do. */
  private track(items: readonly InventoryItem[]) {
    const now = Date.now();
    for (const item of items) {
      if (!isConverging(item)) this.converging.delete(item.id);
      else if (!this.converging.has(item.id)) this.converging.set(item.id, { since: now, next: now + this.pollMs });
    }
    if (this.converging.size === 0 || this.pollTimer || this.stopped) return;
    this.pollTimer = setTimeout(() => this.poll(), this.pollMs).unref();
  }

  private poll() {
    this.pollTimer = undefined;
    const now = Date.now();
    for (const [id, at] of this.converging) {
      if (at.next > now) continue;
      at.next = now + (now - at.since > SLOW_AFTER_MS ? SLOW_POLL_MS : this.pollMs);
      this.dirty.add(id);
    }
    if (this.dirty.size > 0) this.flush();
    // The read just queued re-arms the timer (track); with nothing due, so does this.
    else if (this.converging.size > 0) this.pollTimer = setTimeout(() => this.poll(), this.pollMs).unref();
  }

  /** Keeps a watch on the orchestrator: dialled again when it ends or fails, after a capped, growing delay. */
  private async watchLoop() {
    let failures = 0;
    for (let round = 0; !this.stopped; round++) {
      const began = Date.now();
      try {
        this.watching = await this.source.watch((id) => this.changed(id));
        if (this.stopped) break;
        this.reachable();
        // Changes made while there was no watch were missed.
        if (round > 0 && this.welcomed) void this.sendFull();
        await this.watching.ended;
      } catch (err) {
        this.unreachable(err);
      }
      this.watching = null;
      if (this.stopped) break;
      failures = Date.now() - began > WATCH_STABLE_MS ? 1 : failures + 1;
      const delay = reconnectDelayMs(
        failures,
        this.options.watchRetryMs ?? 1_000,
        this.options.watchRetryMaxMs ?? 30_000,
      );
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, delay).unref();
      });
    }
    this.watching?.close();
  }
}
