import type { OperationMessage } from "../../domain/messages";
import { nextDue, putBack, takeDue } from "./dispatch";

const REDISPATCH_RETRY_MS = 5_000;
const QUEUE_BATCH = 100;
/** A housekeeping pass that failed is tried again this much later, so the alarm never loops on it. */
const HOUSEKEEPING_RETRY_MS = 3_600_000;

/**
 * Work the alarm does after the outbox, at its own pace (retention.ts): one
 * bounded pass per alarm at most, so deliveries and deadlines never wait on it.
 */
export type Housekeeping = {
  /** When it wants the alarm, read from the tables (an instance that lost its memory asks again); null: no need. */
  nextAt(now: number): number | null;
  /** Runs one bounded pass and answers when it wants the alarm next (null: no need). */
  run(now: number): number | null;
};

const earliest = (a: number | null, b: number | null): number | null =>
  a === null ? b : b === null ? a : Math.min(a, b);

/**
 * The namespace's one alarm, always set for the earliest deadline of its
 * actions (see dispatch.ts) or housekeeping's next pass, whichever comes
 * first, and the outbox it runs: every action whose deadline has passed goes
 * to the queue.
 */
export class Scheduler {
  /** The time the alarm is set for, as far as this instance knows (null: unknown or none). */
  private alarmAt: number | null = null;
  private housekeeping: Housekeeping | null = null;
  /** When housekeeping wants the alarm, as far as this instance knows (null: unknown or none; asked again). */
  private housekeepingAt: number | null = null;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly sql: SqlStorage,
  ) {}

  /**
   * Sets the alarm to the earliest deadline of the namespace. Read from the
   * table each time, so an instance that lost its memory (evicted, restarted)
   * never moves the alarm past a deadline.
   */
  reschedule(): void {
    const due = earliest(nextDue(this.sql), this.housekeepingDue());
    if (due === null || due === this.alarmAt) return;
    this.alarmAt = due;
    void this.storage.setAlarm(due);
  }

  /**
   * Makes sure the alarm runs by `t`, a new deadline, without reading the
   * table (the call path): an alarm set for `t` or earlier already covers it,
   * and one that runs early only sets itself again for the earliest deadline.
   */
  runBy(t: number): void {
    if (this.alarmAt !== null && this.alarmAt <= t) return;
    this.alarmAt = t;
    void this.storage.setAlarm(t);
  }

  /**
   * The outbox: hands every action whose deadline has passed to the queue
   * (new, due for a retry, or whose message or attempt went missing), then
   * sets the alarm for the next deadline. An accepted call is never lost, and
   * after any crash its action resumes within one deadline. Housekeeping comes
   * last, one bounded pass when its time has come.
   */
  async sendDue(namespace: string, queue: Queue, leaseMs: number): Promise<void> {
    this.alarmAt = null;
    for (;;) {
      const due = takeDue(this.sql, Date.now(), leaseMs, QUEUE_BATCH);
      if (due.length === 0) break;
      try {
        await queue.sendBatch(due.map((action) => ({ body: { namespace, action } satisfies OperationMessage })));
      } catch (err) {
        console.error("handing actions to the queue failed; retrying", err);
        putBack(this.sql, due, Date.now(), REDISPATCH_RETRY_MS);
        break;
      }
    }
    this.housekeep();
    this.reschedule();
  }

  /** The alarm fired in an object that holds no namespace: nothing to send. */
  forget(): void {
    this.alarmAt = null;
    this.housekeepingAt = null;
  }

  /** Housekeeping the alarm runs after the outbox (one object, one hook). */
  attach(work: Housekeeping): void {
    this.housekeeping = work;
    this.housekeepingAt = null;
  }

  /** What housekeeping wants may have changed (a setting): asks it again and sets the alarm by it. */
  recheck(): void {
    this.housekeepingAt = null;
    this.reschedule();
  }

  private housekeepingDue(): number | null {
    if (!this.housekeeping) return null;
    this.housekeepingAt ??= this.housekeeping.nextAt(Date.now());
    return this.housekeepingAt;
  }

  /** One pass if its time has come; a failed pass is logged and tried again later, the outbox unharmed. */
  private housekeep(): void {
    const at = this.housekeepingDue();
    const now = Date.now();
    if (!this.housekeeping || at === null || at > now) return;
    try {
      this.housekeepingAt = this.housekeeping.run(now);
    } catch (err) {
      console.error("a housekeeping pass failed; trying again later", err);
      this.housekeepingAt = now + HOUSEKEEPING_RETRY_MS;
    }
  }
}
