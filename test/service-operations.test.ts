import { HttpResponse, http } from "msw";
import { Webhook } from "standardwebhooks";
import { describe, expect, it, vi } from "vitest";
import { gate, logsOf, readJson, sleep, waitForState as waitFor } from "./helpers/actions";
import {
  as,
  asGo,
  asPython,
  call,
  createOrg,
  createService,
  createTrigger,
  createUser,
  type User,
  uniqueName,
} from "./helpers/api";
import { RFC1123, UUID4, UUID4_PATTERN } from "./helpers/formats";
import { network } from "./helpers/msw";

/**
 * Service operations (POST .../redeploy/ and .../scale/) and the audit
 * actions' cancel/ and retry/, end to end through the real queue
 * (vitest.config.ts: retry delay 0, target timeout 2 s). A held delivery is
 * always released well inside the 2 s timeout, and every test waits for all
 * the actions it started, so no delivery outlives its MSW handler.
 */

type Action = {
  uuid: string;
  resource_uri: string;
  object: string;
  action: string;
  method: string;
  path: string;
  user: string | null;
  state: string;
  is_user_action: boolean;
  can_be_canceled: boolean;
  can_be_retried: boolean;
  trigger: string | null;
  end_date: string | null;
  retry_of: string | null;
};
type Service = {
  uuid: string;
  resource_uri: string;
  name: string;
  state: string;
  target_num_containers: number;
  current_num_containers: number;
  running_num_containers: number;
  max_num_containers: number;
  deployed_datetime: string | null;
  target: { type: string; url: string; secret?: string } | null;
};
type Delivery = {
  id: string | null;
  verified: boolean;
  payload: { type: string; data: Record<string, unknown> } | null;
};

async function webhookService(user: User, body: Record<string, unknown> = {}, ns?: string) {
  const url = `https://${uniqueName("hook")}.example.test/ops`;
  const svc = (await createService(user, { target: { type: "webhook", url }, ...body }, ns)) as unknown as Service;
  const secret = svc.target?.secret as string;
  expect(secret).toMatch(/^whsec_/);
  return { svc, url, secret };
}

/** Records every delivery to `url`, verified with the service's secret, and answers with `answer`. */
function recordDeliveries(url: string, secret: string, answer: (n: number) => Response | Promise<Response>) {
  const deliveries: Delivery[] = [];
  network.use(
    http.post(url, async ({ request }) => {
      const body = await request.text();
      let payload: Delivery["payload"] = null;
      try {
        payload = new Webhook(secret).verify(body, Object.fromEntries(request.headers)) as Delivery["payload"];
      } catch {
        payload = null;
      }
      deliveries.push({ id: request.headers.get("webhook-id"), verified: payload !== null, payload });
      return answer(deliveries.length);
    }),
  );
  return deliveries;
}

async function actionCount(user: User, ns = user.username): Promise<number> {
  const r = await as(user, "GET", `/api/audit/v1/${ns}/action/`);
  expect(r.status).toBe(200);
  return (await r.json<{ meta: { total_count: number } }>()).meta.total_count;
}

/** The checks every accepted operation shares: 202, the service JSON, the action header. */
async function accepted(r: Response, svc: Service, ns: string): Promise<{ body: Service; actionUri: string }> {
  expect(r.status, await r.clone().text()).toBe(202);
  expect(r.headers.get("content-type")).toMatch(/^application\/json/);
  const body = await r.json<Service>();
  expect(body.uuid).toBe(svc.uuid);
  expect(body.resource_uri).toBe(`/api/app/v1/${ns}/service/${svc.uuid}/`);
  const actionUri = r.headers.get("x-dockercloud-action-uri") ?? "";
  expect(actionUri).toMatch(new RegExp(`^/api/audit/v1/${ns}/action/${UUID4_PATTERN}/$`));
  return { body, actionUri };
}

const readAction = (user: User, uri: string) => readJson<Action>(user, uri);
const readService = (user: User, uri: string) => readJson<Service>(user, uri);
const waitForState = (user: User, uri: string, state: string) => waitFor<Action>(user, uri, state);

describe("POST .../service/<S>/redeploy/", () => {
  it("as Python (?reuse_volumes=True, JSON Content-Type, Content-Length 0, namespaced): 202 + action of the user that ends Success", async () => {
    const user = await createUser();
    const svc = (await createService(user)) as unknown as Service;
    expect(svc.deployed_datetime).toBeNull();
    const path = `/api/app/v1/${user.username}/service/${svc.uuid}/redeploy/?reuse_volumes=True`;
    const { body, actionUri } = await accepted(await asPython(user, "POST", path), svc, user.username);
    expect(body.name).toBe(svc.name);

    const action = await readAction(user, actionUri);
    expect(action).toMatchObject({
      resource_uri: actionUri,
      object: svc.resource_uri,
      action: "Service Redeploy",
      method: "POST",
      user: user.username,
      is_user_action: true,
      trigger: null,
      retry_of: null,
    });
    expect(action.path).toBe(`/api/app/v1/${user.username}/service/${svc.uuid}/redeploy/`);
    const done = await waitForState(user, actionUri, "Success");
    expect(done.end_date).toMatch(RFC1123);
    expect(done.can_be_canceled).toBe(false);
    expect(done.can_be_retried).toBe(true);

    const after = await readService(user, svc.resource_uri);
    expect(after.deployed_datetime).toMatch(RFC1123);
    expect(after.state).toBe("Running");
  });

  it("as Go (?reuse_volumes=false, no Content-Type, {} body, not namespaced): 202 + action of the user that ends Success", async () => {
    const user = await createUser();
    const svc = (await createService(user)) as unknown as Service;
    const r = await asGo(user, "POST", `/api/app/v1/service/${svc.uuid}/redeploy/?reuse_volumes=false`);
    const { actionUri } = await accepted(r, svc, user.username);
    const action = await readAction(user, actionUri);
    expect(action.action).toBe("Service Redeploy");
    expect(action.user).toBe(user.username);
    expect(action.is_user_action).toBe(true);
    await waitForState(user, actionUri, "Success");
    expect((await readService(user, svc.resource_uri)).deployed_datetime).toMatch(RFC1123);
  });

  it("reuse_volumes is parsed case-insensitively (True, False, false, TRUE, fAlSe); 'maybe' and 'yes' → 400 and no action", async () => {
    const user = await createUser();
    const svc = (await createService(user)) as unknown as Service;
    const base = `/api/app/v1/${user.username}/service/${svc.uuid}/redeploy/`;
    const uris: string[] = [];
    for (const v of ["True", "False", "false", "TRUE", "fAlSe"]) {
      const { actionUri } = await accepted(
        await asPython(user, "POST", `${base}?reuse_volumes=${v}`),
        svc,
        user.username,
      );
      uris.push(actionUri);
    }
    expect(new Set(uris).size).toBe(5);
    for (const uri of uris) await waitForState(user, uri, "Success");
    const before = await actionCount(user);
    expect(before).toBe(5);
    for (const v of ["maybe", "yes"]) {
      const bad = await asPython(user, "POST", `${base}?reuse_volumes=${v}`);
      expect(bad.status).toBe(400);
      expect(bad.headers.get("x-dockercloud-action-uri")).toBeNull();
      const err = await bad.json<{ error: string }>();
      expect(err.error).toMatch(/reuse_volumes/);
      expect(err.error).toContain(v);
    }
    expect(await actionCount(user)).toBe(before);
  });

  it("an organization member redeploys the organization's service: the action's user is the member", async () => {
    const member = await createUser();
    const org = await createOrg(undefined, [member.username]);
    const svc = (await createService(member, {}, org)) as unknown as Service;
    const r = await asPython(member, "POST", `/api/app/v1/${org}/service/${svc.uuid}/redeploy/`);
    const { actionUri } = await accepted(r, svc, org);
    const done = await waitForState(member, actionUri, "Success");
    expect(done.user).toBe(member.username);
    expect(done.is_user_action).toBe(true);
    expect(done.object).toBe(`/api/app/v1/${org}/service/${svc.uuid}/`);
  });
});

describe("scaling as the SDKs do it: PATCH target_num_containers, then POST .../scale/", () => {
  it("as Python: PATCH to 3, empty POST scale/ → 202 + 'Service Scale' action that ends Success; counts are 3", async () => {
    const user = await createUser();
    const svc = (await createService(user, { target_num_containers: 1, max_num_containers: 5 })) as unknown as Service;
    const patched = await asPython(user, "PATCH", svc.resource_uri, { target_num_containers: 3 });
    expect(patched.status).toBe(200);
    expect((await patched.json<Service>()).target_num_containers).toBe(3);

    const r = await asPython(user, "POST", `${svc.resource_uri}scale/`);
    const { body, actionUri } = await accepted(r, svc, user.username);
    expect(body.target_num_containers).toBe(3);
    const action = await readAction(user, actionUri);
    expect(action).toMatchObject({
      action: "Service Scale",
      user: user.username,
      is_user_action: true,
      method: "POST",
    });
    expect(action.path).toBe(`${svc.resource_uri}scale/`);
    await waitForState(user, actionUri, "Success");

    const after = await readService(user, svc.resource_uri);
    expect(after.target_num_containers).toBe(3);
    expect(after.current_num_containers).toBe(3);
    expect(after.running_num_containers).toBe(3);
    expect(after.state).toBe("Running");
  });

  it("as Go (no Content-Type, {} body, not namespaced): scale to 4 ends Success with 4 containers", async () => {
    const user = await createUser();
    const svc = (await createService(user, { target_num_containers: 1 })) as unknown as Service;
    const patched = await asGo(user, "PATCH", `/api/app/v1/${user.username}/service/${svc.uuid}/`, {
      target_num_containers: 4,
    });
    expect(patched.status).toBe(200);
    const r = await asGo(user, "POST", `/api/app/v1/service/${svc.uuid}/scale/`);
    const { actionUri } = await accepted(r, svc, user.username);
    const done = await waitForState(user, actionUri, "Success");
    expect(done.action).toBe("Service Scale");
    const after = await readService(user, svc.resource_uri);
    expect([after.target_num_containers, after.current_num_containers, after.running_num_containers]).toEqual([
      4, 4, 4,
    ]);
  });

  it("PATCH beyond max_num_containers → 400 and the count is unchanged", async () => {
    const user = await createUser();
    const svc = (await createService(user, { target_num_containers: 2, max_num_containers: 4 })) as unknown as Service;
    const over = await asPython(user, "PATCH", svc.resource_uri, { target_num_containers: 5 });
    expect(over.status).toBe(400);
    expect((await over.json<{ error: string }>()).error).toMatch(/max_num_containers/);
    expect((await readService(user, svc.resource_uri)).target_num_containers).toBe(2);
    const edge = await asPython(user, "PATCH", svc.resource_uri, { target_num_containers: 4 });
    expect(edge.status).toBe(200);
    expect((await edge.json<Service>()).target_num_containers).toBe(4);
  });
});

describe("service operations with a webhook target", () => {
  it("redeploy delivers a signed 'service.redeploy' carrying reuse_volumes true / false / null", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user);
    const deliveries = recordDeliveries(url, secret, () => HttpResponse.json({ ok: true }));
    const base = `/api/app/v1/${user.username}/service/${svc.uuid}/redeploy/`;
    const uris: string[] = [];
    for (const send of [
      () => asPython(user, "POST", `${base}?reuse_volumes=True`),
      () => asGo(user, "POST", `${base}?reuse_volumes=false`),
      () => asPython(user, "POST", base),
    ]) {
      const { actionUri } = await accepted(await send(), svc, user.username);
      uris.push(actionUri);
      await waitForState(user, actionUri, "Success");
    }
    await sleep(200);
    expect(deliveries).toHaveLength(3);
    expect(deliveries.every((d) => d.verified)).toBe(true);
    expect(deliveries.map((d) => d.payload?.type)).toEqual([
      "service.redeploy",
      "service.redeploy",
      "service.redeploy",
    ]);
    expect(deliveries.map((d) => d.payload?.data.reuse_volumes)).toEqual([true, false, null]);
    expect(deliveries.map((d) => d.id)).toEqual(uris.map((u) => u.split("/").at(-2)));
    expect(deliveries[0]?.payload?.data).toMatchObject({
      namespace: user.username,
      trigger: null,
      action: { uuid: uris[0]?.split("/").at(-2), resource_uri: uris[0] },
      service: { uuid: svc.uuid, resource_uri: svc.resource_uri },
    });
  });

  it("scale delivers a signed 'service.scale' carrying target_num_containers N", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user, { target_num_containers: 1, max_num_containers: 8 });
    const deliveries = recordDeliveries(url, secret, () => HttpResponse.json({ ok: true }));
    expect((await asPython(user, "PATCH", svc.resource_uri, { target_num_containers: 6 })).status).toBe(200);
    const { actionUri } = await accepted(await asPython(user, "POST", `${svc.resource_uri}scale/`), svc, user.username);
    await waitForState(user, actionUri, "Success");
    await sleep(200);
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]?.verified).toBe(true);
    expect(deliveries[0]?.payload).toMatchObject({
      type: "service.scale",
      data: { target_num_containers: 6, scale_by: null, trigger: null, reuse_volumes: null },
    });
    const after = await readService(user, svc.resource_uri);
    expect([after.target_num_containers, after.current_num_containers, after.running_num_containers]).toEqual([
      6, 6, 6,
    ]);
  });

  it("share the per-service order with trigger calls: behind a held call, redeploy/ and scale/ stay Pending, then run in order", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user, { target_num_containers: 1 });
    const g = gate();
    const deliveries = recordDeliveries(url, secret, async (n) => {
      if (n === 1) await g.wait;
      return HttpResponse.json({ ok: true });
    });
    const trigger = await createTrigger(user, svc as never);
    const called = await call(trigger.url, { method: "POST" });
    expect(called.status).toBe(202);
    const first = await called.json<Action>();
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });

    const redeploy = await accepted(await asPython(user, "POST", `${svc.resource_uri}redeploy/`), svc, user.username);
    expect((await asPython(user, "PATCH", svc.resource_uri, { target_num_containers: 2 })).status).toBe(200);
    const scale = await accepted(await asPython(user, "POST", `${svc.resource_uri}scale/`), svc, user.username);
    await sleep(150);
    expect((await readAction(user, first.resource_uri)).state).toBe("In progress");
    expect((await readAction(user, redeploy.actionUri)).state).toBe("Pending");
    expect((await readAction(user, scale.actionUri)).state).toBe("Pending");
    expect(deliveries).toHaveLength(1);

    g.release();
    for (const uri of [first.resource_uri, redeploy.actionUri, scale.actionUri])
      await waitForState(user, uri, "Success");
    await sleep(200);
    expect(deliveries.map((d) => d.payload?.type)).toEqual(["service.redeploy", "service.redeploy", "service.scale"]);
    expect(deliveries.map((d) => d.id)).toEqual([
      first.uuid,
      redeploy.actionUri.split("/").at(-2),
      scale.actionUri.split("/").at(-2),
    ]);
  });
});

describe("POST /api/audit/v1/[<ns>/]action/<uuid>/cancel/", () => {
  it("cancels a Pending action (200, Canceled, never delivered); In progress → 409; finished → 409", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user, { target_num_containers: 1 });
    const g = gate();
    const deliveries = recordDeliveries(url, secret, async (n) => {
      if (n === 1) await g.wait;
      return HttpResponse.json({ ok: true });
    });
    const held = await accepted(await asPython(user, "POST", `${svc.resource_uri}redeploy/`), svc, user.username);
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
    const pending = await accepted(await asPython(user, "POST", `${svc.resource_uri}redeploy/`), svc, user.username);
    const later = await accepted(await asPython(user, "POST", `${svc.resource_uri}scale/`), svc, user.username);
    const pendingUuid = pending.actionUri.split("/").at(-2) as string;
    expect((await readAction(user, pending.actionUri)).can_be_canceled).toBe(true);

    // Pending → Canceled (namespaced path).
    const canceled = await asPython(user, "POST", `/api/audit/v1/${user.username}/action/${pendingUuid}/cancel/`);
    expect(canceled.status).toBe(200);
    const c = await canceled.json<Action>();
    expect(c.uuid).toBe(pendingUuid);
    expect(c.state).toBe("Canceled");
    expect(c.can_be_canceled).toBe(false);
    expect(c.can_be_retried).toBe(true);
    expect(c.end_date).toMatch(RFC1123);
    expect(c).not.toHaveProperty("logs");
    expect(await logsOf(user, c.resource_uri)).toContain(`canceled by "${user.username}"`);

    // In progress → 409 JSON (non-namespaced path).
    const heldUuid = held.actionUri.split("/").at(-2) as string;
    const busy = await asGo(user, "POST", `/api/audit/v1/action/${heldUuid}/cancel/`);
    expect(busy.status).toBe(409);
    expect(busy.headers.get("content-type")).toMatch(/^application\/json/);
    expect((await busy.json<{ error: string }>()).error).toMatch(/In progress/);
    expect((await readAction(user, held.actionUri)).state).toBe("In progress");

    g.release();
    await waitForState(user, held.actionUri, "Success");
    await waitForState(user, later.actionUri, "Success");
    await sleep(200);
    // The canceled action was skipped; the one behind it ran.
    expect(deliveries.map((d) => d.id)).toEqual([heldUuid, later.actionUri.split("/").at(-2)]);
    expect((await readAction(user, pending.actionUri)).state).toBe("Canceled");

    // Finished (Success, Canceled) → 409.
    const done = await asPython(user, "POST", `/api/audit/v1/action/${heldUuid}/cancel/`);
    expect(done.status).toBe(409);
    expect((await done.json<{ error: string }>()).error).toMatch(/Success/);
    const again = await asPython(user, "POST", `/api/audit/v1/action/${pendingUuid}/cancel/`);
    expect(again.status).toBe(409);
    expect((await again.json<{ error: string }>()).error).toMatch(/Canceled/);
  });

  it("an unknown action → 404", async () => {
    const user = await createUser();
    const r = await asPython(user, "POST", `/api/audit/v1/action/${crypto.randomUUID()}/cancel/`);
    expect(r.status).toBe(404);
    const r2 = await asPython(user, "POST", `/api/audit/v1/${user.username}/action/${crypto.randomUUID()}/cancel/`);
    expect(r2.status).toBe(404);
  });
});

describe("POST /api/audit/v1/[<ns>/]action/<uuid>/retry/", () => {
  it("a Failed action (webhook answered 400) → 202 with a NEW action (retry_of = old) that is delivered again and succeeds", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user);
    const deliveries = recordDeliveries(url, secret, (n) =>
      n === 1 ? HttpResponse.json({ error: "bad image" }, { status: 400 }) : HttpResponse.json({ ok: true }),
    );
    const trigger = await createTrigger(user, svc as never);
    const called = await call(trigger.url, { method: "POST", body: '{"ref":"main"}' });
    expect(called.status).toBe(202);
    const old = await called.json<Action>();
    const failed = await waitForState(user, old.resource_uri, "Failed");
    expect(await logsOf(user, failed.resource_uri)).toMatch(/target answered 400/);
    expect(failed.can_be_retried).toBe(true);

    const r = await asPython(user, "POST", `/api/audit/v1/action/${old.uuid}/retry/`);
    expect(r.status).toBe(202);
    const fresh = await r.json<Action>();
    expect(fresh.uuid).not.toBe(old.uuid);
    expect(fresh.uuid).toMatch(UUID4);
    expect(fresh.retry_of).toBe(old.uuid);
    expect(r.headers.get("x-dockercloud-action-uri")).toBe(fresh.resource_uri);
    expect(fresh.resource_uri).toBe(`/api/audit/v1/${user.username}/action/${fresh.uuid}/`);
    expect(fresh.action).toBe("Service Redeploy");
    expect(fresh.user).toBe(user.username);
    expect(fresh.is_user_action).toBe(true);
    expect(fresh.object).toBe(svc.resource_uri);
    expect(fresh).not.toHaveProperty("logs");
    expect(await logsOf(user, fresh.resource_uri)).toContain(`retry of action ${old.uuid}`);

    const done = await waitForState(user, fresh.resource_uri, "Success");
    expect(done.retry_of).toBe(old.uuid);
    await sleep(200);
    expect(deliveries.map((d) => d.id)).toEqual([old.uuid, fresh.uuid]);
    expect(deliveries[1]?.payload).toMatchObject({
      type: "service.redeploy",
      data: { trigger_body: '{"ref":"main"}' },
    });
    // The old action stays as it was.
    const stillFailed = await readAction(user, old.resource_uri);
    expect(stillFailed.state).toBe("Failed");
    expect(stillFailed.retry_of).toBeNull();
    expect(await actionCount(user)).toBe(2);
  });

  it("a Pending or In progress action → 409; Success and Canceled may be retried (202, delivered again)", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user, { target_num_containers: 1 });
    const g = gate();
    const deliveries = recordDeliveries(url, secret, async (n) => {
      if (n === 1) await g.wait;
      return HttpResponse.json({ ok: true });
    });
    const held = await accepted(await asPython(user, "POST", `${svc.resource_uri}redeploy/`), svc, user.username);
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
    const pending = await accepted(await asPython(user, "POST", `${svc.resource_uri}redeploy/`), svc, user.username);
    const heldUuid = held.actionUri.split("/").at(-2) as string;
    const pendingUuid = pending.actionUri.split("/").at(-2) as string;

    const r1 = await asPython(user, "POST", `/api/audit/v1/${user.username}/action/${pendingUuid}/retry/`);
    expect(r1.status).toBe(409);
    expect((await r1.json<{ error: string }>()).error).toMatch(/Pending/);
    const r2 = await asPython(user, "POST", `/api/audit/v1/action/${heldUuid}/retry/`);
    expect(r2.status).toBe(409);
    expect((await r2.json<{ error: string }>()).error).toMatch(/In progress/);
    expect(await actionCount(user)).toBe(2);

    // Cancel the Pending one, then let the held one finish.
    expect((await asPython(user, "POST", `/api/audit/v1/action/${pendingUuid}/cancel/`)).status).toBe(200);
    g.release();
    await waitForState(user, held.actionUri, "Success");

    const fromSuccess = await asPython(user, "POST", `/api/audit/v1/action/${heldUuid}/retry/`);
    expect(fromSuccess.status).toBe(202);
    const a = await fromSuccess.json<Action>();
    expect(a.retry_of).toBe(heldUuid);
    expect(fromSuccess.headers.get("x-dockercloud-action-uri")).toBe(a.resource_uri);
    await waitForState(user, a.resource_uri, "Success");

    const fromCanceled = await asGo(user, "POST", `/api/audit/v1/${user.username}/action/${pendingUuid}/retry/`);
    expect(fromCanceled.status).toBe(202);
    const b = await fromCanceled.json<Action>();
    expect(b.retry_of).toBe(pendingUuid);
    expect(b.uuid).not.toBe(pendingUuid);
    await waitForState(user, b.resource_uri, "Success");

    await sleep(200);
    expect(deliveries.map((d) => d.id)).toEqual([heldUuid, a.uuid, b.uuid]);
    expect(await actionCount(user)).toBe(4);
  });
});

describe("access", () => {
  it("non-members: redeploy/ and scale/ → 403 namespaced, 404 not namespaced; no action is created", async () => {
    const owner = await createUser();
    const stranger = await createUser();
    const svc = (await createService(owner)) as unknown as Service;
    for (const op of ["redeploy", "scale"]) {
      const named = await asPython(stranger, "POST", `/api/app/v1/${owner.username}/service/${svc.uuid}/${op}/`);
      expect(named.status).toBe(403);
      expect((await named.json<{ error: string }>()).error).toBeTypeOf("string");
      const located = await asGo(stranger, "POST", `/api/app/v1/service/${svc.uuid}/${op}/`);
      expect(located.status).toBe(404);
      const anonymous = await call(`/api/app/v1/service/${svc.uuid}/${op}/`, { method: "POST" });
      expect(anonymous.status).toBe(401);
    }
    expect(await actionCount(owner)).toBe(0);
  });

  it("non-members: cancel/ and retry/ → 403 namespaced, 404 not namespaced; the action is untouched", async () => {
    const owner = await createUser();
    const stranger = await createUser();
    const svc = (await createService(owner)) as unknown as Service;
    const { actionUri } = await accepted(
      await asPython(owner, "POST", `${svc.resource_uri}redeploy/`),
      svc,
      owner.username,
    );
    await waitForState(owner, actionUri, "Success");
    const uuid = actionUri.split("/").at(-2) as string;
    for (const op of ["cancel", "retry"]) {
      const named = await asPython(stranger, "POST", `/api/audit/v1/${owner.username}/action/${uuid}/${op}/`);
      expect(named.status).toBe(403);
      const located = await asPython(stranger, "POST", `/api/audit/v1/action/${uuid}/${op}/`);
      expect(located.status).toBe(404);
      const anonymous = await call(`/api/audit/v1/action/${uuid}/${op}/`, { method: "POST" });
      expect(anonymous.status).toBe(401);
    }
    expect(await actionCount(owner)).toBe(1);
    expect((await readAction(owner, actionUri)).state).toBe("Success");
  });

  it("a user outside an organization: 403 on its service operations", async () => {
    const member = await createUser();
    const outsider = await createUser();
    const org = await createOrg(undefined, [member.username]);
    const svc = (await createService(member, {}, org)) as unknown as Service;
    const r = await asPython(outsider, "POST", `/api/app/v1/${org}/service/${svc.uuid}/redeploy/`);
    expect(r.status).toBe(403);
    expect(await actionCount(member, org)).toBe(0);
  });
});
