import { listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ADMIN_TOKEN,
  as,
  asGo,
  asPython,
  call,
  createService,
  createTrigger,
  createUser,
  type ServiceJson,
  type TriggerJson,
  type User,
  uniqueName,
} from "./helpers/api";

type Envelope<T> = {
  meta: { limit: number; next: string | null; offset: number; previous: string | null; total_count: number };
  objects: T[];
};

const KiB = 1024;
const LIMIT = 64 * KiB;

/** An error answer: the status, JSON content type, the safe headers, and exactly `{"error": "<string>"}`. */
async function expectError(res: Response, status: number, message?: RegExp): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expectSafeHeaders(res);
  const text = await res.text();
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(body).not.toBeNull();
  expect(Array.isArray(body)).toBe(false);
  expect(Object.keys(body)).toEqual(["error"]);
  expect(typeof body.error).toBe("string");
  expect((body.error as string).length).toBeGreaterThan(0);
  if (message) expect(body.error).toMatch(message);
  return body.error as string;
}

function expectSafeHeaders(res: Response): void {
  expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  expect(res.headers.get("cache-control")).toBe("no-store");
}

/**
 * Raw request with the user's credentials and the given headers/body. A string body is sent as
 * bytes, so that it declares no Content-Type unless `headers` gives one (a Request would add
 * text/plain, a form type the management routes refuse).
 */
function raw(user: User, method: string, path: string, body?: BodyInit | null, headers: Record<string, string> = {}) {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  return call(path, { method, headers: { authorization: user.auth, ...headers }, body: bytes });
}

/** A JSON text of exactly `size` bytes that creates a valid service (unknown keys are ignored). */
function serviceBodyOfSize(size: number, name: string): string {
  const head = `{"image":"tutum/hello-world","name":"${name}","pad":"`;
  const tail = `"}`;
  const padding = size - head.length - tail.length;
  expect(padding).toBeGreaterThan(0);
  const text = head + "a".repeat(padding) + tail;
  expect(new TextEncoder().encode(text).byteLength).toBe(size);
  return text;
}

/** A body streamed in chunks, so the request carries no Content-Length. */
function streamOf(text: string, chunk = 8 * KiB): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.byteLength) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

async function serviceCount(user: User): Promise<number> {
  const r = await as(user, "GET", "/api/app/v1/service/");
  expect(r.status).toBe(200);
  return (await r.json<Envelope<unknown>>()).meta.total_count;
}

async function triggerCount(user: User, svc: ServiceJson): Promise<number> {
  const r = await as(user, "GET", `${svc.resource_uri}trigger/`);
  expect(r.status).toBe(200);
  return (await r.json<Envelope<unknown>>()).meta.total_count;
}

/** Every service-uuid pointer in every locator shard (storage is per test file, so this is all of them). */
async function locatorPointers(): Promise<string[]> {
  const all: string[] = [];
  for (const id of await listDurableObjectIds(env.LOCATOR)) {
    const rows = await runInDurableObject(env.LOCATOR.get(id), (_i, state) =>
      state.storage.sql.exec<{ uuid: string }>("SELECT uuid FROM pointers").toArray(),
    );
    all.push(...rows.map((r) => r.uuid));
  }
  return all.sort();
}

function allowOf(res: Response): string[] {
  const allow = res.headers.get("allow");
  expect(allow, "Allow header").not.toBeNull();
  return (allow as string)
    .split(",")
    .map((m) => m.trim())
    .filter(Boolean)
    .sort();
}

let user: User;
let svc: ServiceJson;

beforeAll(async () => {
  user = await createUser();
  svc = await createService(user);
});

describe("paths: trailing slash and repeated slashes", () => {
  it("GET /api/app/v1/service with and without the trailing slash answers the same list", async () => {
    const a = await as(user, "GET", "/api/app/v1/service/");
    const b = await as(user, "GET", "/api/app/v1/service");
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    const la = await a.json<Envelope<ServiceJson>>();
    const lb = await b.json<Envelope<ServiceJson>>();
    expect(lb.objects.map((s) => s.uuid)).toEqual(la.objects.map((s) => s.uuid));
    expect(la.objects.map((s) => s.uuid)).toContain(svc.uuid);
  });

  it("a missing trailing slash keeps the query string (filters still apply)", async () => {
    const other = await createService(user);
    const r = await as(user, "GET", `/api/app/v1/service?name=${other.name}`);
    expect(r.status).toBe(200);
    const list = await r.json<Envelope<ServiceJson>>();
    expect(list.objects.map((s) => s.uuid)).toEqual([other.uuid]);
    expect(list.meta.total_count).toBe(1);
  });

  it("POST without the trailing slash creates (201); GET the service without it (200)", async () => {
    const r = await as(user, "POST", "/api/app/v1/service", { image: "tutum/hello-world", name: uniqueName("ns") });
    expect(r.status).toBe(201);
    const created = await r.json<ServiceJson>();
    const g = await as(user, "GET", `/api/app/v1/service/${created.uuid}`);
    expect(g.status).toBe(200);
    expect((await g.json<ServiceJson>()).uuid).toBe(created.uuid);
    const t = await as(user, "POST", `/api/app/v1/service/${created.uuid}/trigger`, { name: "noslash" });
    expect(t.status).toBe(201);
  });

  it("Python's double slash .../<S>//trigger/ routes like the single slash (list, create, delete, call)", async () => {
    const s = await createService(user);
    // The namespaced resource_uri joined with "/trigger/", as the Python SDK does.
    const dbl = `${s.resource_uri}/trigger/`;
    expect(dbl).toContain("//trigger/");
    const created = await asPython(user, "POST", dbl, { name: "py", operation: "redeploy" });
    expect(created.status).toBe(201);
    const t = await created.json<TriggerJson>();
    expect(t).toMatchObject({ name: "py", operation: "REDEPLOY" });

    // Non-namespaced double slash too.
    const plain = `/api/app/v1/service/${s.uuid}//trigger/`;
    const list = await asPython(user, "GET", plain);
    expect(list.status).toBe(200);
    const objects = (await list.json<Envelope<TriggerJson>>()).objects;
    expect(objects.map((o) => o.uuid)).toEqual([t.uuid]);
    const single = await (await as(user, "GET", `${s.resource_uri}trigger/`)).json<Envelope<TriggerJson>>();
    expect(single.objects).toEqual(objects);

    const call1 = await call(`/api/app/v1/service/${s.uuid}//trigger/${t.uuid}/call/`, { method: "POST" });
    expect(call1.status).toBe(202);

    const del = await asPython(user, "DELETE", `${plain}${t.uuid}/`);
    expect(del.status).toBe(200);
    expect((await del.json<TriggerJson>()).uuid).toBe(t.uuid);
    const after = await (await asPython(user, "GET", plain)).json<Envelope<TriggerJson>>();
    expect(after.objects).toEqual([]);
  });

  it("Go's leading double slash //api/app/v1/... routes the same", async () => {
    const r = await asGo(user, "GET", "//api/app/v1/service/");
    expect(r.status).toBe(200);
    const list = await r.json<Envelope<ServiceJson>>();
    expect(list.objects.map((s) => s.uuid)).toContain(svc.uuid);

    const g = await asGo(user, "GET", `//api/app/v1/service/${svc.uuid}/`);
    expect(g.status).toBe(200);
    expect((await g.json<ServiceJson>()).uuid).toBe(svc.uuid);

    const created = await asGo(user, "POST", `//api/app/v1/service/${svc.uuid}/trigger/`, {
      name: "go",
      operation: "",
    });
    expect(created.status).toBe(201);
    expect((await created.json<TriggerJson>()).operation).toBe("REDEPLOY");
  });

  it("slashes repeated anywhere are collapsed", async () => {
    for (const path of [
      "/api//app///v1/service/",
      "///api/app/v1/service//",
      `/api/app/v1/${user.username}//service/`,
    ]) {
      const r = await as(user, "GET", path);
      expect(r.status, path).toBe(200);
      expectSafeHeaders(r);
    }
  });

  it("the list's next link is root-relative and normalized, whatever the request path looked like", async () => {
    const u = await createUser();
    await createService(u);
    await createService(u);
    const r = await as(u, "GET", "//api/app/v1/service?limit=1");
    expect(r.status).toBe(200);
    const page = await r.json<Envelope<ServiceJson>>();
    expect(page.meta.next).toBe("/api/app/v1/service/?limit=1&offset=1");
  });
});

describe("unknown routes and methods", () => {
  // `/` and the console's files are pages (test/console-api.test.ts); every other path is the API's.
  it.each([
    "/nothing",
    "/nothing.html",
    "/api/",
    "/api/app/v1/",
    "/api/app/v2/service/",
    "/api/app/v1/nosuchthing/",
    "/api/app/v1/service/x/y/z/",
    "/api/openapi.yaml",
    "/index.php",
  ])("GET %s is 404 JSON", async (path) => {
    const r = await as(user, "GET", path);
    await expectError(r, 404);
  });

  it("404 for an unknown route does not need credentials and says which path", async () => {
    const r = await call("/no/such/route/");
    const message = await expectError(r, 404);
    expect(message).toContain("/no/such/route/");
  });

  it.each([
    ["PUT", "/api/app/v1/service/", ["GET", "POST"]],
    ["DELETE", "/api/app/v1/service/", ["GET", "POST"]],
    ["PUT", "/api/app/v1/service/SVC/", ["DELETE", "GET", "PATCH"]],
    ["POST", "/api/app/v1/service/SVC/", ["DELETE", "GET", "PATCH"]],
    ["PATCH", "/api/app/v1/service/SVC/trigger/", ["GET", "POST"]],
    ["PUT", "/api/app/v1/NS/service/SVC/trigger/", ["GET", "POST"]],
    ["GET", "/api/app/v1/service/SVC/trigger/TRG/call/", ["POST"]],
    ["DELETE", "/api/app/v1/service/SVC/trigger/TRG/call/", ["POST"]],
    ["PUT", "/api/app/v1/service/SVC/trigger/TRG/", ["DELETE", "GET", "PATCH"]],
    ["POST", "/api/openapi.json", ["GET"]],
    ["DELETE", "/api/audit/v1/action/", ["GET"]],
    ["PUT", "/api/account/v1/apikey/", ["GET", "POST"]],
  ])("%s %s is 405 with Allow: %j", async (method, template, allowed) => {
    const path = template
      .replace("SVC", svc.uuid)
      .replace("NS", user.username)
      .replace("TRG", "3f1b3c1e-2d7a-4b8e-9c3f-0a1b2c3d4e5f");
    const r = await raw(user, method, path, method === "GET" ? undefined : "{}");
    expect(allowOf(r)).toEqual(allowed);
    const message = await expectError(r, 405);
    expect(message).toContain(method);
  });

  it("405 is also given on the un-normalized forms of a known path", async () => {
    const r = await raw(user, "PUT", `/api/app/v1/service/${svc.uuid}//trigger`, "{}");
    expect(allowOf(r)).toEqual(["GET", "POST"]);
    await expectError(r, 405);
  });
});

describe("body size limit (64 KiB)", () => {
  it("accepts a body of exactly 64 KiB and refuses 64 KiB + 1 (with Content-Length)", async () => {
    const before = await serviceCount(user);
    const ok = await raw(user, "POST", "/api/app/v1/service/", serviceBodyOfSize(LIMIT, uniqueName("big")), {
      "content-type": "application/json",
    });
    expect(ok.status).toBe(201);

    const tooBig = serviceBodyOfSize(LIMIT + 1, uniqueName("big"));
    const r = await raw(user, "POST", "/api/app/v1/service/", tooBig, {
      "content-type": "application/json",
      "content-length": String(LIMIT + 1),
    });
    await expectError(r, 413, /64 KiB/);
    expect(await serviceCount(user)).toBe(before + 1);
  });

  it("refuses a streamed body over the limit with no Content-Length (413)", async () => {
    const before = await serviceCount(user);
    const req = new Request("https://api.test/api/app/v1/service/", {
      method: "POST",
      headers: { authorization: user.auth, "content-type": "application/json" },
      body: streamOf(serviceBodyOfSize(LIMIT + 1, uniqueName("stream"))),
    });
    expect(req.headers.get("content-length")).toBeNull();
    const r = await call("/api/app/v1/service/", {
      method: "POST",
      headers: { authorization: user.auth, "content-type": "application/json" },
      body: streamOf(serviceBodyOfSize(LIMIT + 1, uniqueName("stream"))),
    });
    await expectError(r, 413, /64 KiB/);
    expect(await serviceCount(user)).toBe(before);
  });

  it("accepts a streamed body under the limit with no Content-Length", async () => {
    const r = await call("/api/app/v1/service/", {
      method: "POST",
      headers: { authorization: user.auth },
      body: streamOf(serviceBodyOfSize(LIMIT, uniqueName("stream")), 1000),
    });
    expect(r.status).toBe(201);
  });

  it("refuses a huge streamed body (1 MiB) without reading it all", async () => {
    const r = await call("/api/app/v1/service/", {
      method: "POST",
      headers: { authorization: user.auth },
      body: streamOf(serviceBodyOfSize(1024 * KiB, "huge"), 64 * KiB),
    });
    await expectError(r, 413);
  });

  it("413 on trigger create, admin create and on a trigger call (with and without Content-Length)", async () => {
    const t = await createTrigger(user, svc);
    const big = `{"name":"${"n".repeat(LIMIT)}"}`;
    const before = await triggerCount(user, svc);
    await expectError(await raw(user, "POST", `${svc.resource_uri}trigger/`, big), 413);
    await expectError(await raw(user, "POST", `${svc.resource_uri}trigger/`, streamOf(big)), 413);
    expect(await triggerCount(user, svc)).toBe(before);

    await expectError(
      await call("/api/admin/v1/user/", {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: `{"username":"abcd","pad":"${"p".repeat(LIMIT)}"}`,
      }),
      413,
    );

    await expectError(await call(t.url, { method: "POST", body: "x".repeat(LIMIT + 1) }), 413);
    await expectError(await call(t.url, { method: "POST", body: streamOf("x".repeat(LIMIT + 1)) }), 413);
    // A call body at the limit is accepted.
    expect((await call(t.url, { method: "POST", body: "x".repeat(LIMIT) })).status).toBe(202);
  });

  it("the size limit applies before authentication: no credentials and a big body is 413 JSON", async () => {
    const r = await call("/api/app/v1/service/", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "x".repeat(LIMIT + 1),
    });
    await expectError(r, 413);
  });

  it("a Content-Length declaring more than 64 KiB is refused without reading the body (413)", async () => {
    const before = await serviceCount(user);
    const r = await call("/api/app/v1/service/", {
      method: "POST",
      headers: { authorization: user.auth, "content-type": "application/json", "content-length": String(LIMIT + 1) },
      body: JSON.stringify({ image: "tutum/hello-world", name: uniqueName("liar") }),
    });
    await expectError(r, 413);
    expect(await serviceCount(user)).toBe(before);
  });
});

describe("body parsing", () => {
  it.each(["{", '{"image":}', "not json", "{} trailing", "{'image':'x'}", '{"image":"tutum/hello-world",}'])(
    "malformed JSON %j on service create is 400 saying the body is invalid",
    async (body) => {
      const before = await serviceCount(user);
      const r = await raw(user, "POST", "/api/app/v1/service/", body, { "content-type": "application/json" });
      await expectError(r, 400, /invalid request body/i);
      expect(await serviceCount(user)).toBe(before);
    },
  );

  it("bodies that are not UTF-8, or nest very deeply, are 400 (never 5xx)", async () => {
    const bodies: BodyInit[] = [
      new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
      new Uint8Array([0xef, 0xbb, 0xbf, 0x5b, 0x5d]),
      `${"[".repeat(30_000)}${"]".repeat(30_000)}`,
      "[".repeat(60_000),
      `{"name":${"[".repeat(20_000)}${"]".repeat(20_000)}}`,
    ];
    const before = await serviceCount(user);
    for (const body of bodies) {
      await expectError(await raw(user, "POST", "/api/app/v1/service/", body), 400);
      await expectError(await raw(user, "POST", `${svc.resource_uri}trigger/`, body), 400);
    }
    expect(await serviceCount(user)).toBe(before);
  });

  it("malformed JSON on trigger create, PATCH and admin create is 400 too", async () => {
    await expectError(await raw(user, "POST", `${svc.resource_uri}trigger/`, "{nope"), 400, /invalid request body/i);
    await expectError(await raw(user, "PATCH", svc.resource_uri, "{nope"), 400, /invalid request body/i);
    await expectError(
      await call("/api/admin/v1/user/", {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: "{nope",
      }),
      400,
      /invalid request body/i,
    );
  });

  it.each([
    ["target_num_containers", { image: "tutum/hello-world", target_num_containers: "x" }],
    ["target_num_containers", { image: "tutum/hello-world", target_num_containers: 1.5 }],
    ["target_num_containers", { image: "tutum/hello-world", target_num_containers: -1 }],
    ["max_num_containers", { image: "tutum/hello-world", max_num_containers: "ten" }],
    ["image", { image: 42 }],
    ["name", { image: "tutum/hello-world", name: 5 }],
    ["name", { image: "tutum/hello-world", name: "has space" }],
    ["stack", { image: "tutum/hello-world", stack: 7 }],
  ])("service create with a wrong %s is 400 naming the field", async (field, body) => {
    const before = await serviceCount(user);
    const r = await as(user, "POST", "/api/app/v1/service/", body);
    await expectError(r, 400, new RegExp(field));
    expect(await serviceCount(user)).toBe(before);
  });

  it.each([
    ["name", { name: 5 }],
    ["name", { name: { a: 1 } }],
    ["operation", { operation: 5 }],
    ["operation", { operation: "explode" }],
  ])("trigger create with a wrong %s is 400 naming the field, and creates nothing", async (field, body) => {
    const before = await triggerCount(user, svc);
    const r = await as(user, "POST", `${svc.resource_uri}trigger/`, body);
    await expectError(r, 400, new RegExp(field));
    expect(await triggerCount(user, svc)).toBe(before);
  });

  it("PATCH with a wrong type is 400 and changes nothing", async () => {
    const r = await as(user, "PATCH", svc.resource_uri, { target_num_containers: "x" });
    await expectError(r, 400, /target_num_containers/);
    const now = await (await as(user, "GET", svc.resource_uri)).json<ServiceJson>();
    expect(now.target_num_containers).toBe(svc.target_num_containers);
  });

  it.each([
    ["an array", "[]"],
    ["an array of an object", '[{"image":"tutum/hello-world"}]'],
    ["a string", '"tutum/hello-world"'],
    ["null", "null"],
    ["a number", "42"],
    ["true", "true"],
  ])("a JSON body that is %s is 400 on service create, trigger create and admin create", async (_what, body) => {
    const services = await serviceCount(user);
    const triggers = await triggerCount(user, svc);
    await expectError(await raw(user, "POST", "/api/app/v1/service/", body), 400);
    await expectError(await raw(user, "POST", `${svc.resource_uri}trigger/`, body), 400);
    await expectError(await raw(user, "PATCH", svc.resource_uri, body), 400);
    await expectError(
      await call("/api/admin/v1/user/", {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body,
      }),
      400,
    );
    expect(await serviceCount(user)).toBe(services);
    expect(await triggerCount(user, svc)).toBe(triggers);
  });

  it("service create with neither image nor name is 400 and creates nothing", async () => {
    const before = await serviceCount(user);
    await expectError(await as(user, "POST", "/api/app/v1/service/", {}), 400, /image/);
    await expectError(await asPython(user, "POST", "/api/app/v1/service/"), 400, /image/);
    expect(await serviceCount(user)).toBe(before);
  });

  it("a duplicate service name is 409 and the count is unchanged", async () => {
    const before = await serviceCount(user);
    await expectError(
      await as(user, "POST", "/api/app/v1/service/", { image: "tutum/hello-world", name: svc.name }),
      409,
    );
    expect(await serviceCount(user)).toBe(before);
  });

  it("Content-Type is not required: Go's POST with no Content-Type is parsed as JSON", async () => {
    const name = uniqueName("go");
    const r = await asGo(user, "POST", "/api/app/v1/service/", {
      image: "tutum/hello-world",
      name,
      target_num_containers: 2,
    });
    expect(r.status).toBe(201);
    const s = await r.json<ServiceJson>();
    expect(s).toMatchObject({ name, target_num_containers: 2, image_name: "tutum/hello-world:latest" });
  });

  // Form types a page can post to another site (text/plain, forms) are refused: hostile-http.test.ts.
  it.each(["application/octet-stream", "application/vnd.docker+json", "text/json", "application/json; charset=utf-8"])(
    "a JSON body sent as %s is parsed",
    async (contentType) => {
      const name = uniqueName("ct");
      const r = await raw(user, "POST", "/api/app/v1/service/", JSON.stringify({ image: "nginx:1.25", name }), {
        "content-type": contentType,
      });
      expect(r.status).toBe(201);
      expect(await r.json<ServiceJson>()).toMatchObject({ name, image_name: "nginx:1.25", image_tag: "1.25" });
    },
  );

  it("Python's empty POST (Content-Length: 0) creates a trigger with the defaults", async () => {
    const r = await asPython(user, "POST", `${svc.resource_uri}/trigger/`);
    expect(r.status).toBe(201);
    const t = await r.json<TriggerJson>();
    expect(t.operation).toBe("REDEPLOY");
    expect(typeof t.name).toBe("string");
    expect(t.url).toBe(`${t.resource_uri}call/`);
  });

  it("an empty POST with no Content-Length at all also creates a trigger", async () => {
    const r = await raw(user, "POST", `${svc.resource_uri}trigger/`);
    expect(r.status).toBe(201);
  });

  it("Python sends Content-Type: application/json on GET: accepted", async () => {
    const r = await asPython(user, "GET", "/api/app/v1/service/");
    expect(r.status).toBe(200);
  });

  it("a body on DELETE is ignored (garbage, Go's {}, Python's empty)", async () => {
    for (const body of ["this is not json", "{}", "", "[1,2,3]"]) {
      const t = await createTrigger(user, svc);
      const r = await raw(user, "DELETE", t.resource_uri, body, {
        "content-type": "application/json",
        ...(body === "" ? { "content-length": "0" } : {}),
      });
      expect(r.status, JSON.stringify(body)).toBe(200);
      expect((await r.json<TriggerJson>()).uuid).toBe(t.uuid);
      await expectError(await as(user, "GET", t.resource_uri), 404);
    }
    const s = await createService(user);
    const r = await raw(user, "DELETE", s.resource_uri, "garbage{");
    expect(r.status).toBe(202);
    expect((await r.json<ServiceJson>()).state).toBe("Terminated");
  });

  it("unknown fields in a body are ignored", async () => {
    const r = await as(user, "POST", "/api/app/v1/service/", {
      image: "tutum/hello-world",
      name: uniqueName("extra"),
      totally_unknown: { nested: [1, 2] },
    });
    expect(r.status).toBe(201);
    expect(await r.json<Record<string, unknown>>()).not.toHaveProperty("totally_unknown");
  });
});

describe("never a 5xx, never HTML", () => {
  const weird = [
    "/api/app/v1/service/%00/",
    "/api/app/v1/service/%ZZ/",
    "/api/app/v1/%ZZ/service/",
    `/api/app/v1/service/${"a".repeat(5000)}/`,
    `/api/app/v1/${"n".repeat(300)}/service/`,
    "/api/app/v1/service/../../admin/v1/user/",
    "/api/app/v1/service/SVC/trigger/not-a-uuid/",
    "/api/app/v1/service/SVC/trigger/not-a-uuid/call/",
    "/api/app/v1/service/SVC/trigger/3f1b3c1e-2d7a-4b8e-9c3f-0a1b2c3d4e5f/call/abc/",
    "/api/app/v1/service/SVC/trigger/3f1b3c1e-2d7a-4b8e-9c3f-0a1b2c3d4e5f/call/-1/",
    "/api/app/v1/service/00000000-0000-0000-0000-000000000000/",
    "/api/app/v1/service/?limit=abc",
    "/api/app/v1/service/?limit=0",
    "/api/app/v1/service/?offset=-5",
    "/api/app/v1/service/?state=Exploding",
    `/api/app/v1/service/?uuid__startswith=${"f".repeat(100)}`,
    "/api/audit/v1/action/?start_date__gte=yesterday",
    "/api/audit/v1/action/not-a-uuid/",
    "/api/account/v1/apikey/not-a-uuid/",
    "/api/admin/v1/user/",
    "/api/openapi.json",
    "/favicon.ico",
  ];
  const methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

  it("weird paths × methods: every answer is < 500, JSON, with the safe headers", async () => {
    for (const template of weird) {
      const path = template.replace("SVC", svc.uuid);
      for (const method of methods) {
        const r = await raw(user, method, path, method === "GET" ? undefined : '{"x":1}');
        const where = `${method} ${path.slice(0, 80)}`;
        expect(r.status, where).toBeLessThan(500);
        expect(r.headers.get("content-type"), where).toMatch(/^application\/json/);
        expectSafeHeaders(r);
        const text = await r.text();
        expect(text, where).not.toMatch(/<html|<!doctype/i);
        const parsed = JSON.parse(text) as unknown;
        expect(typeof parsed, where).toBe("object");
        expect(parsed, where).not.toBeNull();
        if (r.status >= 400) expect(Object.keys(parsed as object), where).toEqual(["error"]);
      }
    }
  });

  it("query errors are 400 JSON naming the parameter", async () => {
    await expectError(await as(user, "GET", "/api/app/v1/service/?limit=abc"), 400, /limit/);
    await expectError(await as(user, "GET", "/api/app/v1/service/?limit=0"), 400, /limit/);
    await expectError(await as(user, "GET", "/api/app/v1/service/?offset=-1"), 400, /offset/);
    await expectError(await as(user, "GET", "/api/app/v1/service/?state=Exploding"), 400, /state/);
    await expectError(await as(user, "GET", "/api/audit/v1/action/?start_date__gte=yesterday"), 400, /start_date__gte/);
  });
});

describe("response headers", () => {
  it("every kind of answer carries X-Content-Type-Options: nosniff and Cache-Control: no-store", async () => {
    const t = await createTrigger(user, svc);
    const answers: [string, Promise<Response>, number][] = [
      ["200 list", as(user, "GET", "/api/app/v1/service/"), 200],
      ["201 create", as(user, "POST", "/api/app/v1/service/", { image: "busybox", name: uniqueName("h") }), 201],
      ["202 call", call(t.url, { method: "POST" }), 202],
      ["200 openapi", call("/api/openapi.json"), 200],
      ["400", raw(user, "POST", "/api/app/v1/service/", "{"), 400],
      ["401", call("/api/app/v1/service/"), 401],
      ["403", as(user, "GET", `/api/app/v1/${uniqueName("other")}/service/`), 403],
      ["404", call("/nope/"), 404],
      ["404 service", as(user, "GET", "/api/app/v1/service/3f1b3c1e-2d7a-4b8e-9c3f-0a1b2c3d4e5f/"), 404],
      ["405", raw(user, "PUT", "/api/app/v1/service/", "{}"), 405],
      ["413", raw(user, "POST", "/api/app/v1/service/", "x".repeat(LIMIT + 1)), 413],
      ["401 admin", call("/api/admin/v1/user/"), 401],
    ];
    for (const [what, pending, status] of answers) {
      const r = await pending;
      expect(r.status, what).toBe(status);
      expect(r.headers.get("x-content-type-options"), what).toBe("nosniff");
      expect(r.headers.get("cache-control"), what).toBe("no-store");
      expect(r.headers.get("content-type"), what).toMatch(/^application\/json/);
      await r.arrayBuffer();
    }
  });
});

describe("OpenAPI document", () => {
  it("GET /api/openapi.json is an OpenAPI 3.1 document listing the service and trigger paths", async () => {
    const r = await call("/api/openapi.json");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    const doc = await r.json<{
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, { responses?: Record<string, unknown>; security?: unknown[] }>>;
      components?: { securitySchemes?: Record<string, { type: string; scheme?: string }> };
    }>();
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(typeof doc.info.title).toBe("string");
    expect(typeof doc.info.version).toBe("string");

    const expected: Record<string, string[]> = {
      "/api/app/v1/service/": ["get", "post"],
      "/api/app/v1/{namespace}/service/": ["get", "post"],
      "/api/app/v1/service/{uuid}/": ["delete", "get", "patch"],
      "/api/app/v1/{namespace}/service/{uuid}/": ["delete", "get", "patch"],
      "/api/app/v1/service/{uuid}/trigger/": ["get", "post"],
      "/api/app/v1/{namespace}/service/{uuid}/trigger/": ["get", "post"],
      "/api/app/v1/service/{uuid}/trigger/{trigger_uuid}/": ["delete", "get"],
      "/api/app/v1/{namespace}/service/{uuid}/trigger/{trigger_uuid}/": ["delete", "get"],
      "/api/app/v1/service/{uuid}/trigger/{trigger_uuid}/call/": ["post"],
      "/api/app/v1/{namespace}/service/{uuid}/trigger/{trigger_uuid}/call/": ["post"],
    };
    for (const [path, methods] of Object.entries(expected)) {
      expect(doc.paths, path).toHaveProperty([path]);
      const item = doc.paths[path] as Record<string, { responses?: Record<string, unknown> }>;
      for (const m of methods) {
        expect(item, `${m} ${path}`).toHaveProperty(m);
        expect(Object.keys(item[m]?.responses ?? {}).length, `${m} ${path}`).toBeGreaterThan(0);
      }
    }
    // Every path in the document is a root-relative API path ending in a slash (except the document itself).
    for (const path of Object.keys(doc.paths)) {
      expect(path).toMatch(/^\/api\//);
      if (path !== "/api/openapi.json") expect(path, path).toMatch(/\/$/);
    }
    expect(doc.components?.securitySchemes?.basicAuth).toMatchObject({ type: "http", scheme: "basic" });
    // Trigger calls need no credentials; management does.
    const callOp = doc.paths["/api/app/v1/service/{uuid}/trigger/{trigger_uuid}/call/"]?.post;
    expect(callOp?.security ?? []).toEqual([]);
    expect(doc.paths["/api/app/v1/service/"]?.get?.security).toEqual([{ basicAuth: [] }]);
  });
});

describe("a rejected create changes nothing in storage", () => {
  it("service creates refused before validation passes leave the list and the locator untouched", async () => {
    const u = await createUser();
    await createService(u);
    const count = await serviceCount(u);
    const pointers = await locatorPointers();
    const refused: [number, Promise<Response>][] = [
      [400, raw(u, "POST", "/api/app/v1/service/", "{")],
      [400, raw(u, "POST", "/api/app/v1/service/", "[]")],
      [400, as(u, "POST", "/api/app/v1/service/", { image: "busybox", target_num_containers: "x" })],
      [400, as(u, "POST", "/api/app/v1/service/", {})],
      [400, as(u, "POST", "/api/app/v1/service/", { image: "busybox", target: { type: "webhook", url: "ftp://x" } })],
      [
        401,
        call("/api/app/v1/service/", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"image":"busybox"}',
        }),
      ],
      [415, raw(u, "POST", "/api/app/v1/service/", '{"image":"busybox"}', { "content-type": "text/plain" })],
      [413, raw(u, "POST", "/api/app/v1/service/", "x".repeat(LIMIT + 1))],
    ];
    for (const [status, pending] of refused) await expectError(await pending, status);
    expect(await serviceCount(u)).toBe(count);
    expect(await locatorPointers()).toEqual(pointers);
  });

  it("a duplicate name (409) leaves no service-uuid pointer behind", async () => {
    const u = await createUser();
    const s = await createService(u);
    const pointers = await locatorPointers();
    await expectError(await as(u, "POST", "/api/app/v1/service/", { image: "busybox", name: s.name }), 409);
    expect(await serviceCount(u)).toBe(1);
    expect(await locatorPointers()).toEqual(pointers);
  });

  it("a create in a namespace the caller may not use (403) leaves no service-uuid pointer behind", async () => {
    const u = await createUser();
    const other = await createUser();
    const pointers = await locatorPointers();
    await expectError(await as(u, "POST", `/api/app/v1/${other.username}/service/`, { image: "busybox" }), 403);
    expect(await serviceCount(other)).toBe(0);
    expect(await locatorPointers()).toEqual(pointers);
  });

  it("target_num_containers over max_num_containers (400) leaves no service-uuid pointer behind", async () => {
    const u = await createUser();
    const pointers = await locatorPointers();
    await expectError(
      await as(u, "POST", "/api/app/v1/service/", {
        image: "busybox",
        target_num_containers: 5,
        max_num_containers: 2,
      }),
      400,
      /max_num_containers/,
    );
    expect(await serviceCount(u)).toBe(0);
    expect(await locatorPointers()).toEqual(pointers);
  });

  it("trigger creates refused (400, 403, 404) leave the trigger list unchanged", async () => {
    const u = await createUser();
    const other = await createUser();
    const s = await createService(u);
    await createTrigger(u, s);
    const before = (await (await as(u, "GET", `${s.resource_uri}trigger/`)).json<Envelope<TriggerJson>>()).objects;
    await expectError(await as(u, "POST", `${s.resource_uri}trigger/`, { operation: "DESTROY" }), 400);
    await expectError(await raw(u, "POST", `${s.resource_uri}trigger/`, "null"), 400);
    await expectError(await as(other, "POST", `${s.resource_uri}trigger/`, {}), 403);
    await expectError(await as(other, "POST", `/api/app/v1/service/${s.uuid}/trigger/`, {}), 404);
    const after = (await (await as(u, "GET", `${s.resource_uri}trigger/`)).json<Envelope<TriggerJson>>()).objects;
    expect(after).toEqual(before);
  });
});
