/**
 * Agents as a resource of a namespace: create (the token shown once, stored
 * as a hash), list with the Docker Cloud envelope and filters, get, rename,
 * delete; namespaced and not; members only.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../src/domain/crypto";
import { type AgentJson, as, asGo, asPython, call, createAgent, createOrg, createUser } from "./helpers/api";
import { RFC1123, UUID4 } from "./helpers/formats";

type Envelope<T> = { meta: { total_count: number; limit: number; offset: number }; objects: T[] };

const AGENT_KEYS = [
  "address",
  "agent_version",
  "connected_since",
  "created",
  "engine_version",
  "last_seen",
  "name",
  "node_id",
  "orchestrator",
  "replaced_at",
  "replacement",
  "resource_uri",
  "state",
  "uuid",
];

describe("agents: create, read, rename, delete", () => {
  it("create answers 201 with the agent and its token, once; the token is stored only as its SHA-256", async () => {
    const user = await createUser();
    const agent = await createAgent(user, "swarm-1");
    expect(Object.keys(agent).sort()).toEqual([...AGENT_KEYS, "token"].sort());
    expect(agent).toMatchObject({
      name: "swarm-1",
      state: "Disconnected",
      resource_uri: `/api/agent/v1/${user.username}/agent/${agent.uuid}/`,
      connected_since: null,
      last_seen: null,
      agent_version: null,
      orchestrator: null,
      engine_version: null,
      node_id: null,
      address: null,
      replaced_at: null,
      replacement: null,
    });
    expect(agent.uuid).toMatch(UUID4);
    expect(agent.created).toMatch(RFC1123);
    expect(agent.token).toMatch(new RegExp(`^dca_${user.username}_[0-9a-f]{40}$`));

    const got = await (await as(user, "GET", agent.resource_uri)).json<AgentJson>();
    expect(Object.keys(got).sort()).toEqual(AGENT_KEYS);
    const listed = await (await as(user, "GET", "/api/agent/v1/agent/")).text();
    expect(listed).not.toContain(agent.token);

    const stored = await runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) =>
      state.storage.sql.exec("SELECT * FROM agents").toArray(),
    );
    expect(JSON.stringify(stored)).not.toContain(agent.token);
    expect(stored[0]?.token_hash).toBe(await sha256Hex(agent.token as string));
  });

  it("two agents never share a token", async () => {
    const user = await createUser();
    const a = await createAgent(user, "a1");
    const b = await createAgent(user, "b1");
    expect(a.token).not.toBe(b.token);
  });

  it("names are unique in a namespace (409), checked (400), and renaming keeps the rule", async () => {
    const user = await createUser();
    const a = await createAgent(user, "edge");
    await createAgent(user, "core");
    const dup = await as(user, "POST", "/api/agent/v1/agent/", { name: "edge" });
    expect(dup.status).toBe(409);
    expect(await dup.json()).toEqual({ error: "an agent named 'edge' already exists" });
    for (const name of ["", "-x", "a b", "x".repeat(65), 7]) {
      const bad = await as(user, "POST", "/api/agent/v1/agent/", { name });
      expect(bad.status, JSON.stringify(name)).toBe(400);
      expect((await bad.json<{ error: string }>()).error).toMatch(/name/);
    }
    const taken = await as(user, "PATCH", a.resource_uri, { name: "core" });
    expect(taken.status).toBe(409);
    const renamed = await as(user, "PATCH", a.resource_uri, { name: "edge-2" });
    expect(renamed.status).toBe(200);
    expect(await renamed.json()).toMatchObject({ uuid: a.uuid, name: "edge-2" });
    const same = await as(user, "PATCH", a.resource_uri, { name: "edge-2" });
    expect(same.status).toBe(200);
  });

  it("delete answers the agent, then it is gone: 404 on get, out of the list", async () => {
    const user = await createUser();
    const a = await createAgent(user, "gone");
    const del = await as(user, "DELETE", a.resource_uri);
    expect(del.status).toBe(200);
    expect(await del.json()).toMatchObject({ uuid: a.uuid, name: "gone", state: "Disconnected" });
    const get = await as(user, "GET", a.resource_uri);
    expect(get.status).toBe(404);
    expect(await get.json()).toEqual({ error: "Agent not found" });
    expect((await as(user, "DELETE", a.resource_uri)).status).toBe(404);
    const list = await (await as(user, "GET", "/api/agent/v1/agent/")).json<Envelope<AgentJson>>();
    expect(list.meta.total_count).toBe(0);
  });

  it("a malformed or unknown agent uuid is a 404", async () => {
    const user = await createUser();
    for (const id of ["not-a-uuid", crypto.randomUUID()]) {
      const res = await as(user, "GET", `/api/agent/v1/agent/${id}/`);
      expect(res.status, id).toBe(404);
      expect(await res.json()).toEqual({ error: "Agent not found" });
    }
  });
});

describe("agents: lists", () => {
  it("the Docker Cloud envelope, in creation order, with name and state filters", async () => {
    const user = await createUser();
    for (const name of ["n1", "n2", "n3"]) await createAgent(user, name);
    const all = await (await as(user, "GET", "/api/agent/v1/agent/?limit=2")).json<Envelope<AgentJson>>();
    expect(all.meta).toMatchObject({ total_count: 3, limit: 2, offset: 0 });
    expect(all.objects.map((a) => a.name)).toEqual(["n1", "n2"]);
    const named = await (await as(user, "GET", "/api/agent/v1/agent/?name=n2")).json<Envelope<AgentJson>>();
    expect(named.objects.map((a) => a.name)).toEqual(["n2"]);
    const down = await (await as(user, "GET", "/api/agent/v1/agent/?state=Disconnected")).json<Envelope<AgentJson>>();
    expect(down.meta.total_count).toBe(3);
    const up = await (await as(user, "GET", "/api/agent/v1/agent/?state=Connected")).json<Envelope<AgentJson>>();
    expect(up.meta.total_count).toBe(0);
    const bad = await as(user, "GET", "/api/agent/v1/agent/?state=Up");
    expect(bad.status).toBe(400);
    expect((await bad.json<{ error: string }>()).error).toContain("state must be one of: Connected, Disconnected");
  });

  it("the Python and Go SDKs' requests are answered alike", async () => {
    const user = await createUser();
    await createAgent(user, "sdk");
    for (const send of [asPython, asGo]) {
      const res = await send(user, "GET", "/api/agent/v1/agent/");
      expect(res.status).toBe(200);
      expect((await res.json<Envelope<AgentJson>>()).objects.map((a) => a.name)).toEqual(["sdk"]);
    }
  });
});

describe("agents: whose they are", () => {
  it("an organization's agents are its members' to manage, through the namespaced path", async () => {
    const member = await createUser();
    const stranger = await createUser();
    const org = await createOrg(undefined, [member.username]);
    const agent = await createAgent(member, "org-agent", org);
    expect(agent.resource_uri).toBe(`/api/agent/v1/${org}/agent/${agent.uuid}/`);
    expect((await as(member, "GET", agent.resource_uri)).status).toBe(200);
    for (const [method, body] of [
      ["GET", undefined],
      ["PATCH", { name: "mine" }],
      ["DELETE", undefined],
    ] as const) {
      const res = await as(stranger, method, agent.resource_uri, body);
      expect(res.status, method).toBe(403);
    }
    expect((await as(stranger, "POST", `/api/agent/v1/${org}/agent/`, { name: "x1" })).status).toBe(403);
    expect((await as(stranger, "GET", `/api/agent/v1/${org}/agent/`)).status).toBe(403);
    // The non-namespaced path is the caller's own namespace: the organization's agent is not there.
    expect((await as(member, "GET", `/api/agent/v1/agent/${agent.uuid}/`)).status).toBe(404);
  });

  it("no credentials, no agents (401)", async () => {
    const res = await call("/api/agent/v1/agent/");
    expect(res.status).toBe(401);
  });
});
