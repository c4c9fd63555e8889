import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { test } from "node:test";
import { NO_RULES } from "../src/allow.ts";
import type { Options } from "../src/args.ts";
import { askAgain, explainAnswer } from "../src/dial-failure.ts";
import { EXIT_REFUSED, type LinkLimits, MAX_REFUSALS, startLink } from "../src/link.ts";
import { within } from "./within.ts";

// A dial that fails before it opens, told apart by the plain request that follows it: each line names
// what to fix. The delays are shortened so that several dials fit in a test.

const TOKEN = `dca_alice_${"a1".repeat(20)}`;
const ABOUT = { orchestrator: "swarm", engine_version: "27.3.1", node_id: "node-here" };
const FAST: LinkLimits = { dialMs: 2_000, askMs: 2_000, retryBaseMs: 20 };
const REFUSED_TOKEN =
  "could not connect: the service refused the agent's token (401): check DOCKERCLOUD_AGENT_TOKEN / --token, " +
  "or rotate it in the API";

/** An HTTP server on a loopback port answering every request, upgrade or not, with `answer`; what it was sent. */
async function answering(answer: (index: number) => { status: number; headers?: Record<string, string> }) {
  const requests: { authorization: string; upgrade: string; path: string }[] = [];
  const server = http.createServer((req, res) => {
    const { status, headers } = answer(requests.length);
    requests.push({
      authorization: req.headers.authorization ?? "",
      upgrade: req.headers.upgrade ?? "",
      path: req.url ?? "",
    });
    res.writeHead(status, headers).end();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const close = () => {
    server.closeAllConnections();
    server.close();
  };
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, port, requests, close };
}

/** A TCP server that takes connections and never says a word. */
async function silent() {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const close = () => {
    for (const socket of sockets) socket.destroy();
    server.close();
  };
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, close };
}

/** A loopback port nothing listens on (one that did a moment ago). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

/** The agent's link to `url`, with its printed lines, and whether it has ended (with its exit code). */
function run(url: string, { retryForever = false, limits = FAST } = {}) {
  const opts: Options = {
    url,
    token: TOKEN,
    heartbeatMs: 60_000,
    allow: NO_RULES,
    dryRun: false,
    registryConfig: null,
    orchestrator: null,
    settleMs: 10_000,
    retryForever,
  };
  const lines: string[] = [];
  const link = startLink(
    opts,
    async () => ABOUT,
    { onJob: () => {} },
    (line) => lines.push(line),
    limits,
  );
  const state = { exit: null as number | null };
  void link.done.then((code) => {
    state.exit = code;
  });
  return { lines, link, state };
}

/** Polls `probe` every 20 ms until it holds, for at most `ms`; `why` says what was seen instead. */
async function until(what: string, probe: () => boolean, why: () => string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms\n${why()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The first line of a link to `url` (its first failed dial), then the link stopped. */
async function firstLine(url: string, limits = FAST): Promise<string> {
  const agent = run(url, { limits });
  try {
    await until(
      "a line",
      () => agent.lines.length > 0,
      () => "",
      15_000,
    );
    return agent.lines[0] ?? "";
  } finally {
    agent.link.stop();
  }
}

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const RETRY = " dialling again in \\d+ ms";

test(`a refused token: ${MAX_REFUSALS} refusals in a row, each said so, then the agent exits ${EXIT_REFUSED}`, async () => {
  const service = await answering(() => ({ status: 401, headers: { "www-authenticate": "Bearer" } }));
  try {
    const agent = run(service.url);
    assert.equal(await within("the link to end", agent.link.done), EXIT_REFUSED);
    assert.equal(agent.lines.length, MAX_REFUSALS, agent.lines.join("\n"));
    for (const [i, line] of agent.lines.slice(0, -1).entries()) {
      const note = `(${i + 1} in a row; at ${MAX_REFUSALS} this process exits)`;
      assert.match(line, new RegExp(`^${literal(REFUSED_TOKEN)};${RETRY} ${literal(note)}$`));
    }
    assert.equal(
      agent.lines.at(-1),
      `${REFUSED_TOKEN}; refused ${MAX_REFUSALS} times in a row, this process exits (--retry-forever keeps it dialling)`,
    );
    // Each dial, then the plain request that asked why: both with the token, both asking for the upgrade.
    assert.equal(service.requests.length, 2 * MAX_REFUSALS);
    for (const r of service.requests) {
      assert.deepEqual(r, { authorization: `Bearer ${TOKEN}`, upgrade: "websocket", path: "/api/agent/v1/connect/" });
    }
  } finally {
    service.close();
  }
});

test("--retry-forever: a refused token keeps the agent dialling, past the refusals that would end it", async () => {
  const service = await answering(() => ({ status: 401 }));
  const agent = run(service.url, { retryForever: true });
  try {
    await until(
      "more refusals than end the agent",
      () => agent.lines.length > MAX_REFUSALS + 1,
      () => agent.lines.join("\n"),
    );
    assert.equal(agent.state.exit, null);
    for (const line of agent.lines)
      assert.match(line, new RegExp(`^${literal(REFUSED_TOKEN)};${RETRY} \\(--retry-forever\\)$`));
  } finally {
    agent.link.stop();
    service.close();
  }
  assert.equal(await within("the link to stop", agent.link.done), 0);
});

test("only refusals in a row count: another failure between them starts the count again", async () => {
  // Each dial is two requests: 401, 401, 503, 401, 401, then 503 from then on; never three 401s in a row.
  const service = await answering((i) => ({ status: i === 4 || i === 5 || i >= 10 ? 503 : 401 }));
  const agent = run(service.url);
  try {
    await until(
      "six dials",
      () => agent.lines.length >= 6,
      () => agent.lines.join("\n"),
    );
    assert.equal(agent.state.exit, null, agent.lines.join("\n"));
    assert.match(agent.lines[2] ?? "", /answered 503 Service Unavailable: the URL is right/);
    assert.match(agent.lines[4] ?? "", /\(2 in a row; at 3 this process exits\)$/);
  } finally {
    agent.link.stop();
    service.close();
  }
});

test("404: no agent endpoint at the URL, which is then not the API's base URL", async () => {
  const service = await answering(() => ({ status: 404 }));
  try {
    const line = await firstLine(`${service.url}/v2`);
    const why = `no agent endpoint at ${service.url}/v2/api/agent/v1/connect/ (404): is --url the API's base URL?`;
    assert.match(line, new RegExp(`^could not connect: ${literal(why)};${RETRY}$`));
  } finally {
    service.close();
  }
});

test("426 or another answer: the URL is right but the upgrade failed, with the status", async () => {
  const service = await answering((i) => ({ status: i < 2 ? 426 : 500 }));
  const agent = run(service.url);
  try {
    await until(
      "two dials",
      () => agent.lines.length >= 2,
      () => agent.lines.join("\n"),
    );
    assert.match(
      agent.lines[0] ?? "",
      new RegExp(
        `^could not connect: ${literal(service.host)} answered 426 Upgrade Required: the URL is right, but the upgrade ` +
          `to a WebSocket failed \\(does a proxy on the way drop the Upgrade header\\?\\);${RETRY}$`,
      ),
    );
    assert.match(agent.lines[1] ?? "", /answered 500 Internal Server Error: the URL is right, but the upgrade/);
    assert.equal(agent.state.exit, null);
  } finally {
    agent.link.stop();
    service.close();
  }
});

test("a port nothing listens on: said so, and the agent keeps dialling", async () => {
  const port = await freePort();
  const agent = run(`http://127.0.0.1:${port}`);
  try {
    await until(
      "two dials",
      () => agent.lines.length >= 2,
      () => agent.lines.join("\n"),
    );
    for (const line of agent.lines.slice(0, 2)) {
      const why = `nothing listens at 127.0.0.1:${port} (connection refused)`;
      assert.match(line, new RegExp(`^could not connect: ${literal(why)};${RETRY}$`));
    }
    assert.equal(agent.state.exit, null);
  } finally {
    agent.link.stop();
  }
});

test("a name that does not resolve", async () => {
  const line = await firstLine("https://agent.invalid");
  assert.match(
    line,
    new RegExp(`^could not connect: the name agent.invalid does not resolve \\((ENOTFOUND|EAI_AGAIN)\\);${RETRY}$`),
  );
});

test("https:// to a port that does not speak TLS: TLS failed, with OpenSSL's reason", async () => {
  const service = await answering(() => ({ status: 200 }));
  try {
    const line = await firstLine(`https://127.0.0.1:${service.port}`);
    assert.match(
      line,
      /^could not connect: TLS failed: [A-Z_]+ \(.+\): check that 127\.0\.0\.1:\d+ speaks HTTPS with a certificate/,
    );
  } finally {
    service.close();
  }
});

test("a server that takes the connection and never answers: the dial gives up after its deadline", async () => {
  const service = await silent();
  try {
    const line = await firstLine(service.url, { ...FAST, dialMs: 300 });
    assert.match(
      line,
      new RegExp(`^could not connect: no answer from ${literal(service.host)} within 0.3 s;${RETRY}$`),
    );
  } finally {
    service.close();
  }
});

test("the plain request has its own deadline", async () => {
  const service = await silent();
  try {
    const url = `${service.url}/api/agent/v1/connect/`;
    const answer = await within("the answer", askAgain(url, {}, 200), 5_000);
    assert.deepEqual(answer, { silent: true });
    assert.deepEqual(explainAnswer(answer, url, 200), {
      why: `no answer from ${service.host} within 0.2 s`,
      refused: false,
    });
  } finally {
    service.close();
  }
});

test("each failure is its own line naming what to fix", () => {
  const url = "https://api.example.com/api/agent/v1/connect/";
  const why = (answer: Parameters<typeof explainAnswer>[0]) => explainAnswer(answer, url, 10_000).why;
  const tls = (code: string, message: string) => why({ code, message });
  for (const [code, message] of [
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"],
    ["SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"],
    ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate"],
    ["CERT_HAS_EXPIRED", "certificate has expired"],
    ["ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames"],
  ]) {
    assert.equal(
      tls(code as string, message as string),
      `TLS failed: ${code} (${message}): check that api.example.com speaks HTTPS with a certificate this host trusts ` +
        "(NODE_EXTRA_CA_CERTS adds a CA)",
    );
  }
  assert.equal(
    why({ code: "ECONNREFUSED", message: "connect ECONNREFUSED" }),
    "nothing listens at api.example.com:443 (connection refused)",
  );
  assert.equal(
    why({ code: "EAI_AGAIN", message: "getaddrinfo EAI_AGAIN" }),
    "the name api.example.com does not resolve (EAI_AGAIN)",
  );
  assert.equal(
    why({ code: "ETIMEDOUT", message: "connect ETIMEDOUT" }),
    "no answer from api.example.com (the connection timed out)",
  );
  assert.equal(
    why({ code: "EHOSTUNREACH", message: "connect EHOSTUNREACH" }),
    "api.example.com cannot be reached from this host (EHOSTUNREACH): check the route and firewall",
  );
  assert.equal(
    why({ status: 301, text: "Moved Permanently", location: "https://www.example.com/api/agent/v1/connect/" }),
    "api.example.com answered 301 Moved Permanently, to https://www.example.com/api/agent/v1/connect/: " +
      "give --url the address the API answers at (a dial follows no redirect)",
  );
  assert.equal(explainAnswer({ status: 401, text: "Unauthorized" }, url, 10_000).refused, true);
  assert.equal(explainAnswer({ status: 403, text: "Forbidden" }, url, 10_000).refused, false);
});
