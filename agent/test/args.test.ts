import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { refusal } from "../src/allow.ts";
import { connectUrl, FLAGS, parseArgs, USAGE } from "../src/args.ts";
import { reconnectDelayMs } from "../src/backoff.ts";
import { EXIT_REFUSED, MAX_REFUSALS } from "../src/link.ts";

const SRC = new URL("../src/", import.meta.url);

const TOKEN = `dca_alice_${"a1".repeat(20)}`;

test("the URL and token come from flags or the environment; rules from flags", () => {
  assert.deepEqual(parseArgs(["--url", "https://api.example.com", "--token", TOKEN, "--allow-all"], {}), {
    url: "https://api.example.com/",
    token: TOKEN,
    heartbeatMs: 15_000,
    allow: { all: true, labels: [], services: [] },
    dryRun: false,
    registryConfig: null,
    retryForever: false,
    orchestrator: null,
    settleMs: 10_000,
  });
  const env = { DOCKERCLOUD_AGENT_URL: "http://localhost:8787", DOCKERCLOUD_AGENT_TOKEN: TOKEN };
  assert.deepEqual(parseArgs(["--heartbeat-seconds=5", "--allow-service", "web", "--allow-label=deploy=auto"], env), {
    url: "http://localhost:8787/",
    token: TOKEN,
    heartbeatMs: 5_000,
    allow: { all: false, labels: [{ key: "deploy", value: "auto" }], services: ["web"] },
    dryRun: false,
    registryConfig: null,
    retryForever: false,
    orchestrator: null,
    settleMs: 10_000,
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

test("--retry-forever (or DOCKERCLOUD_AGENT_RETRY_FOREVER=1) keeps a refused token dialling", () => {
  const base = ["--url", "https://api.example.com", "--token", TOKEN, "--allow-all"];
  const forever = (argv: string[], env: Record<string, string> = {}) => {
    const parsed = parseArgs(argv, env);
    return typeof parsed === "string" ? parsed : parsed.retryForever;
  };
  assert.equal(forever(base), false);
  assert.equal(forever([...base, "--retry-forever"]), true);
  assert.equal(forever(base, { DOCKERCLOUD_AGENT_RETRY_FOREVER: "1" }), true);
  assert.equal(forever(base, { DOCKERCLOUD_AGENT_RETRY_FOREVER: "0" }), false);
  assert.match(String(forever([...base, "--retry-forever=no"])), /takes no value/);
});

test("every flag the parser takes has its line in --help, and no other flag is taken", () => {
  const base = ["--url", "https://api.example.com", "--token", TOKEN, "--allow-all"];
  const sample: Record<string, string> = { "allow-label": "a=b", "allow-service": "web", "heartbeat-seconds": "5" };
  for (const flag of FLAGS) {
    // Taken: whatever else it says of the value, the parser knows the flag.
    const parsed = parseArgs([...base, `--${flag}`, ...(sample[flag] ? [sample[flag]] : [])], {});
    assert.ok(typeof parsed !== "string" || !parsed.includes("unknown option"), `--${flag}: ${parsed}`);
    assert.match(USAGE, new RegExp(`^  --${flag}\\b.* {2,}\\S`, "m"), `--${flag} needs its line in USAGE`);
  }
  assert.match(String(parseArgs([...base, "--allow-everything"], {})), /^unknown option --allow-everything\n/);
  assert.match(USAGE, /^ {2}--help, -h\b/m);
});

test("every environment variable the agent reads has its line in --help", () => {
  const read = new Set(["DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"]); // read by dockerode's modem
  for (const file of readdirSync(SRC).filter((f) => f.endsWith(".ts"))) {
    const text = readFileSync(new URL(file, SRC), "utf8");
    for (const m of text.matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g)) read.add(m[1] as string);
  }
  assert.ok(read.has("DOCKERCLOUD_AGENT_TOKEN") && read.has("DOCKER_CONFIG"), [...read].join(" "));
  for (const name of read) assert.match(USAGE, new RegExp(`^  ${name}\\b`, "m"), `${name} needs its line in USAGE`);
});

test("--help tells the exit codes", () => {
  const codes = USAGE.slice(USAGE.indexOf("exit codes:"));
  for (const code of [0, 1, 2, EXIT_REFUSED]) assert.match(codes, new RegExp(`^  ${code}  \\S`, "m"));
  assert.match(
    codes,
    new RegExp(`^  ${EXIT_REFUSED}  the service refused the token ${MAX_REFUSALS} times in a row`, "m"),
  );
  assert.match(USAGE, new RegExp(`instead of exiting ${EXIT_REFUSED}$`, "m"));
});

test("a refused command line says why, the usage, and where the rest is; the program exits 2, --help 0", () => {
  const refused = String(parseArgs(["--allow-all", "--url"], {}));
  assert.match(refused, /^--url needs a value\nusage: dockercloud-agent .*\n\(--help tells every flag/);
  const main = new URL("main.ts", SRC).pathname;
  const env = { PATH: process.env.PATH ?? "" };
  const help = spawnSync(process.execPath, [main, "--help"], { env, encoding: "utf8", timeout: 20_000 });
  assert.equal(help.status, 0, help.stderr);
  assert.equal(help.stdout, `${USAGE}\n`);
  const wrong = spawnSync(process.execPath, [main, "--allow-all"], { env, encoding: "utf8", timeout: 20_000 });
  assert.equal(wrong.status, 2, wrong.stderr);
  assert.match(wrong.stderr, /^say where the API is and the agent's token/);
});
