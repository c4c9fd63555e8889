import { HttpResponse, http } from "msw";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { logsOf, sleep, WAIT } from "./helpers/actions";
import { as, call, createTrigger, createUser, type User, uniqueName } from "./helpers/api";
import { network } from "./helpers/msw";

/**
 * End to end through the real queues (vitest.config.ts: retry base delay 0,
 * MAX_ATTEMPTS 4, target timeout 2 s). Each test waits for every action it started to
 * finish, so no delivery outlives its MSW handler.
 */

const MAX_ATTEMPTS = 4;

type Action = { uuid: string; resource_uri: string; state: string; end_date: string | null };
type Service = { uuid: string; resource_uri: string; target_num_containers: number; target: { secret: string } };
type Delivery = { action: string | null; verified: boolean; payload: Record<string, unknown> | null };

/** Releases for resolvers a test holds; run after each test even when it fails. */
const releases: (() => void)[] = [];
afterEach(() => {
  for (const release of releases.splice(0)) release();
});

async function webhookService(user: User, body: Record<string, unknown> = {}) {
  const url = `https://${uniqueName("hook")}.example.test/ops`;
  const r = await as(user, "POST", "/api/app/v1/service/", {
    image: "tutum/hello-world",
    name: uniqueName("svc"),
    target: { type: "webhook", url },
    ...body,
  });
  expect(r.status).toBe(201);
  const svc = await r.json<Service>();
  return { svc, url, secret: svc.target.secret };
}

/** Records every delivery to `url`, verified with the service's secret, and answers with `answer`. */
function recordDeliveries(
  url: string,
  secret: string,
  answer: (n: number, d: Delivery) => Response | Promise<Response>,
) {
  const deliveries: Delivery[] = [];
  network.use(
    http.post(url, async ({ request }) => {
      const body = await request.text();
      const headers = Object.fromEntries(request.headers);
      let payload: Record<string, unknown> | null = null;
      try {
        payload = new Webhook(secret).verify(body, headers) as Record<string, unknown>;
      } catch {
        payload = null;
      }
      const d: Delivery = { action: request.headers.get("webhook-id"), verified: payload !== null, payload };
      deliveries.push(d);
      return answer(deliveries.length, d);
    }),
  );
  return deliveries;
}

async function fire(path: string): Promise<Action> {
  const r = await call(path, { method: "POST", body: '{"source":"ci"}' });
  expect(r.status, await r.clone().text()).toBe(202);
  return r.json<Action>();
}

async function read(user: User, a: { resource_uri: string }): Promise<Action> {
  const r = await as(user, "GET", a.resource_uri);
  expect(r.status).toBe(200);
  return r.json<Action>();
}

const waitForState = (user: User, a: Action, state: string, opts = WAIT) =>
  vi.waitUntil(async () => {
    const now = await read(user, a);
    return now.state === state ? now : false;
  }, opts);

const attemptLines = async (user: User, a: Action) =>
  (await logsOf(user, a.resource_uri)).split("\n").filter((l) => /attempt \d+:/.test(l));

describe("retries through the real queue", () => {
  it("503, 503, then 200 → Success after exactly 3 signed deliveries of the same webhook-id", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user);
    const deliveries = recordDeliveries(url, secret, (n) =>
      n <= 2 ? new HttpResponse("try later", { status: 503 }) : HttpResponse.json({ ok: true }),
    );
    const trigger = await createTrigger(user, svc as never);
    const action = await fire(trigger.url);

    const done = await waitForState(user, action, "Success");
    await sleep(300); // nothing more may arrive once the action succeeded
    expect(deliveries).toHaveLength(3);
    for (const d of deliveries) {
      expect(d.action).toBe(action.uuid);
      expect(d.verified).toBe(true);
      expect(d.payload).toMatchObject({ type: "service.redeploy", data: { action: { uuid: action.uuid } } });
    }
    const lines = await attemptLines(user, done);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/attempt 1: target answered 503: "try later"/);
    expect(lines[1]).toMatch(/attempt 2: target answered 503: "try later"/);
    expect(lines[2]).toMatch(/attempt 3: target answered 200/);
    expect(done.end_date).not.toBeNull();
  });

  it("always 500 → Failed after MAX_ATTEMPTS deliveries, last error logged", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user);
    const deliveries = recordDeliveries(url, secret, (n) => new HttpResponse(`boom #${n}`, { status: 500 }));
    const trigger = await createTrigger(user, svc as never);
    const action = await fire(trigger.url);

    const failed = await waitForState(user, action, "Failed");
    await sleep(300);
    expect(deliveries).toHaveLength(MAX_ATTEMPTS);
    expect(new Set(deliveries.map((d) => d.action))).toEqual(new Set([action.uuid]));
    expect(deliveries.every((d) => d.verified)).toBe(true);
    const lines = await attemptLines(user, failed);
    expect(lines).toHaveLength(MAX_ATTEMPTS);
    expect(lines[MAX_ATTEMPTS - 1]).toMatch(/attempt 4: target answered 500: "boom #4"/);
    expect(await logsOf(user, failed.resource_uri)).toMatch(
      /gave up after 4 attempt\(s\); last error: target answered 500: "boom #4"/,
    );
    expect(failed.end_date).not.toBeNull();
  });

  it("400 → Failed after exactly 1 delivery, never retried", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user);
    const deliveries = recordDeliveries(url, secret, () => HttpResponse.json({ error: "bad image" }, { status: 400 }));
    const trigger = await createTrigger(user, svc as never);
    const action = await fire(trigger.url);

    const failed = await waitForState(user, action, "Failed");
    await sleep(500);
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]?.action).toBe(action.uuid);
    const lines = await attemptLines(user, failed);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/attempt 1: target answered 400: "\{\\"error\\":\\"bad image\\"\}"/);
    expect(await logsOf(user, failed.resource_uri)).not.toMatch(/gave up/);
  });
});

describe("SCALEUP bounds", () => {
  it("2 → 4 with max 4 succeeds; one more fails with a reason naming max_num_containers; target stays 4", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user, { target_num_containers: 2, max_num_containers: 4 });
    const deliveries = recordDeliveries(url, secret, () => HttpResponse.json({ ok: true }));
    const trigger = await createTrigger(user, svc as never, { operation: "SCALEUP" });

    const up2 = await fire(`${trigger.url}2/`);
    await waitForState(user, up2, "Success");
    expect((await (await as(user, "GET", svc.resource_uri)).json<Service>()).target_num_containers).toBe(4);
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]?.payload).toMatchObject({
      type: "service.scaleup",
      data: { scale_by: 2, target_num_containers: 4 },
    });

    // The call may be refused up front (409, when the Worker checks the bound at
    // call time too) or accepted and failed when it runs; either way the reason
    // names max_num_containers, the target is not called and the count stays 4.
    const r = await call(`${trigger.url}1/`, { method: "POST" });
    if (r.status === 202) {
      const failed = await waitForState(user, await r.json<Action>(), "Failed");
      expect(await logsOf(user, failed.resource_uri)).toMatch(/max_num_containers/);
      expect(await logsOf(user, failed.resource_uri)).toMatch(/from 4 to 5/);
    } else {
      expect(r.status).toBe(409);
      expect((await r.json<{ error: string }>()).error).toMatch(/max_num_containers/);
    }
    await sleep(300);
    expect(deliveries, "a SCALEUP past the bound never reaches the target").toHaveLength(1);
    expect((await (await as(user, "GET", svc.resource_uri)).json<Service>()).target_num_containers).toBe(4);
  });

  it("the new count is computed when the action runs: a service changed while it waited fails the bound", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user, { target_num_containers: 2, max_num_containers: 4 });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    releases.push(() => release());
    const deliveries = recordDeliveries(url, secret, async (n) => {
      if (n === 1) await gate;
      return HttpResponse.json({ ok: true });
    });
    const redeploy = await createTrigger(user, svc as never);
    const scaleup = await createTrigger(user, svc as never, { operation: "SCALEUP" });

    // A redeploy holds the service; behind it, a SCALEUP by 2 that fits when called (2 + 2 = 4).
    const first = await fire(redeploy.url);
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
    const up2 = await fire(`${scaleup.url}2/`);
    expect((await read(user, up2)).state).toBe("Pending");
    // Meanwhile someone raises the target to 3: the SCALEUP would now make 5.
    const patched = await as(user, "PATCH", svc.resource_uri, { target_num_containers: 3 });
    expect(patched.status).toBe(200);

    release();
    await waitForState(user, first, "Success");
    const failed = await waitForState(user, up2, "Failed");
    expect(await logsOf(user, failed.resource_uri)).toMatch(/from 3 to 5 containers, past its max_num_containers of 4/);
    await sleep(300);
    expect(deliveries.map((d) => d.action)).toEqual([first.uuid]);
    expect((await (await as(user, "GET", svc.resource_uri)).json<Service>()).target_num_containers).toBe(3);
  });
});

describe("one action in progress per service", () => {
  it("holds later calls Pending while the first runs, then runs them in call order, one at a time", async () => {
    const user = await createUser();
    const { svc, url, secret } = await webhookService(user, { target_num_containers: 1, max_num_containers: 10 });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    releases.push(() => release());
    let inFlight = 0;
    let maxInFlight = 0;
    const deliveries = recordDeliveries(url, secret, async (n) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        if (n === 1) await gate;
        else await sleep(20); // give an overlapping delivery the chance to show
        return HttpResponse.json({ ok: true });
      } finally {
        inFlight -= 1;
      }
    });
    // SCALEUP by 1 three times: three distinct actions (a REDEPLOY call may join one still pending).
    const trigger = await createTrigger(user, svc as never, { operation: "SCALEUP" });
    const a1 = await fire(`${trigger.url}1/`);
    const a2 = await fire(`${trigger.url}1/`);
    const a3 = await fire(`${trigger.url}1/`);
    expect(new Set([a1.uuid, a2.uuid, a3.uuid]).size).toBe(3);

    // While the first delivery is held (well inside the 2 s target timeout).
    await vi.waitUntil(() => deliveries.length === 1, { timeout: 1_500, interval: 10 });
    await sleep(150);
    expect(deliveries.map((d) => d.action)).toEqual([a1.uuid]);
    const held = await Promise.all([a1, a2, a3].map((a) => read(user, a)));
    expect(held.map((a) => a.state)).toEqual(["In progress", "Pending", "Pending"]);
    expect(await logsOf(user, a1.resource_uri)).toBe(""); // its first attempt is still running
    const listing = await (
      await as(user, "GET", `/api/audit/v1/${user.username}/action/?object=${encodeURIComponent(svc.resource_uri)}`)
    ).json<{ objects: Action[] }>();
    expect(listing.objects.filter((a) => a.state === "In progress")).toHaveLength(1);

    release();
    for (const a of [a1, a2, a3]) await waitForState(user, a, "Success");
    await sleep(200);
    expect(deliveries.map((d) => d.action)).toEqual([a1.uuid, a2.uuid, a3.uuid]);
    expect(deliveries.every((d) => d.verified)).toBe(true);
    // Each ran on the count the previous one left: 1 → 2 → 3 → 4.
    expect(
      deliveries.map((d) => (d.payload?.data as { target_num_containers?: number } | undefined)?.target_num_containers),
    ).toEqual([2, 3, 4]);
    expect(maxInFlight).toBe(1);
  });

  it("different services run concurrently: the second is delivered while the first is held", async () => {
    const user = await createUser();
    const a = await webhookService(user);
    const b = await webhookService(user);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    releases.push(() => release());
    let aHeld = false;
    const toA = recordDeliveries(a.url, a.secret, async () => {
      aHeld = true;
      await gate;
      aHeld = false;
      return HttpResponse.json({ ok: true });
    });
    const bSawAHeld: boolean[] = [];
    const toB = recordDeliveries(b.url, b.secret, async () => {
      // Both attempts may start in the same instant: B answers once A's is under way (or after 1 s,
      // when the assertion below then fails), so B can only finish if nothing serialises it after A.
      for (let waited = 0; !aHeld && waited < 1_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
      bSawAHeld.push(aHeld);
      return HttpResponse.json({ ok: true });
    });
    const ta = await createTrigger(user, a.svc as never);
    const tb = await createTrigger(user, b.svc as never);

    // Called together so both reach the queue within one batch window: the
    // local queue (miniflare) hands a consumer one batch at a time, while
    // Cloudflare runs batches concurrently. What this checks is that nothing in
    // the Worker makes service B wait on service A.
    const [actA, actB] = await Promise.all([fire(ta.url), fire(tb.url)]);

    // B must finish while A's first attempt is still held (before the 2 s target timeout).
    await waitForState(user, actB as Action, "Success", { timeout: 1_500, interval: 20 });
    expect(toA).toHaveLength(1);
    expect(aHeld).toBe(true);
    const aNow = await read(user, actA as Action);
    expect(aNow.state).toBe("In progress");
    expect(await logsOf(user, aNow.resource_uri)).toBe("");
    expect(bSawAHeld).toEqual([true]);

    release();
    await waitForState(user, actA as Action, "Success");
    expect(toA).toHaveLength(1);
    expect(toB).toHaveLength(1);
  });
});
