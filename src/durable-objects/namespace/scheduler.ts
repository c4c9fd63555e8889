import type { OperationMessage } from "../../domain/messages";
import { nextDue, putBack, takeDue } from "./dispatch";

const REDISPATCH_RETRY_MS = 5_000;
const QUEUE_BATCH = 100;

/**
 * The namespace's one alarm, always set for the earliest deadline of its
 * actions (see dispatch.ts), and the outbox it runs: every action whose
 * deadline has passed goes to the queue.
 */
export class Scheduler {
  /** The time the alarm is set for, as far as this instance knows (null: unknown or none). */
  private alarmAt: number | null = null;

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
    const due = nextDue(this.sql);
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
   * after any crash its action resumes within one deadline.
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
    this.reschedule();
  }

  /** The alarm fired in an object that holds no namespace: nothing to send. */
  forget(): void {
    this.alarmAt = null;
  }
}
