import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, admin, as, basic, call, createOrg, createUser, uniqueName } from "./helpers/api";
import { RFC1123_SHAPE, UUID4 } from "./helpers/formats";

type ErrorBody = { error: string };
type Envelope<T> = {
  meta: { limit: number; next: string | null; offset: number; previous: string | null; total_count: number };
  objects: T[];
};
type KeyJson = { uuid: string; label: string; created: string | null; last_used: string | null; resource_uri: string };

/** An error answer: the status, JSON content type and exactly `{"error": "<non-empty string>"}`. */
async function expectError(res: Response, status: number, message?: RegExp): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = await res.json<ErrorBody>();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(typeof body.error).toBe("string");
  expect(body.error.length).toBeGreaterThan(0);
  if (message) expect(body.error).toMatch(message);
  return body.error;
}

async function listAll<T>(path: string): Promise<T[]> {
  const r = await admin("GET", `${path}?limit=100`);
  expect(r.status).toBe(200);
  const page = await r.json<Envelope<T>>();
  return page.objects;
}

describe("admin API authentication", () => {
  const routes: [string, string, unknown?][] = [
    ["POST", "/api/admin/v1/user/", { username: "adminauthprobe" }],
    ["GET", "/api/admin/v1/user/"],
    ["DELETE", "/api/admin/v1/user/someuser/"],
    ["POST", "/api/admin/v1/user/someuser/apikey/", {}],
    ["POST", "/api/admin/v1/organization/", { name: "adminauthorg" }],
    ["GET", "/api/admin/v1/organization/"],
    ["GET", "/api/admin/v1/organization/someorg/"],
    ["DELETE", "/api/admin/v1/organization/someorg/"],
    ["POST", "/api/admin/v1/organization/someorg/member/", { username: "someuser" }],
    ["DELETE", "/api/admin/v1/organization/someorg/member/someuser/"],
  ];

  it.each(routes)("%s %s refuses a request with no bearer token (401)", async (method, path, body) => {
    const res = await call(path, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    await expectError(res, 401, /Bearer/);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm=/);
  });

  it.each(routes)("%s %s refuses a wrong bearer token (401)", async (method, path, body) => {
    const res = await call(path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}x`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    await expectError(res, 401);
  });

  it("refuses a truncated token, an empty bearer and other schemes", async () => {
    for (const authorization of [
      `Bearer ${ADMIN_TOKEN.slice(0, -1)}`,
      "Bearer ",
      "Bearer",
      `Token ${ADMIN_TOKEN}`,
      ADMIN_TOKEN,
      `Basic ${btoa(`admin:${ADMIN_TOKEN}`)}`,
    ]) {
      const res = await call("/api/admin/v1/user/", { headers: { authorization } });
      await expectError(res, 401);
    }
  });

  it("refuses a user's Basic credentials, even a valid user's (401), and creates nothing", async () => {
    const user = await createUser();
    const victim = uniqueName();
    const res = await as(user, "POST", "/api/admin/v1/user/", { username: victim });
    await expectError(res, 401);
    const legacy = await call("/api/admin/v1/user/", {
      method: "GET",
      headers: { authorization: `ApiKey ${user.username}:${user.apikey}` },
    });
    await expectError(legacy, 401);
    // The refused create left nothing behind: the name is still free.
    expect((await admin("POST", "/api/admin/v1/user/", { username: victim })).status).toBe(201);
  });

  it("accepts the token with a lower-case scheme", async () => {
    const res = await call("/api/admin/v1/user/", { headers: { authorization: `bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
  });
});

describe("admin users", () => {
  it("POST /api/admin/v1/user/ creates a user (201) and lists it", async () => {
    const username = uniqueName();
    const res = await admin("POST", "/api/admin/v1/user/", { username });
    expect(res.status).toBe(201);
    const body = await res.json<{ username: string; created: string; resource_uri: string }>();
    expect(body).toEqual({
      username,
      created: expect.stringMatching(RFC1123_SHAPE),
      resource_uri: `/api/admin/v1/user/${username}/`,
    });

    const users = await listAll<{ username: string; resource_uri: string }>("/api/admin/v1/user/");
    expect(users.map((u) => u.username)).toContain(username);
    // Organizations are not users.
    const orgs = await listAll<{ name: string }>("/api/admin/v1/organization/");
    expect(orgs.map((o) => o.name)).not.toContain(username);
  });

  it("GET /api/admin/v1/user/ answers the list envelope and honours limit/offset", async () => {
    for (let i = 0; i < 3; i++) await createUser();
    const r = await admin("GET", "/api/admin/v1/user/?limit=2&offset=1");
    expect(r.status).toBe(200);
    const page = await r.json<Envelope<{ username: string }>>();
    expect(page.meta.limit).toBe(2);
    expect(page.meta.offset).toBe(1);
    expect(page.meta.total_count).toBeGreaterThanOrEqual(3);
    expect(page.objects).toHaveLength(2);
    expect(page.meta.previous).toBe("/api/admin/v1/user/?limit=2&offset=0");
    if (page.meta.total_count > 3) expect(page.meta.next).toBe("/api/admin/v1/user/?limit=2&offset=3");
    else expect(page.meta.next).toBeNull();
  });

  it("refuses limit=0 with 400", async () => {
    await expectError(await admin("GET", "/api/admin/v1/user/?limit=0"), 400, /limit/);
  });

  it.each([
    ["too short", "abc"],
    ["too long", "a".repeat(31)],
    ["upper case", "UserName"],
    ["a dash", "user-name"],
    ["an underscore", "user_name"],
    ["a dot", "user.name"],
    ["a space", "user name"],
    ["empty", ""],
    ["non-ASCII", "usér"],
  ])("refuses a username that is %s (400)", async (_why, username) => {
    const res = await admin("POST", "/api/admin/v1/user/", { username });
    await expectError(res, 400, /username/);
  });

  it("accepts the extremes of the length rule: 4 and 30 characters of a-z0-9", async () => {
    const four = `q${Math.random().toString(36).slice(2)}000`.replace(/[^a-z0-9]/g, "0").slice(0, 4);
    expect(four).toHaveLength(4);
    const thirty = uniqueName("z").padEnd(30, "9").slice(0, 30);
    expect(thirty).toHaveLength(30);
    expect((await admin("POST", "/api/admin/v1/user/", { username: four })).status).toBe(201);
    expect((await admin("POST", "/api/admin/v1/user/", { username: thirty })).status).toBe(201);
    expect((await admin("POST", "/api/admin/v1/user/", { username: "0123" })).status).toBe(201);
  });

  it.each(["service", "trigger", "action", "stack", "admin", "account", "organization", "apikey", "user", "audit"])(
    "refuses the reserved name '%s' as a username and as an organization (400)",
    async (name) => {
      await expectError(await admin("POST", "/api/admin/v1/user/", { username: name }), 400, /reserved/);
      await expectError(await admin("POST", "/api/admin/v1/organization/", { name }), 400, /reserved/);
    },
  );

  it("refuses a missing or mistyped username (400 naming the field)", async () => {
    await expectError(await admin("POST", "/api/admin/v1/user/", {}), 400, /username/);
    await expectError(await admin("POST", "/api/admin/v1/user/", { username: 1234 }), 400, /username/);
    await expectError(await admin("POST", "/api/admin/v1/user/", { username: null }), 400, /username/);
    await expectError(await admin("POST", "/api/admin/v1/user/", ["abcd"]), 400);
  });

  it("refuses a second user of the same name (409)", async () => {
    const username = uniqueName();
    expect((await admin("POST", "/api/admin/v1/user/", { username })).status).toBe(201);
    await expectError(await admin("POST", "/api/admin/v1/user/", { username }), 409, new RegExp(username));
  });

  it("names are unique across users and organizations (409 both ways)", async () => {
    const taken = uniqueName();
    expect((await admin("POST", "/api/admin/v1/user/", { username: taken })).status).toBe(201);
    await expectError(await admin("POST", "/api/admin/v1/organization/", { name: taken }), 409);

    const org = uniqueName("org");
    expect((await admin("POST", "/api/admin/v1/organization/", { name: org })).status).toBe(201);
    await expectError(await admin("POST", "/api/admin/v1/user/", { username: org }), 409);
    // The failed claims changed nothing: the user is still a user, the org still an org.
    const orgGet = await admin("GET", `/api/admin/v1/organization/${org}/`);
    expect(orgGet.status).toBe(200);
    await expectError(await admin("GET", `/api/admin/v1/organization/${taken}/`), 404);
  });

  it("DELETE /api/admin/v1/user/<u>/ deletes the user (200 JSON) and its key fails at once (401)", async () => {
    const user = await createUser();
    expect((await as(user, "GET", "/api/app/v1/service/")).status).toBe(200);

    const del = await admin("DELETE", `/api/admin/v1/user/${user.username}/`);
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ username: user.username, deleted: true });

    await expectError(await as(user, "GET", "/api/app/v1/service/"), 401);
    await expectError(await as(user, "GET", "/api/account/v1/apikey/"), 401);

    const users = await listAll<{ username: string }>("/api/admin/v1/user/");
    expect(users.map((u) => u.username)).not.toContain(user.username);
  });

  it("deleting a user twice, or a user that never existed, is 404", async () => {
    const user = await createUser();
    expect((await admin("DELETE", `/api/admin/v1/user/${user.username}/`)).status).toBe(200);
    await expectError(await admin("DELETE", `/api/admin/v1/user/${user.username}/`), 404);
    await expectError(await admin("DELETE", `/api/admin/v1/user/${uniqueName("ghost")}/`), 404);
    await expectError(await admin("DELETE", "/api/admin/v1/user/NotAName/"), 404);
  });

  it("DELETE user on an organization's name is 404 and leaves the organization", async () => {
    const org = await createOrg();
    await expectError(await admin("DELETE", `/api/admin/v1/user/${org}/`), 404);
    expect((await admin("GET", `/api/admin/v1/organization/${org}/`)).status).toBe(200);
  });

  it("a deleted user's name can be taken again, and the old key does not work for the new user", async () => {
    const old = await createUser();
    expect((await admin("DELETE", `/api/admin/v1/user/${old.username}/`)).status).toBe(200);
    const again = await createUser(old.username);
    await expectError(await as(old, "GET", "/api/app/v1/service/"), 401);
    expect((await as(again, "GET", "/api/app/v1/service/")).status).toBe(200);
  });

  it("deleting a user removes it from the organizations it belonged to", async () => {
    const user = await createUser();
    const org = await createOrg(undefined, [user.username]);
    expect((await admin("DELETE", `/api/admin/v1/user/${user.username}/`)).status).toBe(200);
    const r = await admin("GET", `/api/admin/v1/organization/${org}/`);
    expect(r.status).toBe(200);
    expect((await r.json<{ members: string[] }>()).members).toEqual([]);
  });
});

describe("admin API keys", () => {
  it("POST .../user/<u>/apikey/ answers 201 {uuid,label,key,resource_uri} and the key authenticates", async () => {
    const username = uniqueName();
    expect((await admin("POST", "/api/admin/v1/user/", { username })).status).toBe(201);
    const res = await admin("POST", `/api/admin/v1/user/${username}/apikey/`, { label: "ci robot" });
    expect(res.status).toBe(201);
    const key = await res.json<KeyJson & { key: string }>();
    expect(key).toMatchObject({
      uuid: expect.stringMatching(UUID4),
      label: "ci robot",
      key: expect.any(String),
      resource_uri: `/api/account/v1/apikey/${key.uuid}/`,
    });
    expect(key.key.length).toBeGreaterThanOrEqual(32);

    const r = await call("/api/app/v1/service/", { headers: { authorization: basic(username, key.key) } });
    expect(r.status).toBe(200);
  });

  it("the key is shown only in the create answer, never in GET /api/account/v1/apikey/", async () => {
    const user = await createUser();
    const second = await admin("POST", `/api/admin/v1/user/${user.username}/apikey/`, { label: "second" });
    expect(second.status).toBe(201);
    const secondKey = await second.json<KeyJson & { key: string }>();

    const r = await as(user, "GET", "/api/account/v1/apikey/");
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).not.toContain(user.apikey);
    expect(text).not.toContain(secondKey.key);
    const list = JSON.parse(text) as Envelope<KeyJson>;
    expect(list.meta.total_count).toBe(2);
    expect(list.objects).toHaveLength(2);
    for (const k of list.objects) {
      expect(Object.keys(k).sort()).toEqual(["created", "label", "last_used", "resource_uri", "uuid"]);
    }
    expect(list.objects.map((k) => k.label).sort()).toEqual(["second", "test"]);
    expect(list.objects.find((k) => k.uuid === secondKey.uuid)?.resource_uri).toBe(secondKey.resource_uri);
  });

  it("each call makes a new, different key; both work", async () => {
    const user = await createUser();
    const r = await admin("POST", `/api/admin/v1/user/${user.username}/apikey/`, {});
    expect(r.status).toBe(201);
    const k2 = await r.json<KeyJson & { key: string }>();
    expect(k2.key).not.toBe(user.apikey);
    expect(k2.label).toBe("");
    for (const key of [user.apikey, k2.key]) {
      const res = await call("/api/app/v1/service/", { headers: { authorization: basic(user.username, key) } });
      expect(res.status).toBe(200);
    }
  });

  it("an empty body (Content-Length: 0) is accepted: the label is optional", async () => {
    const user = await createUser();
    const r = await call(`/api/admin/v1/user/${user.username}/apikey/`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", "content-length": "0" },
      body: "",
    });
    expect(r.status).toBe(201);
  });

  it("refuses a label that is not a string or is too long (400)", async () => {
    const user = await createUser();
    await expectError(await admin("POST", `/api/admin/v1/user/${user.username}/apikey/`, { label: 5 }), 400, /label/);
    await expectError(
      await admin("POST", `/api/admin/v1/user/${user.username}/apikey/`, { label: "x".repeat(101) }),
      400,
      /label/,
    );
  });

  it("is 404 for a user that does not exist, for an organization and for an invalid name", async () => {
    await expectError(await admin("POST", `/api/admin/v1/user/${uniqueName("ghost")}/apikey/`, {}), 404);
    const org = await createOrg();
    await expectError(await admin("POST", `/api/admin/v1/user/${org}/apikey/`, {}), 404);
    await expectError(await admin("POST", "/api/admin/v1/user/BAD/apikey/", {}), 404);
  });
});

describe("admin organizations", () => {
  it("POST creates (201), GET shows it with members, DELETE removes it (200)", async () => {
    const name = uniqueName("org");
    const res = await admin("POST", "/api/admin/v1/organization/", { name });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({
      name,
      created: expect.stringMatching(RFC1123_SHAPE),
      resource_uri: `/api/admin/v1/organization/${name}/`,
    });

    const get = await admin("GET", `/api/admin/v1/organization/${name}/`);
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({
      name,
      created: expect.stringMatching(RFC1123_SHAPE),
      resource_uri: `/api/admin/v1/organization/${name}/`,
      members: [],
    });

    const orgs = await listAll<{ name: string }>("/api/admin/v1/organization/");
    expect(orgs.map((o) => o.name)).toContain(name);
    const users = await listAll<{ username: string }>("/api/admin/v1/user/");
    expect(users.map((u) => u.username)).not.toContain(name);

    const del = await admin("DELETE", `/api/admin/v1/organization/${name}/`);
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ name, deleted: true });
    await expectError(await admin("GET", `/api/admin/v1/organization/${name}/`), 404);
    await expectError(await admin("DELETE", `/api/admin/v1/organization/${name}/`), 404);
    const after = await listAll<{ name: string }>("/api/admin/v1/organization/");
    expect(after.map((o) => o.name)).not.toContain(name);
  });

  it("GET / DELETE organization on a user's name is 404 and leaves the user", async () => {
    const user = await createUser();
    await expectError(await admin("GET", `/api/admin/v1/organization/${user.username}/`), 404);
    await expectError(await admin("DELETE", `/api/admin/v1/organization/${user.username}/`), 404);
    expect((await as(user, "GET", "/api/app/v1/service/")).status).toBe(200);
  });

  it("refuses a bad or duplicate organization name", async () => {
    await expectError(await admin("POST", "/api/admin/v1/organization/", { name: "Ab" }), 400, /name/);
    await expectError(await admin("POST", "/api/admin/v1/organization/", {}), 400, /name/);
    await expectError(await admin("POST", "/api/admin/v1/organization/", { name: 42 }), 400, /name/);
    const name = await createOrg();
    await expectError(await admin("POST", "/api/admin/v1/organization/", { name }), 409);
  });

  it("members: POST .../member/ adds (201), a second add is 409, DELETE .../member/<u>/ removes", async () => {
    const org = await createOrg();
    const alice = await createUser();
    const bob = await createUser();

    const add = await admin("POST", `/api/admin/v1/organization/${org}/member/`, { username: alice.username });
    expect(add.status).toBe(201);
    expect(await add.json()).toEqual({ organization: org, username: alice.username });
    expect((await admin("POST", `/api/admin/v1/organization/${org}/member/`, { username: bob.username })).status).toBe(
      201,
    );
    await expectError(
      await admin("POST", `/api/admin/v1/organization/${org}/member/`, { username: alice.username }),
      409,
    );

    let info = await (await admin("GET", `/api/admin/v1/organization/${org}/`)).json<{ members: string[] }>();
    expect(info.members).toEqual([alice.username, bob.username].sort());

    // The member can use the organization's namespace.
    expect((await as(alice, "GET", `/api/app/v1/${org}/service/`)).status).toBe(200);

    const rm = await admin("DELETE", `/api/admin/v1/organization/${org}/member/${alice.username}/`);
    expect(rm.status).toBe(200);
    expect(await rm.json()).toEqual({ organization: org, username: alice.username, removed: true });
    info = await (await admin("GET", `/api/admin/v1/organization/${org}/`)).json<{ members: string[] }>();
    expect(info.members).toEqual([bob.username]);
    await expectError(await as(alice, "GET", `/api/app/v1/${org}/service/`), 403);

    await expectError(await admin("DELETE", `/api/admin/v1/organization/${org}/member/${alice.username}/`), 404);
  });

  it("adding a user that does not exist, or an organization, as a member is 404", async () => {
    const org = await createOrg();
    const other = await createOrg();
    await expectError(
      await admin("POST", `/api/admin/v1/organization/${org}/member/`, { username: uniqueName("ghost") }),
      404,
    );
    await expectError(await admin("POST", `/api/admin/v1/organization/${org}/member/`, { username: other }), 404);
    const info = await (await admin("GET", `/api/admin/v1/organization/${org}/`)).json<{ members: string[] }>();
    expect(info.members).toEqual([]);
  });

  it("adding a member to an organization that does not exist (or to a user) is 404", async () => {
    const user = await createUser();
    const other = await createUser();
    await expectError(
      await admin("POST", `/api/admin/v1/organization/${uniqueName("ghost")}/member/`, { username: user.username }),
      404,
    );
    await expectError(
      await admin("POST", `/api/admin/v1/organization/${other.username}/member/`, { username: user.username }),
      404,
    );
    // Nobody got access to the other user's namespace.
    await expectError(await as(user, "GET", `/api/app/v1/${other.username}/service/`), 403);
  });

  it("refuses a malformed member body (400)", async () => {
    const org = await createOrg();
    await expectError(await admin("POST", `/api/admin/v1/organization/${org}/member/`, {}), 400, /username/);
    await expectError(
      await admin("POST", `/api/admin/v1/organization/${org}/member/`, { username: ["x"] }),
      400,
      /username/,
    );
  });

  it("deleting an organization takes away its members' access", async () => {
    const user = await createUser();
    const org = await createOrg(undefined, [user.username]);
    expect((await as(user, "GET", `/api/app/v1/${org}/service/`)).status).toBe(200);
    expect((await admin("DELETE", `/api/admin/v1/organization/${org}/`)).status).toBe(200);
    await expectError(await as(user, "GET", `/api/app/v1/${org}/service/`), 403);
    // The user itself is untouched.
    expect((await as(user, "GET", "/api/app/v1/service/")).status).toBe(200);
  });

  it("an organization has no API keys: Basic credentials with its name are 401", async () => {
    const org = await createOrg();
    await expectError(await admin("POST", `/api/admin/v1/user/${org}/apikey/`, {}), 404);
    const r = await call("/api/app/v1/service/", { headers: { authorization: basic(org, "0".repeat(40)) } });
    await expectError(r, 401);
  });
});
