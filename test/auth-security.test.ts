import { beforeAll, describe, expect, it } from "vitest";
import {
  admin,
  as,
  basic,
  call,
  createOrg,
  createService,
  createTrigger,
  createUser,
  type ServiceJson,
  type User,
  uniqueName,
} from "./helpers/api";

type Envelope<T> = { meta: { total_count: number }; objects: T[] };
type KeyJson = { uuid: string; label: string; resource_uri: string };

/** An error answer: the status, JSON, and exactly `{"error": "<non-empty string>"}`. */
async function expectError(res: Response, status: number, message?: RegExp): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = await res.json<Record<string, unknown>>();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(typeof body.error).toBe("string");
  expect((body.error as string).length).toBeGreaterThan(0);
  if (message) expect(body.error).toMatch(message);
  return body.error as string;
}

/**
 * A 401 as the SDKs expect it: the status and the JSON error. The challenge names the ApiKey scheme,
 * not Basic: a browser would answer Basic with a prompt and keep the credentials (hostile-http.test.ts).
 */
async function expect401(res: Response, message?: RegExp): Promise<string> {
  expect(res.headers.get("www-authenticate")).toMatch(/^ApiKey realm="[^"]+"$/);
  return expectError(res, 401, message);
}

function withAuth(authorization: string | null, method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (authorization !== null) headers.authorization = authorization;
  return call(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

let owner: User;
let svc: ServiceJson;

/** The management routes of the matrix, for a service owned by `owner`. */
function managementRoutes(): [string, string, string, unknown?][] {
  return [
    ["service list", "GET", "/api/app/v1/service/"],
    ["service create", "POST", "/api/app/v1/service/", { image: "tutum/hello-world", name: uniqueName("svc") }],
    ["service get", "GET", `/api/app/v1/service/${svc.uuid}/`],
    ["service get (namespaced)", "GET", svc.resource_uri],
    ["trigger list", "GET", `/api/app/v1/service/${svc.uuid}/trigger/`],
    ["trigger list (namespaced)", "GET", `${svc.resource_uri}trigger/`],
    ["action list", "GET", "/api/audit/v1/action/"],
    ["account apikey list", "GET", "/api/account/v1/apikey/"],
    ["account apikey create", "POST", "/api/account/v1/apikey/", { label: "x" }],
  ];
}

async function serviceCount(user: User, ns?: string): Promise<number> {
  const r = await as(user, "GET", ns ? `/api/app/v1/${ns}/service/` : "/api/app/v1/service/");
  expect(r.status).toBe(200);
  return (await r.json<Envelope<unknown>>()).meta.total_count;
}

async function keyCount(user: User): Promise<number> {
  const r = await as(user, "GET", "/api/account/v1/apikey/");
  expect(r.status).toBe(200);
  return (await r.json<Envelope<unknown>>()).meta.total_count;
}

beforeAll(async () => {
  owner = await createUser();
  svc = await createService(owner);
});

describe("401: no or bad credentials on every management route", () => {
  it("every route of the matrix works with the owner's credentials (control)", async () => {
    for (const [what, method, path, body] of managementRoutes()) {
      const r = await withAuth(owner.auth, method, path, body);
      expect(r.status, `${what}: ${method} ${path}`).toBeLessThan(300);
      expect(r.status, what).toBeGreaterThanOrEqual(200);
    }
  });

  it("no Authorization header: 401, WWW-Authenticate: ApiKey realm=... (no browser prompt), JSON error", async () => {
    const services = await serviceCount(owner);
    const keys = await keyCount(owner);
    for (const [what, method, path, body] of managementRoutes()) {
      const r = await withAuth(null, method, path, body);
      expect(r.status, `${what}: ${method} ${path}`).toBe(401);
      await expect401(r, /Authorization/);
    }
    // Nothing was created by the refused POSTs.
    expect(await serviceCount(owner)).toBe(services);
    expect(await keyCount(owner)).toBe(keys);
  });

  const malformed: [string, () => string][] = [
    ["an empty value", () => ""],
    ["a bare scheme", () => "Basic"],
    ["Basic with a non-base64 value", () => "Basic !!!not-base64!!!"],
    ["Basic with no colon", () => `Basic ${btoa("justausername")}`],
    ["Basic with an empty username", () => `Basic ${btoa(`:${owner.apikey}`)}`],
    ["Basic with an empty key", () => `Basic ${btoa(`${owner.username}:`)}`],
    ["Basic with invalid UTF-8", () => `Basic ${btoa("\xff\xfe:\xff")}`],
    ["Basic with two values", () => `Basic ${btoa(`${owner.username}:${owner.apikey}`)} extra`],
    ["a Bearer token", () => `Bearer ${owner.apikey}`],
    ["a Digest header", () => `Digest username="${owner.username}"`],
    ["ApiKey with no colon", () => `ApiKey ${owner.username}`],
    ["the raw user:key", () => `${owner.username}:${owner.apikey}`],
  ];

  it.each(malformed)("malformed header (%s): 401 on every route", async (_what, header) => {
    for (const [what, method, path, body] of managementRoutes()) {
      const authorization = header();
      const r =
        authorization === ""
          ? await call(path, {
              method,
              headers: { authorization: "", "content-type": "application/json" },
              body: body === undefined ? undefined : JSON.stringify(body),
            })
          : await withAuth(authorization, method, path, body);
      expect(r.status, `${what}: ${method} ${path}`).toBe(401);
      await expect401(r);
    }
  });

  it("wrong key for a real user: 401 on every route", async () => {
    for (const [what, method, path, body] of managementRoutes()) {
      const r = await withAuth(basic(owner.username, "0".repeat(40)), method, path, body);
      expect(r.status, what).toBe(401);
      await expect401(r, /invalid username or API key/);
    }
  });

  it("a key is only good for its own user: another user's key is 401", async () => {
    const other = await createUser();
    const r = await withAuth(basic(owner.username, other.apikey), "GET", "/api/app/v1/service/");
    await expect401(r);
    const r2 = await withAuth(basic(other.username, owner.apikey), "GET", "/api/app/v1/service/");
    await expect401(r2);
  });

  it("unknown user: 401 on every route (same message as a wrong key)", async () => {
    const ghost = uniqueName("ghost");
    for (const [what, method, path, body] of managementRoutes()) {
      const r = await withAuth(basic(ghost, owner.apikey), method, path, body);
      expect(r.status, what).toBe(401);
      await expect401(r, /invalid username or API key/);
    }
  });

  it("names that cannot be a user (upper case, reserved, too long) are 401, not 400 or 500", async () => {
    for (const name of [owner.username.toUpperCase(), "admin", "x".repeat(31), "a b", "../etc"]) {
      const r = await withAuth(basic(name, owner.apikey), "GET", "/api/app/v1/service/");
      await expect401(r);
    }
    // An over-long key is refused without being checked.
    await expect401(await withAuth(basic(owner.username, "k".repeat(5000)), "GET", "/api/app/v1/service/"));
  });

  it("a wrong-case key is 401: keys are compared exactly", async () => {
    const upper = owner.apikey.toUpperCase();
    if (upper !== owner.apikey) {
      await expect401(await withAuth(basic(owner.username, upper), "GET", "/api/app/v1/service/"));
    }
    await expect401(await withAuth(basic(owner.username, `${owner.apikey}x`), "GET", "/api/app/v1/service/"));
    await expect401(await withAuth(basic(owner.username, owner.apikey.slice(1)), "GET", "/api/app/v1/service/"));
  });

  it("the legacy `Authorization: ApiKey user:key` works on every route", async () => {
    for (const [what, method, path, body] of managementRoutes()) {
      const r = await withAuth(`ApiKey ${owner.username}:${owner.apikey}`, method, path, body);
      expect(r.status, `${what}: ${method} ${path}`).toBeGreaterThanOrEqual(200);
      expect(r.status, `${what}: ${method} ${path}`).toBeLessThan(300);
    }
    // A wrong legacy key is still a 401.
    await expect401(await withAuth(`ApiKey ${owner.username}:nope`, "GET", "/api/app/v1/service/"));
  });

  it("the scheme is matched case-insensitively (basic / BASIC)", async () => {
    const value = btoa(`${owner.username}:${owner.apikey}`);
    for (const scheme of ["basic", "BASIC", "Basic"]) {
      const r = await withAuth(`${scheme} ${value}`, "GET", "/api/app/v1/service/");
      expect(r.status, scheme).toBe(200);
    }
  });
});

describe("revoking keys", () => {
  it("DELETE /api/account/v1/apikey/<uuid>/ revokes the key: the next request is 401", async () => {
    const user = await createUser();
    const list = await (await as(user, "GET", "/api/account/v1/apikey/")).json<Envelope<KeyJson>>();
    expect(list.objects).toHaveLength(1);
    const key = list.objects[0] as KeyJson;

    const del = await as(user, "DELETE", `/api/account/v1/apikey/${key.uuid}/`);
    expect(del.status).toBe(200);
    const revoked = await del.json<KeyJson & { key?: string }>();
    expect(revoked.uuid).toBe(key.uuid);
    expect(revoked.key).toBeUndefined();

    for (const [what, method, path, body] of managementRoutes()) {
      // The owner's routes with the revoked user's credentials: 401, not 403.
      const r = await withAuth(user.auth, method, path, body);
      expect(r.status, what).toBe(401);
      await expect401(r);
    }
    await expect401(await withAuth(`ApiKey ${user.username}:${user.apikey}`, "GET", "/api/app/v1/service/"));
  });

  it("revoking one key leaves the user's other keys working", async () => {
    const user = await createUser();
    const created = await as(user, "POST", "/api/account/v1/apikey/", { label: "second" });
    expect(created.status).toBe(201);
    const second = await created.json<KeyJson & { key: string }>();
    expect(second.key).toMatch(/^\S{32,}$/);
    const secondAuth = basic(user.username, second.key);

    // Revoke the first key using the second.
    const list = await (await withAuth(secondAuth, "GET", "/api/account/v1/apikey/")).json<Envelope<KeyJson>>();
    const first = list.objects.find((k) => k.label === "test") as KeyJson;
    expect((await withAuth(secondAuth, "DELETE", `/api/account/v1/apikey/${first.uuid}/`)).status).toBe(200);

    await expect401(await as(user, "GET", "/api/app/v1/service/"));
    expect((await withAuth(secondAuth, "GET", "/api/app/v1/service/")).status).toBe(200);
    const after = await (await withAuth(secondAuth, "GET", "/api/account/v1/apikey/")).json<Envelope<KeyJson>>();
    expect(after.objects.map((k) => k.uuid)).toEqual([second.uuid]);
  });

  it("a key revoked with itself stops at once", async () => {
    const user = await createUser();
    const list = await (await as(user, "GET", "/api/account/v1/apikey/")).json<Envelope<KeyJson>>();
    const uuid = (list.objects[0] as KeyJson).uuid;
    expect((await as(user, "DELETE", `/api/account/v1/apikey/${uuid}/`)).status).toBe(200);
    await expect401(await as(user, "DELETE", `/api/account/v1/apikey/${uuid}/`));
  });

  it("a user cannot revoke another user's key (404) and that key keeps working", async () => {
    const mallory = await createUser();
    const list = await (await as(owner, "GET", "/api/account/v1/apikey/")).json<Envelope<KeyJson>>();
    const ownersKey = list.objects.find((k) => k.label === "test") as KeyJson;
    await expectError(await as(mallory, "DELETE", `/api/account/v1/apikey/${ownersKey.uuid}/`), 404);
    await expectError(await as(mallory, "DELETE", "/api/account/v1/apikey/not-a-uuid/"), 404);
    expect((await as(owner, "GET", "/api/app/v1/service/")).status).toBe(200);
  });
});

describe("403: namespaces the caller may not use", () => {
  it("another user's namespace is 403 JSON on every namespaced route, and nothing is created", async () => {
    const mallory = await createUser();
    const trigger = await createTrigger(owner, svc);
    const ns = owner.username;
    const before = await serviceCount(owner);
    const routes: [string, string, unknown?][] = [
      ["GET", `/api/app/v1/${ns}/service/`],
      ["POST", `/api/app/v1/${ns}/service/`, { image: "tutum/hello-world", name: uniqueName("evil") }],
      ["GET", `/api/app/v1/${ns}/service/${svc.uuid}/`],
      ["PATCH", `/api/app/v1/${ns}/service/${svc.uuid}/`, { target_num_containers: 3 }],
      ["DELETE", `/api/app/v1/${ns}/service/${svc.uuid}/`],
      ["GET", `/api/app/v1/${ns}/service/${svc.uuid}/trigger/`],
      ["POST", `/api/app/v1/${ns}/service/${svc.uuid}/trigger/`, { name: "evil" }],
      ["GET", `/api/app/v1/${ns}/service/${svc.uuid}/trigger/${trigger.uuid}/`],
      ["DELETE", `/api/app/v1/${ns}/service/${svc.uuid}/trigger/${trigger.uuid}/`],
      ["GET", `/api/audit/v1/${ns}/action/`],
    ];
    for (const [method, path, body] of routes) {
      const r = await as(mallory, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(403);
      await expectError(r, 403, new RegExp(ns));
    }
    expect(await serviceCount(owner)).toBe(before);
    const svcNow = await (await as(owner, "GET", svc.resource_uri)).json<ServiceJson>();
    expect(svcNow.target_num_containers).toBe(svc.target_num_containers);
    const triggers = await (await as(owner, "GET", `${svc.resource_uri}trigger/`)).json<Envelope<{ uuid: string }>>();
    expect(triggers.objects.map((t) => t.uuid)).toContain(trigger.uuid);
    expect(triggers.objects.some((t) => (t as { name?: string }).name === "evil")).toBe(false);
  });

  it("a service of another user reached without a namespace is not found (404), never served", async () => {
    const mallory = await createUser();
    for (const [method, path, body] of [
      ["GET", `/api/app/v1/service/${svc.uuid}/`],
      ["GET", `/api/app/v1/service/${svc.uuid}/trigger/`],
      ["POST", `/api/app/v1/service/${svc.uuid}/trigger/`, {}],
      ["DELETE", `/api/app/v1/service/${svc.uuid}/`],
    ] as [string, string, unknown?][]) {
      const r = await as(mallory, method, path, body);
      await expectError(r, 404);
    }
    expect((await as(owner, "GET", svc.resource_uri)).status).toBe(200);
  });

  it("a namespace that does not exist is 403 (same answer as one you may not use)", async () => {
    const r = await as(owner, "GET", `/api/app/v1/${uniqueName("nobody")}/service/`);
    await expectError(r, 403);
  });

  it("an organization's namespace works for a member and is 403 for a non-member", async () => {
    const member = await createUser();
    const outsider = await createUser();
    const org = await createOrg(undefined, [member.username]);

    const orgSvc = await createService(member, {}, org);
    expect(orgSvc.resource_uri).toBe(`/api/app/v1/${org}/service/${orgSvc.uuid}/`);
    expect((await as(member, "GET", `/api/app/v1/${org}/service/`)).status).toBe(200);
    expect((await as(member, "GET", orgSvc.resource_uri)).status).toBe(200);
    const t = await createTrigger(member, orgSvc);
    expect(t.url).toBe(`/api/app/v1/${org}/service/${orgSvc.uuid}/trigger/${t.uuid}/call/`);
    expect((await as(member, "GET", `/api/audit/v1/${org}/action/`)).status).toBe(200);

    for (const [method, path, body] of [
      ["GET", `/api/app/v1/${org}/service/`],
      ["POST", `/api/app/v1/${org}/service/`, { image: "tutum/hello-world" }],
      ["GET", orgSvc.resource_uri],
      ["GET", `${orgSvc.resource_uri}trigger/`],
      ["POST", `${orgSvc.resource_uri}trigger/`, {}],
      ["DELETE", t.resource_uri],
      ["GET", `/api/audit/v1/${org}/action/`],
    ] as [string, string, unknown?][]) {
      const r = await as(outsider, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(403);
      await expectError(r, 403);
    }
    // Without a namespace the outsider does not even learn the service exists.
    await expectError(await as(outsider, "GET", `/api/app/v1/service/${orgSvc.uuid}/`), 404);
    // And the member's view is unchanged.
    const list = await (await as(member, "GET", `/api/app/v1/${org}/service/`)).json<Envelope<ServiceJson>>();
    expect(list.meta.total_count).toBe(1);
  });

  it("an organization cannot be used as a login, even by its members", async () => {
    const member = await createUser();
    const org = await createOrg(undefined, [member.username]);
    await expect401(await withAuth(basic(org, member.apikey), "GET", "/api/app/v1/service/"));
  });

  it("a removed member gets 403 at once", async () => {
    const member = await createUser();
    const org = await createOrg(undefined, [member.username]);
    const orgSvc = await createService(member, {}, org);
    expect((await as(member, "GET", orgSvc.resource_uri)).status).toBe(200);

    const rm = await admin("DELETE", `/api/admin/v1/organization/${org}/member/${member.username}/`);
    expect(rm.status).toBe(200);

    for (const [method, path] of [
      ["GET", `/api/app/v1/${org}/service/`],
      ["GET", orgSvc.resource_uri],
      ["GET", `${orgSvc.resource_uri}trigger/`],
      ["GET", `/api/audit/v1/${org}/action/`],
    ]) {
      const r = await as(member, method as string, path as string);
      expect(r.status, `${method} ${path}`).toBe(403);
      await expectError(r, 403);
    }
    await expectError(await as(member, "GET", `/api/app/v1/service/${orgSvc.uuid}/`), 404);
    // Their own namespace still works: the key was not touched.
    expect((await as(member, "GET", "/api/app/v1/service/")).status).toBe(200);
  });

  it("a deleted user's credentials are 401 (not 403) on the organization it belonged to", async () => {
    const member = await createUser();
    const org = await createOrg(undefined, [member.username]);
    expect((await admin("DELETE", `/api/admin/v1/user/${member.username}/`)).status).toBe(200);
    await expect401(await as(member, "GET", `/api/app/v1/${org}/service/`));
  });
});

describe("trigger calls need no credentials", () => {
  it("a call works with no Authorization, with the owner's, and with a bogus one", async () => {
    const s = await createService(owner);
    const t = await createTrigger(owner, s);
    for (const authorization of [null, owner.auth, "Basic !!!", `Basic ${btoa("ghostuser:nokey")}`]) {
      const headers: Record<string, string> = {};
      if (authorization !== null) headers.authorization = authorization;
      const r = await call(t.url, { method: "POST", headers });
      expect(r.status, String(authorization)).toBe(202);
      const body = await r.json<{ uuid: string }>();
      expect(typeof body.uuid).toBe("string");
    }
  });
});
