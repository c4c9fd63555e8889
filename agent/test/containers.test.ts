import assert from "node:assert/strict";
import { test } from "node:test";
import { kindOf } from "../src/choose.ts";
import {
  type ContainerJson,
  cloneContainer,
  commonLabels,
  demuxLog,
  fixedHostPorts,
  goneName,
  keyOf,
  keyOfLabels,
  labelFilters,
  newName,
  oldName,
  replicaName,
  slotCount,
  standingOf,
  temporaryOf,
} from "../src/containers.ts";
import { entriesOfContainers, serviceIdOf, serviceOfContainerEvent } from "../src/docker-inventory.ts";

const ACTION = "6f1c1f7e-8a9b-4c3d-9e2f-0a1b2c3d4e5f";
const OLD_ID = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100";

/** A container as dockerd 20.10 inspects one Compose 1.29 made (`web` of project `shop`), trimmed. */
function composeWeb(): ContainerJson {
  return {
    Id: OLD_ID,
    Name: "/shop_web_1",
    Image: "sha256:aaaa",
    Created: "2026-12-07T10:00:00.000000000Z",
    State: { Status: "running", Running: true, StartedAt: "2026-12-07T10:00:01.000000000Z" },
    Config: {
      Hostname: OLD_ID.slice(0, 12),
      Image: "127.0.0.1:5000/bb:1",
      Env: ["GREETING=hello", "PATH=/bin"],
      Cmd: ["httpd", "-f", "-p", "80", "-h", "/srv"],
      WorkingDir: "/",
      Labels: {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
        "com.docker.compose.container-number": "1",
        deploy: "auto",
        "org.image.label": "from-image",
      },
    },
    HostConfig: {
      NetworkMode: "shop_default",
      Binds: ["shop_data:/srv:rw"],
      PortBindings: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "8080" }] },
      RestartPolicy: { Name: "unless-stopped" },
    },
    NetworkSettings: {
      Networks: {
        shop_default: { Aliases: ["web", "shop-web", OLD_ID.slice(0, 12)], IPAMConfig: null },
        shop_back: { Aliases: ["web"], IPAMConfig: { IPv4Address: "10.213.5.9" } },
      },
    },
    Mounts: [
      { Type: "volume", Name: "shop_data", Destination: "/srv", RW: true },
      { Type: "volume", Name: "9c".repeat(32), Destination: "/cache", RW: true },
    ],
  };
}

const IMAGE_CONFIG = {
  Env: ["PATH=/bin"],
  Cmd: ["sh"],
  WorkingDir: "/",
  Labels: { "org.image.label": "from-image" },
};

test("a clone keeps what the container set and leaves what it inherited to the new image", () => {
  const made = cloneContainer(composeWeb(), {
    name: newName("shop_web_1", ACTION),
    image: "127.0.0.1:5000/bb:1@sha256:bbbb",
    action: ACTION,
    body: '{"ref":"main"}',
    imageConfig: IMAGE_CONFIG,
  });
  const body = made.body as Record<string, unknown> & { HostConfig: Record<string, unknown> };
  assert.equal(made.name, `shop_web_1.dcnew-${ACTION}`);
  assert.equal(body.Image, "127.0.0.1:5000/bb:1@sha256:bbbb");
  // Its own command stays; the working dir it only inherited goes, and with it the old hostname (the old id).
  assert.deepEqual(body.Cmd, ["httpd", "-f", "-p", "80", "-h", "/srv"]);
  assert.equal("WorkingDir" in body, false);
  assert.equal("Hostname" in body, false);
  assert.deepEqual(body.Env, ["GREETING=hello", 'DOCKERCLOUD_TRIGGER_BODY={"ref":"main"}']);
  assert.deepEqual(body.Labels, {
    "com.docker.compose.project": "shop",
    "com.docker.compose.service": "web",
    "com.docker.compose.container-number": "1",
    deploy: "auto",
    "io.dockercloud.action": ACTION,
  });
  // The named volume as it was, the anonymous one by its name (its data stays); ports and restart policy kept.
  assert.deepEqual(body.HostConfig.Binds, ["shop_data:/srv:rw", `${"9c".repeat(32)}:/cache`]);
  assert.deepEqual(body.HostConfig.PortBindings, { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "8080" }] });
  assert.deepEqual(body.HostConfig.RestartPolicy, { Name: "unless-stopped" });
  // The create joins the primary network with the aliases but the old id; the others are joined after.
  assert.deepEqual(body.NetworkingConfig, { EndpointsConfig: { shop_default: { Aliases: ["web", "shop-web"] } } });
  assert.deepEqual(made.more, [["shop_back", { Aliases: ["web"], IPAMConfig: { IPv4Address: "10.213.5.9" } }]]);
});

test("a clone without the old image's config keeps everything; a replica gets its number; no body leaves Env", () => {
  const old = composeWeb();
  const made = cloneContainer(old, {
    name: "shop_web_2",
    image: "127.0.0.1:5000/bb:1",
    action: ACTION,
    body: null,
    imageConfig: null,
    number: 2,
  });
  const body = made.body as Record<string, unknown> & { Labels: Record<string, string> };
  assert.equal(body.WorkingDir, "/");
  assert.deepEqual(body.Env, ["GREETING=hello", "PATH=/bin"]);
  assert.equal(body.Labels["com.docker.compose.container-number"], "2");
  assert.equal(body.Labels["org.image.label"], "from-image");
  assert.equal(old.Config.Labels?.["io.dockercloud.action"], undefined, "the old container's JSON is not changed");
});

test("service references: <project>/<service> or a standalone name; anything else is none", () => {
  assert.deepEqual(keyOf("shop/web"), { ref: "shop/web", project: "shop", service: "web" });
  assert.deepEqual(keyOf("cron"), { ref: "cron", project: null, service: "cron" });
  for (const bad of ["Shop/web", "a/b/c", "/web", "web/", "", "x".repeat(64), "sh op/web", "shop/we b"]) {
    assert.equal(keyOf(bad), null, bad);
  }
  assert.deepEqual(labelFilters(keyOf("shop/web") as never), [
    "com.docker.compose.project=shop",
    "com.docker.compose.service=web",
  ]);
  assert.deepEqual(labelFilters(keyOf("cron") as never), ["io.dockercloud.service=cron"]);
  assert.equal(
    keyOfLabels({ "com.docker.compose.project": "shop", "com.docker.compose.service": "web" })?.ref,
    "shop/web",
  );
  assert.equal(
    keyOfLabels({
      "com.docker.compose.project": "shop",
      "com.docker.compose.service": "web",
      "com.docker.compose.oneoff": "True",
    }),
    null,
    "a `compose run` container is no service's",
  );
  assert.equal(keyOfLabels({ "io.dockercloud.service": "cron" })?.ref, "cron");
  assert.equal(keyOfLabels({ other: "x" }), null);
});

test("temporary names say the slot, the side and the action; other names are not temporary", () => {
  assert.deepEqual(temporaryOf(oldName("shop_web_1", ACTION)), { slot: "shop_web_1", side: "old", action: ACTION });
  assert.deepEqual(temporaryOf(newName("shop-web-1", ACTION)), { slot: "shop-web-1", side: "new", action: ACTION });
  assert.deepEqual(temporaryOf(goneName("shop_web_2", ACTION)), { slot: "shop_web_2", side: "gone", action: ACTION });
  assert.equal(temporaryOf("shop_web_1"), null);
  assert.equal(slotCount(["shop_web_1", oldName("shop_web_1", ACTION), goneName("shop_web_2", ACTION)]), 1);
  assert.equal(temporaryOf("shop_web_1.dcold-short"), null);
});

test("replica names follow the template's (Compose v1 `_n`, v2 `-n`), numbers, fixed ports, common labels", () => {
  const key = keyOf("shop/worker") as never;
  assert.equal(replicaName("shop_worker_1", key, 3), "shop_worker_3");
  assert.equal(replicaName("shop-worker-1", key, 2), "shop-worker-2");
  assert.equal(replicaName("custom", key, 2), "shop_worker_2");
  assert.deepEqual(fixedHostPorts(composeWeb().HostConfig), ["127.0.0.1:8080->80/tcp"]);
  assert.deepEqual(fixedHostPorts({ PortBindings: { "80/tcp": [{ HostIp: "", HostPort: "" }] } }), []);
  assert.deepEqual(fixedHostPorts({ PortBindings: { "80/tcp": [{ HostPort: "0" }] } }), []);
  assert.deepEqual(commonLabels([{ a: "1", b: "2" }, { a: "1", b: "3" }, { a: "1" }]), { a: "1" });
});

test("a started container: ready when healthy or settled; failed when it exits or restarts; else waiting", () => {
  const base = composeWeb();
  const at = Date.parse("2026-12-07T10:00:01Z");
  assert.equal(standingOf(base, at + 5_000, 10_000).state, "waiting");
  assert.equal(standingOf(base, at + 10_000, 10_000).state, "ready");
  const exited = { ...base, State: { ...base.State, Running: false, Status: "exited", ExitCode: 3 } };
  assert.deepEqual(standingOf(exited, at, 10_000), { state: "failed", why: "it exited with code 3", exitCode: 3 });
  const restarted = { ...base, RestartCount: 1, State: { ...base.State, ExitCode: 1 } };
  assert.equal(standingOf(restarted, at, 10_000).state, "failed");
  const health = (Status: string) => ({
    ...base,
    State: { ...base.State, Health: { Status, Log: [{ Output: "no\n" }] } },
  });
  assert.equal(standingOf(health("healthy"), at, 10_000).state, "ready");
  assert.deepEqual(standingOf(health("unhealthy"), at + 60_000, 10_000), {
    state: "waiting",
    line: "health unhealthy: no",
  });
  assert.equal(standingOf(health("starting"), at + 60_000, 10_000).state, "waiting");
});

test("a container's log: the engine's frames taken apart; a TTY's raw text as it is", () => {
  const frame = (stream: number, text: string) => {
    const body = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(body.length, 4);
    return Buffer.concat([head, body]);
  };
  assert.equal(demuxLog(Buffer.concat([frame(1, "out\n"), frame(2, "err: boom\n")])), "out\nerr: boom\n");
  assert.equal(demuxLog(Buffer.from("plain text\n")), "plain text\n");
});

test("the inventory of a docker host: one item per service, a replacement under way counted once, one-offs left out", () => {
  const labels = (service: string, n: number, extra = {}) => ({
    "com.docker.compose.project": "shop",
    "com.docker.compose.service": service,
    "com.docker.compose.container-number": String(n),
    ...extra,
  });
  const entries = entriesOfContainers([
    { Id: "1", Names: ["/shop_worker_2"], Labels: labels("worker", 2), State: "running", Image: "bb:1", Created: 20 },
    { Id: "2", Names: ["/shop_worker_1"], Labels: labels("worker", 1), State: "exited", Image: "bb:1", Created: 10 },
    {
      Id: "3",
      Names: [`/shop_web_1.dcold-${ACTION}`],
      Labels: labels("web", 1, { deploy: "auto" }),
      State: "exited",
      Image: "bb:1",
    },
    { Id: "4", Names: ["/shop_web_1"], Labels: labels("web", 1, { deploy: "auto" }), State: "running", Image: "bb:2" },
    { Id: "5", Names: ["/shop_run_1"], Labels: labels("web", 1, { "com.docker.compose.oneoff": "True" }) },
    { Id: "6", Names: ["/cron"], Labels: { "io.dockercloud.service": "cron" }, State: "running", Image: "bb:1" },
  ]);
  const byName = Object.fromEntries(entries.map((e) => [e.item.name, e]));
  assert.deepEqual(Object.keys(byName).sort(), ["cron", "web", "worker"]);
  assert.deepEqual(byName.worker?.item, {
    id: serviceIdOf("shop/worker"),
    name: "worker",
    container_service: "shop/worker",
    image: "bb:1",
    mode: "replicated",
    replicas: 2,
    desired: 2,
    running: 1,
    update: { state: null, message: null },
    stack: "shop",
    max_num_containers: null,
    updated_at: new Date(20_000).toISOString(),
  });
  assert.equal(byName.web?.item.replicas, 1, "the container set aside and the one replacing it count once");
  assert.equal(byName.web?.item.running, 1);
  assert.equal(byName.web?.item.image, "bb:2", "the image of the container under the name");
  // Mid-replacement after a crash: nothing under the name, the old one aside, the new one waiting.
  const midway = entriesOfContainers([
    { Id: "7", Names: [`/shop_web_1.dcold-${ACTION}`], Labels: labels("web", 1), State: "exited", Image: "bb:1" },
    { Id: "8", Names: [`/shop_web_1.dcnew-${ACTION}`], Labels: labels("web", 1), State: "created", Image: "bb:2" },
  ]);
  assert.equal(midway[0]?.item.replicas, 1, "the service does not go away while it is replaced");
  assert.equal(midway[0]?.item.running, 0);
  assert.equal(byName.web?.labels.deploy, "auto");
  assert.equal(byName.cron?.item.stack, null);
  assert.match(serviceIdOf("shop/web"), /^[0-9a-f]{64}$/);
  assert.equal(
    serviceOfContainerEvent({ Type: "container", Action: "die", Actor: { Attributes: labels("web", 1) } }),
    serviceIdOf("shop/web"),
  );
  assert.equal(
    serviceOfContainerEvent({ Type: "container", Action: "exec_start: sh", Actor: { Attributes: labels("web", 1) } }),
    null,
  );
  assert.equal(serviceOfContainerEvent({ Type: "network", Actor: { Attributes: labels("web", 1) } }), null);
});

test("the orchestrator an engine's answer chooses: swarm only on an active manager", () => {
  assert.equal(kindOf({ Swarm: { LocalNodeState: "active", ControlAvailable: true } }), "swarm");
  assert.equal(kindOf({ Swarm: { LocalNodeState: "active", ControlAvailable: false } }), "docker");
  assert.equal(kindOf({ Swarm: { LocalNodeState: "inactive" } }), "docker");
  assert.equal(kindOf({}), "docker");
});
