/**
 * An agent's inventory, spoken by hand over a real WebSocket through the
 * Worker: the services it may act on become services of the API (or are
 * linked to the one whose target names them), their figures and state follow
 * what it reports, a service gone from the orchestrator keeps its record and
 * triggers and refuses calls until it is back, and no service whose target is
 * not this agent is ever touched. (The agent's side, against a real swarm:
 * agent/test-swarm/inventory.test.ts.)
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { InventoryItemSent as InventoryItem } from "../src/domain/inventory";
import { readJson, sleep, WAIT } from "./helpers/actions";
import { connect } from "./helpers/agent-socket";
import {
  as,
  call,
  createAgent,
  createService,
  createTrigger,
  createUser,
  type ServiceJson,
  type User,
} from "./helpers/api";
import { listen } from "./helpers/sockets";

type Service = ServiceJson & {
  state: string;
  stack: string | null;
  image_name: string | null;
  image_tag: string | null;
  target_num_containers: number;
  current_num_containers: number;
  running_num_containers: number;
  max_num_containers: number;
  synchronized_at: string | null;
  deployed_datetime: string | null;
  target: Record<string, unknown> | null;
};
type List = { meta: { total_count: number }; objects: Service[] };

const DIGEST = `sha256:${"b".repeat(64)}`;

function item(name: string, extra: Partial<InventoryItem> = {}): InventoryItem {
  return {
    id: `id${name.replace(/[^a-z0-9]/gi, "")}`.slice(0, 64),
    name,
    image: `registry.local:5000/${name}:1.0@${DIGEST}`,
    mode: "replicated",
    replicas: 2,
    desired: 2,
    running: 2,
    update: { state: "completed", message: null },
    stack: null,
    max_num_containers: null,
    updated_at: "2026-12-01T10:00:00.000Z",
    ...extra,
  };
}

async function agentLink(user: User, name = "edge") {
  const agent = await createAgent(user, name);
  const link = await connect(agent.token);
  await link.hello();
  const errors = () =>
    link
      .parsed<{ type: string; error?: string }>()
      .filter((m) => m.type === "error")
      .map((m) => m.error ?? "");
  /** Sends an inventory and waits until the object has applied it (the next message's answer comes after). */
  const send = async (m: { full: boolean; services: InventoryItem[]; gone?: string[] }) => {
    const before = errors().length;
    link.send({ type: "inventory", gone: [], ...m });
    link.send({ type: "marker" });
    await link.until(
      () => errors().length > before && errors().at(-1)?.startsWith("unknown message") === true,
      "applied",
    );
    return errors().slice(before, -1);
  };
  return { agent, link, send, errors };
}

const list = async (user: User, query = "") => readJson<List>(user, `/api/app/v1/service/?limit=100${query}`);
const byName = async (user: User, name: string) => (await list(user, `&name=${name}`)).objects;

describe("inventory: services come in, and follow the orchestrator", () => {
  it("a full inventory brings each service in once, with the agent as its target and the orchestrator's figures", async () => {
    const user = await createUser();
    const { agent, send } = await agentLink(user);
    const refused = await send({
      full: true,
      services: [item("web"), item("api_worker", { stack: "shop", replicas: 3, desired: 3, running: 1 })],
    });
    expect(refused).toEqual([]);
    const [web] = await byName(user, "web");
    expect(web).toMatchObject({
      name: "web",
      stack: null,
      target: { type: "agent", agent: agent.uuid, swarm_service: "web" },
      target_num_containers: 2,
      current_num_containers: 2,
      running_num_containers: 2,
      image_name: `registry.local:5000/web:1.0@${DIGEST}`,
      image_tag: "1.0",
      state: "Running",
      deployed_datetime: "Tue, 01 Dec 2026 10:00:00 +0000",
    });
    expect(web?.synchronized_at).not.toBeNull();
    const [worker] = await byName(user, "api_worker");
    expect(worker).toMatchObject({ stack: "shop", target_num_containers: 3, running_num_containers: 1 });
    expect(worker?.state).toBe("Partly running");
    // Found by uuid without the namespace too: its pointer was written before it existed.
    expect((await as(user, "GET", `/api/app/v1/service/${web?.uuid}/`)).status).toBe(200);
    // The same inventory again creates nothing.
    await send({ full: true, services: [item("web"), item("api_worker", { stack: "shop" })] });
    expect((await list(user)).meta.total_count).toBe(2);
  });

  it("links the API service whose target already names the agent and the swarm service: never two", async () => {
    const user = await createUser();
    const { agent, send } = await agentLink(user);
    const mine = await createService(user, {
      name: "frontend",
      target: { type: "agent", agent: agent.uuid, swarm_service: "web" },
      max_num_containers: 5,
    });
    const trigger = await createTrigger(user, mine, { operation: "REDEPLOY" });
    await send({ full: true, services: [item("web", { replicas: 4, desired: 4, running: 4 })] });
    const all = (await list(user)).objects;
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({
      uuid: mine.uuid,
      name: "frontend",
      target_num_containers: 4,
      max_num_containers: 5,
    });
    expect((await call(trigger.url, { method: "POST" })).status).toBe(202);
  });

  it("never touches a service of that name whose target is not this agent, and says why", async () => {
    const user = await createUser();
    const { send } = await agentLink(user);
    const other = await createAgent(user, "other");
    const theirs = await createService(user, {
      name: "web",
      target: { type: "agent", agent: other.uuid, swarm_service: "web" },
    });
    const plain = await createService(user, { name: "db" });
    const before = [
      await readJson<Service>(user, theirs.resource_uri),
      await readJson<Service>(user, plain.resource_uri),
    ];
    const refused = await send({ full: true, services: [item("web"), item("db")] });
    expect(refused).toHaveLength(2);
    expect(refused[0]).toContain("inventory: service 'web' not brought in: the API has a service of that name");
    const after = [
      await readJson<Service>(user, theirs.resource_uri),
      await readJson<Service>(user, plain.resource_uri),
    ];
    expect(after).toEqual(before);
    expect((await list(user)).meta.total_count).toBe(2);
  });

  it("changes are applied, equal figures write nothing, a gone service keeps its triggers and refuses calls until back", async () => {
    const user = await createUser();
    const { send } = await agentLink(user);
    await send({ full: true, services: [item("web"), item("db")] });
    const [web] = await byName(user, "web");
    const trigger = await createTrigger(user, web as ServiceJson, { operation: "REDEPLOY" });
    const events = await call("/api/audit/v1/events?type=service", {
      headers: { upgrade: "websocket", authorization: user.auth },
    });
    const stream = listen(events.webSocket as WebSocket);

    await send({ full: false, services: [item("web", { replicas: 5, desired: 5, running: 3 })] });
    await send({ full: false, services: [item("db")] }); // unchanged: no write, no event
    await send({ full: false, services: [], gone: [item("web").id] });
    const gone = await readJson<Service>(user, (web as Service).resource_uri);
    expect(gone).toMatchObject({ state: "Not running", running_num_containers: 0, target_num_containers: 5 });
    const refused = await call(trigger.url, { method: "POST" });
    expect(refused.status).toBe(409);
    expect((await refused.json<{ error: string }>()).error).toContain("the swarm service 'web' is not on the swarm");
    await send({ full: true, services: [item("web"), item("db")] });
    expect((await readJson<Service>(user, (web as Service).resource_uri)).state).toBe("Running");
    expect((await call(trigger.url, { method: "POST" })).status).toBe(202);

    await stream.until(() => stream.messages.length >= 3, "three events");
    await sleep(100);
    const seen = stream.parsed<{ uuid: string; state: string }>().filter((e) => e.uuid === web?.uuid);
    expect(seen.map((e) => e.state)).toEqual(["Partly running", "Not running", "Running"]);
    expect(
      stream.parsed<{ uuid: string }>().every((e) => e.uuid === web?.uuid),
      "db never changed",
    ).toBe(true);
    stream.ws.close(1000, "done");
  });

  it("a full inventory that no longer names a service marks it gone; the label sets max_num_containers", async () => {
    const user = await createUser();
    const { send } = await agentLink(user);
    await send({ full: true, services: [item("web"), item("db", { max_num_containers: 7 })] });
    expect((await byName(user, "db"))[0]?.max_num_containers).toBe(7);
    await send({ full: true, services: [item("db", { max_num_containers: 7 })] });
    expect((await byName(user, "web"))[0]?.state).toBe("Not running");
    expect((await byName(user, "db"))[0]?.state).toBe("Running");
  });

  it("call/N/ past max_num_containers by the replicas the orchestrator runs is refused at the call", async () => {
    const user = await createUser();
    const { send } = await agentLink(user);
    await send({ full: true, services: [item("web", { max_num_containers: 3 })] });
    const [web] = await byName(user, "web");
    const scale = await createTrigger(user, web as ServiceJson, { operation: "SCALEUP" });
    const r = await call(`${scale.url}2/`, { method: "POST" });
    expect(r.status).toBe(409);
    expect((await r.json<{ error: string }>()).error).toContain("the service targets 2 containers");
    expect((await readJson<{ objects: unknown[] }>(user, "/api/audit/v1/action/")).objects).toHaveLength(0);
  });

  it("an orchestrator running more than the maximum set here keeps a rename or a retarget possible", async () => {
    const user = await createUser();
    const { send } = await agentLink(user);
    await send({ full: true, services: [item("web", { replicas: 1, desired: 1, running: 1 })] });
    const [web] = await byName(user, "web");
    const uri = (web as ServiceJson).resource_uri;
    expect((await as(user, "PATCH", uri, { max_num_containers: 1 })).status).toBe(200);
    // Someone scales it to 2 on the orchestrator: the API follows, the maximum stays as set.
    await send({ full: true, services: [item("web", { replicas: 2, desired: 2, running: 2 })] });
    expect((await byName(user, "web"))[0]).toMatchObject({ target_num_containers: 2, max_num_containers: 1 });
    expect((await as(user, "PATCH", uri, { name: "front" })).status).toBe(200);
    // A change of the counts is still checked against each other.
    const raised = await as(user, "PATCH", uri, { target_num_containers: 3 });
    expect(raised.status).toBe(400);
    expect((await raised.json<{ error: string }>()).error).toContain("must not exceed max_num_containers (1)");
  });

  it("refuses a bad or oversized message whole, naming the field; nothing of it is applied", async () => {
    const user = await createUser();
    const { send } = await agentLink(user);
    for (const [services, words] of [
      [[item("web"), item("bad", { image: "evil\n\u001b[31m" })], "is not a Docker image reference"],
      [[item("web", { running: 100_000 })], "running must be at most 1000"],
      [[item("web", { update: { state: "completed", message: "\u202e" } })], "update.message must not contain"],
      [[item("web.v2")], "name must be 1 to 64 letters"],
      [Array.from({ length: 1001 }, (_, i) => item(`s${i}`)), "at most 1000 services"],
    ] as const) {
      const refused = await send({ full: true, services: [...services] });
      expect(refused).toHaveLength(1);
      expect(refused[0]).toContain(words);
      expect(refused[0]).toContain("nothing of this message was applied");
    }
    expect((await list(user)).meta.total_count).toBe(0);
  });

  it("an inventory reaches only its own namespace: another namespace's service of the same name is untouched", async () => {
    const mine = await createUser();
    const theirs = await createUser();
    const other = await agentLink(theirs);
    const kept = await createService(mine, { name: "web" });
    const before = await readJson<Service>(mine, kept.resource_uri);
    await other.send({ full: true, services: [item("web", { replicas: 9, desired: 9, running: 9 })] });
    expect(await readJson<Service>(mine, kept.resource_uri)).toEqual(before);
    expect((await byName(theirs, "web"))[0]?.target_num_containers).toBe(9);
  });

  it("stores nothing of an agent's message before its hello", async () => {
    const user = await createUser();
    const agent = await createAgent(user);
    const link = await connect(agent.token);
    link.send({ type: "inventory", full: true, services: [item("web")], gone: [] });
    await sleep(200);
    expect((await list(user)).meta.total_count).toBe(0);
    const rows = await runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) =>
      state.storage.sql.exec("SELECT uuid FROM services").toArray(),
    );
    expect(rows).toEqual([]);
    await expect.poll(() => link.messages.some((m) => m.includes("say hello first")), WAIT).toBe(true);
  });
});
