import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { promisify } from "node:util";
import { Inventory } from "../src/inventory.ts";
import type { AgentMessage, InventoryItem } from "../src/protocol.ts";
import { SwarmInventorySource } from "../src/swarm-inventory.ts";
import { docker, servicesOfThisFile } from "./helpers.ts";

const service = servicesOfThisFile();
const run = promisify(execFile);
/** The docker CLI, as a user would change the service. */
const cli = (...args: string[]) => run(process.env.DOCKER_BIN || "docker", args);

type InventoryMessage = Extract<AgentMessage, { type: "inventory" }>;

/** The first message after `from` that passes `ok`, waited for at most `seconds`. */
async function messageWhere(
  messages: InventoryMessage[],
  from: number,
  ok: (m: InventoryMessage) => boolean,
  seconds: number,
): Promise<InventoryMessage> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const found = messages.slice(from).find(ok);
    if (found) return found;
    assert.ok(Date.now() < deadline, `no such message within ${seconds} s: ${JSON.stringify(messages.slice(from))}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const itemIn = (m: InventoryMessage, id: string): InventoryItem | undefined => m.services.find((s) => s.id === id);

test("the inventory brings in the allowed service only, follows its scale and its removal", async () => {
  const mark = randomUUID().slice(0, 8);
  const allowed = await service("inv-in", {
    Labels: {
      "test.suite": "agent",
      "test.inventory": mark,
      "com.docker.stack.namespace": "shop",
      "io.dockercloud.max_num_containers": "5",
    },
  });
  const other = await service("inv-out");
  const name = allowed.Spec.Name ?? "";
  const messages: InventoryMessage[] = [];
  const lines: string[] = [];
  const inventory = new Inventory(new SwarmInventorySource(docker), {
    rules: { all: false, labels: [{ key: "test.inventory", value: mark }], services: [] },
    send: (m) => {
      if (m.type === "inventory") messages.push(m);
    },
    // Each welcome's count line is routine; any other line says something went wrong.
    log: (line) => (line.endsWith("sent to the service") ? undefined : lines.push(line)),
  });
  try {
    inventory.start();
    await inventory.sendFull();
    const full = messages[0];
    assert.equal(full?.full, true);
    assert.equal(full?.services.length, 1, JSON.stringify(full));
    const item = full?.services[0];
    assert.equal(item?.id, allowed.ID);
    assert.equal(item?.name, name);
    assert.match(item?.image ?? "", /^127\.0\.0\.1:\d+\/bb:1@sha256:[0-9a-f]{64}$/);
    assert.equal(item?.image, allowed.Spec.TaskTemplate?.ContainerSpec?.Image);
    assert.deepEqual(
      { ...item, image: "", updated_at: "" },
      {
        id: allowed.ID,
        name,
        image: "",
        mode: "replicated",
        replicas: 1,
        desired: 1,
        running: 1,
        update: { state: null, message: null },
        stack: "shop",
        max_num_containers: 5,
        updated_at: "",
      },
    );
    assert.equal(item?.updated_at, new Date(String(allowed.UpdatedAt)).toISOString());

    let from = messages.length;
    let started = Date.now();
    await cli("service", "scale", "--detach", `${name}=3`);
    const scaled = await messageWhere(messages, from, (m) => itemIn(m, allowed.ID)?.replicas === 3, 5);
    assert.equal(scaled.full, false);
    console.log(`scale seen in ${Date.now() - started} ms`);
    await messageWhere(messages, from, (m) => itemIn(m, allowed.ID)?.running === 3, 30);
    console.log(`3 running seen in ${Date.now() - started} ms`);

    from = messages.length;
    started = Date.now();
    await cli("service", "rm", name);
    const gone = await messageWhere(messages, from, (m) => !m.full && m.gone.includes(allowed.ID), 5);
    assert.deepEqual(gone.services, []);
    console.log(`removal seen in ${Date.now() - started} ms`);

    // The other service changes and goes away: the API never hears of it.
    await cli("service", "scale", "--detach", `${other.Spec.Name}=2`);
    await cli("service", "rm", other.Spec.Name ?? "");
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await inventory.sendFull();
    assert.deepEqual(messages.at(-1), { type: "inventory", full: true, services: [] });
    const everything = JSON.stringify(messages);
    assert.ok(!everything.includes(other.ID) && !everything.includes(other.Spec.Name ?? "?"), everything);
    assert.deepEqual(lines, [], "nothing went wrong");
  } finally {
    inventory.stop();
  }
});
