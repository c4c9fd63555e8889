// The bench's instrumented build of the product (bench only, never deployed): the product's Worker
// (src/index.ts) and its Durable Object classes, metered (objects.ts, meter.ts). Built by
// bench/runtime.mjs as the product is (`wrangler deploy --dry-run`, this file as the entry), and
// run only for the counting phase (bench/instrumented/count-phase.mjs); the timed phases run the
// product's own build. Its own routes, which are not counted:
//   GET  /__bench/counters  everything counted since the last reset, and each namespace object's
//                           database size and pending alarm
//   GET  /__bench/activity?within=<ms>  a number that moves whenever anything is counted, and how
//                           many objects have an alarm due within <ms> (polled while the bench waits)
//   POST /__bench/reset     starts counting again
//   POST /__bench/sweep     runs each namespace object's retention passes as its alarm would once its
//                           finished actions are past the retention (objects.ts), counted as alarms
import product from "../../src/index";
import { activity, countWorker, meterBatch, meterEnv, objectIds, reset, snapshot } from "./meter";
import type { ObjectState, SweepResult } from "./objects";

// The console's stream tickets take no part in a call: bound as in the product, not metered.
export { StreamTickets } from "../../src/durable-objects/stream-tickets";
export { Directory, NamespaceObject, ServiceLocator } from "./objects";

type Stateful = { __benchState(): Promise<ObjectState>; __benchSweep(): SweepResult | null };

const namespaceStub = (env: Env, id: string) =>
  env.NAMESPACES.get(env.NAMESPACES.idFromString(id)) as unknown as Stateful;

async function counters(env: Env): Promise<Response> {
  const counted = snapshot();
  const namespaces = await Promise.all(
    objectIds("NamespaceObject").map(async (id) => ({ id, ...(await namespaceStub(env, id).__benchState()) })),
  );
  return Response.json({ ...counted, namespaces });
}

async function sweep(env: Env): Promise<Response> {
  const ids = objectIds("NamespaceObject");
  return Response.json(
    await Promise.all(ids.map(async (id) => ({ id, ...(await namespaceStub(env, id).__benchSweep()) }))),
  );
}

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === "/__bench/activity" && request.method === "GET") {
      return Response.json(activity(Number(new URL(request.url).searchParams.get("within") ?? 60_000)));
    }
    if (pathname === "/__bench/sweep" && request.method === "POST") return sweep(env);
    if (pathname === "/__bench/counters" && request.method === "GET") return counters(env);
    if (pathname === "/__bench/reset" && request.method === "POST") {
      reset();
      return Response.json({ ok: true });
    }
    countWorker("fetch");
    return product.fetch(request, meterEnv(env), ctx);
  },

  async queue(batch, env, ctx) {
    countWorker("queue_batches");
    const metered = meterBatch(batch);
    try {
      await product.queue(metered.batch, meterEnv(env), ctx);
    } catch (err) {
      metered.settle(true);
      throw err;
    }
    metered.settle(false);
  },
} satisfies ExportedHandler<Env>;
