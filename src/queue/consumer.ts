import { config } from "../config";
import { backoffSeconds } from "../domain/backoff";
import { OperationMessage } from "../domain/messages";
import { namespaceStub } from "../durable-objects/namespace";
import { DeliveryPump } from "./delivery-pump";

function parse(msg: Message<unknown>): OperationMessage | null {
  const parsed = OperationMessage.safeParse(msg.body);
  if (parsed.success) return parsed.data;
  // A poison message is recorded and acked, never retried for ever.
  console.error("dropping a malformed operation message", msg.id, JSON.stringify(msg.body)?.slice(0, 200));
  msg.ack();
  return null;
}

/**
 * Starts the attempts the messages name, one RPC per namespace for the whole
 * batch, and acks the messages at once; the attempts themselves run after the
 * batch is settled (`ctx.waitUntil`, with `queue_consumer_no_wait_for_wait_until`),
 * so a slow or hanging target holds up only its own service, never the next
 * batch. Their reports go back in groups (delivery-pump.ts). The namespace's
 * object decides everything else: whether the action may start now, when a
 * failed attempt is retried, and when an attempt that never reported is
 * presumed lost. Only a failure to reach the object is retried by the queue
 * (and, past its retries, dead-lettered).
 */
export async function consumeOperations(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: Pick<ExecutionContext, "waitUntil">,
): Promise<void> {
  const cfg = config(env);
  const byNamespace = new Map<string, { msg: Message<unknown>; action: string }[]>();
  for (const msg of batch.messages) {
    const body = parse(msg);
    if (!body) continue;
    byNamespace.set(body.namespace, [...(byNamespace.get(body.namespace) ?? []), { msg, action: body.action }]);
  }
  await Promise.all(
    [...byNamespace].map(async ([namespace, messages]) => {
      const stub = namespaceStub(env, namespace);
      try {
        const begun = await stub.beginAttempts(messages.map((m) => m.action));
        for (const { msg } of messages) msg.ack();
        const pump = new DeliveryPump(stub, env);
        pump.take(begun);
        ctx.waitUntil(pump.done);
      } catch (err) {
        console.error("could not start attempts; retrying", namespace, messages.map((m) => m.action).join(", "), err);
        for (const { msg } of messages) {
          msg.retry({
            delaySeconds: backoffSeconds(msg.attempts, cfg.RETRY_BASE_DELAY_SECONDS, cfg.RETRY_MAX_DELAY_SECONDS),
          });
        }
      }
    }),
  );
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
