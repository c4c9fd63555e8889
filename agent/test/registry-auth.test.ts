import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DOCKER_HUB_KEY,
  type DockerConfig,
  defaultConfigPath,
  keyHost,
  lookup,
  parseConfig,
  RegistryCredentials,
  registryOf,
} from "../src/registry-auth.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const SECRET = "s3cr3t-P4ss:with-colon";
const TOKEN = "idtok-9f8e7d6c5b4a";
const SOURCE = "/home/u/.docker/config.json";

test("the config file is the docker CLI's: $DOCKER_CONFIG/config.json, else ~/.docker/config.json", () => {
  assert.equal(defaultConfigPath({ DOCKER_CONFIG: "/etc/dc" }, "/root"), "/etc/dc/config.json");
  assert.equal(defaultConfigPath({}, "/root"), "/root/.docker/config.json");
  assert.equal(defaultConfigPath({ DOCKER_CONFIG: "" }, "/home/u"), "/home/u/.docker/config.json");
});

test("an image's registry: the first component when it is a host, else Docker Hub", () => {
  const cases: [string, string][] = [
    ["nginx:1.27", "docker.io"],
    ["nginx", "docker.io"],
    ["library/nginx", "docker.io"],
    ["library/nginx:1.27@sha256:abc", "docker.io"],
    ["user/app:2", "docker.io"],
    ["docker.io/library/nginx:1.27", "docker.io"],
    ["index.docker.io/user/app", "docker.io"],
    ["localhost:5000/x", "localhost:5000"],
    ["localhost/x:1", "localhost"],
    ["127.0.0.1:5000/bb:1", "127.0.0.1:5000"],
    ["127.0.0.1:5000/bb:1@sha256:0123", "127.0.0.1:5000"],
    ["Registry.Example.com/team/app:3", "registry.example.com"],
    ["ghcr.io/org/app", "ghcr.io"],
  ];
  for (const [image, registry] of cases) assert.equal(registryOf(image), registry, image);
});

test("config keys are hosts with or without scheme and path", () => {
  assert.equal(keyHost("registry.example.com"), "registry.example.com");
  assert.equal(keyHost("https://registry.example.com"), "registry.example.com");
  assert.equal(keyHost("http://registry.example.com:5000/v2/"), "registry.example.com:5000");
  assert.equal(keyHost("registry.example.com/v2/"), "registry.example.com");
  assert.equal(keyHost(DOCKER_HUB_KEY), "docker.io");
  assert.equal(keyHost("docker.io"), "docker.io");
});

test("auth is base64 of user:password; username/password fields work too; serveraddress is the key", () => {
  const config: DockerConfig = {
    auths: {
      "https://registry.example.com": { auth: b64(`bob:${SECRET}`) },
      "other.example.com:8443": { username: "ann", password: "pw" },
    },
  };
  assert.deepEqual(lookup(config, "registry.example.com/team/app:1", SOURCE), {
    auth: { username: "bob", password: SECRET, serveraddress: "https://registry.example.com" },
    note: null,
  });
  assert.deepEqual(lookup(config, "other.example.com:8443/app", SOURCE).auth, {
    username: "ann",
    password: "pw",
    serveraddress: "other.example.com:8443",
  });
  assert.deepEqual(lookup(config, "other.example.com/app", SOURCE), { auth: null, note: null }, "another port");
  assert.deepEqual(lookup(config, "nginx:1.27", SOURCE), { auth: null, note: null });
});

test("an identity token is passed as such", () => {
  const config: DockerConfig = { auths: { "registry.example.com": { auth: b64("<token>:"), identitytoken: TOKEN } } };
  assert.deepEqual(lookup(config, "registry.example.com/app:1", SOURCE).auth, {
    username: "<token>",
    identitytoken: TOKEN,
    serveraddress: "registry.example.com",
  });
});

test("every spelling of a registry's key matches; the exact key comes first", () => {
  for (const key of [
    "registry.example.com",
    "https://registry.example.com",
    "http://registry.example.com",
    "registry.example.com/v2/",
    "https://registry.example.com/v1/",
  ]) {
    const config: DockerConfig = {
      auths: { "unrelated.example.com": { auth: b64("x:y") }, [key]: { auth: b64("u:p") } },
    };
    assert.equal(lookup(config, "registry.example.com/a/b:1", SOURCE).auth?.serveraddress, key, key);
  }
  const both: DockerConfig = {
    auths: {
      "https://registry.example.com/v2/": { auth: b64("old:1") },
      "registry.example.com": { auth: b64("new:2") },
    },
  };
  assert.equal(lookup(both, "registry.example.com/a", SOURCE).auth?.username, "new");
});

test("Docker Hub: https://index.docker.io/v1/ (or another spelling of it) for names without a registry", () => {
  const config: DockerConfig = { auths: { [DOCKER_HUB_KEY]: { auth: b64("hubuser:hubpass") } } };
  for (const image of ["nginx:1.27", "library/nginx", "user/app:2", "docker.io/library/nginx", "index.docker.io/u/a"]) {
    assert.deepEqual(
      lookup(config, image, SOURCE).auth,
      { username: "hubuser", password: "hubpass", serveraddress: DOCKER_HUB_KEY },
      image,
    );
  }
  assert.equal(lookup(config, "localhost:5000/x", SOURCE).auth, null);
  const short: DockerConfig = { auths: { "docker.io": { username: "h", password: "p" } } };
  assert.equal(lookup(short, "nginx:1.27", SOURCE).auth?.serveraddress, "docker.io");
});

test("loopback registries: localhost:5000/x and 127.0.0.1:5000/bb:1", () => {
  const config: DockerConfig = {
    auths: { "localhost:5000": { auth: b64("l:1") }, "http://127.0.0.1:5000": { auth: b64("i:2") } },
  };
  assert.equal(lookup(config, "localhost:5000/x", SOURCE).auth?.username, "l");
  assert.equal(lookup(config, "127.0.0.1:5000/bb:1", SOURCE).auth?.username, "i");
  assert.equal(lookup(config, "127.0.0.1:5001/bb:1", SOURCE).auth, null);
});

test("a registry only a credential helper covers: no credentials, and the reason", () => {
  // What `docker login` writes with a credsStore: an empty entry as a marker.
  const store: DockerConfig = { auths: { "registry.example.com": {} }, credsStore: "desktop" };
  const found = lookup(store, "registry.example.com/app:1", SOURCE);
  assert.equal(found.auth, null);
  assert.match(found.note ?? "", /registry\.example\.com .*credential helper docker-credential-desktop/);
  assert.match(found.note ?? "", /does not run/);
  assert.match(lookup({ credsStore: "pass" }, "nginx:1.27", SOURCE).note ?? "", /docker\.io .*docker-credential-pass/);

  const helpers: DockerConfig = { credHelpers: { "123.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login" } };
  const ecr = lookup(helpers, "123.dkr.ecr.eu-west-1.amazonaws.com/app:1", SOURCE);
  assert.equal(ecr.auth, null);
  assert.match(ecr.note ?? "", /docker-credential-ecr-login/);
  assert.deepEqual(lookup(helpers, "ghcr.io/a/b", SOURCE), { auth: null, note: null }, "the helper is per registry");

  const fileFirst: DockerConfig = { auths: { "ghcr.io": { auth: b64("g:h") } }, credsStore: "desktop" };
  assert.deepEqual(lookup(fileFirst, "ghcr.io/a/b", SOURCE), {
    auth: { username: "g", password: "h", serveraddress: "ghcr.io" },
    note: null,
  });
});

test("an entry without usable credentials is said, and skipped", () => {
  for (const entry of [{}, { auth: b64("nocolon") }, { auth: b64("user:") }, { username: "u" }]) {
    const found = lookup({ auths: { "r.example.com": entry } }, "r.example.com/a", SOURCE);
    assert.equal(found.auth, null, JSON.stringify(entry));
    assert.match(found.note ?? "", /holds no usable credentials/);
  }
});

test("a config file that is not JSON is said without quoting it", () => {
  const raw = `{"auths": {"r.example.com": {"auth": "${b64(`u:${SECRET}`)}", "password": "${SECRET}" ,,}}}`;
  const parsed = parseConfig(raw, SOURCE);
  assert.equal(typeof parsed, "string");
  assert.ok(!String(parsed).includes(SECRET));
  assert.equal(parseConfig("[]", SOURCE), `${SOURCE} is not a JSON object; registries are asked without credentials`);
});

test("the reader reads the file at each use and logs each note once; no log line holds a secret", () => {
  const files: Record<string, string> = {};
  const lines: string[] = [];
  const read = (path: string) => {
    const raw = files[path];
    if (raw === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
    return raw;
  };
  const creds = new RegistryCredentials("/c/config.json", (l) => lines.push(l), read);
  assert.equal(creds.for("r.example.com/a:1"), undefined);
  assert.equal(creds.for("r.example.com/a:1"), undefined);
  assert.deepEqual(lines, [
    "no docker config file /c/config.json (there is none); registries are asked without credentials",
  ]);

  files["/c/config.json"] = JSON.stringify({
    auths: {
      "r.example.com": { auth: b64(`u:${SECRET}`) },
      "t.example.com": { identitytoken: TOKEN, password: SECRET },
      "bad.example.com": { auth: b64(SECRET.replace(/:/g, "")) },
    },
    credsStore: "desktop",
  });
  assert.equal(creds.for("r.example.com/a:1")?.password, SECRET, "a login since counts");
  assert.equal(creds.for("t.example.com/a:1")?.identitytoken, TOKEN);
  creds.for("bad.example.com/a");
  creds.for("bad.example.com/a");
  creds.for("nginx:1.27");
  creds.for("library/nginx");
  files["/c/config.json"] = `{"auths": {"r.example.com": {"password": "${SECRET}"}`;
  creds.for("r.example.com/a:1");
  assert.equal(lines.length, 4, lines.join("\n"));
  assert.match(lines[1] ?? "", /bad\.example\.com .*docker-credential-desktop/);
  assert.match(lines[2] ?? "", /docker\.io .*docker-credential-desktop/);
  assert.equal(lines[3], "/c/config.json is not valid JSON; registries are asked without credentials");
  const all = lines.join("\n");
  for (const secret of [SECRET, TOKEN, b64(`u:${SECRET}`), SECRET.replace(/:/g, "")]) {
    assert.ok(!all.includes(secret), `the log holds ${secret}`);
  }
});
