import { config } from "../config";
import { backoffSeconds } from "../domain/backoff";
import { type NamespaceObject, namespaceStub } from "../durable-objects/namespace";
import { perform } from "../targets";
import { type BeginResult, type Job, OperationMessage } from "./messages";

function parse(msg: Message<unknown>): OperationMessage | null {
  const parsed = OperationMessage.safeParse(msg.body);
  if (parsed.success) return parsed.data;
  // A poison message is recorded and acked, never retried for ever.
  console.error("dropping a malformed operation message", msg.id, JSON.stringify(msg.body)?.slice(0, 200));
  msg.ack();
  return null;
}

/**
 * Performs each operation against its service's target. Every message is
 * acked or retried explicitly: a transient failure is retried with a capped
 * exponential delay and, after the last attempt, goes to the dead-letter
 * queue; an action already finished is acked without doing anything.
 */
export async function consumeOperations(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const cfg = config(env);
  const delay = (attempts: number) =>
    backoffSeconds(attempts, cfg.RETRY_BASE_DELAY_SECONDS, cfg.RETRY_MAX_DELAY_SECONDS);

  await Promise.all(
    batch.messages.map(async (msg) => {
      const body = parse(msg);
      if (!body) return;
      const stub = namespaceStub(env, body.namespace);
      let begun: BeginResult;
      try {
        begun = await stub.beginAttempt(body.action);
      } catch (err) {
        console.error("could not start an attempt; retrying", body.action, err);
        msg.retry({ delaySeconds: delay(msg.attempts) });
        return;
      }
      if (begun.status === "done") {
        msg.ack();
        return;
      }
      await runChain(env, stub, begun.job, msg, delay, cfg.MAX_ATTEMPTS);
    }),
  );
}

/** Actions of one service a consumer runs back to back before leaving the rest to the queue. */
const CHAIN_LIMIT = 100;
const CHAIN_BUDGET_MS = 10_000;

/**
 * Performs the message's action, then, while the service has more waiting
 * and the budget allows, the next ones in order: each finish hands the next
 * action to this consumer. The message is settled by its own action's
 * outcome; a chained action that must be retried gets a message of its own.
 */
async function runChain(
  env: Env,
  stub: DurableObjectStub<NamespaceObject>,
  first: Job,
  msg: Message<unknown>,
  delay: (attempts: number) => number,
  maxAttempts: number,
): Promise<void> {
  const started = Date.now();
  let job = first;
  for (let chained = 0; ; chained++) {
    const attemptStart = Date.now();
    const outcome = await perform(env, job);
    const mayChain = chained + 1 < CHAIN_LIMIT && Date.now() - started < CHAIN_BUDGET_MS;
    let next: BeginResult | null;
    try {
      next = await stub.finishAttempt(
        job.action.uuid,
        { ...outcome, durationMs: Date.now() - attemptStart },
        mayChain && outcome.result !== "retry",
      );
    } catch (err) {
      console.error("operation attempt could not be recorded; retrying", job.action.uuid, err);
      if (job === first) msg.retry({ delaySeconds: delay(msg.attempts) });
      // A chained action left unrecorded is handed to the queue again when its lease ends.
      return;
    }
    if (outcome.result === "retry") {
      const retryDelay = delay(Math.max(job === first ? msg.attempts : 0, job.attempt));
      // The action's own attempt count decides when it goes to the dead-letter queue: an action
      // that first ran chained gets a message of its own, whose count starts at 1 again.
      const exhausted = job.attempt >= maxAttempts;
      if (job !== first) await retryLater(env, job, retryDelay, exhausted);
      else if (!exhausted) msg.retry({ delaySeconds: retryDelay });
      else if (await deadLetter(env, job)) msg.ack();
      else msg.retry({ delaySeconds: retryDelay });
      return;
    }
    if (job === first) msg.ack();
    if (next?.status !== "run") return;
    job = next.job;
  }
}

/** A chained action's retry: a message of its own, delayed like any retry, or a dead letter. */
async function retryLater(env: Env, job: Job, delaySeconds: number, exhausted: boolean): Promise<void> {
  if (exhausted) {
    await deadLetter(env, job);
    return;
  }
  try {
    await env.OPERATIONS.send({ namespace: job.namespace, action: job.action.uuid } satisfies OperationMessage, {
      delaySeconds,
    });
  } catch (err) {
    // Not lost: the action stays handed over, and its lease hands it to the queue again.
    console.error("could not queue a retry; the dispatch lease will", job.action.uuid, err);
  }
}

/** Hands an action that used up its attempts to the dead-letter queue, whose consumer marks it Failed. */
async function deadLetter(env: Env, job: Job): Promise<boolean> {
  try {
    await env.DEAD_LETTERS.send({ namespace: job.namespace, action: job.action.uuid } satisfies OperationMessage);
    return true;
  } catch (err) {
    console.error("could not hand an action to the dead-letter queue", job.action.uuid, err);
    return false;
  }
}

/** The dead-letter queue: every attempt failed, so the action is marked Failed with the last error. */
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
