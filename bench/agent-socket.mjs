// An agent's connection as the bench speaks it (a WebSocket client in the bench's process, saying
// what the agent program says): dialled with the agent's token, its hello said, and resolved once
// the service welcomed it. `onMessage` sees every message, the welcome included, from the start.
import WebSocket from "ws";

export async function dialAgent(base, token, onMessage) {
  const ws = new WebSocket(`${base.replace(/^http/, "ws")}/api/agent/v1/connect/`, {
    headers: { authorization: `Bearer ${token}` },
  });
  let welcomed;
  const welcome = new Promise((resolve, reject) => {
    welcomed = resolve;
    setTimeout(() => reject(new Error("bench: the agent was not welcomed within 10 s")), 10_000).unref();
  });
  ws.on("message", (data) => {
    const message = JSON.parse(String(data));
    if (message.type === "welcome") welcomed();
    onMessage(message);
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.send(
    JSON.stringify({
      type: "hello",
      agent_version: "bench",
      orchestrator: "swarm",
      engine_version: "bench",
      node_id: "bench",
    }),
  );
  await welcome;
  return ws;
}
