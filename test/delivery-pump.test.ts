import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DeliveryPump, type Finished } from "../src/queue/delivery-pump";
import type { AttemptResult, BeginResult, Job } from "../src/targets/job";

/** A job as the object starts one; only the fields the pump reads matter here. */
const job = (n: number, service = `svc-${n}`): Job =>
  ({ action: { uuid: `act-${n}`, resource_uri: "" }, attempt: 1, service: { uuid: service } }) as unknown as Job;
const run = (j: Job): BeginResult => ({ status: "run", job: j });

/** A namespace object that records each group it is sent, answering after `holdMs` with what `next` says. */
function fakeObject(holdMs: number, next: (f: Finished) => BeginResult | null = () => null) {
  const groups: Finished[][] = [];
  return {
    groups,
    stub: {
      finishAttempts: async (group: Finished[]) => {
        groups.push(group);
        await new Promise((r) => setTimeout(r, holdMs));
        return group.map(next);
      },
    } as never,
  };
}

const settleIn = (ms: number, result: AttemptResult = { result: "success", detail: "ok" }) =>
  new Promise<AttemptResult>((r) => setTimeout(() => r(result), ms));

describe("delivery pump: outcomes go to the namespace's object in groups", () => {
  it("one attempt alone is reported at once; those finishing while a report is on its way go together next", async () => {
    const o = fakeObject(50);
    // The first ends at 5 ms; nine more end while its report is held (10–40 ms).
    const pump = new DeliveryPump(o.stub, env, (_e, j) =>
      settleIn(j.action.uuid === "act-0" ? 5 : 10 + Number(j.action.uuid.slice(4)) * 3),
    );
    pump.take(Array.from({ length: 10 }, (_, n) => run(job(n))));
    await pump.done;
    expect(o.groups.map((g) => g.length)).toEqual([1, 9]);
    expect(
      o.groups
        .flat()
        .map((f) => f.uuid)
        .sort(),
    ).toEqual(Array.from({ length: 10 }, (_, n) => `act-${n}`).sort());
    expect(o.groups.flat().every((f) => f.attempt === 1 && f.report.result === "success" && f.chain)).toBe(true);
  });

  it("a finish that hands back the service's next action runs it, and a chain stops at its limit", async () => {
    let made = 0;
    const o = fakeObject(1, () => (made < 150 ? run(job(1000 + made++, "svc-chain")) : null));
    const pump = new DeliveryPump(o.stub, env, () => settleIn(0));
    pump.take([run(job(0, "svc-chain"))]);
    await pump.done;
    const all = o.groups.flat();
    // The 100th report of the service says "no chain": the object then leaves the rest to the queue.
    expect(all.filter((f) => f.chain)).toHaveLength(99);
    expect(all.at(-1)?.chain).toBe(false);
  });

  it("a group the object cannot record is left to the actions' deadlines; the pump still settles", async () => {
    const sent: number[] = [];
    const stub = {
      finishAttempts: async (g: Finished[]) => {
        sent.push(g.length);
        throw new Error("the object is unreachable");
      },
    } as never;
    const pump = new DeliveryPump(stub, env, () => settleIn(1));
    pump.take([run(job(1)), run(job(2)), { status: "done", reason: "not due" }, null]);
    await pump.done;
    expect(sent.reduce((a, b) => a + b, 0)).toBe(2);
  });

  it("an attempt that throws is left to its deadline and does not keep the pump from settling", async () => {
    const o = fakeObject(1);
    const pump = new DeliveryPump(o.stub, env, (_e, j) =>
      j.action.uuid === "act-1" ? Promise.reject(new Error("boom")) : settleIn(1),
    );
    pump.take([run(job(1)), run(job(2))]);
    await pump.done;
    expect(o.groups.flat().map((f) => f.uuid)).toEqual(["act-2"]);
  });
});
