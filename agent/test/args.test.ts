import assert from "node:assert/strict";
import { test } from "node:test";
import { connectUrl, parseArgs } from "../src/args.ts";
import { reconnectDelayMs } from "../src/backoff.ts";

const TOKEN = `dca_alice_${"a1".repeat(20)}`;

test("the URL and token come from flags or the environment", () => {
  assert.deepEqual(parseArgs(["--url", "https://api.example.com", "--token", TOKEN], {}), {
    url: "https://api.example.com/",
    token: TOKEN,
    heartbeatMs: 15_000,
  });
  assert.deepEqual(
    parseArgs(["--heartbeat-seconds=5"], {
      DOCKERCLOUD_AGENT_URL: "http://localhost:8787",
      DOCKERCLOUD_AGENT_TOKEN: TOKEN,
    }),
    { url: "http://localhost:8787/", token: TOKEN, heartbeatMs: 5_000 },
  );
});

test("what cannot work is refused with a reason", () => {
  const refused = (argv: string[]) => typeof parseArgs(argv, {}) === "string";
  assert.ok(refused([]));
  assert.ok(refused(["--url", "http://api.example.com", "--token", TOKEN]), "http to a remote host");
  assert.ok(refused(["--url", "https://api.example.com", "--token", "apikey"]), "not an agent token");
  assert.ok(refused(["--url", "https://api.example.com", "--token", TOKEN, "--run", "rm"]), "unknown option");
  assert.ok(refused(["--url", "https://api.example.com", "--token", TOKEN, "--heartbeat-seconds", "0"]));
  assert.ok(refused(["--url"]), "a flag without its value");
});

test("the connection endpoint is under the base URL, over ws or wss", () => {
  assert.equal(connectUrl("https://api.example.com/"), "wss://api.example.com/api/agent/v1/connect/");
  assert.equal(connectUrl("http://localhost:8787/base/"), "ws://localhost:8787/base/api/agent/v1/connect/");
});

test("reconnect delays grow exponentially to the cap, with full jitter", () => {
  assert.equal(
    reconnectDelayMs(1, 1000, 60_000, () => 1),
    1000,
  );
  assert.equal(
    reconnectDelayMs(4, 1000, 60_000, () => 1),
    8000,
  );
  assert.equal(
    reconnectDelayMs(30, 1000, 60_000, () => 1),
    60_000,
  );
  assert.equal(
    reconnectDelayMs(30, 1000, 60_000, () => 0),
    0,
  );
  for (let failures = 1; failures < 40; failures++) {
    const d = reconnectDelayMs(failures, 1000, 60_000);
    assert.ok(d >= 0 && d <= 60_000, `${failures}: ${d}`);
  }
});
