import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { NAMESPACE_MIGRATIONS } from "../src/durable-objects/namespace/schema";
import {
  admin,
  as,
  asGo,
  asPython,
  basic,
  call,
  createOrg,
  createService,
  createTrigger,
  createUser,
  type ServiceJson,
  type TriggerJson,
  type User,
  uniqueName,
} from "./helpers/api";

type Envelope<T> = { meta: { total_count: number }; objects: T[] };
type Migration = { id: number; name: string; applied_at: number };

const MARK = "__evictionMarker";

async function migrationsOf(stub: DurableObjectStub): Promise<Migration[]> {
  return runInDurableObject(stub, (_instance, state) =>
    state.storage.sql.exec<Migration>("SELECT id, name, applied_at FROM _sql_schema_migrations ORDER BY id").toArray(),
  );
}

async function tablesOf(stub: DurableObjectStub): Promise<string[]> {
  return runInDurableObject(stub, (_instance, state) =>
    state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .toArray()
      .map((r) => r.name),
  );
}

/** Marks the live instance, so a test can prove that eviction really replaced it. */
async function mark(stub: DurableObjectStub): Promise<void> {
  await runInDurableObject(stub, (instance: object) => {
    (instance as Record<string, unknown>)[MARK] = true;
  });
}

async function isMarked(stub: DurableObjectStub): Promise<boolean> {
  return runInDurableObject(stub, (instance: object) => (instance as Record<string, unknown>)[MARK] === true);
}

/** Evicts and checks that the next request meets a new instance (in-memory state gone). */
async function evictAndCheck(stub: DurableObjectStub): Promise<void> {
  await mark(stub);
  expect(await isMarked(stub)).toBe(true);
  await evictDurableObject(stub);
  expect(await isMarked(stub)).toBe(false);
}

async function listServices(user: User, path = "/api/app/v1/service/"): Promise<Envelope<ServiceJson>> {
  const r = await as(user, "GET", path);
  expect(r.status).toBe(200);
  return r.json<Envelope<ServiceJson>>();
}

async function listTriggers(user: User, svc: ServiceJson): Promise<Envelope<TriggerJson>> {
  const r = await as(user, "GET", `${svc.resource_uri}trigger/`);
  expect(r.status).toBe(200);
  return r.json<Envelope<TriggerJson>>();
}

async function waitForAction(user: User, uri: string, state = "Success"): Promise<{ state: string }> {
  let last: { state: string } = { state: "" };
  await vi.waitUntil(
    async () => {
      const r = await as(user, "GET", uri);
      expect(r.status).toBe(200);
      last = await r.json<{ state: string }>();
      return last.state === state;
    },
    { timeout: 10_000, interval: 100 },
  );
  return last;
}

describe("a namespace object survives eviction", () => {
  it("services, keys and triggers are still there after the object is evicted", async () => {
    const user = await createUser();
    const s1 = await createService(user, { target_num_containers: 2, max_num_containers: 5 });
    const s2 = await createService(user, { stack: "web" });
    const t = await createTrigger(user, s1, { name: "deploy-hook" });
    const stub = env.NAMESPACES.getByName(user.username);

    await evictAndCheck(stub);

    // The key still authenticates, and the services are still listed, in order.
    const list = await listServices(user);
    expect(list.meta.total_count).toBe(2);
    expect(list.objects.map((s) => s.uuid)).toEqual([s1.uuid, s2.uuid]);
    expect(list.objects[0]).toMatchObject({ name: s1.name, target_num_containers: 2, max_num_containers: 5 });
    expect(list.objects[1]).toMatchObject({ name: s2.name, stack: "web" });

    // Namespaced and non-namespaced GETs both find the service.
    const byUri = await as(user, "GET", s1.resource_uri);
    expect(byUri.status).toBe(200);
    expect(await byUri.json()).toEqual(s1);
    expect((await asGo(user, "GET", `/api/app/v1/service/${s1.uuid}/`)).status).toBe(200);

    // The trigger is still listed and still callable.
    const triggers = await listTriggers(user, s1);
    expect(triggers.meta.total_count).toBe(1);
    expect(triggers.objects).toEqual([t]);

    await evictAndCheck(stub);
    const r = await call(t.url, { method: "POST", body: "after eviction" });
    expect(r.status).toBe(202);
    const action = await r.json<{ resource_uri: string }>();
    await waitForAction(user, action.resource_uri);
  });

  it("the trigger count kept on the service row is right after eviction, and new triggers can be added", async () => {
    const user = await createUser();
    const svc = await createService(user);
    const t1 = await createTrigger(user, svc);
    const t2 = await createTrigger(user, svc, { operation: "SCALEUP" });
    const stub = env.NAMESPACES.getByName(user.username);

    await evictAndCheck(stub);
    const del = await as(user, "DELETE", t1.resource_uri);
    expect(del.status).toBe(200);
    const t3 = await createTrigger(user, svc, { name: "third" });

    await evictAndCheck(stub);
    const list = await listTriggers(user, svc);
    expect(list.meta.total_count).toBe(2);
    expect(list.objects.map((t) => t.uuid)).toEqual([t2.uuid, t3.uuid]);
    // A revoked trigger stays revoked across eviction.
    const gone = await call(t1.url, { method: "POST" });
    expect(gone.status).toBe(404);
    expect(await gone.json()).toEqual({ error: "Trigger not found" });
  });

  it("API keys: revocation and new keys are durable", async () => {
    const user = await createUser();
    const created = await as(user, "POST", "/api/account/v1/apikey/", { label: "second" });
    expect(created.status).toBe(201);
    const second = await created.json<{ uuid: string; key: string }>();
    const keys = await (await as(user, "GET", "/api/account/v1/apikey/")).json<
      Envelope<{ uuid: string; label: string }>
    >();
    const first = keys.objects.find((k) => k.label === "test") as { uuid: string };
    expect((await as(user, "DELETE", `/api/account/v1/apikey/${first.uuid}/`)).status).toBe(200);

    const stub = env.NAMESPACES.getByName(user.username);
    await evictAndCheck(stub);

    expect((await as(user, "GET", "/api/app/v1/service/")).status).toBe(401);
    const secondUser: User = { ...user, apikey: second.key, auth: `Basic ${btoa(`${user.username}:${second.key}`)}` };
    expect((await as(secondUser, "GET", "/api/app/v1/service/")).status).toBe(200);
  });

  it("API keys are stored hashed: no stored column holds the key itself", async () => {
    const user = await createUser();
    const stub = env.NAMESPACES.getByName(user.username);
    const rows = await runInDurableObject(stub, (_i, state) =>
      state.storage.sql.exec("SELECT * FROM api_keys").toArray(),
    );
    expect(rows).toHaveLength(1);
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(user.apikey);
  });

  it("organization membership survives eviction of both objects", async () => {
    const member = await createUser();
    const org = await createOrg(undefined, [member.username]);
    const svc = await createService(member, {}, org);
    await evictAndCheck(env.NAMESPACES.getByName(org));
    await evictAndCheck(env.NAMESPACES.getByName(member.username));

    const list = await listServices(member, `/api/app/v1/${org}/service/`);
    expect(list.objects.map((s) => s.uuid)).toEqual([svc.uuid]);
    const info = await (await admin("GET", `/api/admin/v1/organization/${org}/`)).json<{ members: string[] }>();
    expect(info.members).toEqual([member.username]);
  });

  it("a call accepted just before an eviction still runs (the hand-off to the queue is durable)", async () => {
    const user = await createUser();
    const svc = await createService(user, { target_num_containers: 1, max_num_containers: 10 });
    const t = await createTrigger(user, svc, { operation: "SCALEUP" });
    const stub = env.NAMESPACES.getByName(user.username);

    const r = await call(`${t.url}3/`, { method: "POST" });
    expect(r.status).toBe(202);
    const action = await r.json<{ resource_uri: string }>();
    await evictDurableObject(stub);

    await waitForAction(user, action.resource_uri);
    const after = await (await as(user, "GET", svc.resource_uri)).json<ServiceJson>();
    expect(after.target_num_containers).toBe(4);
  });

  it("the service locator survives eviction: a non-namespaced path still finds the service", async () => {
    const user = await createUser();
    const svc = await createService(user);
    // Evict the locator shard before anything has looked the service up (so no cached pointer exists).
    const locator = env.LOCATOR.getByName(`services-${svc.uuid.slice(0, 2)}`);
    await evictAndCheck(locator);
    const r = await asGo(user, "GET", `/api/app/v1/service/${svc.uuid}/trigger/`);
    expect(r.status).toBe(200);
    expect((await r.json<Envelope<unknown>>()).meta.total_count).toBe(0);
    expect(await migrationsOf(locator)).toEqual([{ id: 1, name: "pointers", applied_at: expect.any(Number) }]);
  });
});

describe("schema migrations", () => {
  it("every migration is applied exactly once, even after evictions", async () => {
    const user = await createUser();
    await createService(user);
    const stub = env.NAMESPACES.getByName(user.username);

    const before = await migrationsOf(stub);
    const known = NAMESPACE_MIGRATIONS.map((m) => m.id);
    expect(before.map((m) => m.id)).toEqual(known);
    for (const m of before) {
      expect(m).toMatchObject({ id: expect.any(Number), name: expect.any(String), applied_at: expect.any(Number) });
    }

    for (let i = 0; i < 3; i++) {
      await evictAndCheck(stub);
      // Wake it through the API, so the constructor (and migrate) runs again.
      expect((await as(user, "GET", "/api/app/v1/service/")).status).toBe(200);
    }
    const after = await migrationsOf(stub);
    // Same rows, same applied_at: neither migration ran again on wake-up.
    expect(after).toEqual(before);
    expect(after.map((m) => m.id)).toEqual(known);
  });

  it("the namespace tables exist and the migrations table lists only known ids", async () => {
    const user = await createUser();
    const stub = env.NAMESPACES.getByName(user.username);
    const tables = await tablesOf(stub);
    for (const t of [
      "_sql_schema_migrations",
      "namespace",
      "api_keys",
      "members",
      "memberships",
      "services",
      "triggers",
      "actions",
    ]) {
      expect(tables).toContain(t);
    }
    const ids = (await migrationsOf(stub)).map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("authenticating as an unknown user claims nothing: the name stays free", async () => {
    const ghost = uniqueName("ghost");
    const r = await call("/api/app/v1/service/", { headers: { authorization: `Basic ${btoa(`${ghost}:nokey`)}` } });
    expect(r.status).toBe(401);
    const again = await call("/api/app/v1/service/", { headers: { authorization: `Basic ${btoa(`${ghost}:nokey`)}` } });
    expect(again.status).toBe(401);
    const users = await (await admin("GET", "/api/admin/v1/user/?limit=100")).json<Envelope<{ username: string }>>();
    expect(users.objects.map((u) => u.username)).not.toContain(ghost);
    expect((await admin("POST", "/api/admin/v1/user/", { username: ghost })).status).toBe(201);
  });

  it("the directory survives eviction: admin listings still show the user", async () => {
    const user = await createUser();
    const directory = env.DIRECTORY.getByName("directory");
    await evictAndCheck(directory);
    const r = await admin("GET", "/api/admin/v1/user/?limit=100");
    expect(r.status).toBe(200);
    const list = await r.json<Envelope<{ username: string }>>();
    expect(list.objects.map((u) => u.username)).toContain(user.username);
    expect((await migrationsOf(directory)).map((m) => m.id)).toEqual([1]);
  });
});

describe("read-your-writes", () => {
  it("a created service is listed by the very next request", async () => {
    const user = await createUser();
    for (let i = 1; i <= 5; i++) {
      const s = await createService(user);
      const list = await listServices(user);
      expect(list.meta.total_count).toBe(i);
      expect(list.objects.at(-1)?.uuid).toBe(s.uuid);
      // And by name (the CLI's lookup), and by uuid prefix.
      const byName = await listServices(user, `/api/app/v1/service/?name=${s.name}`);
      expect(byName.objects.map((o) => o.uuid)).toEqual([s.uuid]);
      const byPrefix = await listServices(user, `/api/app/v1/service/?uuid__startswith=${s.uuid.slice(0, 8)}`);
      expect(byPrefix.objects.map((o) => o.uuid)).toContain(s.uuid);
    }
  });

  it("a created service is found at once by the non-namespaced GET (Go) and its trigger path", async () => {
    const user = await createUser();
    const s = await createService(user);
    expect((await asGo(user, "GET", `/api/app/v1/service/${s.uuid}/`)).status).toBe(200);
    const t = await asGo(user, "POST", `/api/app/v1/service/${s.uuid}/trigger/`, { name: "", operation: "" });
    expect(t.status).toBe(201);
  });

  it("a created trigger is listed and callable at once", async () => {
    const user = await createUser();
    const s = await createService(user);
    const t = await createTrigger(user, s);
    expect((await listTriggers(user, s)).objects.map((o) => o.uuid)).toEqual([t.uuid]);
    expect((await call(t.url, { method: "POST" })).status).toBe(202);
  });

  it("a terminated service is 404 at once, everywhere, and its triggers stop", async () => {
    const user = await createUser();
    const s = await createService(user);
    const t = await createTrigger(user, s);
    const del = await as(user, "DELETE", s.resource_uri);
    expect(del.status).toBe(202);
    expect((await del.json<ServiceJson>()).state).toBe("Terminated");

    for (const path of [s.resource_uri, `/api/app/v1/service/${s.uuid}/`]) {
      const g = await as(user, "GET", path);
      expect(g.status, path).toBe(404);
      expect(await g.json(), path).toEqual({ error: "Service not found" });
    }
    expect((await asPython(user, "GET", `${s.resource_uri}/trigger/`)).status).toBe(404);
    expect((await as(user, "GET", t.resource_uri)).status).toBe(404);
    const c = await call(t.url, { method: "POST" });
    expect(c.status).toBe(404);
    expect(await c.json()).toEqual({ error: "Trigger not found" });
    expect((await listServices(user)).objects.map((o) => o.uuid)).not.toContain(s.uuid);
    // A second terminate is 404 too.
    expect((await as(user, "DELETE", s.resource_uri)).status).toBe(404);
  });

  it("a PATCH is visible to the next GET", async () => {
    const user = await createUser();
    const s = await createService(user, { max_num_containers: 10 });
    const p = await as(user, "PATCH", s.resource_uri, { target_num_containers: 7 });
    expect(p.status).toBe(200);
    const g = await (await as(user, "GET", s.resource_uri)).json<ServiceJson>();
    expect(g.target_num_containers).toBe(7);
  });

  it("a revoked trigger is 404 to the very next call", async () => {
    const user = await createUser();
    const s = await createService(user);
    const t = await createTrigger(user, s);
    expect((await as(user, "DELETE", t.resource_uri)).status).toBe(200);
    expect((await call(t.url, { method: "POST" })).status).toBe(404);
  });
});

describe("objects that were only asked about", () => {
  it("a guessed username in a Basic header creates no tables (nothing is stored)", async () => {
    const guessed = uniqueName("ghost");
    const res = await call("/api/app/v1/service/", { headers: { authorization: basic(guessed, "x".repeat(40)) } });
    expect(res.status).toBe(401);
    const tables = await runInDurableObject(env.NAMESPACES.getByName(guessed), (_i, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray(),
    );
    expect(tables).toEqual([]);
  });
});
