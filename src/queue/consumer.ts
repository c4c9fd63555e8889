import { config } from "../config";
import { backoffSeconds } from "../domain/backoff";
import { namespaceStub } from "../durable-objects/namespace";
import { perform } from "../targets";
import { OperationMessage } from "./messages";

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
      try {
        const stub = namespaceStub(env, body.namespace);
        const begun = await stub.beginAttempt(body.action);
        if (begun.status === "done") {
          msg.ack();
          return;
        }
        const started = Date.now();
        const outcome = await perform(env, begun.job);
        await stub.finishAttempt(body.action, { ...outcome, durationMs: Date.now() - started });
        if (outcome.result === "retry") msg.retry({ delaySeconds: delay(msg.attempts) });
        else msg.ack();
      } catch (err) {
        console.error("operation attempt could not be recorded; retrying", body.action, err);
        msg.retry({ delaySeconds: delay(msg.attempts) });
      }
    }),
  );
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
