/**
 * Agent targets on a plain Docker host: `container_service` names a Compose
 * service (`<project>/<service>`) or standalone containers by their
 * io.dockercloud.service label, instead of a Swarm service. Set through the
 * API (exactly one of the two forms), told to the agent in its jobs, and
 * brought in or linked by the agent's inventory through its own index.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { InventoryItemSent } from "../src/domain/inventory";
import { BY_CONTAINER_SERVICE } from "../src/durable-objects/namespace/services-followed";
import { readJson } from "./helpers/actions";
import { connect } from "./helpers/agent-socket";
import { as, call, createAgent, createService, createTrigger, createUser, type User } from "./helpers/api";

type Service = { uuid: string; resource_uri: string; name: string; stack: string | null; target: unknown };
type List = { meta: { total_count: number }; objects: Service[] };

const SERVICES = "/api/app/v1/service/";
const list = (user: User) => readJson<List>(user, `${SERVICES}?limit=100`);

async function post(user: User, target: Record<string, unknown>) {
  const r = await as(user, "POST", SERVICES, { image: "busybox", name: "web", target });
  return { status: r.status, body: await r.json<Record<string, unknown>>() };
}

describe("setting a container_service target", () => {
  it("takes a Compose service or a label, stores it by the agent's uuid, and GET shows it", async () => {
    const user = await createUser();
    const agent = await createAgent(user, "host-1");
    for (const container_service of ["shop/web", "shop_2-a/api.v2", "legacy-web", "a"]) {
      const created = await createService(user, { target: { type: "agent", agent: "host-1", container_service } });
      const expected = { type: "agent", agent: agent.uuid, container_service };
      expect(created.target).toEqual(expected);
      expect((await readJson<Service>(user, created.resource_uri)).target).toEqual(expected);
    }
  });

  it("PATCH moves a service from a swarm_service to a container_service, and back", async () => {
    const user = await createUser();
    const agent = await createAgent(user);
    const svc = await createService(user, { target: { type: "agent", agent: agent.uuid, swarm_service: "web" } });
    const patched = await as(user, "PATCH", svc.resource_uri, {
      target: { type: "agent", agent: agent.name, container_service: "shop/web" },
    });
    expect(patched.status, await patched.clone().text()).toBe(200);
    const compose = { type: "agent", agent: agent.uuid, container_service: "shop/web" };
    expect((await readJson<Service>(user, svc.resource_uri)).target).toEqual(compose);
    const back = await as(user, "PATCH", svc.resource_uri, {
      target: { type: "agent", agent: agent.uuid, swarm_service: "web" },
    });
    expect(back.status).toBe(200);
    const swarm = { type: "agent", agent: agent.uuid, swarm_service: "web" };
    expect((await readJson<Service>(user, svc.resource_uri)).target).toEqual(swarm);
  });

  it("refuses both forms at once, and neither, with a message that says which to give", async () => {
    const user = await createUser();
    await createAgent(user, "host-1");
    const both = await post(user, {
      type: "agent",
      agent: "host-1",
      swarm_service: "web",
      container_service: "shop/web",
    });
    expect(both.status).toBe(400);
    expect(both.body.error).toContain(
      "an agent target names either swarm_service (a Swarm service) or container_service (a Compose service or labelled containers), not both",
    );
    const neither = await post(user, { type: "agent", agent: "host-1" });
    expect(neither.status).toBe(400);
    expect(neither.body.error).toContain("an agent target names what its agent acts on: swarm_service");
    expect(neither.body.error).toContain("container_service (<compose project>/<compose service>");
    expect((await list(user)).meta.total_count).toBe(0);
  });

  it("refuses what names no Compose service nor label, stores nothing, and leaves a target as it was", async () => {
    const user = await createUser();
    const agent = await createAgent(user, "host-1");
    const bad = [
      "Proj/web",
      "a/b/c",
      "/web",
      "web/",
      "shop/",
      "",
      "x".repeat(64),
      `${"p".repeat(64)}/web`,
      `shop/${"s".repeat(64)}`,
      "shop/my web",
      "my web",
      " web",
      "shop/-web",
      "-shop/web",
      "shop/web\n",
      "shop\\web",
      42,
      null,
    ];
    for (const container_service of bad) {
      const r = await post(user, { type: "agent", agent: "host-1", container_service });
      expect(r.status, JSON.stringify(container_service)).toBe(400);
      expect(r.body.error).toContain(
        "target.container_service must be <compose project>/<compose service> (the project in lowercase letters, digits, '-' or '_'; the service in letters, digits, '-', '_' or '.') or the io.dockercloud.service label of standalone containers",
      );
    }
    expect((await list(user)).meta.total_count).toBe(0);
    const kept = await createService(user, { target: { type: "agent", agent: agent.uuid, swarm_service: "web" } });
    const before = await readJson<Service>(user, kept.resource_uri);
    for (const container_service of ["Proj/web", "a/b/c"]) {
      const r = await as(user, "PATCH", kept.resource_uri, {
        target: { type: "agent", agent: agent.uuid, container_service },
      });
      expect(r.status).toBe(400);
    }
    expect(await readJson<Service>(user, kept.resource_uri)).toEqual(before);
  });
});

describe("jobs for a container_service target", () => {
  it("the agent is told exactly the container_service, for a Compose service and for a label", async () => {
    const user = await createUser();
    const agent = await createAgent(user);
    const link = await connect(agent.token);
    await link.hello();
    let n = 0;
    for (const container_service of ["shop/web", "legacy-web"]) {
      const svc = await createService(user, { target: { type: "agent", agent: agent.uuid, container_service } });
      const trigger = await createTrigger(user, svc, { operation: "REDEPLOY" });
      const r = await call(trigger.url, { method: "POST" });
      expect(r.status, await r.clone().text()).toBe(202);
      const action = await r.json<{ uuid: string }>();
      n += 1;
      const job = await link.job(n);
      expect(job).toMatchObject({ action: action.uuid, kind: "redeploy", service: container_service });
    }
    link.ws.close(1000, "done");
  });
});

function item(name: string, extra: Partial<InventoryItemSent> = {}): InventoryItemSent {
  return {
    id: `id${name.replace(/[^a-z0-9]/gi, "")}`,
    name,
    image: "registry.local:5000/shop/web:1.0",
    mode: "replicated",
    replicas: 2,
    desired: 2,
    running: 2,
    update: { state: null, message: null },
    stack: null,
    max_num_containers: null,
    updated_at: null,
    ...extra,
  };
}

/** An agent that said hello, and a way to send it an inventory and read what it was told back. */
async function agentLink(user: User) {
  const agent = await createAgent(user, "host");
  const link = await connect(agent.token);
  await link.hello();
  const errors = () =>
    link
      .parsed<{ type: string; error?: string }>()
      .filter((m) => m.type === "error")
      .map((m) => m.error ?? "");
  /** Sends an inventory, then a message the object answers after applying it: the answers between are its own. */
  const send = async (services: InventoryItemSent[]) => {
    const before = errors().length;
    link.send({ type: "inventory", full: true, services, gone: [] });
    link.send({ type: "marker" });
    await link.until(
      () => errors().at(-1)?.startsWith("unknown message") === true && errors().length > before,
      "applied",
    );
    return errors().slice(before, -1);
  };
  return { agent, send };
}

describe("inventory items with a container_service", () => {
  it("bring in a service named after the Compose service, in the project's stack, with the container_service target", async () => {
    const user = await createUser();
    const { agent, send } = await agentLink(user);
    const refused = await send([
      item("web", { stack: "shop", container_service: "shop/web" }),
      item("legacy", { container_service: "legacy" }),
      item("api"),
    ]);
    expect(refused).toEqual([]);
    const byName = new Map((await list(user)).objects.map((s) => [s.name, s]));
    expect(byName.get("web")).toMatchObject({
      stack: "shop",
      target: { type: "agent", agent: agent.uuid, container_service: "shop/web" },
    });
    expect(byName.get("web")?.target).not.toHaveProperty("swarm_service");
    expect(byName.get("legacy")?.target).toEqual({ type: "agent", agent: agent.uuid, container_service: "legacy" });
    // An item without the field (an agent that predates it) is a Swarm service, as before.
    expect(byName.get("api")?.target).toEqual({ type: "agent", agent: agent.uuid, swarm_service: "api" });
    // The same inventory again brings in nothing more.
    await send([
      item("web", { stack: "shop", container_service: "shop/web" }),
      item("legacy", { container_service: "legacy" }),
    ]);
    expect((await list(user)).meta.total_count).toBe(3);
  });

  it("links the service created before with that container_service target: never a second one", async () => {
    const user = await createUser();
    const { agent, send } = await agentLink(user);
    const mine = await createService(user, {
      name: "frontend",
      target: { type: "agent", agent: agent.uuid, container_service: "shop/web" },
    });
    await send([item("web", { stack: "shop", container_service: "shop/web", replicas: 4, desired: 4, running: 4 })]);
    const all = (await list(user)).objects;
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ uuid: mine.uuid, name: "frontend", target_num_containers: 4 });
  });

  it("a service named after a swarm_service of the agent is not the Compose service of that name: refused, and told why", async () => {
    const user = await createUser();
    const { agent, send } = await agentLink(user);
    const swarm = await createService(user, {
      name: "web",
      stack: "shop",
      target: { type: "agent", agent: agent.uuid, swarm_service: "web" },
    });
    const before = await readJson<Service>(user, swarm.resource_uri);
    const refused = await send([item("web", { stack: "shop", container_service: "shop/web" })]);
    expect(refused).toEqual([
      "inventory: service 'web' not brought in: the API has a service of that name in stack 'shop' whose target is not this agent's container_service 'shop/web'; point its target at this agent (container_service 'shop/web') to link them, or rename one",
    ]);
    expect(await readJson<Service>(user, swarm.resource_uri)).toEqual(before);
  });

  it("an item whose container_service breaks the rule refuses the message whole", async () => {
    const user = await createUser();
    const { send } = await agentLink(user);
    for (const container_service of ["Shop/web", "a/b/c", "/web", "x".repeat(64), 7]) {
      const refused = await send([
        item("ok", { container_service: "ok" }),
        item("web", { container_service: container_service as string }),
      ]);
      expect(refused).toHaveLength(1);
      expect(refused[0]).toContain(
        "inventory: services.1.container_service: container_service must be <compose project>/<compose service>",
      );
      expect(refused[0]).toContain("nothing of this message was applied");
    }
    expect((await list(user)).meta.total_count).toBe(0);
  });

  it("a Compose service gone from its host refuses calls, saying so", async () => {
    const user = await createUser();
    const { send } = await agentLink(user);
    await send([
      item("web", { stack: "shop", container_service: "shop/web" }),
      item("legacy", { container_service: "legacy" }),
    ]);
    const services = (await list(user)).objects;
    const triggers = await Promise.all(services.map((s) => createTrigger(user, s, { operation: "REDEPLOY" })));
    await send([]);
    const answers = await Promise.all(
      triggers.map(async (t) => (await call(t.url, { method: "POST" })).json<{ error: string }>()),
    );
    const errors = answers.map((a) => a.error).sort();
    expect(errors[0]).toContain(
      "no container labelled io.dockercloud.service=legacy is on its Docker host (its agent reported it gone)",
    );
    expect(errors[1]).toContain(
      "the Compose service 'shop/web' is not on its Docker host (its agent reported it gone)",
    );
  });
});

describe("the link query", () => {
  it("reads the container_service index, never the whole table", async () => {
    const user = await createUser();
    await createService(user);
    const plan = await runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) =>
      state.storage.sql
        .exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${BY_CONTAINER_SERVICE}`, "a", "shop/web")
        .toArray()
        .map((r) => r.detail),
    );
    expect(plan.join("\n")).toContain("USING INDEX services_by_agent_container");
  });
});
