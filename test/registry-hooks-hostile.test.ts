/**
 * A registry hook's URL in hostile hands. Whatever is sent to it (any body,
 * any bytes, any size up to the limit, any signature) is answered with a 2xx
 * or a 4xx that is `{"error": ...}`, never a 5xx; it never redeploys a
 * service that does not run the pushed image; and every call is kept in the
 * hook's deliveries. Any URL that names no hook is the same 404.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readJson, sleep } from "./helpers/actions";
import { as, call, createService, createUser } from "./helpers/api";

type Hook = { uuid: string; url: string; resource_uri: string };

const SOURCES = ["dockerhub", "distribution", "github", "harbor", "quay", "acr", "generic"] as const;

/** Bodies a registry, or whoever holds the URL, might send: near-payloads, junk and bytes. */
const body = fc.oneof(
  fc.json(),
  fc.string({ maxLength: 2000 }),
  fc.uint8Array({ maxLength: 512 }),
  fc.record({
    events: fc.array(
      fc.record({
        action: fc.constantFrom("push", "pull", "delete", "mount", 7, null),
        target: fc.record({
          repository: fc.oneof(fc.constant("team/other"), fc.string()),
          tag: fc.oneof(fc.constant("1.0"), fc.string(), fc.integer()),
          digest: fc.oneof(fc.constant(`sha256:${"c".repeat(64)}`), fc.string()),
          mediaType: fc.constantFrom("application/vnd.docker.distribution.manifest.v2+json", "x"),
        }),
        request: fc.record({ host: fc.oneof(fc.constant("registry.local:5000"), fc.string()) }),
      }),
      { maxLength: 4 },
    ),
  }),
  fc.record({ push_data: fc.record({ tag: fc.string() }), repository: fc.record({ repo_name: fc.string() }) }),
  fc.record({ image: fc.oneof(fc.constant("registry.local:5000/team/other:1.0"), fc.string()) }),
);

describe("registry hooks against hostile calls", () => {
  it("no body to any source's hook is a 5xx or redeploys a service that does not run the pushed image (fast-check)", async () => {
    const user = await createUser();
    const svc = await createService(user, {
      name: "web",
      image: "registry.local:5000/team/web:1.0",
      autoredeploy: true,
    });
    const hooks: Hook[] = [];
    for (const source of SOURCES) {
      const r = await as(user, "POST", "/api/app/v1/registryhook/", { name: source, source });
      hooks.push(await r.json<Hook>());
    }
    let calls = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: SOURCES.length - 1 }),
        body,
        fc.dictionary(fc.string(), fc.string()),
        async (i, b, extra) => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(extra)) {
            try {
              headers.set(k, v);
            } catch {
              // not a header a client can send
            }
          }
          const sent = b instanceof Uint8Array ? b : typeof b === "string" ? b : JSON.stringify(b);
          const res = await call((hooks[i] as Hook).url, { method: "POST", headers, body: sent });
          calls += 1;
          expect(res.status, await res.clone().text()).toBeLessThan(500);
          if (res.status >= 400) expect(Object.keys(await res.json<object>())).toEqual(["error"]);
        },
      ),
      { numRuns: 150 },
    );
    await sleep(50);
    const actions = await readJson<{ objects: unknown[] }>(user, `/api/audit/v1/action/?object=${svc.resource_uri}`);
    expect(actions.objects, "team/web:1.0 was never pushed").toHaveLength(0);
    let kept = 0;
    for (const h of hooks)
      kept += (await readJson<{ meta: { total_count: number } }>(user, `${h.resource_uri}delivery/`)).meta.total_count;
    expect(kept, "every call is kept (at most 100 per hook)").toBe(Math.min(calls, kept));
    expect(kept).toBeGreaterThan(0);
  }, 120_000);

  it("any URL that names no hook is the same 404, whatever its namespace or token", async () => {
    const user = await createUser();
    const other = await createUser();
    const hook = await (
      await as(user, "POST", "/api/app/v1/registryhook/", { name: "h", source: "quay" })
    ).json<Hook>();
    const token = hook.url.split("/").at(-2) as string;
    for (const path of [
      `/api/app/v1/${other.username}/registryhook/call/${token}/`,
      `/api/app/v1/nosuchns/registryhook/call/${token}/`,
      `/api/app/v1/UPPER/registryhook/call/${token}/`,
      `/api/app/v1/${user.username}/registryhook/call/${token.toUpperCase()}/`,
      `/api/app/v1/${user.username}/registryhook/call/${token.slice(1)}/`,
    ]) {
      const r = await call(path, { method: "POST", body: "{}" });
      expect(r.status, path).toBe(404);
      expect(await r.json(), path).toEqual({ error: "Registry hook not found" });
    }
  });

  it("a body past 1 MiB is a 413, streamed or declared", async () => {
    const user = await createUser();
    const hook = await (
      await as(user, "POST", "/api/app/v1/registryhook/", { name: "h", source: "quay" })
    ).json<Hook>();
    const big = "x".repeat(1024 * 1024 + 1);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    for (const init of [
      { body: big },
      { body: stream },
      { body: "{}", headers: { "content-length": String(10 * 1024 * 1024) } },
    ]) {
      const r = await call(hook.url, { method: "POST", ...init });
      expect(r.status).toBe(413);
    }
  });
});
