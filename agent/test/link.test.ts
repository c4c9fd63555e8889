import assert from "node:assert/strict";
import { once } from "node:events";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
// @ts-expect-error the ws package ships no type declarations; the few members used are typed below
import { WebSocketServer } from "ws";
import { NO_RULES } from "../src/allow.ts";
import type { Options } from "../src/args.ts";
import { AGENT_VERSION, startLink } from "../src/link.ts";
import { within } from "./within.ts";

const TOKEN = `dca_alice_${"a1".repeat(20)}`;
const ABOUT = { orchestrator: "swarm", engine_version: "27.3.1", node_id: "node-here" };
const REPLACED =
  "replaced by a connection from another node (node node-there, address 203.0.113.9; this one was node node-here, " +
  "address 198.51.100.4): whoever holds this agent's token is the agent now; if that is not yours, rotate the token " +
  "(POST <agent>/token/)";
const BAD_HELLO =
  'hello: node_id must be at most 100 characters (the first message of a connection is {"type":"hello", ...})';

/** The server's end of one connection (a `ws` WebSocket). */
type Peer = {
  send(text: string): void;
  close(code: number, reason: string): void;
  terminate(): void;
  once(event: "message", listener: (data: Buffer) => void): void;
};

/** A service on a loopback port: `onHello` gets each connection's first message, parsed, and its number from 0. */
async function serve(onHello: (peer: Peer, hello: Record<string, unknown>, index: number) => void) {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(server, "listening");
  const seen = { connections: 0, paths: [] as string[], authorizations: [] as string[] };
  server.on("connection", (peer: Peer, request: IncomingMessage) => {
    const index = seen.connections++;
    seen.paths.push(request.url ?? "");
    seen.authorizations.push(request.headers.authorization ?? "");
    peer.once("message", (data) => onHello(peer, JSON.parse(String(data)), index));
  });
  const { port } = server.address() as AddressInfo;
  const close = () => {
    for (const peer of server.clients as Set<Peer>) peer.terminate();
    server.close();
  };
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, seen, close };
}

/** The agent's link to `url`, its printed lines and how often it read its hello. */
function run(url: string, about: typeof ABOUT = ABOUT) {
  const opts: Options = {
    url,
    token: TOKEN,
    heartbeatMs: 60_000,
    allow: NO_RULES,
    dryRun: false,
    registryConfig: null,
    orchestrator: null,
    settleMs: 10_000,
    retryForever: false,
  };
  const lines: string[] = [];
  let hellos = 0;
  const hello = async () => {
    hellos += 1;
    return about;
  };
  const link = startLink(opts, hello, { onJob: () => {} }, (line) => lines.push(line));
  return { lines, link, hellos: () => hellos };
}

/** Polls `probe` every 20 ms until it holds, for at most `ms`. */
async function until(what: string, probe: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The service sends `error` (if any) right after the hello, then closes with `code`: the agent's lines and exit code. */
async function closedAfterHello(code: number, reason: string, error: string | null) {
  const service = await serve((peer) => {
    if (error !== null) peer.send(JSON.stringify({ type: "error", error }));
    peer.close(code, reason);
  });
  try {
    const agent = run(service.url);
    const exit = await within(`the link to end after ${code}`, agent.link.done);
    assert.equal(service.seen.connections, 1);
    return { exit, lines: agent.lines, host: service.host };
  } finally {
    service.close();
  }
}

test("it dials the connect endpoint with its token and says hello first, with what the hello read", async () => {
  let said: Record<string, unknown> | undefined;
  const service = await serve((peer, hello) => {
    said = hello;
    peer.send('{"type":"welcome"}');
  });
  const agent = run(service.url);
  try {
    await until("the hello", () => said !== undefined);
    assert.deepEqual(said, { type: "hello", agent_version: AGENT_VERSION, ...ABOUT });
    assert.deepEqual(service.seen.paths, ["/api/agent/v1/connect/"]);
    assert.deepEqual(service.seen.authorizations, [`Bearer ${TOKEN}`]);
    await until("the welcome to be told", () => agent.lines.length === 1);
    assert.deepEqual(agent.lines, [`connected to ${service.host}; the service welcomed this agent`]);
  } finally {
    agent.link.stop();
    service.close();
  }
  assert.equal(await within("the link to stop", agent.link.done), 0);
});

test("4000 after the service's replacement sentence: that sentence is printed, once, and the agent exits 1", async () => {
  const { exit, lines } = await closedAfterHello(4000, "replaced by a newer connection of this agent", REPLACED);
  assert.equal(exit, 1);
  assert.deepEqual(lines, [`disconnected: ${REPLACED}; this process exits`]);
});

test("4000 with no error message before it (an older service): the general reason", async () => {
  const { exit, lines } = await closedAfterHello(4000, "replaced by a newer connection of this agent", null);
  assert.equal(exit, 1);
  assert.equal(
    lines.at(-1),
    "disconnected: another process connected with this agent's token; only one may run; this process exits",
  );
});

test("4004: the token was rotated; the agent says to restart it with the new one and exits 1", async () => {
  const reason = "the agent's token was replaced; start the agent with the new one";
  const { exit, lines } = await closedAfterHello(4004, reason, null);
  assert.equal(exit, 1);
  assert.equal(
    lines.at(-1),
    "disconnected: the agent's token was rotated; restart the agent with the new token; this process exits",
  );
});

test("4005: the service's error about the hello is printed with the close, and the agent exits 1", async () => {
  const reason = "the hello was refused; see the error message before this close";
  const { exit, lines } = await closedAfterHello(4005, reason, BAD_HELLO);
  assert.equal(exit, 1);
  assert.deepEqual(lines, [
    `disconnected: the service refused the agent's hello, saying: ${BAD_HELLO}; this process exits`,
  ]);
});

test("4006 is not final: the agent says why, dials again and says hello again", async () => {
  const reason = "no hello within 10 s, or a newer connection came first; dial again";
  const service = await serve((peer, _hello, index) => {
    if (index === 0) peer.close(4006, reason);
    else peer.send('{"type":"welcome"}');
  });
  const agent = run(service.url);
  try {
    await until("a second connection", () => service.seen.connections === 2 && agent.lines.length === 2);
    assert.equal(agent.hellos(), 2, "the hello is read again for the new connection");
    assert.match(
      agent.lines[0] ?? "",
      /^disconnected \(4006: the hello did not reach the service within 10 s, or another connection with this token came first\); dialling again in \d+ ms$/,
    );
    assert.equal(agent.lines[1], `connected to ${service.host}; the service welcomed this agent`);
  } finally {
    agent.link.stop();
    service.close();
  }
  assert.equal(await within("the link to stop", agent.link.done), 0);
});

test("an error message no close follows is printed on its own, and the connection stays", async () => {
  const service = await serve((peer) => {
    peer.send('{"type":"welcome"}');
    peer.send(JSON.stringify({ type: "error", error: "unknown message: send a JSON object with a known type" }));
  });
  const agent = run(service.url);
  try {
    await until("the error to be printed", () => agent.lines.length === 2);
    assert.equal(agent.lines[1], "the service said: unknown message: send a JSON object with a known type");
    assert.equal(service.seen.connections, 1);
  } finally {
    agent.link.stop();
    service.close();
  }
  assert.equal(await within("the link to stop", agent.link.done), 0);
});

test("a close that is not final prints the error before it, then dials again", async () => {
  const service = await serve((peer, _hello, index) => {
    if (index > 0) return;
    peer.send(JSON.stringify({ type: "error", error: "something went wrong" }));
    peer.close(4003, "no sign of the agent for 90 s; dial again");
  });
  const agent = run(service.url);
  try {
    await until("a second connection", () => service.seen.connections === 2 && agent.lines.length === 2);
    assert.equal(agent.lines[0], "the service said: something went wrong");
    assert.match(agent.lines[1] ?? "", /^disconnected \(4003: the service heard nothing from the agent for 90 s\);/);
  } finally {
    agent.link.stop();
    service.close();
  }
  assert.equal(await within("the link to stop", agent.link.done), 0);
});

test("what an odd engine reports is cleaned to what the service accepts, so the hello is never refused for it", async () => {
  let said: Record<string, unknown> | undefined;
  const service = await serve((peer, hello) => {
    said = hello;
    peer.send('{"type":"welcome"}');
  });
  const odd = { orchestrator: "swarm\u001b[2J", engine_version: "27.3.1\r\n\u202eevil", node_id: "n".repeat(150) };
  const agent = run(service.url, odd);
  try {
    await until("the hello", () => said !== undefined);
    assert.deepEqual(said, {
      type: "hello",
      agent_version: AGENT_VERSION,
      orchestrator: "swarm[2J",
      engine_version: "27.3.1evil",
      node_id: "n".repeat(100),
    });
  } finally {
    agent.link.stop();
    service.close();
  }
});

test("a connection is told once the service welcomes it, not when it opens: a refused hello never was the agent's", async () => {
  const service = await serve((peer, _hello, index) => {
    if (index === 0) peer.close(4006, "dial again");
    else setTimeout(() => peer.send('{"type":"welcome"}'), 100);
  });
  const agent = run(service.url);
  try {
    await until("the second connection", () => service.seen.connections === 2);
    assert.ok(!agent.lines.some((l) => l.startsWith("connected")), agent.lines.join("\n"));
    await until("the welcome to be told", () => agent.lines.some((l) => l.startsWith("connected")));
    assert.equal(agent.lines.at(-1), `connected to ${service.host}; the service welcomed this agent`);
  } finally {
    agent.link.stop();
    service.close();
  }
});

test("stopped by a signal, the agent says so and what becomes of a job under way; the exit code is 0", async () => {
  const service = await serve((peer) => peer.send('{"type":"welcome"}'));
  const agent = run(service.url);
  try {
    await until("the welcome", () => agent.lines.length === 1);
    agent.link.stop("SIGTERM");
    assert.equal(await within("the link to stop", agent.link.done), 0);
    assert.equal(
      agent.lines.at(-1),
      "stopping on SIGTERM: closing the connection; a job under way is redelivered to the next run",
    );
    agent.link.stop("SIGINT");
    assert.equal(agent.lines.length, 2, "a second signal adds nothing");
  } finally {
    service.close();
  }
});
