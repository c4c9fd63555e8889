import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Docker from "dockerode";
import type { RegistryAuth } from "../src/registry-auth.ts";
import { SwarmOrchestrator } from "../src/swarm.ts";

/**
 * The adapter's requests as the engine receives them, through the real
 * dockerode, from a fake engine on a unix socket: where the credentials go
 * (the X-Registry-Auth header, base64url of their JSON) and where they must
 * not (the URL, the body).
 */
const IMAGE = "registry.example.com/team/app:1";
const OLD = `sha256:${"a".repeat(64)}`;
const NEW = `sha256:${"b".repeat(64)}`;
const AUTH: RegistryAuth = { username: "bob", password: "pa/ss+wo=rd?", serveraddress: "registry.example.com" };

type Seen = { method: string; url: string; headers: IncomingHttpHeaders; body: string };
const seen: Seen[] = [];
const service = {
  ID: "svc1",
  Version: { Index: 7 },
  Spec: {
    Name: "web",
    TaskTemplate: { ContainerSpec: { Image: `${IMAGE}@${OLD}` } },
    Mode: { Replicated: { Replicas: 1 } },
  },
};
const server = createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => {
    body += chunk;
  });
  req.on("end", () => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
    res.setHeader("content-type", "application/json");
    if (req.url?.startsWith("/distribution/")) res.end(JSON.stringify({ Descriptor: { digest: NEW } }));
    else if (req.url?.startsWith("/services/svc1/update")) res.end(JSON.stringify({ Warnings: null }));
    else if (req.url === "/services/svc1" || req.url === "/services/web") res.end(JSON.stringify(service));
    else res.writeHead(404).end(JSON.stringify({ message: "not here" }));
  });
});
const dir = mkdtempSync(join(tmpdir(), "agent-engine-"));
const socketPath = join(dir, "docker.sock");
await new Promise<void>((resolve) => server.listen(socketPath, resolve));
after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

const decode = (header: string | string[] | undefined) =>
  JSON.parse(Buffer.from(String(header), "base64url").toString("utf8")) as unknown;

async function redeploy(credentials?: RegistryAuth) {
  seen.length = 0;
  const asked: string[] = [];
  const swarm = new SwarmOrchestrator(new Docker({ socketPath }), {
    for: (image) => {
      asked.push(image);
      return credentials;
    },
  });
  const found = await swarm.find("web");
  assert.ok(found);
  const lines: string[] = [];
  await swarm.apply(found, { kind: "redeploy", body: null }, "act-1", (l) => lines.push(l));
  return { asked, lines };
}

test("with credentials: the digest lookup and the update carry X-Registry-Auth, nothing else does", async () => {
  const { asked, lines } = await redeploy(AUTH);
  assert.deepEqual(asked, [IMAGE, `${IMAGE}@${NEW}`]);
  assert.deepEqual(lines, [`${IMAGE} now resolves to ${NEW}`]);
  const lookup = seen.find((s) => s.url.startsWith("/distribution/"));
  assert.equal(lookup?.url, `/distribution/${IMAGE}/json`);
  assert.deepEqual(decode(lookup?.headers["x-registry-auth"]), AUTH);
  const update = seen.find((s) => s.method === "POST");
  assert.equal(update?.url, "/services/svc1/update?version=7", "no credentials in the query");
  assert.deepEqual(decode(update?.headers["x-registry-auth"]), AUTH);
  const spec = JSON.parse(update?.body ?? "{}");
  assert.equal(spec.TaskTemplate.ContainerSpec.Image, `${IMAGE}@${NEW}`);
  assert.equal(spec.authconfig, undefined);
  assert.ok(!update?.body.includes(AUTH.password ?? ""), "no credentials in the body");
  for (const s of seen.filter((s) => s.method === "GET" && s.url.startsWith("/services/"))) {
    assert.equal(s.headers["x-registry-auth"], undefined, "an inspect carries none");
  }
});

test("without credentials no X-Registry-Auth is sent (the engine keeps the service's own)", async () => {
  const { asked } = await redeploy(undefined);
  assert.equal(asked.length, 2);
  assert.ok(seen.length >= 3);
  for (const s of seen) assert.equal(s.headers["x-registry-auth"], undefined, `${s.method} ${s.url}`);
});
