import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { HttpResponse, http } from "msw";
import { describe, expect, it, vi } from "vitest";
import { FINISHED, logsOf, sleep } from "./helpers/actions";
import {
  as,
  call,
  createService,
  createTrigger,
  createUser,
  type ServiceJson,
  type TriggerJson,
  type User,
  uniqueName,
} from "./helpers/api";
import { UUID4 } from "./helpers/formats";
import { network } from "./helpers/msw";

type Action = { uuid: string; resource_uri: string; state: string; path: string; start_date: string };
type Envelope<T> = { meta: { total_count: number; next: string | null }; objects: T[] };

/** Every object of a list, following `next` (at most 100 per page). */
async function listAll<T>(user: User, path: string): Promise<{ total: number; objects: T[] }> {
  const objects: T[] = [];
  let next: string | null = `${path}${path.includes("?") ? "&" : "?"}limit=100`;
  let total = -1;
  while (next) {
    const r = await as(user, "GET", next);
    expect(r.status, `GET ${next}`).toBe(200);
    const page = await r.json<Envelope<T>>();
    total = page.meta.total_count;
    objects.push(...page.objects);
    next = page.meta.next;
  }
  return { total, objects };
}

/** The actions of one service, oldest first. */
async function serviceActions(user: User, svc: ServiceJson): Promise<Action[]> {
  const { objects } = await listAll<Action>(
    user,
    `/api/audit/v1/action/?object=${encodeURIComponent(svc.resource_uri)}`,
  );
  return objects.reverse();
}

/** Waits until every action of the service is finished, and returns them oldest first. */
async function settledActions(user: User, svc: ServiceJson, timeout = 15_000): Promise<Action[]> {
  let actions: Action[] = [];
  await vi.waitUntil(
    async () => {
      actions = await serviceActions(user, svc);
      return actions.every((a) => FINISHED.includes(a.state));
    },
    { timeout, interval: 50 },
  );
  return actions;
}

async function getService(user: User, svc: ServiceJson): Promise<Record<string, unknown>> {
  const r = await as(user, "GET", svc.resource_uri);
  expect(r.status).toBe(200);
  return r.json<Record<string, unknown>>();
}

const post = (url: string) => call(url, { method: "POST" });

describe("concurrent creates", () => {
  it("50 concurrent service creates: all 201, distinct uuid4s, all listed, total_count exact", async () => {
    const user = await createUser();
    const names = Array.from({ length: 50 }, () => uniqueName("svc"));
    const answers = await Promise.all(
      names.map((name) => as(user, "POST", "/api/app/v1/service/", { image: "tutum/hello-world", name })),
    );
    expect(answers.map((r) => r.status)).toEqual(names.map(() => 201));
    const created = await Promise.all(answers.map((r) => r.json<ServiceJson>()));
    const uuids = created.map((s) => s.uuid);
    for (const u of uuids) expect(u).toMatch(UUID4);
    expect(new Set(uuids).size).toBe(50);
    expect(created.map((s) => s.name).sort()).toEqual([...names].sort());

    const { total, objects } = await listAll<ServiceJson>(user, "/api/app/v1/service/");
    expect(total).toBe(50);
    expect(objects.map((s) => s.uuid).sort()).toEqual([...uuids].sort());
    // Each is found by uuid, also through the non-namespaced path (the service locator).
    const found = await Promise.all(uuids.map((u) => as(user, "GET", `/api/app/v1/service/${u}/`)));
    expect(found.map((r) => r.status)).toEqual(uuids.map(() => 200));
  });

  it("50 concurrent trigger creates on one service: all 201, distinct uuid4s, all listed, total_count exact", async () => {
    const user = await createUser();
    const svc = await createService(user);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        as(user, "POST", `${svc.resource_uri}trigger/`, { name: `t${i}`, operation: i % 2 ? "SCALEUP" : "REDEPLOY" }),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 201));
    const created = await Promise.all(answers.map((r) => r.json<TriggerJson>()));
    const uuids = created.map((t) => t.uuid);
    for (const u of uuids) expect(u).toMatch(UUID4);
    expect(new Set(uuids).size).toBe(50);
    expect(new Set(created.map((t) => t.url)).size).toBe(50);

    const { total, objects } = await listAll<TriggerJson>(user, `${svc.resource_uri}trigger/`);
    expect(total).toBe(50);
    expect(objects.map((t) => t.uuid).sort()).toEqual([...uuids].sort());
    const filtered = await as(user, "GET", `${svc.resource_uri}trigger/?name=t7`);
    expect((await filtered.json<Envelope<TriggerJson>>()).meta.total_count).toBe(1);
  });
});

describe("a call racing a delete", () => {
  it("calls racing a trigger DELETE: 202 or 404 only, every 202's action exists and succeeds, no orphan action", async () => {
    const user = await createUser();
    const seen = new Set<number>();
    for (let round = 0; round < 4; round++) {
      const svc = await createService(user);
      const trigger = await createTrigger(user, svc, { rate_limit: 100000 });
      // The DELETE goes out among the calls, which keep going out while it runs.
      const calls: Promise<Response>[] = [];
      let del: Promise<Response> | undefined;
      for (let i = 0; i < 20; i++) {
        if (i === 2 + round) del = as(user, "DELETE", `${svc.resource_uri}trigger/${trigger.uuid}/`);
        calls.push(post(trigger.url));
        await sleep(2);
      }
      const [answers, deleted] = await Promise.all([Promise.all(calls), del as Promise<Response>]);
      expect(deleted.status).toBe(200);

      const statuses = answers.map((r) => r.status);
      for (const s of statuses) expect([202, 404]).toContain(s);
      for (const s of statuses) seen.add(s);
      const accepted: string[] = [];
      for (const r of answers) {
        const body = await r.json<{ uuid?: string; error?: string }>();
        if (r.status === 202) {
          expect(r.headers.get("X-DockerCloud-Action-URI")).toMatch(/^\/api\/audit\/v1\/.+\/action\/.+\/$/);
          accepted.push(body.uuid as string);
        } else {
          expect(body).toEqual({ error: "Trigger not found" });
        }
      }

      const actions = await settledActions(user, svc);
      const distinct = new Set(accepted);
      expect(actions.map((a) => a.uuid).sort()).toEqual([...distinct].sort());
      for (const a of actions) expect(a.state, await logsOf(user, a.resource_uri)).toBe("Success");

      // Once the DELETE has answered, the trigger is dead.
      const after = await Promise.all(Array.from({ length: 5 }, () => post(trigger.url)));
      expect(after.map((r) => r.status)).toEqual([404, 404, 404, 404, 404]);
      expect((await serviceActions(user, svc)).length).toBe(actions.length);
    }
    // The race happened: some calls landed before the DELETE, some after.
    expect([...seen].sort()).toEqual([202, 404]);
  });

  it("calls racing a service DELETE (terminate): 202 or 404 only, every 202's action ends Success or Failed with a reason", async () => {
    const user = await createUser();
    const webhook = `https://race-${uniqueName("h")}.example.test/hook`;
    let deliveryStarts: number[] = [];
    const seen = new Set<number>();
    network.use(
      http.post(webhook, async () => {
        deliveryStarts.push(Date.now());
        await sleep(40);
        return HttpResponse.json({ ok: true });
      }),
    );
    for (let round = 0; round < 4; round++) {
      // Odd rounds: a slow webhook target, and the DELETE once an action is In progress.
      const withTarget = round % 2 === 1;
      deliveryStarts = [];
      const svc = await createService(user, {
        max_num_containers: 100,
        ...(withTarget ? { target: { type: "webhook", url: webhook } } : {}),
      });
      const redeploy = await createTrigger(user, svc, { rate_limit: 100000 });
      const scaleup = await createTrigger(user, svc, { operation: "SCALEUP", rate_limit: 100000 });
      const calls: Promise<Response>[] = [];
      let del: Promise<Response> | undefined;
      let deletedAt = 0;
      for (let i = 0; i < 20; i++) {
        if (i === (withTarget ? 10 : 2 + round)) {
          // (Polled: a promise settled by the MSW handler would run on in the queue consumer's request.)
          if (withTarget) await vi.waitUntil(() => deliveryStarts.length > 0, { timeout: 5_000, interval: 2 });
          del = as(user, "DELETE", svc.resource_uri).then((r) => {
            deletedAt = Date.now();
            return r;
          });
        }
        calls.push(post(i % 2 ? scaleup.url : redeploy.url));
        await sleep(2);
      }
      const [answers, deleted] = await Promise.all([Promise.all(calls), del as Promise<Response>]);
      expect(deleted.status).toBe(202);
      expect((await deleted.json<{ state: string }>()).state).toBe("Terminated");

      const accepted = new Set<string>();
      for (const r of answers) {
        expect([202, 404]).toContain(r.status);
        seen.add(r.status);
        const body = await r.json<{ uuid?: string }>();
        if (r.status === 202) accepted.add(body.uuid as string);
      }

      const actions = await settledActions(user, svc);
      expect(actions.map((a) => a.uuid).sort()).toEqual([...accepted].sort());
      for (const a of actions) {
        const logs = await logsOf(user, a.resource_uri);
        expect(["Success", "Failed"], logs).toContain(a.state);
        if (a.state === "Failed") expect(logs).toMatch(/terminated|no longer exists/);
      }
      if (withTarget) {
        // The calls still waiting when the service went failed (with their reason, checked above).
        expect(actions.some((a) => a.state === "Failed")).toBe(true);
        await sleep(150);
        // Nothing of a terminated service is delivered after the DELETE answered.
        expect(deliveryStarts.filter((t) => t > deletedAt)).toEqual([]);
        const again = await serviceActions(user, svc);
        expect(again.map((a) => [a.uuid, a.state])).toEqual(actions.map((a) => [a.uuid, a.state]));
      }

      const after = await Promise.all([post(redeploy.url), post(scaleup.url), post(`${scaleup.url}2/`)]);
      expect(after.map((r) => r.status)).toEqual([404, 404, 404]);
      expect((await as(user, "GET", svc.resource_uri)).status).toBe(404);
      expect((await serviceActions(user, svc)).length).toBe(actions.length);
    }
    expect([...seen].sort()).toEqual([202, 404]);
  });
});

describe("concurrent SCALEUP", () => {
  it("40 concurrent call/1/ and call/3/ never take the target past max_num_containers", async () => {
    const user = await createUser();
    const svc = await createService(user, { target_num_containers: 1, max_num_containers: 10 });
    const one = await createTrigger(user, svc, { operation: "SCALEUP", rate_limit: 100000 });
    const three = await createTrigger(user, svc, { operation: "SCALEUP", rate_limit: 100000 });

    // The count never passes 10 while the calls and their actions run.
    let sampling = true;
    let highest = 0;
    const sampler = (async () => {
      while (sampling) {
        const s = await getService(user, svc);
        highest = Math.max(highest, s.target_num_containers as number);
        await sleep(5);
      }
    })();

    const requests = Array.from({ length: 40 }, (_, i) => ({
      scaleBy: i % 2 ? 3 : 1,
      url: i % 2 ? `${three.url}3/` : `${one.url}1/`,
    }));
    const answers = await Promise.all(requests.map((q) => post(q.url)));
    const scaleByAction = new Map<string, number>();
    let refused = 0;
    for (const [i, r] of answers.entries()) {
      expect([202, 409]).toContain(r.status);
      const body = await r.json<{ uuid?: string; error?: string }>();
      if (r.status === 202) scaleByAction.set(body.uuid as string, requests[i]?.scaleBy as number);
      else {
        refused += 1;
        expect(body.error).toMatch(/max_num_containers/);
      }
    }
    const acceptedSum = [...scaleByAction.values()].reduce((a, b) => a + b, 0);
    // 9 containers are free; there are more than enough call/1/ to fill them all.
    expect(acceptedSum).toBe(9);
    expect(refused).toBe(40 - scaleByAction.size);

    const actions = await settledActions(user, svc);
    sampling = false;
    await sampler;
    expect(actions.map((a) => a.uuid).sort()).toEqual([...scaleByAction.keys()].sort());
    const successSum = actions
      .filter((a) => a.state === "Success")
      .reduce((sum, a) => sum + (scaleByAction.get(a.uuid) ?? 0), 0);
    const final = await getService(user, svc);
    expect(final.target_num_containers).toBeLessThanOrEqual(10);
    expect(final.target_num_containers).toBe(1 + successSum);
    expect(final.target_num_containers).toBe(10);
    expect(highest).toBeLessThanOrEqual(10);

    // Storage agrees with the answers: each action's scale_by is the N its call was accepted with.
    const ns = env.NAMESPACES.getByName(user.username);
    const rows = await runInDurableObject(ns, (_o, state) =>
      state.storage.sql
        .exec<{ uuid: string; scale_by: number }>("SELECT uuid, scale_by FROM actions WHERE service_uuid = ?", svc.uuid)
        .toArray(),
    );
    expect(new Map(rows.map((r) => [r.uuid, r.scale_by]))).toEqual(scaleByAction);

    // Full: one more call of either kind is refused.
    expect((await post(`${one.url}1/`)).status).toBe(409);
  });
});

describe("per-service order", () => {
  it("never runs two operations of one service at once, delivers them in action order, and overlaps services", async () => {
    const user = await createUser();
    const host = `https://order-${uniqueName("h")}.example.test`;
    const inFlight = new Map<string, number>();
    const maxInFlight = new Map<string, number>();
    const delivered = new Map<string, string[]>();
    let globalInFlight = 0;
    let globalMax = 0;
    network.use(
      http.post(`${host}/:service`, async ({ request, params }) => {
        const service = params.service as string;
        const id = request.headers.get("webhook-id") as string;
        const now = (inFlight.get(service) ?? 0) + 1;
        inFlight.set(service, now);
        maxInFlight.set(service, Math.max(maxInFlight.get(service) ?? 0, now));
        globalInFlight += 1;
        globalMax = Math.max(globalMax, globalInFlight);
        delivered.set(service, [...(delivered.get(service) ?? []), id]);
        await sleep(30);
        inFlight.set(service, (inFlight.get(service) ?? 1) - 1);
        globalInFlight -= 1;
        return HttpResponse.json({ ok: true });
      }),
    );

    const services: { svc: ServiceJson; scaleup: TriggerJson; key: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const key = `s${i}`;
      const svc = await createService(user, {
        max_num_containers: 50,
        target: { type: "webhook", url: `${host}/${key}` },
      });
      const scaleup = await createTrigger(user, svc, { operation: "SCALEUP", rate_limit: 100000 });
      services.push({ svc, scaleup, key });
    }

    const requests: Promise<Response>[] = [];
    for (let i = 0; i < 20; i++) {
      const { svc, scaleup } = services[i % 3] as (typeof services)[number];
      const kind = Math.floor(i / 3) % 3;
      if (kind === 0) requests.push(post(scaleup.url));
      else if (kind === 1) requests.push(as(user, "POST", `${svc.resource_uri}redeploy/`));
      else requests.push(as(user, "POST", `${svc.resource_uri}scale/`));
    }
    const answers = await Promise.all(requests);
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 202));

    for (const { svc, key } of services) {
      const actions = await settledActions(user, svc);
      for (const a of actions) expect(a.state, await logsOf(user, a.resource_uri)).toBe("Success");
      // Each action delivered once, in the order the actions were recorded (seq).
      const seqOrder = await runInDurableObject(env.NAMESPACES.getByName(user.username), (_o, state) =>
        state.storage.sql
          .exec<{ uuid: string }>("SELECT uuid FROM actions WHERE service_uuid = ? ORDER BY seq", svc.uuid)
          .toArray()
          .map((r) => r.uuid),
      );
      expect(actions.map((a) => a.uuid)).toEqual(seqOrder);
      expect(delivered.get(key)).toEqual(seqOrder);
      expect(maxInFlight.get(key), `service ${key}`).toBe(1);
    }
    expect([...delivered.values()].flat()).toHaveLength(20);
    // Services do not wait on each other.
    expect(globalMax).toBeGreaterThan(1);
  });
});
