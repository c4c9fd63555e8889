import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { afterEach, test } from "node:test";
import type { AllowRules } from "../src/allow.ts";
import { changeMessages, Inventory, MAX_INVENTORY_ENTRIES } from "../src/inventory.ts";
import type { AgentMessage, InventoryItem } from "../src/protocol.ts";
import {
  entriesOf,
  followEvents,
  type InventoryTaskJson,
  itemOf,
  maxContainersOf,
  readSwarm,
  type SwarmEngine,
  SwarmInventorySource,
  serviceOfEvent,
} from "../src/swarm-inventory.ts";
import type { ServiceJson } from "../src/swarm-spec.ts";

const IMAGE = "registry.example:5000/web:1@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const ALL: AllowRules = { all: true, labels: [], services: [] };
const LABELLED: AllowRules = { all: false, labels: [{ key: "deploy", value: "auto" }], services: [] };

type ServiceOptions = {
  replicas?: number | "global";
  labels?: Record<string, string>;
  update?: { State: string; Message?: string };
  image?: string;
};

function service(id: string, name: string, options: ServiceOptions = {}): ServiceJson {
  const replicas = options.replicas ?? 1;
  return {
    ID: id,
    Version: { Index: 1 },
    UpdatedAt: "2026-03-01T10:20:30.123456789Z",
    Spec: {
      Name: name,
      Labels: options.labels ?? {},
      TaskTemplate: { ContainerSpec: { Image: options.image ?? IMAGE } },
      Mode: replicas === "global" ? { Global: {} } : { Replicated: { Replicas: replicas } },
    },
    UpdateStatus: options.update ?? null,
  };
}

let taskCounter = 0;
/** Tasks of a service: `running` running, `starting` not yet, `stopped` that are no longer meant to run. */
function tasksOf(serviceId: string, running: number, starting = 0, stopped = 0): InventoryTaskJson[] {
  const task = (state: string, desired: string): InventoryTaskJson => ({
    ID: `task${++taskCounter}`,
    ServiceID: serviceId,
    NodeID: `node${taskCounter}`,
    Status: { State: state },
    DesiredState: desired,
  });
  return [
    ...Array.from({ length: running }, () => task("running", "running")),
    ...Array.from({ length: starting }, () => task("preparing", "running")),
    ...Array.from({ length: stopped }, () => task("shutdown", "shutdown")),
  ];
}

/** An engine in memory: what the inventory reads, the calls it made, and an event stream the test writes to. */
class FakeEngine implements SwarmEngine {
  readonly services = new Map<string, ServiceJson>();
  tasks: InventoryTaskJson[] = [];
  readonly calls = { listServices: 0, listTasks: 0, getEvents: 0 };
  readonly streams: PassThrough[] = [];
  down = false;

  add(json: ServiceJson, tasks = tasksOf(json.ID, json.Spec.Mode?.Replicated?.Replicas ?? 1)) {
    this.services.set(json.ID, json);
    this.setTasks(json.ID, tasks);
  }

  setTasks(serviceId: string, tasks: InventoryTaskJson[]) {
    this.tasks = [...this.tasks.filter((t) => t.ServiceID !== serviceId), ...tasks];
  }

  remove(id: string) {
    this.services.delete(id);
    this.setTasks(id, []);
  }

  async listServices(options?: { filters?: { id?: string[] } }) {
    this.calls.listServices++;
    if (this.down) throw new Error("connect ENOENT /var/run/docker.sock");
    const ids = options?.filters?.id;
    return [...this.services.values()].filter((s) => !ids || ids.some((p) => s.ID.startsWith(p))).map(clone);
  }

  async listTasks(options?: { filters?: { service?: string[]; "desired-state"?: string[] } }) {
    this.calls.listTasks++;
    if (this.down) throw new Error("connect ENOENT /var/run/docker.sock");
    const { service: ids, "desired-state": desired } = options?.filters ?? {};
    const unknown = ids?.find((id) => !this.services.has(id));
    if (unknown) throw Object.assign(new Error(`service ${unknown} not found`), { statusCode: 404 });
    return this.tasks
      .filter((t) => !ids || ids.includes(t.ServiceID ?? ""))
      .filter((t) => !desired || desired.includes(t.DesiredState ?? ""))
      .map(clone);
  }

  async getEvents() {
    this.calls.getEvents++;
    if (this.down) throw new Error("connect ENOENT /var/run/docker.sock");
    const stream = new PassThrough();
    this.streams.push(stream);
    return stream;
  }

  /** An event as the engine writes it: one JSON object a line. */
  emit(event: object) {
    for (const stream of this.streams) if (!stream.destroyed) stream.write(`${JSON.stringify(event)}\n`);
  }

  serviceEvent(id: string, action = "update") {
    this.emit({ Type: "service", Action: action, Actor: { ID: id, Attributes: { name: "x" } }, scope: "swarm" });
  }
}

const clone = <T>(value: T): T => structuredClone(value);

const running: Inventory[] = [];
afterEach(() => {
  for (const inventory of running.splice(0)) inventory.stop();
});

/** An inventory over the fake engine, with short timings, and what it sent and printed. */
function inventoryOver(engine: FakeEngine, rules: AllowRules = ALL) {
  const messages: AgentMessage[] = [];
  const lines: string[] = [];
  /** The line each welcome's full inventory prints, kept apart from the lines that report a problem. */
  const announced: string[] = [];
  const inventory = new Inventory(new SwarmInventorySource(engine), {
    rules,
    send: (m) => messages.push(m),
    log: (line) => (line.endsWith("sent to the service") ? announced : lines).push(line),
    debounceMs: 20,
    pollMs: 40,
    watchRetryMs: 10,
    watchRetryMaxMs: 20,
  });
  running.push(inventory);
  const inventories = () => messages.filter((m) => m.type === "inventory");
  return { inventory, messages, lines, announced, inventories };
}

async function until(what: string, ok: () => boolean, ms = 2_000) {
  const deadline = Date.now() + ms;
  while (!ok()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("a replicated service: replicas asked for, tasks meant to run and running, image, stack and maximum", () => {
  const json = service("abc123", "web", {
    replicas: 3,
    labels: { "com.docker.stack.namespace": "shop", "io.dockercloud.max_num_containers": "8" },
    update: { State: "completed", Message: "update completed" },
  });
  const item = itemOf(json, tasksOf("abc123", 2, 1, 4));
  assert.deepEqual(item, {
    id: "abc123",
    name: "web",
    image: IMAGE,
    mode: "replicated",
    replicas: 3,
    desired: 3,
    running: 2,
    update: { state: "completed", message: null },
    stack: "shop",
    max_num_containers: 8,
    updated_at: "2026-03-01T10:20:30.123Z",
  } satisfies InventoryItem);
});

test("a global service: no replicas, desired is the tasks meant to run", () => {
  const item = itemOf(service("g1", "agent", { replicas: "global" }), tasksOf("g1", 2, 1, 2));
  assert.equal(item.mode, "global");
  assert.equal(item.replicas, null);
  assert.equal(item.desired, 3);
  assert.equal(item.running, 2);
  assert.equal(item.stack, null);
  assert.equal(item.max_num_containers, null);
});

test("update states: a message only once paused or rolled back, cleaned and capped", () => {
  const updating = itemOf(service("u1", "a", { update: { State: "updating", Message: "update in progress" } }), []);
  assert.deepEqual(updating.update, { state: "updating", message: null });
  const message = `update rolled back\u001b[31m due to\nfailure\u202e ${"x".repeat(600)}`;
  const rolled = itemOf(service("u2", "b", { update: { State: "rollback_completed", Message: message } }), []);
  assert.equal(rolled.update.state, "rollback_completed");
  assert.equal(rolled.update.message?.length, 500);
  assert.ok(rolled.update.message?.startsWith("update rolled back[31m due tofailure x"), rolled.update.message ?? "");
  const paused = itemOf(service("u3", "c", { update: { State: "paused", Message: "update paused due to x" } }), []);
  assert.deepEqual(paused.update, { state: "paused", message: "update paused due to x" });
  const odd = itemOf(service("u4", "d", { update: { State: "someday", Message: "?" } }), []);
  assert.deepEqual(odd.update, { state: null, message: null });
  assert.deepEqual(itemOf(service("u5", "e"), []).update, { state: null, message: null });
});

test("labels and image the API would refuse are left out, not sent", () => {
  for (const bad of ["0", "1001", "abc", "", " 5", "2.5", "-3", "99999"]) assert.equal(maxContainersOf(bad), null, bad);
  assert.equal(maxContainersOf("1000"), 1000);
  assert.equal(maxContainersOf("1"), 1);
  const item = itemOf(
    service("l1", "web", {
      labels: { "com.docker.stack.namespace": "a.b", "io.dockercloud.max_num_containers": "0" },
      image: "bad image",
    }),
    [],
  );
  assert.equal(item.stack, null);
  assert.equal(item.max_num_containers, null);
  assert.equal(item.image, null);
  assert.equal(itemOf({ ...service("t1", "web"), UpdatedAt: "not a time" }, []).updated_at, null);
});

test("a Swarm job is not a service the API can follow", () => {
  const job = service("j1", "migrate");
  job.Spec.Mode = { ReplicatedJob: { TotalCompletions: 1 } };
  const [entry] = entriesOf({ services: [job], tasks: [] });
  assert.match(entry?.unfit ?? "", /job/);
  assert.equal(entriesOf({ services: [service("s1", "web")], tasks: [] })[0]?.unfit, null);
});

test("the engine's events: a service's own, its task's container, nothing else", () => {
  assert.equal(serviceOfEvent({ Type: "service", Action: "update", Actor: { ID: "svc1" } }), "svc1");
  const attributes = { "com.docker.swarm.service.id": "svc2", name: "web.1.x" };
  assert.equal(
    serviceOfEvent({ Type: "container", Action: "die", Actor: { ID: "c1", Attributes: attributes } }),
    "svc2",
  );
  assert.equal(
    serviceOfEvent({ Type: "container", Action: "exec_start: sh", Actor: { Attributes: attributes } }),
    null,
  );
  assert.equal(serviceOfEvent({ Type: "container", Action: "start", Actor: { ID: "c2", Attributes: {} } }), null);
  assert.equal(serviceOfEvent({ Type: "service", Actor: { ID: "../x" } }), null);
  assert.equal(serviceOfEvent(null), null);
});

test("the event stream is read a line at a time, whatever its chunks", async () => {
  const stream = new PassThrough();
  const ids: string[] = [];
  const ended = followEvents(stream, (id) => ids.push(id));
  const a = JSON.stringify({ Type: "service", Actor: { ID: "aaa" } });
  const b = JSON.stringify({ Type: "service", Actor: { ID: "bbb" } });
  stream.write(`${a}\n${b.slice(0, 10)}`);
  stream.write(`${b.slice(10)}\nnot json\n\n`);
  stream.end();
  await ended;
  assert.deepEqual(ids, ["aaa", "bbb"]);
});

test("one listing of services and one of tasks, read again when a service goes between the two", async () => {
  const engine = new FakeEngine();
  engine.add(service("keep1", "web", { replicas: 2 }));
  engine.add(service("going1", "api"));
  const listTasks = engine.listTasks.bind(engine);
  let first = true;
  engine.listTasks = async (options) => {
    if (first) engine.remove("going1");
    first = false;
    return listTasks(options);
  };
  const snapshot = await readSwarm(engine, ["keep1", "going1", "never1"]);
  assert.deepEqual(
    snapshot.services.map((s) => s.ID),
    ["keep1"],
  );
  assert.equal(snapshot.tasks.length, 2);
  assert.deepEqual(engine.calls, { listServices: 2, listTasks: 2, getEvents: 0 });
  assert.deepEqual(await readSwarm(engine, []), { services: [], tasks: [] });
  assert.equal(engine.calls.listServices, 2, "nothing to read, nothing asked");
});

test("the full inventory has only the services the rules allow; none other is ever named", async () => {
  const engine = new FakeEngine();
  engine.add(service("allowed1", "web", { labels: { deploy: "auto" } }));
  engine.add(service("secret1", "payroll", { labels: { deploy: "manual" } }));
  const { inventory, messages, inventories, announced } = inventoryOver(engine, LABELLED);
  inventory.start();
  await until("the watch", () => engine.calls.getEvents === 1);
  await inventory.sendFull();
  assert.deepEqual(announced, ["inventory: 1 service(s) the rules allow, sent to the service"]);
  assert.ok(!announced.join("").includes("payroll"));
  assert.deepEqual(inventories().at(-1), {
    type: "inventory",
    full: true,
    services: [itemOf(service("allowed1", "web", { labels: { deploy: "auto" } }), tasksOf("allowed1", 1))],
  });

  // The disallowed one changes, then is removed: nothing is said of it, not even as gone.
  engine.setTasks("secret1", tasksOf("secret1", 3));
  engine.serviceEvent("secret1");
  await sleep(60);
  engine.remove("secret1");
  engine.serviceEvent("secret1", "remove");
  await sleep(60);
  await inventory.idle();
  assert.equal(inventories().length, 1, JSON.stringify(messages));

  // An allowed one that loses its label is gone, as is one removed.
  engine.add(service("allowed2", "api", { labels: { deploy: "auto" } }));
  engine.serviceEvent("allowed2", "create");
  await until("allowed2 brought in", () => inventories().length === 2);
  engine.services.set("allowed2", service("allowed2", "api", { labels: { deploy: "manual" } }));
  engine.serviceEvent("allowed2");
  engine.remove("allowed1");
  engine.serviceEvent("allowed1", "remove");
  await until("the removals", () => inventories().length === 3);
  assert.deepEqual(inventories()[2], { type: "inventory", full: false, services: [], gone: ["allowed2", "allowed1"] });
  const everything = JSON.stringify(messages);
  assert.ok(!everything.includes("secret1") && !everything.includes("payroll"), everything);
});

test("a name the API cannot take is left out, with one line however often it is read", async () => {
  const engine = new FakeEngine();
  engine.add(service("dotted1", "web.v2"));
  engine.add(service("plain1", "web"));
  const { inventory, lines, inventories } = inventoryOver(engine);
  await inventory.sendFull();
  await inventory.sendFull();
  engine.serviceEvent("dotted1");
  inventory.start();
  await until("the watch", () => engine.calls.getEvents === 1);
  engine.serviceEvent("dotted1");
  await sleep(60);
  await inventory.sendFull();
  for (const m of inventories()) assert.ok(!JSON.stringify(m).includes("dotted1"));
  assert.deepEqual(
    inventories().map((m) => m.services.map((s) => s.name)),
    [["web"], ["web"], ["web"]],
  );
  const told = lines.filter((l) => l.includes("dotted1"));
  assert.equal(told.length, 1, lines.join("\n"));
  assert.match(told[0] ?? "", /service "web\.v2" \(dotted1\) cannot be brought in: the API's service names are/);
});

test("a burst of events for 200 services is read together and sent in a few messages; what did not change is not", async () => {
  const engine = new FakeEngine();
  const ids = Array.from({ length: 200 }, (_, i) => `svc${String(i).padStart(3, "0")}`);
  for (const id of ids) engine.add(service(id, `s-${id}`));
  const { inventory, inventories } = inventoryOver(engine);
  inventory.start();
  await until("the watch", () => engine.calls.getEvents === 1);
  await inventory.sendFull();
  const readsBefore = engine.calls.listServices;

  for (const id of ids) {
    engine.services.set(id, service(id, `s-${id}`, { replicas: 2 }));
    engine.setTasks(id, tasksOf(id, 2));
    engine.serviceEvent(id);
  }
  await until(
    "the changes",
    () =>
      inventories()
        .slice(1)
        .flatMap((m) => m.services).length === 200,
  );
  await sleep(100);
  await inventory.idle();
  const changes = inventories().slice(1);
  assert.ok(changes.length <= 3, `${changes.length} messages`);
  for (const m of changes) assert.ok(m.services.length + (m.full ? 0 : m.gone.length) <= MAX_INVENTORY_ENTRIES);
  assert.ok(engine.calls.listServices - readsBefore <= 3, `${engine.calls.listServices - readsBefore} reads`);
  assert.ok(changes.flatMap((m) => m.services).every((s) => s.replicas === 2 && s.running === 2));

  // The same events again, nothing changed: nothing is sent.
  for (const id of ids) engine.serviceEvent(id);
  await sleep(100);
  await inventory.idle();
  assert.equal(inventories().length, 1 + changes.length);
});

test("more than 1,000 services allowed: none is brought in, one line says why, until there are fewer", async () => {
  const engine = new FakeEngine();
  for (let i = 0; i < 1001; i++) engine.add(service(`many${i}`, `many-${i}`), []);
  const { inventory, lines, inventories } = inventoryOver(engine);
  await inventory.sendFull();
  await inventory.sendFull();
  assert.equal(inventories().length, 0);
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(
    lines[0] ?? "",
    /allow 1001 services, more than the 1,000 the API takes from one agent; none is brought in/,
  );

  engine.remove("many1000");
  await inventory.sendFull();
  const [full] = inventories();
  assert.equal(full?.full, true);
  assert.equal(full?.services.length, 1000);
  assert.equal(lines.length, 2);
});

test("changes never exceed 1,000 entries a message", () => {
  const item = itemOf(service("x1", "x"), []);
  const services = Array.from({ length: 1500 }, (_, i) => ({ ...item, id: `x${i}` }));
  const gone = Array.from({ length: 700 }, (_, i) => `g${i}`);
  const messages = changeMessages(services, gone);
  assert.deepEqual(
    messages.map((m) => (m.type === "inventory" && !m.full ? [m.services.length, m.gone.length] : null)),
    [
      [1000, 0],
      [500, 500],
      [0, 200],
    ],
  );
  assert.deepEqual(changeMessages([], []), []);
});

test("a service still converging is read again until it settles, with no event (tasks on other nodes)", async () => {
  const engine = new FakeEngine();
  engine.add(service("conv1", "web", { replicas: 3 }), tasksOf("conv1", 1, 2));
  const { inventory, inventories } = inventoryOver(engine);
  await inventory.sendFull();
  assert.equal(inventories()[0]?.services[0]?.running, 1);
  engine.setTasks("conv1", tasksOf("conv1", 3));
  await until("the settled service", () => inventories().length === 2);
  assert.deepEqual(
    inventories()[1]?.services.map((s) => [s.running, s.desired]),
    [[3, 3]],
  );
  const reads = engine.calls.listServices;
  await sleep(150);
  assert.equal(engine.calls.listServices, reads, "a settled service is not read again");
});

test("an engine that cannot be reached: one line, no crash, and the inventory once it is back", async () => {
  const engine = new FakeEngine();
  engine.add(service("back1", "web"));
  engine.down = true;
  const { inventory, lines, inventories } = inventoryOver(engine);
  inventory.start();
  await inventory.sendFull();
  await until("a few watch attempts", () => engine.calls.getEvents >= 3);
  await inventory.sendFull();
  assert.equal(inventories().length, 0);
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0] ?? "", /cannot read the orchestrator's services \(connect ENOENT/);

  engine.down = false;
  await until("the full inventory once the watch is back", () => inventories().length === 1);
  assert.deepEqual(
    inventories()[0]?.services.map((s) => s.id),
    ["back1"],
  );
  assert.match(lines.at(-1) ?? "", /answers again/);
});

test("an event stream that ends is watched again, and what was missed is sent in full", async () => {
  const engine = new FakeEngine();
  engine.add(service("gap1", "web"));
  const { inventory, inventories } = inventoryOver(engine);
  inventory.start();
  await until("the watch", () => engine.calls.getEvents === 1);
  await inventory.sendFull();
  engine.streams[0]?.end();
  engine.add(service("gap2", "api"));
  await until("the watch again", () => engine.calls.getEvents === 2);
  await until("the full resend", () => inventories().length === 2);
  assert.deepEqual(inventories()[1], {
    type: "inventory",
    full: true,
    services: [itemOf(service("gap1", "web"), tasksOf("gap1", 1)), itemOf(service("gap2", "api"), tasksOf("gap2", 1))],
  });
  engine.serviceEvent("gap2");
  await sleep(60);
  await inventory.idle();
  assert.equal(inventories().length, 2, "the new stream is followed; the unchanged service is not resent");
});

test("everything is sent again every so often once welcomed, never before", async () => {
  const engine = new FakeEngine();
  engine.add(service("often1", "web"));
  const messages: AgentMessage[] = [];
  const inventory = new Inventory(new SwarmInventorySource(engine), {
    rules: ALL,
    send: (m) => messages.push(m),
    log: () => {},
    fullEveryMs: 30,
  });
  running.push(inventory);
  inventory.start();
  await sleep(100);
  assert.equal(messages.length, 0, "nothing before the first welcome");
  await inventory.sendFull();
  await until("two resends", () => messages.length >= 3);
  for (const m of messages) assert.deepEqual(m, messages[0]);
});

test("stop ends the watch and every timer: nothing is sent after it", async () => {
  const engine = new FakeEngine();
  engine.add(service("stop1", "web", { replicas: 2 }), tasksOf("stop1", 1));
  const { inventory, messages } = inventoryOver(engine);
  inventory.start();
  await until("the watch", () => engine.calls.getEvents === 1);
  await inventory.sendFull();
  inventory.stop();
  assert.ok(engine.streams[0]?.destroyed);
  const sent = messages.length;
  const reads = engine.calls.listServices;
  engine.setTasks("stop1", tasksOf("stop1", 2));
  engine.serviceEvent("stop1");
  await sleep(150);
  assert.equal(messages.length, sent);
  assert.equal(engine.calls.listServices, reads);
  assert.equal(engine.calls.getEvents, 1);
});
