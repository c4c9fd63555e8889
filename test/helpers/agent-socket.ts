/** An agent's side of its connection, for tests: the real upgrade, through the Worker. */
import { expect } from "vitest";
import type { AgentJob } from "../../src/domain/agent-protocol";
import { call } from "./api";
import { listen } from "./sockets";

export function dial(token: string | null, headers: Record<string, string> = { upgrade: "websocket" }) {
  return call("/api/agent/v1/connect/", {
    headers: { ...headers, ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
  });
}

/** A connected agent's socket, with the messages and the close it receives. */
export async function connect(token: string) {
  const res = await dial(token);
  expect(res.status).toBe(101);
  const { ws, messages, parsed, closed, until } = listen(res.webSocket as WebSocket);
  const send = (message: Record<string, unknown>) => ws.send(JSON.stringify(message));
  /** The jobs received so far, parsed. */
  const jobs = () =>
    messages
      .map((m) => JSON.parse(m) as { type: string; job?: AgentJob })
      .filter((m) => m.type === "job")
      .map((m) => m.job as AgentJob);
  /** Says hello as the agent program does, and waits for the welcome. */
  const hello = async () => {
    send({ type: "hello", agent_version: "0.1.0", orchestrator: "swarm", engine_version: "20.10.24", node_id: "n0de" });
    await until(() => messages.includes('{"type":"welcome"}'), "welcome");
  };
  /** Waits for the `n`th job (1-based) and returns it. */
  const job = async (n: number) => {
    await until(() => jobs().length >= n, `job ${n}`);
    return jobs()[n - 1] as AgentJob;
  };
  return { ws, messages, parsed, closed, until, send, jobs, hello, job };
}
