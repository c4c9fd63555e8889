/**
 * Registry hooks through the Worker: the resource (create with its secret
 * shown once, list, get, delete, rotate with a grace period, deliveries), and
 * a registry's call: a push of the tag an autoredeploy service runs starts
 * one action that records exactly the pushed image; noise, other tags and
 * services without autoredeploy start none; the same push told again joins
 * its action; a newer push replaces a pending action's image; a bad
 * signature is a 401 and a malformed payload a 400, both recorded.
 * (The sources' payloads and signatures: registry-sources-*.test.ts.)
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { as, call, createService, createUser, type User } from "./helpers/api";
import { listen } from "./helpers/sockets";

type Hook = {
  uuid: string;
  url: string;
  resource_uri: string;
  secret: string | null;
  signing: string;
  signed: boolean;
};
type Delivery = {
  source: string;
  verdict: string;
  reason: string | null;
  status: number;
  actions: string[];
  via_previous_url: boolean;
};
const DIGEST_A = `sha256:${"a".repeat(64)}`;
const DIGEST_B = `sha256:${"b".repeat(64)}`;

async function createHook(user: User, source: string, name = `hook-${source}`): Promise<Hook> {
  const r = await as(user, "POST", "/api/app/v1/registryhook/", { name, source });
  expect(r.status, await r.clone().text()).toBe(201);
  return r.json<Hook>();
}

/** A generic call signed as Standard Webhooks with the hook's secret. */
function signedCall(
  hook: Hook,
  payload: unknown,
  { secret = hook.secret, id = crypto.randomUUID(), at = new Date() } = {},
) {
  const body = JSON.stringify(payload);
  const signature = new Webhook(secret as string).sign(id, at, body);
  return call(hook.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
      "webhook-signature": signature,
    },
    body,
  });
}

const deliveries = async (user: User, hook: Hook) =>
  (await (await as(user, "GET", `${hook.resource_uri}delivery/`)).json<{ objects: Delivery[] }>()).objects;

const pushOf = (user: User, actionUri: string) =>
  runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) => {
    const uuid = actionUri.split("/").at(-2);
    return state.storage.sql.exec<{ push: string }>("SELECT push FROM actions WHERE uuid = ?", uuid).one().push;
  });

describe("registry hooks: the resource", () => {
  it("create shows the secret once for sources that sign, none for those that cannot; list, get, delete", async () => {
    const user = await createUser();
    const signed = await createHook(user, "github");
    expect(signed.secret).toMatch(/^[0-9a-f]{64}$/);
    expect(signed.signed).toBe(true);
    expect(signed.url).toMatch(new RegExp(`^/api/app/v1/${user.username}/registryhook/call/[0-9a-f]{40}/$`));
    const open = await createHook(user, "dockerhub");
    expect(open).toMatchObject({ secret: null, signed: false });
    expect(open.signing).toContain("cannot sign");
    const got = await (await as(user, "GET", signed.resource_uri)).json<Record<string, unknown>>();
    expect(got).not.toHaveProperty("secret");
    const list = await (await as(user, "GET", "/api/app/v1/registryhook/")).json<{ meta: { total_count: number } }>();
    expect(list.meta.total_count).toBe(2);
    expect(
      (await as(user, "POST", "/api/app/v1/registryhook/", { name: "hook-github", source: "github" })).status,
    ).toBe(409);
    expect((await as(user, "POST", "/api/app/v1/registryhook/", { name: "x", source: "gitlab" })).status).toBe(400);
    expect((await as(user, "DELETE", open.resource_uri)).status).toBe(200);
    const dead = await call(open.url, { method: "POST", body: "{}" });
    expect(dead.status).toBe(404);
    expect(await dead.json()).toEqual({ error: "Registry hook not found" });
  });

  it("rotation: a new URL and secret; the old ones work during the grace period, marked; with no grace, at once dead", async () => {
    const user = await createUser();
    await createService(user, { name: "web", image: "registry.local:5000/team/web:1.0", autoredeploy: true });
    const hook = await createHook(user, "generic");
    const rotated = await (await as(user, "POST", `${hook.resource_uri}rotate/`, { grace_seconds: 60 })).json<Hook>();
    expect(rotated.url).not.toBe(hook.url);
    expect(rotated.secret).not.toBe(hook.secret);
    const push = { image: "registry.local:5000/team/web:1.0", digest: DIGEST_A };
    expect((await signedCall(hook, push)).status).toBe(202);
    expect((await signedCall(rotated, push)).status).toBe(202);
    expect((await deliveries(user, hook)).map((d) => d.via_previous_url)).toEqual([false, true]);
    const again = await (await as(user, "POST", `${hook.resource_uri}rotate/`, { grace_seconds: 0 })).json<Hook>();
    expect((await signedCall(rotated, push)).status).toBe(404);
    expect((await signedCall(again, push)).status).toBe(202);
  });
});

describe("registry hooks: a registry's call", () => {
  it("a push of the tag an autoredeploy service runs starts one action recording exactly that image; others start none", async () => {
    const user = await createUser();
    await createService(user, { name: "web", image: "registry.local:5000/team/web:1.0", autoredeploy: true });
    await createService(user, { name: "manual", image: "registry.local:5000/team/web:1.0" });
    await createService(user, { name: "other", image: "registry.local:5000/team/api:1.0", autoredeploy: true });
    const hook = await createHook(user, "generic");
    const events = listen(
      (
        await call("/api/audit/v1/events?type=registryhook", {
          headers: { upgrade: "websocket", authorization: user.auth },
        })
      ).webSocket as WebSocket,
    );

    const started = await signedCall(hook, { image: "registry.local:5000/team/web:1.0", digest: DIGEST_A });
    expect(started.status).toBe(202);
    const { actions } = await started.json<{ actions: string[] }>();
    expect(actions).toHaveLength(1);
    expect(JSON.parse(await pushOf(user, actions[0] as string))).toMatchObject({
      registry: "registry.local:5000",
      repository: "team/web",
      tag: "1.0",
      digest: DIGEST_A,
      deploy_tag: "1.0",
    });
    const other = await signedCall(hook, { image: "registry.local:5000/team/web:2.0", digest: DIGEST_B });
    expect(other.status).toBe(200);
    expect(await other.json()).toEqual({ ignored: "no service was redeployed" });

    const kept = await deliveries(user, hook);
    expect(kept.map((d) => d.verdict)).toEqual(["ignored", "redeployed"]);
    expect(kept.map((d) => d.source)).toEqual(["generic", "generic"]);
    expect(kept[0]?.reason).toContain("no service with autoredeploy runs registry.local:5000/team/web:2.0");
    await events.until(() => events.messages.length >= 2, "two registryhook events");
    events.ws.close(1000, "done");
  });

  it("the same push told again joins its action; a newer push replaces the pending action's image", async () => {
    const user = await createUser();
    // An agent that is not connected keeps the action Pending, so a newer push finds it not yet started.
    const agent = await (await as(user, "POST", "/api/agent/v1/agent/", { name: "edge" })).json<{ uuid: string }>();
    await createService(user, {
      name: "web",
      image: "registry.local:5000/team/web:1.0",
      autoredeploy: true,
      target: { type: "agent", agent: agent.uuid, swarm_service: "web" },
    });
    const hook = await createHook(user, "generic");
    const push = { image: "registry.local:5000/team/web:1.0", digest: DIGEST_A };
    const first = await (await signedCall(hook, push)).json<{ actions: string[] }>();
    const repeat = await (await signedCall(hook, push)).json<{ actions: string[] }>();
    expect(repeat.actions).toEqual(first.actions);
    const newer = await (await signedCall(hook, { ...push, digest: DIGEST_B })).json<{ actions: string[] }>();
    expect(newer.actions).toEqual(first.actions);
    expect(JSON.parse(await pushOf(user, first.actions[0] as string)).digest).toBe(DIGEST_B);
    const all = await (await as(user, "GET", "/api/audit/v1/action/")).json<{ objects: unknown[] }>();
    expect(all.objects, "one rollout, on the later digest").toHaveLength(1);
  });

  it("pushes told out of order: an older push never follows a newer one (the registry's timestamps decide)", async () => {
    const user = await createUser();
    await createService(user, { name: "web", image: "registry.local:5000/team/web:1.0", autoredeploy: true });
    const hook = await createHook(user, "distribution");
    const event = (digest: string, timestamp: string) =>
      call(hook.url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${hook.secret}`,
          "content-type": "application/vnd.docker.distribution.events.v1+json",
        },
        body: JSON.stringify({
          events: [
            {
              id: crypto.randomUUID(),
              timestamp,
              action: "push",
              target: {
                mediaType: "application/vnd.docker.distribution.manifest.v2+json",
                digest,
                repository: "team/web",
                tag: "1.0",
              },
              request: { host: "registry.local:5000" },
            },
          ],
        }),
      });
    const newer = await event(DIGEST_B, "2026-12-07T10:00:05Z");
    expect(newer.status).toBe(202);
    const older = await event(DIGEST_A, "2026-12-07T10:00:01Z");
    expect(older.status).toBe(200);
    expect((await deliveries(user, hook))[0]?.reason).toContain("is older than the push");
    const all = await (await as(user, "GET", "/api/audit/v1/action/")).json<{ objects: unknown[] }>();
    expect(all.objects).toHaveLength(1);
  });

  it("a generic sender's pushes are ordered by their signed webhook-timestamp", async () => {
    const user = await createUser();
    await createService(user, { name: "web", image: "registry.local:5000/team/web:1.0", autoredeploy: true });
    const hook = await createHook(user, "generic");
    const image = "registry.local:5000/team/web:1.0";
    const now = Date.now();
    const newer = await signedCall(hook, { image, digest: DIGEST_B }, { at: new Date(now) });
    expect(newer.status).toBe(202);
    const older = await signedCall(hook, { image, digest: DIGEST_A }, { at: new Date(now - 60_000) });
    expect(older.status, await older.clone().text()).toBe(200);
    expect((await deliveries(user, hook))[0]?.reason).toContain("is older than the push");
    const all = await (await as(user, "GET", "/api/audit/v1/action/")).json<{ objects: unknown[] }>();
    expect(all.objects).toHaveLength(1);
  });

  it("a bad signature is a 401, a malformed payload a 400 naming the field; both recorded, nothing started", async () => {
    const user = await createUser();
    await createService(user, { name: "web", image: "registry.local:5000/team/web:1.0", autoredeploy: true });
    const hook = await createHook(user, "generic");
    const forged = await signedCall(
      hook,
      { image: "registry.local:5000/team/web:1.0" },
      {
        secret: `whsec_${btoa("not the hook's secret, 24b")}`,
      },
    );
    expect(forged.status).toBe(401);
    const malformed = await signedCall(hook, { image: "registry.local:5000/team/web" });
    expect(malformed.status).toBe(400);
    expect((await malformed.json<{ error: string }>()).error).toContain("tag");
    const kept = await deliveries(user, hook);
    expect(kept.map((d) => [d.verdict, d.status])).toEqual([
      ["refused", 400],
      ["refused", 401],
    ]);
    const actions = await (await as(user, "GET", "/api/audit/v1/action/")).json<{ objects: unknown[] }>();
    expect(actions.objects).toHaveLength(0);
  });

  it("an unknown hook is the same 404 whatever the token; a body past 1 MiB is a 413", async () => {
    const user = await createUser();
    const hook = await createHook(user, "dockerhub");
    for (const path of [
      `/api/app/v1/${user.username}/registryhook/call/${"0".repeat(40)}/`,
      `/api/app/v1/${user.username}/registryhook/call/short/`,
      `/api/app/v1/nosuchns/registryhook/call/${"0".repeat(40)}/`,
    ]) {
      const r = await call(path, { method: "POST", body: "{}" });
      expect(r.status).toBe(404);
      expect(await r.json()).toEqual({ error: "Registry hook not found" });
    }
    const big = await call(hook.url, { method: "POST", body: "x".repeat(1024 * 1024 + 1) });
    expect(big.status).toBe(413);
  });
});
