import type { NamespaceObject } from "../durable-objects/namespace";
import { perform } from "../targets";
import type { AttemptReport, AttemptResult, BeginResult, Job } from "../targets/job";

/** Actions of one service a consumer runs back to back before leaving the rest to the queue. */
export const CHAIN_LIMIT = 100;
export const CHAIN_BUDGET_MS = 10_000;

/** One attempt's outcome as the namespace's object records it. */
export type Finished = { uuid: string; attempt: number; report: AttemptReport; chain: boolean };

/**
 * The attempts of one namespace that a consumer invocation runs, and their
 * reports, sent to the namespace's object in groups: while one group is on its
 * way, the outcomes that come in wait, and go together in the next RPC. Each
 * RPC is one entry into the object and one commit, however many attempts it
 * records; under load the groups grow by themselves, and with one attempt in
 * flight nothing waits. A finish hands back the service's next action, already
 * started, which runs at once (a chain, bounded per service). If a group cannot
 * be recorded, each action's deadline in its object brings it back.
 */
/** What the pump needs of the namespace's object. */
export type PumpStub = Pick<DurableObjectStub<NamespaceObject>, "finishAttempts">;

export class DeliveryPump {
  private readonly stub: PumpStub;
  private readonly env: Env;
  private readonly performer: (env: Env, job: Job) => Promise<AttemptResult>;
  private readonly started = Date.now();
  private readonly chained = new Map<string, number>();
  private pending: Finished[] = [];
  private sending = false;
  private running = 0;
  private idle: (() => void) | null = null;
  /** Settles once every attempt started here has been performed and its report sent (or given up). */
  readonly done: Promise<void>;

  constructor(stub: PumpStub, env: Env, performer = perform) {
    this.stub = stub;
    this.env = env;
    this.performer = performer;
    this.done = new Promise((resolve) => {
      this.idle = resolve;
    });
  }

  /** Runs the jobs the object started (`run`); the others need nothing from here. */
  take(begun: readonly (BeginResult | null)[]): void {
    for (const b of begun) if (b?.status === "run") this.run(b.job);
    this.settleIfIdle();
  }

  private run(job: Job): void {
    this.running++;
    const attemptStart = Date.now();
    this.performer(this.env, job).then(
      (outcome) => {
        const service = job.service.uuid;
        const count = (this.chained.get(service) ?? 0) + 1;
        this.chained.set(service, count);
        const chain = count < CHAIN_LIMIT && Date.now() - this.started < CHAIN_BUDGET_MS;
        this.pending.push({
          uuid: job.action.uuid,
          attempt: job.attempt,
          report: { ...outcome, durationMs: Date.now() - attemptStart },
          chain,
        });
        this.running--;
        void this.send();
      },
      (err: unknown) => {
        // Nothing to report: the action's deadline in its object brings it back, as for a lost attempt.
        console.error("an attempt failed to run; its deadline will retry it", job.action.uuid, err);
        this.running--;
        this.settleIfIdle();
      },
    );
  }

  private async send(): Promise<void> {
    if (this.sending || this.pending.length === 0) return;
    this.sending = true;
    const group = this.pending;
    this.pending = [];
    try {
      this.take(await this.stub.finishAttempts(group));
    } catch (err) {
      const uuids = group.map((f) => f.uuid).join(", ");
      console.error("attempts' outcomes could not be recorded; their deadlines will retry them", uuids, err);
    } finally {
      this.sending = false;
    }
    if (this.pending.length) await this.send();
    else this.settleIfIdle();
  }

  private settleIfIdle(): void {
    if (this.running === 0 && !this.sending && this.pending.length === 0) this.idle?.();
  }
}
