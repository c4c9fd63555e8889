import { describe, expect, it } from "vitest";
import {
  as,
  asGo,
  asPython,
  call,
  createOrg,
  createService,
  createTrigger,
  createUser,
  type ServiceJson,
  type User,
  uniqueName,
} from "./helpers/api";
import { RFC1123, UUID4_ANY_CASE } from "./helpers/formats";

type Meta = { limit: number; next: string | null; offset: number; previous: string | null; total_count: number };
type Page = { meta: Meta; objects: ServiceJson[] };

const SERVICES = (ns?: string) => (ns ? `/api/app/v1/${ns}/service/` : "/api/app/v1/service/");

async function list(user: User, path: string): Promise<Page> {
  const r = await as(user, "GET", path);
  expect(r.status, `GET ${path}`).toBe(200);
  return r.json<Page>();
}

async function expectError(r: Response, status: number): Promise<string> {
  expect(r.status).toBe(status);
  expect(r.headers.get("content-type")).toMatch(/^application\/json/);
  const body = await r.json<{ error: unknown }>();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(typeof body.error).toBe("string");
  expect((body.error as string).length).toBeGreaterThan(0);
  return body.error as string;
}

// Field groups as the Go SDK decodes them into its typed struct.
const STRING_FIELDS = [
  "name",
  "state",
  "image_name",
  "image_tag",
  "resource_uri",
  "uuid",
  "stack",
  "deployed_datetime",
  "started_datetime",
  "stopped_datetime",
  "destroyed_datetime",
  "autodestroy",
  "autorestart",
  "cgroup_parent",
  "cpuset",
  "deployment_strategy",
  "domainname",
  "entrypoint",
  "hostname",
  "mac_address",
  "net",
  "nickname",
  "pid",
  "public_dns",
  "run_command",
  "user",
  "working_dir",
];
const INTEGER_FIELDS = [
  "target_num_containers",
  "current_num_containers",
  "running_num_containers",
  "stopped_num_containers",
];
const NULLABLE_INTEGER_FIELDS = ["cpu_shares", "memory", "memory_swap"];
const BOOLEAN_FIELDS = [
  "autoredeploy",
  "privileged",
  "sequential_deployment",
  "synchronized",
  "read_only",
  "stdin_open",
  "tty",
];
const LIST_FIELDS = [
  "containers",
  "roles",
  "tags",
  "container_envvars",
  "container_ports",
  "bindings",
  "linked_from_service",
  "linked_to_service",
  "cap_add",
  "cap_drop",
  "devices",
  "dns",
  "dns_search",
  "extra_hosts",
  "security_opt",
];
const MAP_FIELDS = ["link_variables", "labels"];
const DATE_FIELDS = ["deployed_datetime", "started_datetime", "stopped_datetime", "destroyed_datetime"];

/** Every documented attribute is present, in the JSON type Go decodes it into. */
function expectServiceShape(s: Record<string, unknown>): void {
  for (const f of STRING_FIELDS) {
    expect(f in s, `missing ${f}`).toBe(true);
    expect(s[f] === null || typeof s[f] === "string", `${f} is ${JSON.stringify(s[f])}`).toBe(true);
  }
  for (const f of ["name", "state", "resource_uri", "uuid"]) expect(typeof s[f], f).toBe("string");
  for (const f of INTEGER_FIELDS) expect(Number.isInteger(s[f]), `${f} is ${JSON.stringify(s[f])}`).toBe(true);
  for (const f of NULLABLE_INTEGER_FIELDS) {
    expect(f in s, `missing ${f}`).toBe(true);
    expect(s[f] === null || Number.isInteger(s[f]), `${f} is ${JSON.stringify(s[f])}`).toBe(true);
  }
  for (const f of BOOLEAN_FIELDS) expect(typeof s[f], `${f} is ${JSON.stringify(s[f])}`).toBe("boolean");
  for (const f of LIST_FIELDS) expect(Array.isArray(s[f]), `${f} is ${JSON.stringify(s[f])}`).toBe(true);
  for (const f of MAP_FIELDS) {
    const v = s[f];
    expect(v !== null && typeof v === "object" && !Array.isArray(v), `${f} is ${JSON.stringify(v)}`).toBe(true);
  }
  for (const f of DATE_FIELDS) if (s[f] !== null) expect(s[f], f).toMatch(RFC1123);
  expect(s.uuid).toMatch(UUID4_ANY_CASE);
  expect(s.resource_uri).toMatch(/^\/api\/app\/v1\/[a-z0-9]+\/service\/[0-9a-f-]{36}\/$/);
  for (const t of s.tags as unknown[]) expect(Object.keys(t as object)).toContain("name");
  for (const e of s.container_envvars as unknown[]) expect(Object.keys(e as object).sort()).toEqual(["key", "value"]);
}

describe("create a service", () => {
  it("Python-style create with image and name answers 201 with the full service object", async () => {
    const user = await createUser();
    const name = uniqueName("svc");
    const r = await asPython(user, "POST", SERVICES(), { image: "tutum/hello-world", name });
    expect(r.status).toBe(201);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    const s = await r.json<Record<string, unknown>>();
    expectServiceShape(s);
    expect(s).toMatchObject({
      name,
      image_name: "tutum/hello-world:latest",
      image_tag: "latest",
      state: "Not running",
      target_num_containers: 1,
      max_num_containers: 10,
      current_num_containers: 0,
      running_num_containers: 0,
      stopped_num_containers: 0,
      stack: null,
      target: null,
      deployed_datetime: null,
      destroyed_datetime: null,
    });
    // Created through the non-namespaced path, the uri still names the namespace.
    expect(s.resource_uri).toBe(`/api/app/v1/${user.username}/service/${s.uuid}/`);
  });

  it("Go-style create (no Content-Type) with image and target_num_containers", async () => {
    const user = await createUser();
    const name = uniqueName("svc");
    const r = await asGo(user, "POST", SERVICES(user.username), {
      image: "tutum/hello-world:2.0",
      name,
      target_num_containers: 2,
    });
    expect(r.status).toBe(201);
    const s = await r.json<Record<string, unknown>>();
    expectServiceShape(s);
    expect(s).toMatchObject({
      name,
      image_name: "tutum/hello-world:2.0",
      image_tag: "2.0",
      target_num_containers: 2,
      max_num_containers: 10,
      state: "Not running",
    });
    expect(s.resource_uri).toBe(`/api/app/v1/${user.username}/service/${s.uuid}/`);
  });

  it.each([
    ["registry.example.com:5000/team/my-app:1.2", "my-app", "registry.example.com:5000/team/my-app:1.2", "1.2"],
    ["registry.example.com:5000/team/my-app", "my-app", "registry.example.com:5000/team/my-app:latest", "latest"],
    ["tutum/hello-world", "hello-world", "tutum/hello-world:latest", "latest"],
    ["redis", "redis", "redis:latest", "latest"],
    ["library/nginx:1.25-alpine", "nginx", "library/nginx:1.25-alpine", "1.25-alpine"],
  ])("image %s without name: name %s, image_name %s", async (image, name, imageName, tag) => {
    const user = await createUser();
    const r = await as(user, "POST", SERVICES(), { image });
    expect(r.status).toBe(201);
    const s = await r.json<ServiceJson>();
    expect(s.name).toBe(name);
    expect(s.image_name).toBe(imageName);
    expect(s.image_tag).toBe(tag);
  });

  it("accepts image_name instead of image, adding :latest when untagged", async () => {
    const user = await createUser();
    const r = await as(user, "POST", SERVICES(), { image_name: "team/worker" });
    expect(r.status).toBe(201);
    const s = await r.json<ServiceJson>();
    expect(s).toMatchObject({ name: "worker", image_name: "team/worker:latest", image_tag: "latest" });
  });

  it("accepts a name without any image", async () => {
    const user = await createUser();
    const name = uniqueName("svc");
    const r = await as(user, "POST", SERVICES(), { name });
    expect(r.status).toBe(201);
    const s = await r.json<Record<string, unknown>>();
    expectServiceShape(s);
    expect(s.name).toBe(name);
    expect(s.image_name).toBeNull();
  });

  it("keeps stack and max_num_containers when given", async () => {
    const user = await createUser();
    const s = await createService(user, { stack: "web", target_num_containers: 3, max_num_containers: 4 });
    expect(s).toMatchObject({ stack: "web", target_num_containers: 3, max_num_containers: 4 });
    const got = await (await as(user, "GET", s.resource_uri)).json<ServiceJson>();
    expect(got).toMatchObject({ stack: "web", target_num_containers: 3, max_num_containers: 4 });
  });

  it.each([
    ["an empty object", {}],
    ["only a count", { target_num_containers: 1 }],
  ])("neither image nor name (%s) is 400", async (_label, body) => {
    const user = await createUser();
    await expectError(await as(user, "POST", SERVICES(), body), 400);
    expect((await list(user, SERVICES())).meta.total_count).toBe(0);
  });

  it("an empty POST body as the Python SDK may send it is 400, not 500", async () => {
    const user = await createUser();
    await expectError(await asPython(user, "POST", SERVICES()), 400);
  });

  it("target_num_containers above max_num_containers is 400 and creates nothing", async () => {
    const user = await createUser();
    const name = uniqueName("svc");
    const msg = await expectError(
      await as(user, "POST", SERVICES(), {
        image: "tutum/hello-world",
        name,
        target_num_containers: 5,
        max_num_containers: 3,
      }),
      400,
    );
    expect(msg).toContain("max_num_containers");
    expect((await list(user, `${SERVICES()}?name=${name}`)).meta.total_count).toBe(0);
  });

  it("the same name twice in a namespace is 409; another stack is fine", async () => {
    const user = await createUser();
    const name = uniqueName("svc");
    const first = await as(user, "POST", SERVICES(), { image: "tutum/hello-world", name });
    expect(first.status).toBe(201);
    const again = await as(user, "POST", SERVICES(user.username), { image: "other/image", name });
    const msg = await expectError(again, 409);
    expect(msg).toContain(name);

    const stacked = await as(user, "POST", SERVICES(), { image: "tutum/hello-world", name, stack: "s1" });
    expect(stacked.status).toBe(201);
    const stackedAgain = await as(user, "POST", SERVICES(), { image: "tutum/hello-world", name, stack: "s1" });
    await expectError(stackedAgain, 409);

    const page = await list(user, `${SERVICES()}?name=${name}`);
    expect(page.meta.total_count).toBe(2);
  });

  it("issues distinct uuid4 values", async () => {
    const user = await createUser();
    const uuids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const s = await createService(user);
      expect(s.uuid).toMatch(UUID4_ANY_CASE);
      expect(s.uuid).toBe(s.uuid.toLowerCase());
      uuids.add(s.uuid);
    }
    expect(uuids.size).toBe(5);
  });
});

describe("get a service", () => {
  it("finds it by uuid, namespaced and not, with the same object", async () => {
    const user = await createUser();
    const s = await createService(user);
    const plain = await asGo(user, "GET", `/api/app/v1/service/${s.uuid}/`);
    expect(plain.status).toBe(200);
    const a = await plain.json<Record<string, unknown>>();
    expectServiceShape(a);
    const namespaced = await asPython(user, "GET", `/api/app/v1/${user.username}/service/${s.uuid}/`);
    expect(namespaced.status).toBe(200);
    const b = await namespaced.json<Record<string, unknown>>();
    expect(b).toEqual(a);
    expect(a).toEqual(s);
    expect(a.resource_uri).toBe(`/api/app/v1/${user.username}/service/${s.uuid}/`);
  });

  it("accepts an upper-case uuid and a missing trailing slash", async () => {
    const user = await createUser();
    const s = await createService(user);
    const r = await as(user, "GET", `/api/app/v1/service/${s.uuid.toUpperCase()}`);
    expect(r.status).toBe(200);
    expect((await r.json<ServiceJson>()).uuid).toBe(s.uuid);
  });

  it("accepts the Go SDK's leading double slash on get, patch and list", async () => {
    const user = await createUser();
    const s = await createService(user);
    const got = await asGo(user, "GET", `//api/app/v1/${user.username}/service/${s.uuid}/`);
    expect(got.status).toBe(200);
    expect((await got.json<ServiceJson>()).uuid).toBe(s.uuid);
    const patched = await asGo(user, "PATCH", `//api/app/v1/service/${s.uuid}/`, { target_num_containers: 2 });
    expect(patched.status).toBe(200);
    expect((await patched.json<ServiceJson>()).target_num_containers).toBe(2);
    const listed = await asGo(user, "GET", "//api/app/v1/service/");
    expect(listed.status).toBe(200);
    const page = await listed.json<Page>();
    expect(page.objects.map((o) => o.uuid)).toEqual([s.uuid]);
  });

  it("non-namespaced path finds a service in an organization the caller belongs to", async () => {
    const alice = await createUser();
    const bob = await createUser();
    const org = await createOrg(uniqueName("org"), [alice.username, bob.username]);
    const s = await createService(alice, {}, org);
    expect(s.resource_uri).toBe(`/api/app/v1/${org}/service/${s.uuid}/`);
    const r = await as(bob, "GET", `/api/app/v1/service/${s.uuid}/`);
    expect(r.status).toBe(200);
    const got = await r.json<ServiceJson>();
    expect(got.uuid).toBe(s.uuid);
    expect(got.resource_uri).toBe(`/api/app/v1/${org}/service/${s.uuid}/`);
  });

  it("a namespaced path naming another namespace of the caller is 404", async () => {
    const user = await createUser();
    const org = await createOrg(uniqueName("org"), [user.username]);
    const mine = await createService(user);
    const theirs = await createService(user, {}, org);
    await expectError(await as(user, "GET", `/api/app/v1/${org}/service/${mine.uuid}/`), 404);
    await expectError(await as(user, "GET", `/api/app/v1/${user.username}/service/${theirs.uuid}/`), 404);
    // Nor may the wrong path change or delete it.
    await expectError(
      await as(user, "PATCH", `/api/app/v1/${org}/service/${mine.uuid}/`, { target_num_containers: 2 }),
      404,
    );
    await expectError(await as(user, "DELETE", `/api/app/v1/${org}/service/${mine.uuid}/`), 404);
    expect((await (await as(user, "GET", mine.resource_uri)).json<ServiceJson>()).target_num_containers).toBe(1);
  });

  it("another user's service is not found through the non-namespaced path, exactly like a random uuid", async () => {
    const owner = await createUser();
    const stranger = await createUser();
    const s = await createService(owner);
    const real = await as(stranger, "GET", `/api/app/v1/service/${s.uuid}/`);
    const realMsg = await expectError(real, 404);
    const random = await as(stranger, "GET", `/api/app/v1/service/${crypto.randomUUID()}/`);
    const randomMsg = await expectError(random, 404);
    expect(realMsg).toBe(randomMsg);
    // Nor may the stranger change or delete it.
    await expectError(await as(stranger, "PATCH", `/api/app/v1/service/${s.uuid}/`, { name: "stolen" }), 404);
    await expectError(await as(stranger, "DELETE", `/api/app/v1/service/${s.uuid}/`), 404);
    const still = await (await as(owner, "GET", s.resource_uri)).json<ServiceJson>();
    expect(still.name).toBe(s.name);
  });

  it("another user's namespace in the path tells nothing about its services", async () => {
    const owner = await createUser();
    const stranger = await createUser();
    const s = await createService(owner);
    const real = await as(stranger, "GET", `/api/app/v1/${owner.username}/service/${s.uuid}/`);
    const random = await as(stranger, "GET", `/api/app/v1/${owner.username}/service/${crypto.randomUUID()}/`);
    const realMsg = await expectError(real, 403);
    const randomMsg = await expectError(random, 403);
    expect(realMsg).toBe(randomMsg);
    expect(realMsg).not.toContain(s.uuid);
    await expectError(await as(stranger, "GET", SERVICES(owner.username)), 403);
  });

  it.each(["not-a-uuid", "12345", "7eaf7fff", "7eaf7fff-882c-1f3d-9a8f-a22317ac00ce"])(
    "a non-uuid4 id (%s) is a JSON 404",
    async (id) => {
      const user = await createUser();
      await expectError(await as(user, "GET", `/api/app/v1/service/${id}/`), 404);
      await expectError(await as(user, "GET", `/api/app/v1/${user.username}/service/${id}/`), 404);
    },
  );

  it("needs credentials", async () => {
    const user = await createUser();
    const s = await createService(user);
    await expectError(await call(`/api/app/v1/service/${s.uuid}/`), 401);
  });
});

describe("update a service", () => {
  it("PATCH target_num_containers as the Python SDK sends it", async () => {
    const user = await createUser();
    const s = await createService(user);
    const r = await asPython(user, "PATCH", s.resource_uri, { target_num_containers: 3 });
    expect(r.status).toBe(200);
    const body = await r.json<Record<string, unknown>>();
    expectServiceShape(body);
    expect(body.target_num_containers).toBe(3);
    expect(body.uuid).toBe(s.uuid);
    const got = await (await as(user, "GET", s.resource_uri)).json<ServiceJson>();
    expect(got.target_num_containers).toBe(3);
  });

  it("PATCH target_num_containers as the Go SDK sends it (no Content-Type)", async () => {
    const user = await createUser();
    const s = await createService(user);
    const r = await asGo(user, "PATCH", `/api/app/v1/${user.username}/service/${s.uuid}/`, {
      target_num_containers: 4,
    });
    expect(r.status).toBe(200);
    expect((await r.json<ServiceJson>()).target_num_containers).toBe(4);
    const got = await (await asGo(user, "GET", `/api/app/v1/service/${s.uuid}/`)).json<ServiceJson>();
    expect(got.target_num_containers).toBe(4);
  });

  it("PATCH through the non-namespaced path works too", async () => {
    const user = await createUser();
    const s = await createService(user);
    const r = await as(user, "PATCH", `/api/app/v1/service/${s.uuid}/`, { target_num_containers: 2 });
    expect(r.status).toBe(200);
    expect((await r.json<ServiceJson>()).target_num_containers).toBe(2);
  });

  it("renames a service; the old name no longer lists it", async () => {
    const user = await createUser();
    const s = await createService(user);
    const newName = uniqueName("renamed");
    const r = await as(user, "PATCH", s.resource_uri, { name: newName });
    expect(r.status).toBe(200);
    const body = await r.json<ServiceJson>();
    expect(body.name).toBe(newName);
    expect(body.uuid).toBe(s.uuid);
    expect(body.resource_uri).toBe(s.resource_uri);
    expect((await (await as(user, "GET", s.resource_uri)).json<ServiceJson>()).name).toBe(newName);
    expect((await list(user, `${SERVICES()}?name=${s.name}`)).objects).toEqual([]);
    expect((await list(user, `${SERVICES()}?name=${newName}`)).objects.map((o) => o.uuid)).toEqual([s.uuid]);
  });

  it("renaming onto an existing name is 409", async () => {
    const user = await createUser();
    const a = await createService(user);
    const b = await createService(user);
    await expectError(await as(user, "PATCH", b.resource_uri, { name: a.name }), 409);
    expect((await (await as(user, "GET", b.resource_uri)).json<ServiceJson>()).name).toBe(b.name);
  });

  it("PATCH beyond max_num_containers is 400 and changes nothing", async () => {
    const user = await createUser();
    const s = await createService(user, { target_num_containers: 2 });
    await expectError(await as(user, "PATCH", s.resource_uri, { target_num_containers: 11 }), 400);
    const capped = await createService(user, { max_num_containers: 3 });
    await expectError(await asGo(user, "PATCH", capped.resource_uri, { target_num_containers: 4 }), 400);
    expect((await (await as(user, "GET", s.resource_uri)).json<ServiceJson>()).target_num_containers).toBe(2);
    expect((await (await as(user, "GET", capped.resource_uri)).json<ServiceJson>()).target_num_containers).toBe(1);
    // Up to the max itself is fine.
    const ok = await as(user, "PATCH", capped.resource_uri, { target_num_containers: 3 });
    expect(ok.status).toBe(200);
  });

  it.each([
    ["a negative count", { target_num_containers: -1 }],
    ["a fractional count", { target_num_containers: 1.5 }],
    ["a string count", { target_num_containers: "3" }],
    ["an invalid name", { name: "no spaces allowed" }],
  ])("PATCH with %s is 400", async (_label, body) => {
    const user = await createUser();
    const s = await createService(user);
    await expectError(await as(user, "PATCH", s.resource_uri, body), 400);
  });

  it("PATCH an unknown uuid is 404", async () => {
    const user = await createUser();
    await expectError(
      await as(user, "PATCH", `/api/app/v1/${user.username}/service/${crypto.randomUUID()}/`, {
        target_num_containers: 2,
      }),
      404,
    );
  });
});

describe("terminate a service", () => {
  it("DELETE answers 202 Terminated, then the service and its triggers are gone", async () => {
    const user = await createUser();
    const keep = await createService(user);
    const s = await createService(user);
    const trigger = await createTrigger(user, s, { name: "deploy" });
    // The trigger works before the delete.
    const before = await call(trigger.url, { method: "POST" });
    expect(before.status).toBe(202);

    const r = await asGo(user, "DELETE", `/api/app/v1/${user.username}/service/${s.uuid}/`);
    expect(r.status).toBe(202);
    const body = await r.json<Record<string, unknown>>();
    expectServiceShape(body);
    expect(body.uuid).toBe(s.uuid);
    expect(body.state).toBe("Terminated");
    expect(body.destroyed_datetime).toMatch(RFC1123);
    expect(Math.abs(Date.parse(body.destroyed_datetime as string) - Date.now())).toBeLessThan(60_000);

    await expectError(await as(user, "GET", s.resource_uri), 404);
    await expectError(await as(user, "GET", `/api/app/v1/service/${s.uuid}/`), 404);
    const page = await list(user, SERVICES());
    expect(page.objects.map((o) => o.uuid)).toEqual([keep.uuid]);
    expect(page.meta.total_count).toBe(1);

    await expectError(await call(trigger.url, { method: "POST" }), 404);
    await expectError(
      await call(`/api/app/v1/service/${s.uuid}/trigger/${trigger.uuid}/call/`, { method: "POST" }),
      404,
    );
    await expectError(await as(user, "GET", `${s.resource_uri}trigger/`), 404);
    await expectError(await as(user, "GET", trigger.resource_uri), 404);

    // A second delete finds nothing.
    await expectError(await asPython(user, "DELETE", s.resource_uri), 404);
    // The other service is untouched.
    expect((await as(user, "GET", keep.resource_uri)).status).toBe(200);
  });

  it("DELETE as the Python SDK sends it (Content-Type, empty body) through the non-namespaced path", async () => {
    const user = await createUser();
    const s = await createService(user);
    const r = await asPython(user, "DELETE", `/api/app/v1/service/${s.uuid}/`);
    expect(r.status).toBe(202);
    expect((await r.json<ServiceJson>()).state).toBe("Terminated");
    await expectError(await as(user, "GET", s.resource_uri), 404);
  });

  it("the name of a terminated service can be used again", async () => {
    const user = await createUser();
    const s = await createService(user);
    expect((await as(user, "DELETE", s.resource_uri)).status).toBe(202);
    const again = await as(user, "POST", SERVICES(), { image: "tutum/hello-world", name: s.name });
    expect(again.status).toBe(201);
    expect((await again.json<ServiceJson>()).uuid).not.toBe(s.uuid);
  });
});

describe("list services", () => {
  it("answers the envelope with every service in the documented shape", async () => {
    const user = await createUser();
    const a = await createService(user);
    const b = await createService(user);
    const r = await asPython(user, "GET", SERVICES());
    expect(r.status).toBe(200);
    const page = await r.json<Page>();
    expect(Object.keys(page).sort()).toEqual(["meta", "objects"]);
    expect(Object.keys(page.meta).sort()).toEqual(["limit", "next", "offset", "previous", "total_count"]);
    expect(page.meta).toEqual({ limit: 25, next: null, offset: 0, previous: null, total_count: 2 });
    expect(page.objects.map((o) => o.uuid)).toEqual([a.uuid, b.uuid]);
    for (const o of page.objects) expectServiceShape(o);
    expect(page.objects[0]).toEqual(a);
    // The namespaced listing is the same.
    expect(await list(user, SERVICES(user.username))).toEqual(page);
  });

  it("an empty namespace lists nothing", async () => {
    const user = await createUser();
    expect(await list(user, SERVICES())).toEqual({
      meta: { limit: 25, next: null, offset: 0, previous: null, total_count: 0 },
      objects: [],
    });
  });

  it("does not show another user's services", async () => {
    const a = await createUser();
    const b = await createUser();
    await createService(a);
    const mine = await createService(b);
    const page = await list(b, SERVICES());
    expect(page.objects.map((o) => o.uuid)).toEqual([mine.uuid]);
    expect(page.meta.total_count).toBe(1);
  });

  it.each(["0", "-1", "-25", "abc", "1.5", "10abc"])("limit=%s is 400", async (limit) => {
    const user = await createUser();
    await expectError(await as(user, "GET", `${SERVICES()}?limit=${limit}`), 400);
  });

  it.each(["-1", "abc"])("offset=%s is 400", async (offset) => {
    const user = await createUser();
    await expectError(await as(user, "GET", `${SERVICES()}?offset=${offset}`), 400);
  });

  describe("with 30 services", () => {
    let user: User;
    let all: ServiceJson[];
    const setup = async () => {
      if (all) return;
      user = await createUser();
      all = [];
      for (let i = 0; i < 30; i++) all.push(await createService(user, { name: `svc${String(i).padStart(2, "0")}` }));
    };

    it("default limit is 25; next/previous are root-relative and null at the ends", async () => {
      await setup();
      const first = await list(user, SERVICES());
      expect(first.meta).toMatchObject({ limit: 25, offset: 0, previous: null, total_count: 30 });
      expect(first.objects.map((o) => o.uuid)).toEqual(all.slice(0, 25).map((s) => s.uuid));
      expect(first.meta.next).not.toBeNull();
      const next = new URL(first.meta.next as string, "https://x");
      expect(first.meta.next).toMatch(/^\/api\//);
      expect(next.pathname).toBe("/api/app/v1/service/");
      expect(next.searchParams.get("limit")).toBe("25");
      expect(next.searchParams.get("offset")).toBe("25");

      const second = await list(user, first.meta.next as string);
      expect(second.meta).toMatchObject({ limit: 25, offset: 25, next: null, total_count: 30 });
      expect(second.objects.map((o) => o.uuid)).toEqual(all.slice(25).map((s) => s.uuid));
      expect(second.meta.previous).toMatch(/^\/api\//);
      const prev = new URL(second.meta.previous as string, "https://x");
      expect(prev.searchParams.get("limit")).toBe("25");
      expect(prev.searchParams.get("offset")).toBe("0");
    });

    it("a namespaced listing keeps its namespace in next", async () => {
      await setup();
      const page = await list(user, `${SERVICES(user.username)}?limit=10`);
      expect(new URL(page.meta.next as string, "https://x").pathname).toBe(`/api/app/v1/${user.username}/service/`);
    });

    it("limit is capped at 100", async () => {
      await setup();
      const page = await list(user, `${SERVICES()}?limit=500`);
      expect(page.meta.limit).toBe(100);
      expect(page.meta.next).toBeNull();
      expect(page.objects).toHaveLength(30);
    });

    it("honours limit and offset", async () => {
      await setup();
      const page = await list(user, `${SERVICES()}?limit=5&offset=10`);
      expect(page.meta).toMatchObject({ limit: 5, offset: 10, total_count: 30 });
      expect(page.objects.map((o) => o.uuid)).toEqual(all.slice(10, 15).map((s) => s.uuid));
      const prev = new URL(page.meta.previous as string, "https://x");
      expect(prev.searchParams.get("offset")).toBe("5");
      expect(prev.searchParams.get("limit")).toBe("5");
      const next = new URL(page.meta.next as string, "https://x");
      expect(next.searchParams.get("offset")).toBe("15");

      const tail = await list(user, `${SERVICES()}?offset=28`);
      expect(tail.meta).toMatchObject({ limit: 25, offset: 28, next: null, total_count: 30 });
      expect(tail.objects.map((o) => o.uuid)).toEqual(all.slice(28).map((s) => s.uuid));
      expect(new URL(tail.meta.previous as string, "https://x").searchParams.get("offset")).toBe("3");

      const beyond = await list(user, `${SERVICES()}?offset=30`);
      expect(beyond.objects).toEqual([]);
      expect(beyond.meta.next).toBeNull();
      expect(beyond.meta.total_count).toBe(30);
    });

    it.each([undefined, 7, 1])(
      "the Python SDK's paging loop (first limit %s) sees every service once",
      async (limit) => {
        await setup();
        const seen: string[] = [];
        let query = limit ? `?limit=${limit}` : "";
        for (let rounds = 0; ; rounds++) {
          expect(rounds, "paging did not end").toBeLessThan(50);
          const page = await (await asPython(user, "GET", `${SERVICES()}${query}`)).json<Page>();
          seen.push(...page.objects.map((o) => o.uuid));
          if (!page.meta.next) break;
          query = `?offset=${page.meta.offset + page.meta.limit}&limit=${page.meta.limit}`;
        }
        expect(seen).toEqual(all.map((s) => s.uuid));
      },
    );

    it.each([undefined, 7])("the Go SDK's paging loop (first limit %s) sees every service once", async (limit) => {
      await setup();
      const seen: string[] = [];
      let path = `/api/app/v1/${user.username}/service/${limit ? `?limit=${limit}` : ""}`;
      for (let rounds = 0; ; rounds++) {
        expect(rounds, "paging did not end").toBeLessThan(50);
        const r = await asGo(user, "GET", path);
        expect(r.status).toBe(200);
        const page = await r.json<Page>();
        seen.push(...page.objects.map((o) => o.uuid));
        if (page.meta.next === null) break;
        expect(page.meta.next.startsWith("/api/")).toBe(true);
        // Go requests its REST host + "api/" + next[5:].
        path = `/api/${page.meta.next.slice(5)}`;
      }
      expect(seen).toEqual(all.map((s) => s.uuid));
      expect(new Set(seen).size).toBe(30);
    });

    it("filters by uuid", async () => {
      await setup();
      const target = all[17] as ServiceJson;
      const page = await list(user, `${SERVICES()}?uuid=${target.uuid}`);
      expect(page.objects.map((o) => o.uuid)).toEqual([target.uuid]);
      expect(page.meta.total_count).toBe(1);
      const none = await list(user, `${SERVICES()}?uuid=${crypto.randomUUID()}`);
      expect(none.objects).toEqual([]);
      expect(none.meta.total_count).toBe(0);
    });

    it("filters by uuid__startswith, case-insensitively", async () => {
      await setup();
      const target = all[4] as ServiceJson;
      const prefix = target.uuid.slice(0, 8);
      const expected = all.filter((s) => s.uuid.startsWith(prefix)).map((s) => s.uuid);
      const page = await list(user, `${SERVICES()}?uuid__startswith=${prefix}`);
      expect(page.objects.map((o) => o.uuid)).toEqual(expected);
      expect(page.objects.map((o) => o.uuid)).toContain(target.uuid);
      expect(page.meta.total_count).toBe(expected.length);

      const mixed = [...prefix].map((ch, i) => (i % 2 ? ch.toUpperCase() : ch)).join("");
      const upper = `${target.uuid.slice(0, 4).toUpperCase()}${target.uuid.slice(4, 8)}`;
      for (const p of [mixed, upper, target.uuid.toUpperCase()]) {
        const again = await list(user, `${SERVICES()}?uuid__startswith=${p}`);
        expect(again.objects.map((o) => o.uuid)).toEqual(p.length === 36 ? [target.uuid] : expected);
      }

      const oneChar = target.uuid.slice(0, 1);
      const short = await list(user, `${SERVICES()}?uuid__startswith=${oneChar}&limit=100`);
      expect(short.objects.map((o) => o.uuid)).toEqual(
        all.filter((s) => s.uuid.startsWith(oneChar)).map((s) => s.uuid),
      );

      const nothing = await list(user, `${SERVICES()}?uuid__startswith=zzzz`);
      expect(nothing.objects).toEqual([]);
    });

    it("filters by name", async () => {
      await setup();
      const page = await list(user, `${SERVICES()}?name=svc23`);
      expect(page.objects.map((o) => o.uuid)).toEqual([(all[23] as ServiceJson).uuid]);
      expect(page.meta.total_count).toBe(1);
      // Exact match, not a prefix.
      expect((await list(user, `${SERVICES()}?name=svc2`)).objects).toEqual([]);
    });

    it("filters by state; an unknown state is 400", async () => {
      await setup();
      const notRunning = await list(user, `${SERVICES()}?state=Not%20running&limit=100`);
      expect(notRunning.meta.total_count).toBe(30);
      expect(notRunning.objects.every((o) => o.state === "Not running")).toBe(true);
      const running = await list(user, `${SERVICES()}?state=Running`);
      expect(running.objects).toEqual([]);
      expect(running.meta.total_count).toBe(0);
      await expectError(await as(user, "GET", `${SERVICES()}?state=Exploded`), 400);
      await expectError(await as(user, "GET", `${SERVICES()}?state=running`), 400);
    });

    it("next keeps the filters", async () => {
      await setup();
      const page = await list(user, `${SERVICES()}?state=Not%20running&limit=10`);
      const next = new URL(page.meta.next as string, "https://x");
      expect(next.searchParams.get("state")).toBe("Not running");
      expect(next.searchParams.get("limit")).toBe("10");
      expect(next.searchParams.get("offset")).toBe("10");
      const second = await list(user, page.meta.next as string);
      expect(second.objects.map((o) => o.uuid)).toEqual(all.slice(10, 20).map((s) => s.uuid));
      const prev = new URL(second.meta.previous as string, "https://x");
      expect(prev.searchParams.get("state")).toBe("Not running");
    });
  });

  it("filters by name and stack__name as the CLI does", async () => {
    const user = await createUser();
    const name = uniqueName("web");
    const bare = await createService(user, { name });
    const s1 = await createService(user, { name, stack: "stack1" });
    const s2 = await createService(user, { name, stack: "stack2" });
    const other = await createService(user, { stack: "stack1" });

    const byName = await list(user, `${SERVICES()}?name=${name}`);
    expect(byName.objects.map((o) => o.uuid)).toEqual([bare.uuid, s1.uuid, s2.uuid]);

    const inStack1 = await list(user, `${SERVICES()}?name=${name}&stack__name=stack1`);
    expect(inStack1.objects.map((o) => o.uuid)).toEqual([s1.uuid]);
    expect(inStack1.meta.total_count).toBe(1);

    const stack1 = await list(user, `${SERVICES()}?stack__name=stack1`);
    expect(stack1.objects.map((o) => o.uuid)).toEqual([s1.uuid, other.uuid]);

    expect((await list(user, `${SERVICES()}?name=${name}&stack__name=nostack`)).objects).toEqual([]);

    // next keeps both filters.
    const paged = await list(user, `${SERVICES()}?name=${name}&limit=1`);
    expect(paged.objects.map((o) => o.uuid)).toEqual([bare.uuid]);
    const next = new URL(paged.meta.next as string, "https://x");
    expect(next.searchParams.get("name")).toBe(name);
    expect(next.searchParams.get("limit")).toBe("1");
    expect(next.searchParams.get("offset")).toBe("1");
    const second = await list(user, paged.meta.next as string);
    expect(second.objects.map((o) => o.uuid)).toEqual([s1.uuid]);
    expect(second.meta.total_count).toBe(3);
  });
});

describe("organizations", () => {
  it("a member creates a service in the organization and another member lists it", async () => {
    const alice = await createUser();
    const bob = await createUser();
    const org = await createOrg(uniqueName("org"), [alice.username, bob.username]);
    const name = uniqueName("svc");
    const r = await asPython(alice, "POST", SERVICES(org), { image: "tutum/hello-world", name });
    expect(r.status).toBe(201);
    const s = await r.json<Record<string, unknown>>();
    expectServiceShape(s);
    expect(s.resource_uri).toBe(`/api/app/v1/${org}/service/${s.uuid}/`);

    const page = await list(bob, SERVICES(org));
    expect(page.objects.map((o) => o.uuid)).toEqual([s.uuid]);
    expect(page.meta.total_count).toBe(1);
    expect(page.objects[0]).toEqual(s);

    // Neither member's own namespace holds it.
    expect((await list(alice, SERVICES())).objects).toEqual([]);
    expect((await list(bob, SERVICES())).objects).toEqual([]);

    // Bob may change it through the organization path.
    const patched = await asGo(bob, "PATCH", s.resource_uri as string, { target_num_containers: 2 });
    expect(patched.status).toBe(200);
    expect((await patched.json<ServiceJson>()).target_num_containers).toBe(2);
  });

  it("a non-member can neither list nor create in the organization, nor see its service", async () => {
    const alice = await createUser();
    const mallory = await createUser();
    const org = await createOrg(uniqueName("org"), [alice.username]);
    const s = await createService(alice, {}, org);
    await expectError(await as(mallory, "GET", SERVICES(org)), 403);
    await expectError(await as(mallory, "POST", SERVICES(org), { image: "tutum/hello-world" }), 403);
    await expectError(await as(mallory, "GET", `/api/app/v1/service/${s.uuid}/`), 404);
    expect((await list(alice, SERVICES(org))).meta.total_count).toBe(1);
  });

  it("the same name may exist in a user's namespace and in an organization", async () => {
    const alice = await createUser();
    const org = await createOrg(uniqueName("org"), [alice.username]);
    const name = uniqueName("svc");
    await createService(alice, { name });
    const r = await as(alice, "POST", SERVICES(org), { image: "tutum/hello-world", name });
    expect(r.status).toBe(201);
  });
});
