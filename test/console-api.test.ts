/**
 * What the console needs of the API besides stream tickets (test/stream-tickets.test.ts): the
 * namespaces a user may act in (GET /api/account/v1/namespace/), and the console's own pages,
 * served at / with a strict Content-Security-Policy, holding nothing secret, leaving the API's
 * answers as they were.
 */
import { describe, expect, it } from "vitest";
import { admin, as, call, createOrg, createUser } from "./helpers/api";

type NamespaceList = {
  meta: { total_count: number };
  objects: { name: string; kind: string; resource_uri: string }[];
};

describe("GET /api/account/v1/namespace/", () => {
  it("lists the user, then the organizations they belong to, and nothing of others", async () => {
    const user = await createUser();
    const other = await createUser();
    const orgB = await createOrg(undefined, [user.username, other.username]);
    const orgA = await createOrg(undefined, [user.username]);
    await createOrg(undefined, [other.username]);
    const res = await as(user, "GET", "/api/account/v1/namespace/");
    expect(res.status).toBe(200);
    const list = await res.json<NamespaceList>();
    expect(list.objects).toEqual([
      { name: user.username, kind: "user", resource_uri: `/api/app/v1/${user.username}/service/` },
      ...[orgA, orgB]
        .sort()
        .map((name) => ({ name, kind: "organization", resource_uri: `/api/app/v1/${name}/service/` })),
    ]);
    expect(list.meta.total_count).toBe(3);
  });

  it("follows memberships as they change", async () => {
    const user = await createUser();
    const org = await createOrg(undefined, [user.username]);
    await admin("DELETE", `/api/admin/v1/organization/${org}/member/${user.username}/`);
    const list = await (await as(user, "GET", "/api/account/v1/namespace/")).json<NamespaceList>();
    expect(list.objects.map((o) => o.name)).toEqual([user.username]);
  });

  it("is a 401 {error} without valid credentials, and 405 for other methods", async () => {
    const user = await createUser();
    const refused: Record<string, string>[] = [
      {},
      { authorization: "Basic bm9wZTpub3Bl" },
      { authorization: "Bearer x" },
    ];
    for (const headers of refused) {
      const res = await call("/api/account/v1/namespace/", { headers });
      expect(res.status).toBe(401);
      expect(Object.keys(await res.json<object>())).toEqual(["error"]);
    }
    const post = await as(user, "POST", "/api/account/v1/namespace/", {});
    expect(post.status).toBe(405);
    expect(Object.keys(await post.json<object>())).toEqual(["error"]);
  });
});

describe("the console's pages", () => {
  it("serves / and its modules with a strict Content-Security-Policy and no secret", async () => {
    for (const path of ["/", "/js/app.js", "/css/base.css", "/css/pages.css"]) {
      const res = await call(path);
      expect(res.status, path).toBe(200);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp, path).toContain("default-src 'self'");
      expect(csp, path).toContain("script-src 'self'");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).not.toContain("unsafe-inline");
      expect(csp, path).not.toContain("unsafe-eval");
      expect(res.headers.get("x-frame-options"), path).toBe("DENY");
      expect(res.headers.get("x-content-type-options"), path).toBe("nosniff");
      expect(res.headers.get("referrer-policy"), path).toBe("no-referrer");
      expect(res.headers.get("set-cookie"), path).toBeNull();
    }
    const page = await (await call("/")).text();
    expect(page).toContain('<script type="module" src="/js/app.js"></script>');
    // No inline script, no inline style, no inline event handler: the policy would refuse them.
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page).not.toMatch(/\son[a-z]+=/i);
    expect(page).not.toMatch(/<style|style=/i);
    expect(page).not.toMatch(/https?:\/\//);
  });

  it("answers the same page with or without credentials: nothing in it depends on who asks", async () => {
    const user = await createUser();
    const anonymous = await (await call("/")).text();
    const signed = await (await call("/", { headers: { authorization: user.auth } })).text();
    expect(signed).toBe(anonymous);
    expect(signed).not.toContain(user.username);
  });

  it("leaves the API's answers as they were: JSON 404s, no page policy, the API's refusals", async () => {
    for (const path of ["/nothing-here/", "/api/nothing/", "//api/nothing/"]) {
      const res = await call(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type"), path).toContain("application/json");
    }
    const api = await call("/api/health/");
    expect(api.headers.get("content-security-policy")).toBeNull();
    const post = await call("/", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" });
    expect(post.status).toBe(415);
    const cross = await call("/", { method: "POST", headers: { origin: "https://evil.example" } });
    expect(cross.status).toBe(403);
  });
});
