import assert from "node:assert/strict";
import { test } from "node:test";
import { refusal } from "../src/allow.ts";
import { connectUrl, parseArgs, USAGE } from "../src/args.ts";
import { reconnectDelayMs } from "../src/backoff.ts";

const TOKEN = `dca_alice_${"a1".repeat(20)}`;

test("the URL and token come from flags or the environment; rules from flags", () => {
  assert.deepEqual(parseArgs(["--url", "https://api.example.com", "--token", TOKEN, "--allow-all"], {}), {
    url: "https://api.example.com/",
    token: TOKEN,
    heartbeatMs: 15_000,
    allow: { all: true, labels: [], services: [] },
    dryRun: false,
    registryConfig: null,
  });
  const env = { DOCKERCLOUD_AGENT_URL: "http://localhost:8787", DOCKERCLOUD_AGENT_TOKEN: TOKEN };
  assert.deepEqual(parseArgs(["--heartbeat-seconds=5", "--allow-service", "web", "--allow-label=deploy=auto"], env), {
    url: "http://localhost:8787/",
    token: TOKEN,
    heartbeatMs: 5_000,
    allow: { all: false, labels: [{ key: "deploy", value: "auto" }], services: ["web"] },
    dryRun: false,
    registryConfig: null,
  });
});

test("--dry-run (or DOCKERCLOUD_AGENT_DRY_RUN=1) checks jobs and changes nothing", () => {
  const base = ["--url", "https://api.example.com", "--token", TOKEN, "--allow-all"];
  const dry = (argv: string[], env: Record<string, string> = {}) => {
    const parsed = parseArgs(argv, env);
    return typeof parsed === "string" ? parsed : parsed.dryRun;
  };
  assert.equal(dry(base), false);
  assert.equal(dry([...base, "--dry-run"]), true);
  assert.equal(dry(["--dry-run", ...base]), true, "anywhere on the line; it takes no value");
  assert.equal(dry(base, { DOCKERCLOUD_AGENT_DRY_RUN: "1" }), true);
  assert.equal(dry(base, { DOCKERCLOUD_AGENT_DRY_RUN: "0" }), false);
  assert.match(String(dry([...base, "--dry-run=yes"])), /takes no value/);
});

test("--registry-config names another docker config file; by default the docker CLI's own is read", () => {
  const base = ["--url", "https://api.example.com", "--token", TOKEN, "--allow-all"];
  const config = (argv: string[]) => {
    const parsed = parseArgs(argv, {});
    return typeof parsed === "string" ? parsed : parsed.registryConfig;
  };
  assert.equal(config(base), null);
  assert.equal(config([...base, "--registry-config", "/etc/agent/docker.json"]), "/etc/agent/docker.json");
  assert.equal(config([...base, "--registry-config=/x/config.json"]), "/x/config.json");
  assert.match(String(config([...base, "--registry-config="])), /needs a file's path/);
  assert.match(String(config([...base, "--registry-config"])), /needs a value/);
  assert.match(USAGE, /--registry-config PATH/);
});

test("an agent with no rule is refused: allowing everything must be said outright", () => {
  const refused = parseArgs(["--url", "https://api.example.com", "--token", TOKEN], {});
  assert.equal(typeof refused, "string");
  assert.match(refused as string, /--allow-all/);
  const bads = [["--allow-label", "novalue"], ["--allow-label", "=x"], ["--allow-service", "a b"], ["--allow-all=no"]];
  for (const bad of bads) {
    assert.equal(
      typeof parseArgs(["--url", "https://x.example", "--token", TOKEN, ...bad], {}),
      "string",
      bad.join(" "),
    );
  }
});

test("a service is allowed by name, by label, or by --allow-all; otherwise refused with the rules", () => {
  const web = { name: "web", labels: { deploy: "auto" } };
  const db = { name: "db", labels: { deploy: "manual" } };
  const byName = { all: false, labels: [], services: ["web"] };
  const byLabel = { all: false, labels: [{ key: "deploy", value: "auto" }], services: [] };
  assert.equal(refusal(byName, web), null);
  assert.equal(refusal(byLabel, web), null);
  assert.equal(refusal({ all: true, labels: [], services: [] }, db), null);
  assert.match(refusal(byName, db) ?? "", /do not allow it to act on service 'db' \(allowed: service web\)/);
  assert.match(refusal(byLabel, db) ?? "", /allowed: label deploy=auto/);
});

test("what cannot work is refused with a reason", () => {
  const refused = (argv: string[]) => typeof parseArgs(argv, {}) === "string";
  assert.ok(refused([]));
  assert.ok(refused(["--allow-all", "--url", "http://api.example.com", "--token", TOKEN]), "http to a remote host");
  assert.ok(refused(["--allow-all", "--url", "https://api.example.com", "--token", "apikey"]), "not an agent token");
  assert.ok(
    refused(["--allow-all", "--url", "https://api.example.com", "--token", TOKEN, "--run", "rm"]),
    "unknown option",
  );
  assert.ok(refused(["--allow-all", "--url", "https://api.example.com", "--token", TOKEN, "--heartbeat-seconds", "0"]));
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
