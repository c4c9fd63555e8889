/**
 * Model-based property test of inventories (fast-check): random interleavings
 * of full and partial inventories from one agent (services appearing,
 * changing, gone), the API's own edits (rename, a new max, terminate),
 * trigger calls, and the agent's connection dropped and dialled again, over a
 * namespace that also holds services the agent does not own: one with the
 * same name as a swarm service and no target, one targeting another agent.
 *
 * After every step:
 *   - at most one API service per swarm service (by the orchestrator's id, and
 *     by the target's swarm_service);
 *   - a service the agent does not own is exactly as it was.
 * After the steps, one more full inventory: the API then equals it (every
 * service named is present with its figures; every other one the agent
 * brought in is Not running).
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, inject, it } from "vitest";
import type { InventoryItemSent as InventoryItem } from "../src/domain/inventory";
import { sleep } from "./helpers/actions";
import { connect } from "./helpers/agent-socket";
import { as, call, createAgent, createService, createTrigger, createUser, type User } from "./helpers/api";

const NUM_RUNS = Math.max(10, Math.round(inject("modelRuns") / 3));
const NAMES = ["web", "api", "db", "cache"] as const;

type Swarm = { name: (typeof NAMES)[number]; replicas: number; running: number; tag: string };
type Op =
  | { t: "full"; services: Swarm[] }
  | { t: "change"; services: Swarm[]; gone: number[] }
  | { t: "rename"; pick: number }
  | { t: "max"; pick: number; max: number }
  | { t: "terminate"; pick: number }
  | { t: "retarget"; pick: number; to: "other" | "none" }
  | { t: "call"; pick: number }
  | { t: "redial" };

const swarmService: fc.Arbitrary<Swarm> = fc.record({
  name: fc.constantFrom(...NAMES),
  replicas: fc.integer({ min: 0, max: 6 }),
  running: fc.integer({ min: 0, max: 6 }),
  tag: fc.constantFrom("1.0", "1.1", "2.0"),
});
const services = fc.uniqueArray(swarmService, { maxLength: 4, selector: (s) => s.name });
const OP: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant("full" as const), services }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("change" as const),
      services,
      gone: fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("rename" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant("max" as const), pick: fc.nat(), max: fc.integer({ min: 1, max: 9 }) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("terminate" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant("retarget" as const),
      pick: fc.nat(),
      to: fc.constantFrom("other" as const, "none" as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("call" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ t: "redial" as const }) },
);

const idOf = (name: string) => `id${name}`;
const itemOf = (s: Swarm): InventoryItem => ({
  id: idOf(s.name),
  name: s.name,
  image: `registry.local/${s.name}:${s.tag}@sha256:${"c".repeat(64)}`,
  mode: "replicated",
  replicas: s.replicas,
  desired: s.replicas,
  running: s.running,
  update: { state: "completed", message: null },
  stack: null,
  max_num_containers: null,
  updated_at: null,
});

type Row = {
  uuid: string;
  name: string;
  state: string;
  target_public: string | null;
  agent_uuid: string | null;
  orchestrator_id: string | null;
  present: number | null;
  target_num_containers: number;
  running_num_containers: number;
  image_tag: string | null;
};

class World {
  link!: Awaited<ReturnType<typeof connect>>;
  constructor(
    readonly user: User,
    readonly agent: { uuid: string; token: string },
    readonly other: string,
    /** Services the agent does not own, as they were made or last changed through the API. */
    readonly foreign: Map<string, Row>,
  ) {}

  rows(): Promise<Row[]> {
    return runInDurableObject(env.NAMESPACES.getByName(this.user.username), (_o, state) =>
      state.storage.sql
        .exec<Row>(
          `SELECT uuid, name, state, target_public, agent_uuid, orchestrator_id, present, target_num_containers,
             running_num_containers, image_tag FROM services ORDER BY seq`,
        )
        .toArray(),
    );
  }

  async dial(): Promise<void> {
    this.link = await connect(this.agent.token);
    await this.link.hello();
  }

  /** Sends an inventory and waits until it is applied (the marker's answer comes after it). */
  async send(full: boolean, items: InventoryItem[], gone: string[] = []): Promise<void> {
    const before = this.link.messages.length;
    this.link.send({ type: "inventory", full, services: items, gone });
    this.link.send({ type: "marker" });
    await this.link.until(
      () => this.link.messages.slice(before).some((m) => m.includes("unknown message")),
      "the inventory to apply",
    );
  }

  /** The agent's own services: those whose target names it. */
  async owned(): Promise<Row[]> {
    return (await this.rows()).filter((r) => r.target_public?.includes(this.agent.uuid));
  }
}

async function apply(w: World, op: Op): Promise<void> {
  const owned = await w.owned();
  const pick = "pick" in op ? owned[op.pick % Math.max(1, owned.length)] : undefined;
  const uri = pick ? `/api/app/v1/service/${pick.uuid}/` : null;
  switch (op.t) {
    case "full":
      return w.send(true, op.services.map(itemOf));
    case "change":
      return w.send(
        false,
        op.services.map(itemOf),
        op.gone.map((i) => idOf(NAMES[i] as string)),
      );
    case "rename":
      if (uri) expect([200, 409]).toContain((await as(w.user, "PATCH", uri, { name: `renamed${op.pick % 5}` })).status);
      return;
    case "max":
      if (uri) expect([200, 400]).toContain((await as(w.user, "PATCH", uri, { max_num_containers: op.max })).status);
      return;
    case "retarget": {
      if (!pick || !uri) return;
      const target = op.to === "none" ? null : { type: "agent", agent: w.other, swarm_service: `x${op.pick % 3}` };
      const r = await as(w.user, "PATCH", uri, { target });
      expect(r.status).toBe(200);
      const row = (await w.rows()).find((x) => x.uuid === pick.uuid);
      if (row) w.foreign.set(row.uuid, row);
      return;
    }
    case "terminate":
      if (uri) expect((await as(w.user, "DELETE", uri)).status).toBe(202);
      return;
    case "call":
      if (pick) {
        const trigger = await createTrigger(w.user, { uuid: pick.uuid, resource_uri: uri ?? "", name: pick.name }, {});
        expect([202, 409]).toContain((await call(trigger.url, { method: "POST" })).status);
      }
      return;
    case "redial":
      w.link.ws.close(1000, "redial");
      await sleep(10);
      return w.dial();
  }
}

async function check(w: World): Promise<void> {
  const rows = await w.rows();
  const mine = rows.filter((r) => r.agent_uuid === w.agent.uuid && r.orchestrator_id !== null);
  const ids = mine.map((r) => r.orchestrator_id);
  expect(new Set(ids).size, "one API service per swarm service (by id)").toBe(ids.length);
  const targets = rows
    .filter((r) => r.target_public?.includes(w.agent.uuid))
    .map((r) => (JSON.parse(r.target_public as string) as { swarm_service: string }).swarm_service);
  expect(new Set(targets).size, "one API service per swarm service (by target)").toBe(targets.length);
  for (const f of w.foreign.values()) {
    expect(
      rows.find((r) => r.uuid === f.uuid),
      "a service the agent does not own is untouched",
    ).toEqual(f);
  }
}

describe("inventory: one service per swarm service, others untouched, ends equal to the last inventory (model)", () => {
  it("holds for random interleavings", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(OP, { minLength: 1, maxLength: 15 }), services, async (ops, last) => {
        const user = await createUser();
        const agent = await createAgent(user);
        const other = await createAgent(user, "other");
        await createService(user, { name: "db" });
        await createService(user, {
          name: "cache",
          target: { type: "agent", agent: other.uuid, swarm_service: "cache" },
        });
        await createService(user, {
          name: "front",
          target: { type: "agent", agent: agent.uuid, swarm_service: "web" },
        });
        const probe = new World(user, agent, other.uuid, new Map());
        const foreign = (await probe.rows()).filter((r) => !r.target_public?.includes(agent.uuid));
        const w = new World(user, agent, other.uuid, new Map(foreign.map((r) => [r.uuid, r])));
        await w.dial();
        try {
          for (const op of ops) {
            await apply(w, op);
            await check(w);
          }
          await w.send(true, last.map(itemOf));
          await check(w);
          const owned = await w.owned();
          const others = new Set([...w.foreign.values()].map((r) => r.name));
          for (const s of last) {
            if (others.has(s.name)) continue; // refused: the name belongs to a service the agent does not own
            const row = owned.find((r) => r.orchestrator_id === idOf(s.name));
            expect(row, `${s.name} is in the API`).toBeDefined();
            expect(row).toMatchObject({
              present: 1,
              target_num_containers: s.replicas,
              running_num_containers: s.running,
            });
            expect(row?.image_tag).toBe(s.tag);
          }
          const named = new Set(last.map((s) => idOf(s.name)));
          for (const r of owned.filter((r) => r.orchestrator_id !== null && !named.has(r.orchestrator_id))) {
            expect(r.state, `${r.name} is gone from the last inventory`).toBe("Not running");
          }
        } finally {
          w.link.ws.close(1000, "done");
        }
      }),
      { numRuns: NUM_RUNS },
    );
  }, 600_000);
});
