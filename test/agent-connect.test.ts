/**
 * An agent's connection: GET /api/agent/v1/connect/ upgraded to a WebSocket
 * with its token as a Bearer header, held by its namespace's object. The
 * agent shows Connected once the connection said hello, while it is held; a
 * newer connection that says hello replaces an older one; deleting the agent
 * closes it at once and refuses its token. (Hostile connections:
 * agent-trust.test.ts.)
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { connect, dial } from "./helpers/agent-socket";
import { type AgentJson, as, createAgent, createUser, type NewAgentJson, type User } from "./helpers/api";

const agentOf = async (user: User, agent: NewAgentJson) =>
  (await as(user, "GET", agent.resource_uri)).json<AgentJson>();

describe("agent connections", () => {
  it("a valid token connects: after its hello the agent shows Connected and the hello is kept; a ping is answered", async () => {
    const user = await createUser();
    const agent = await createAgent(user);
    const link = await connect(agent.token);
    expect((await agentOf(user, agent)).state, "a connection is not the agent before its hello").toBe("Disconnected");

    link.ws.send(
      JSON.stringify({
        type: "hello",
        agent_version: "0.1.0",
        orchestrator: "swarm",
        engine_version: "20.10.24",
        node_id: "n0de",
      }),
    );
    await link.until(() => link.messages.includes('{"type":"welcome"}'), "welcome");
    const up = await agentOf(user, agent);
    expect(up.state).toBe("Connected");
    expect(up.connected_since).not.toBeNull();
    expect(up.last_seen).not.toBeNull();
    expect(up).toMatchObject({
      agent_version: "0.1.0",
      orchestrator: "swarm",
      engine_version: "20.10.24",
      node_id: "n0de",
    });

    link.ws.send('{"type":"ping"}');
    await link.until(() => link.messages.includes('{"type":"pong"}'), "pong");
    link.ws.send("not json");
    await link.until(() => link.messages.some((m) => m.includes('"type":"error"')), "error");
    expect(link.closed()).toBeNull();
  });

  it("closing the connection makes the agent Disconnected", async () => {
    const user = await createUser();
    const agent = await createAgent(user);
    const link = await connect(agent.token);
    await link.hello();
    expect((await agentOf(user, agent)).state).toBe("Connected");
    link.ws.close(1000, "bye");
    const deadline = Date.now() + 3000;
    while ((await agentOf(user, agent)).state !== "Disconnected") {
      if (Date.now() > deadline) throw new Error("the agent stayed Connected");
      await new Promise((r) => setTimeout(r, 50));
    }
    const list = await (await as(user, "GET", "/api/agent/v1/agent/?state=Connected")).json<{ objects: unknown[] }>();
    expect(list.objects).toHaveLength(0);
  });

  it("a newer connection replaces the older one once it says hello, and the agent stays Connected", async () => {
    const user = await createUser();
    const agent = await createAgent(user);
    const first = await connect(agent.token);
    await first.hello();
    const second = await connect(agent.token);
    await second.hello();
    await first.until(() => first.closed() !== null, "the first connection to close");
    expect(first.closed()?.code).toBe(4000);
    await new Promise((r) => setTimeout(r, 100));
    expect((await agentOf(user, agent)).state).toBe("Connected");
    second.ws.send('{"type":"ping"}');
    await second.until(() => second.messages.includes('{"type":"pong"}'), "pong");
  });

  it("deleting the agent closes its connection at once, and its token is refused from then on", async () => {
    const user = await createUser();
    const agent = await createAgent(user);
    const link = await connect(agent.token);
    expect((await as(user, "DELETE", agent.resource_uri)).status).toBe(200);
    await link.until(() => link.closed() !== null, "the connection to close");
    expect(link.closed()?.code).toBe(4001);
    const again = await dial(agent.token);
    expect(again.status).toBe(401);
    expect(await again.json()).toEqual({ error: "unknown or revoked agent token" });
  });

  it("an agent silent for longer than 90 s is presumed gone: its connection is closed (4003), it shows Disconnected", async () => {
    const user = await createUser();
    const agent = await createAgent(user);
    const link = await connect(agent.token);
    await link.hello();
    expect((await agentOf(user, agent)).state).toBe("Connected");
    // No ping was sent; the last sign is the connection itself, moved 91 s into the past.
    await runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) => {
      state.storage.sql.exec("UPDATE agents SET last_seen = ? WHERE uuid = ?", Date.now() - 91_000, agent.uuid);
    });
    const seen = await agentOf(user, agent);
    expect(seen.state).toBe("Disconnected");
    expect(seen.connected_since).toBeNull();
    await link.until(() => link.closed() !== null, "the silent connection to close");
    expect(link.closed()?.code).toBe(4003);
    const list = await (await as(user, "GET", "/api/agent/v1/agent/?state=Connected")).json<{ objects: unknown[] }>();
    expect(list.objects).toHaveLength(0);
  });

  it("a ping is a sign of life: an agent that pings is not presumed gone", async () => {
    const user = await createUser();
    const agent = await createAgent(user);
    const link = await connect(agent.token);
    await link.hello();
    await runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) => {
      state.storage.sql.exec("UPDATE agents SET last_seen = ? WHERE uuid = ?", Date.now() - 91_000, agent.uuid);
    });
    link.ws.send('{"type":"ping"}');
    await link.until(() => link.messages.includes('{"type":"pong"}'), "pong");
    expect((await agentOf(user, agent)).state).toBe("Connected");
    expect(link.closed()).toBeNull();
  });

  it("every refused token is the same 401, which names nothing; no upgrade is a 426", async () => {
    const user = await createUser();
    const agent = await createAgent(user);
    const other = `dca_${user.username}_${"0".repeat(40)}`;
    const ghost = `dca_nosuchns_${"a".repeat(40)}`;
    for (const [what, token] of [
      ["a token of the right shape that is no agent's", other],
      ["a token naming a namespace that does not exist", ghost],
      ["the user's API key", user.apikey],
      ["nothing", null],
      ["garbage", "x"],
    ] as const) {
      const res = await dial(token);
      expect(res.status, what).toBe(401);
      expect(res.headers.get("www-authenticate"), what).toBe('Bearer realm="Docker Cloud agents"');
      const body = await res.text();
      expect(body, what).not.toContain(agent.uuid);
      expect(JSON.parse(body), what).toHaveProperty("error");
    }
    const plain = await dial(agent.token, {});
    expect(plain.status).toBe(426);
    expect(plain.headers.get("upgrade")).toBe("websocket");
    expect(await plain.json()).toHaveProperty("error");
  });
});
