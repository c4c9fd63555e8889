import { describe, expect, it } from "vitest";
import { readJson, waitForState } from "./helpers/actions";
import { as, createOrg, createService, createUser, type User } from "./helpers/api";

/**
 * The action list's filters, as the CLI uses them: `action inspect|cancel|retry|logs <short id>`
 * resolves the id with `?uuid__startswith=<prefix>` and acts on the single match.
 */

type Listing = { meta: { total_count: number }; objects: { uuid: string; end_date: string | null }[] };

async function twoActions(user: User, ns?: string) {
  const svc = await createService(user, {}, ns);
  const uuids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await as(user, "POST", `${svc.resource_uri}redeploy/`);
    expect(r.status).toBe(202);
    const uri = r.headers.get("x-dockercloud-action-uri") ?? "";
    await waitForState(user, uri, "Success");
    uuids.push(uri.split("/").at(-2) ?? "");
  }
  return uuids as [string, string];
}

const list = (user: User, path: string) => readJson<Listing>(user, path);

/** The shortest prefix of `a` that `b` does not share. */
function distinctPrefix(a: string, b: string): string {
  let n = 1;
  while (b.startsWith(a.slice(0, n))) n++;
  return a.slice(0, Math.max(n, 8));
}

describe("action lists honour uuid__startswith", () => {
  for (const scope of ["user", "org"] as const) {
    it(`${scope === "user" ? "non-namespaced" : "namespaced"} path: a short id finds its action only`, async () => {
      const user = await createUser();
      const org = scope === "org" ? await createOrg(undefined, [user.username]) : undefined;
      const [a, b] = await twoActions(user, org);
      const base = org ? `/api/audit/v1/${org}/action/` : "/api/audit/v1/action/";

      const short = distinctPrefix(a, b);
      const found = await list(user, `${base}?uuid__startswith=${short}`);
      expect(found.meta.total_count).toBe(1);
      expect(found.objects.map((o) => o.uuid)).toEqual([a]);
      const upper = await list(user, `${base}?uuid__startswith=${short.toUpperCase()}`);
      expect(upper.objects.map((o) => o.uuid)).toEqual([a]);
      const full = await list(user, `${base}?uuid__startswith=${b}`);
      expect(full.objects.map((o) => o.uuid)).toEqual([b]);
      // A prefix of no action: nothing, not "the only action there is".
      const none = a.startsWith("0") || b.startsWith("0") ? "ffffffff" : "00000000";
      expect((await list(user, `${base}?uuid__startswith=${none}`)).meta.total_count).toBe(0);
    });
  }

  it("with a single action in the namespace, another short id resolves to nothing", async () => {
    const user = await createUser();
    const svc = await createService(user);
    const r = await as(user, "POST", `${svc.resource_uri}redeploy/`);
    const uuid = (r.headers.get("x-dockercloud-action-uri") ?? "").split("/").at(-2) ?? "";
    const other = uuid.startsWith("0") ? "11111111" : "00000000";
    const found = await list(user, `/api/audit/v1/action/?uuid__startswith=${other}`);
    expect(found).toMatchObject({ meta: { total_count: 0 }, objects: [] });
  });

  it("a prefix longer than a uuid is a 400", async () => {
    const user = await createUser();
    const r = await as(user, "GET", `/api/audit/v1/action/?uuid__startswith=${"a".repeat(37)}`);
    expect(r.status).toBe(400);
    expect(Object.keys(await r.json<object>())).toEqual(["error"]);
  });
});

describe("action lists honour end_date__gte and end_date__lte", () => {
  it("filters on the end date; unfinished actions have none", async () => {
    const user = await createUser();
    const [a, b] = await twoActions(user);
    const all = await list(user, "/api/audit/v1/action/");
    const endOf = (u: string) => Date.parse(all.objects.find((o) => o.uuid === u)?.end_date ?? "");
    const epoch = (ms: number) => Math.floor(ms / 1000);

    const later = await list(user, `/api/audit/v1/action/?end_date__gte=${epoch(endOf(b))}`);
    expect(later.objects.map((o) => o.uuid)).toContain(b);
    const earlier = await list(user, `/api/audit/v1/action/?end_date__lte=${epoch(endOf(a))}`);
    expect(earlier.objects.map((o) => o.uuid)).toContain(a);
    const none = await list(user, `/api/audit/v1/action/?end_date__gte=${epoch(endOf(b)) + 3600}`);
    expect(none.meta.total_count).toBe(0);
    const before = await list(user, `/api/audit/v1/action/?end_date__lte=${epoch(endOf(a)) - 3600}`);
    expect(before.meta.total_count).toBe(0);
  });

  it.each(["end_date__gte", "end_date__lte"])("%s that is not a date is a 400 naming it", async (field) => {
    const user = await createUser();
    const r = await as(user, "GET", `/api/audit/v1/action/?${field}=yesterday`);
    expect(r.status).toBe(400);
    expect((await r.json<{ error: string }>()).error).toContain(field);
  });
});
