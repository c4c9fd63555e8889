import { config } from "../config";
import { backoffSeconds } from "../domain/backoff";
import { OperationMessage } from "../domain/messages";
import { type NamespaceObject, namespaceStub } from "../durable-objects/namespace";
import { perform } from "../targets";
import type { Job } from "../targets/job";

function parse(msg: Message<unknown>): OperationMessage | null {
  const parsed = OperationMessage.safeParse(msg.body);
  if (parsed.success) return parsed.data;
  // A poison message is recorded and acked, never retried for ever.
  console.error("dropping a malformed operation message", msg.id, JSON.stringify(msg.body)?.slice(0, 200));
  msg.ack();
  return null;
}

/**
 * Starts the attempt each message names and acks the message at once; the
 * attempts themselves run after the batch is settled (`ctx.waitUntil`, with
 * `queue_consumer_no_wait_for_wait_until`), so a slow or hanging target holds
 * up only its own service, never the next batch. The namespace's object
 * decides everything else: whether the action may start now, when a failed
 * attempt is retried, and when an attempt that never reported is presumed
 * lost. Only a failure to reach the object is retried by the queue (and,
 * past its retries, dead-lettered).
 */
export async function consumeOperations(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: Pick<ExecutionContext, "waitUntil">,
): Promise<void> {
  const cfg = config(env);
  await Promise.all(
    batch.messages.map(async (msg) => {
      const body = parse(msg);
      if (!body) return;
      const stub = namespaceStub(env, body.namespace);
      try {
        const begun = await stub.beginAttempt(body.action);
        msg.ack();
        if (begun.status === "run") ctx.waitUntil(runChain(stub, begun.job, env));
      } catch (err) {
        console.error("could not start an attempt; retrying", body.action, err);
        msg.retry({
          delaySeconds: backoffSeconds(msg.attempts, cfg.RETRY_BASE_DELAY_SECONDS, cfg.RETRY_MAX_DELAY_SECONDS),
        });
      }
    }),
  );
}

/** Actions of one service a consumer runs back to back before leaving the rest to the queue. */
const CHAIN_LIMIT = 100;
const CHAIN_BUDGET_MS = 10_000;

/**
 * Performs an action, then, while the service has more waiting and the budget
 * allows, the next ones in order: each finish hands the next action, already
 * started, to this consumer. If a report cannot be recorded, the action's
 * deadline in its object brings it back.
 */
async function runChain(stub: DurableObjectStub<NamespaceObject>, first: Job, env: Env): Promise<void> {
  const started = Date.now();
  let job = first;
  for (let chained = 0; ; chained++) {
    const attemptStart = Date.now();
    const outcome = await perform(env, job);
    const mayChain = chained + 1 < CHAIN_LIMIT && Date.now() - started < CHAIN_BUDGET_MS;
    let next: Awaited<ReturnType<NamespaceObject["finishAttempt"]>>;
    try {
      next = await stub.finishAttempt(
        job.action.uuid,
        job.attempt,
        { ...outcome, durationMs: Date.now() - attemptStart },
        mayChain,
      );
    } catch (err) {
      console.error("an attempt's outcome could not be recorded; its deadline will retry it", job.action.uuid, err);
      return;
    }
    if (next?.status !== "run") return;
    job = next.job;
  }
}

/** The dead-letter queue: the queue could not start the action, so it is marked Failed with the last error. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  await Promise.all(
    batch.messages.map(async (msg) => {
      const body = parse(msg);
      if (!body) return;
      try {
        await namespaceStub(env, body.namespace).giveUp(body.action);
        msg.ack();
      } catch (err) {
        console.error("could not mark a dead-lettered action Failed; retrying", body.action, err);
        msg.retry({ delaySeconds: 5 });
      }
    }),
  );
}
