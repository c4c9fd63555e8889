import { HttpResponse, http } from "msw";
import { describe, expect, it, vi } from "vitest";
import { ACTION_KEYS, logsOf } from "./helpers/actions";
import {
  as,
  asGo,
  asPython,
  basic,
  call,
  createOrg,
  createService,
  createTrigger,
  createUser,
  type ServiceJson,
  type TriggerJson,
  type User,
  uniqueName,
} from "./helpers/api";
import { RFC1123, UUID4 } from "./helpers/formats";
import { network } from "./helpers/msw";

type Action = {
  uuid: string;
  resource_uri: string;
  object: string;
  action: string;
  method: string;
  path: string;
  user: string | null;
  user_agent: string | null;
  ip: string | null;
  location: string | null;
  start_date: string;
  end_date: string | null;
  state: string;
  is_user_action: boolean;
  can_be_canceled: boolean;
  can_be_retried: boolean;
  trigger: string | null;
  retry_of: string | null;
};
/**
 * A call's 202 answer: the action with only what the caller has or created (its uuid, kind,
 * object, state, dates and the caller's own trigger); who started it and how are null. No
 * action object has the logs: they are at <action>logs/, for members only.
 */
type CallAnswer = Omit<Action, "method" | "path" | "is_user_action"> & {
  method: null;
  path: null;
  is_user_action: null;
};
type Meta = { limit: number; next: string | null; offset: number; previous: string | null; total_count: number };
type ActionList = { meta: Meta; objects: Action[] };

const post = (path: string, init: RequestInit = {}) => call(path, { method: "POST", ...init });

async function callOk(path: string, init: RequestInit = {}): Promise<{ res: Response; action: CallAnswer }> {
  const res = await post(path, init);
  const text = await res.clone().text();
  expect(res.status, `${path}: ${text}`).toBe(202);
  return { res, action: JSON.parse(text) as CallAnswer };
}

async function expectJsonError(res: Response, status: number): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = await res.json<{ error: string }>();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error.length).toBeGreaterThan(0);
  return body.error;
}

async function getAction(user: User, uri: string): Promise<Action> {
  const r = await as(user, "GET", uri);
  expect(r.status).toBe(200);
  return r.json<Action>();
}

async function waitForState(user: User, uri: string, state: string): Promise<Action> {
  let last: Action | undefined;
  await vi.waitUntil(
    async () => {
      last = await getAction(user, uri);
      return last.state === state || last.state === "Failed" || last.state === "Success";
    },
    { timeout: 10_000, interval: 50 },
  );
  expect(last?.state, await logsOf(user, uri)).toBe(state);
  return last as Action;
}

async function service(user: User, svc: ServiceJson): Promise<ServiceJson & { target_num_containers: number }> {
  const r = await asGo(user, "GET", `/api/app/v1/service/${svc.uuid}/`);
  expect(r.status).toBe(200);
  return r.json();
}

async function setup(serviceBody: Record<string, unknown> = {}, triggerBody: Record<string, unknown> = {}) {
  const user = await createUser();
  const svc = await createService(user, serviceBody);
  const trigger = await createTrigger(user, svc, triggerBody);
  return { user, svc, trigger };
}

const plainCall = (svc: ServiceJson, t: TriggerJson) => `/api/app/v1/service/${svc.uuid}/trigger/${t.uuid}/call/`;

describe("calling a trigger needs no credentials and accepts what clients send", () => {
  it("no Authorization header answers 202", async () => {
    const { trigger } = await setup();
    const { res } = await callOk(trigger.url);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  });

  it("a wrong Basic header, a wrong ApiKey header and garbage Authorization all answer 202", async () => {
    const { trigger } = await setup();
    await callOk(trigger.url, { headers: { authorization: basic("nobody", "wrongkey") } });
    await callOk(trigger.url, { headers: { authorization: "ApiKey nobody:wrongkey" } });
    await callOk(trigger.url, { headers: { authorization: "Bearer nonsense" } });
    await callOk(trigger.url, { headers: { authorization: "%%%" } });
  });

  it("the owner's valid Basic header answers 202 and the call is still not a user action", async () => {
    const { user, trigger } = await setup();
    const { action } = await callOk(trigger.url, { headers: { authorization: user.auth } });
    const recorded = await getAction(user, action.resource_uri);
    expect(recorded.user).toBeNull();
    expect(recorded.is_user_action).toBe(false);
  });

  it("any Content-Type (or none) and any body answers 202", async () => {
    const { trigger } = await setup();
    await callOk(trigger.url, { headers: { "content-type": "text/plain" }, body: "plain text" });
    await callOk(trigger.url, {
      headers: { "content-type": "application/octet-stream" },
      body: new Uint8Array([0, 255, 1, 254]),
    });
    await callOk(trigger.url, { body: "no content type" });
    await callOk(trigger.url, { headers: { "content-type": "application/json" }, body: "{not json" });
    await callOk(trigger.url, { headers: { "content-type": "application/x-www-form-urlencoded" }, body: "a=1&b=2" });
    await callOk(trigger.url, { headers: { "content-type": "application/json" } });
  });

  it("as the Python SDK sends it: Content-Type JSON, Content-Length 0, double slash, namespaced", async () => {
    const { user, svc, trigger } = await setup();
    const { action } = await callOk(`${svc.resource_uri}/trigger/${trigger.uuid}/call/`, {
      headers: {
        authorization: user.auth,
        accept: "*/*",
        "content-type": "application/json",
        "content-length": "0",
        "user-agent": "python-dockercloud/1.0.12",
      },
      body: "",
    });
    expect((await getAction(user, action.resource_uri)).user_agent).toBe("python-dockercloud/1.0.12");
  });

  it("as the Go SDK sends it: {} body, no Content-Type, non-namespaced, and with a leading //", async () => {
    const { user, svc, trigger } = await setup();
    await callOk(plainCall(svc, trigger), {
      headers: { authorization: user.auth, accept: "application/json" },
      body: "{}",
    });
    await callOk(`/${plainCall(svc, trigger)}`, { body: "{}" });
  });

  it("namespaced, non-namespaced, double slash, missing trailing slash and upper-case uuids all answer 202", async () => {
    const { svc, trigger } = await setup();
    for (const path of [
      trigger.url,
      plainCall(svc, trigger),
      `/api/app/v1/service/${svc.uuid}//trigger/${trigger.uuid}/call/`,
      `${svc.resource_uri}/trigger/${trigger.uuid}//call/`,
      trigger.url.slice(0, -1),
      `/api/app/v1/service/${svc.uuid.toUpperCase()}/trigger/${trigger.uuid.toUpperCase()}/call/`,
    ]) {
      await callOk(path);
    }
  });

  it("a body of exactly 64 KiB is accepted; one byte more answers 413 JSON", async () => {
    const { user, trigger } = await setup();
    const { action } = await callOk(trigger.url, {
      headers: { "content-type": "text/plain" },
      body: "x".repeat(65536),
    });
    await waitForState(user, action.resource_uri, "Success");
    const big = await post(trigger.url, { headers: { "content-type": "text/plain" }, body: "x".repeat(65537) });
    expect(await expectJsonError(big, 413)).toMatch(/64 KiB/);
    const list = await (await as(user, "GET", "/api/audit/v1/action/")).json<ActionList>();
    expect(list.meta.total_count).toBe(1);
  });

  it("a streamed body (no Content-Length) over 64 KiB answers 413", async () => {
    const { trigger } = await setup();
    const chunk = new Uint8Array(40 * 1024).fill(97);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(chunk);
        controller.enqueue(chunk);
        controller.close();
      },
    });
    const res = await post(trigger.url, { body: stream });
    await expectJsonError(res, 413);
  });

  it("a 64 KiB body is accepted on the namespaced double-slash path too; 64 KiB + 1 is 413 there", async () => {
    const { svc, trigger } = await setup();
    const path = `${svc.resource_uri}/trigger/${trigger.uuid}/call/`;
    await callOk(path, { body: new Uint8Array(65536) });
    await expectJsonError(await post(path, { body: new Uint8Array(65537) }), 413);
  });
});

describe("the 202 answer", () => {
  it("is the action object as the caller may see it, with X-DockerCloud-Action-URI equal to its resource_uri", async () => {
    const { user, svc, trigger } = await setup();
    const before = Date.now();
    const { res, action } = await callOk(trigger.url, {
      headers: { "user-agent": "curl/8.5.0", "content-type": "text/plain" },
      body: "payload",
    });
    expect(Object.keys(action).sort()).toEqual(ACTION_KEYS);
    expect(action.uuid).toMatch(UUID4);
    expect(action.resource_uri).toMatch(new RegExp(`^/api/audit/v1/(${user.username}/)?action/${action.uuid}/$`));
    expect(res.headers.get("x-dockercloud-action-uri")).toBe(action.resource_uri);
    expect(action.object).toBe(svc.resource_uri);
    expect(action.action).toBe("Service Redeploy");
    expect(action.start_date).toMatch(RFC1123);
    const started = Date.parse(action.start_date);
    expect(started).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(started).toBeLessThanOrEqual(Date.now());
    expect(action.end_date).toBeNull();
    expect(action.state).toBe("Pending");
    expect(action.can_be_canceled).toBe(true);
    expect(action.can_be_retried).toBe(false);
    expect(action.trigger).toBe(trigger.resource_uri);
    // Who started the action, how, and its logs are not the caller's to see (it may have joined another's).
    for (const key of ["method", "path", "user", "user_agent", "ip", "location", "is_user_action", "retry_of"]) {
      expect(action[key as keyof CallAnswer], key).toBeNull();
    }
    expect(action).not.toHaveProperty("logs");
    expect((await call(`${action.resource_uri}logs/`)).status).toBe(401);

    // The audit view keeps everything the call told about itself.
    const recorded = await getAction(user, action.resource_uri);
    expect(Object.keys(recorded).sort()).toEqual(ACTION_KEYS);
    expect(recorded.method).toBe("POST");
    expect(recorded.path).not.toContain(trigger.uuid);
    expect(recorded.path).toBe(`/api/app/v1/${user.username}/service/${svc.uuid}/trigger/[redacted]/call/`);
    expect(recorded.user).toBeNull();
    expect(recorded.user_agent).toBe("curl/8.5.0");
    expect(recorded.is_user_action).toBe(false);
    expect(recorded.trigger).toBe(trigger.resource_uri);
    expect(recorded).not.toHaveProperty("logs");
    expect(typeof (await logsOf(user, action.resource_uri))).toBe("string");
    expect(recorded.ip).toBeNull();
    expect(recorded.retry_of).toBeNull();
  });

  it("the action URI resolves at once with Basic auth (200, same action)", async () => {
    const { user, trigger } = await setup();
    const { res, action } = await callOk(trigger.url);
    const uri = res.headers.get("x-dockercloud-action-uri") as string;
    const got = await as(user, "GET", uri);
    expect(got.status).toBe(200);
    const body = await got.json<Action>();
    expect(body.uuid).toBe(action.uuid);
    expect(body.resource_uri).toBe(action.resource_uri);
    expect(body.object).toBe(action.object);
    expect(body.start_date).toBe(action.start_date);
    // Without credentials the audit trail is closed.
    expect((await call(uri)).status).toBe(401);
  });

  it("a call with no User-Agent records user_agent null", async () => {
    const { user, trigger } = await setup();
    const { action } = await callOk(trigger.url);
    expect((await getAction(user, action.resource_uri)).user_agent).toBeNull();
  });

  it("the path is redacted whatever form the call path takes (non-namespaced, upper case, with a count)", async () => {
    const { user, svc, trigger } = await setup({}, { operation: "SCALEUP" });
    for (const path of [
      plainCall(svc, trigger),
      `/api/app/v1/service/${svc.uuid}//trigger/${trigger.uuid.toUpperCase()}/call/`,
      `${trigger.url}2/`,
    ]) {
      const { action } = await callOk(path);
      expect(action.action).toBe("Service Scale");
      const recorded = await getAction(user, action.resource_uri);
      expect(recorded.path.toLowerCase()).not.toContain(trigger.uuid);
      expect(recorded.path).toContain("/trigger/[redacted]/call/");
    }
  });

  it("every SCALEUP call creates a new action with a distinct uuid4, even 5 at once", async () => {
    // SCALEUP calls are never coalesced (a REDEPLOY call joins a pending redeploy instead).
    const { trigger } = await setup({ target_num_containers: 1, max_num_containers: 10 }, { operation: "SCALEUP" });
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => callOk(trigger.url)));
    const uuids = results.map((r) => r.action.uuid);
    for (const u of uuids) expect(u).toMatch(UUID4);
    expect(new Set(uuids).size).toBe(5);
  });
});

describe("calls that cannot reach a trigger: 404, all alike", () => {
  it("unknown trigger, revoked trigger, another service's trigger, a non-uuid id and an unknown service answer byte-identical 404s", async () => {
    const { user, svc, trigger } = await setup();
    const other = await createService(user);
    const otherTrigger = await createTrigger(user, other);
    const revoked = await createTrigger(user, svc, { name: "revoked" });
    expect((await as(user, "DELETE", revoked.resource_uri)).status).toBe(200);
    const stranger = await createUser();

    const cases: Record<string, string> = {
      unknownTrigger: `/api/app/v1/service/${svc.uuid}/trigger/${crypto.randomUUID()}/call/`,
      unknownTriggerNs: `${svc.resource_uri}trigger/${crypto.randomUUID()}/call/`,
      revoked: revoked.url,
      revokedPlain: plainCall(svc, revoked),
      revokedCount: `${revoked.url}3/`,
      otherServicesTrigger: `/api/app/v1/service/${svc.uuid}/trigger/${otherTrigger.uuid}/call/`,
      otherServicesTriggerNs: `${svc.resource_uri}trigger/${otherTrigger.uuid}/call/`,
      triggerUnderOtherService: `${other.resource_uri}trigger/${trigger.uuid}/call/`,
      nonUuid: `/api/app/v1/service/${svc.uuid}/trigger/not-a-uuid/call/`,
      nonUuidNs: `${svc.resource_uri}trigger/${trigger.uuid}x/call/`,
      unknownService: `/api/app/v1/service/${crypto.randomUUID()}/trigger/${trigger.uuid}/call/`,
      nonUuidService: `/api/app/v1/service/abc/trigger/${trigger.uuid}/call/`,
      wrongNamespace: `/api/app/v1/${stranger.username}/service/${svc.uuid}/trigger/${trigger.uuid}/call/`,
      unknownNamespace: `/api/app/v1/${uniqueName("nobody")}/service/${svc.uuid}/trigger/${trigger.uuid}/call/`,
      invalidNamespace: `/api/app/v1/NO_such!/service/${svc.uuid}/trigger/${trigger.uuid}/call/`,
    };
    const bodies: Record<string, string> = {};
    for (const [name, path] of Object.entries(cases)) {
      const res = await post(path, { headers: { "content-type": "text/plain" }, body: "x" });
      expect(res.status, name).toBe(404);
      expect(res.headers.get("content-type"), name).toMatch(/^application\/json/);
      expect(res.headers.get("x-dockercloud-action-uri"), name).toBeNull();
      bodies[name] = await res.text();
    }
    const distinct = new Set(Object.values(bodies));
    expect(distinct.size, JSON.stringify(bodies)).toBe(1);
    const body = [...distinct][0] as string;
    expect(JSON.parse(body)).toEqual({ error: expect.any(String) });
    for (const secret of [trigger.uuid, revoked.uuid, otherTrigger.uuid, svc.uuid, other.uuid]) {
      expect(body.toLowerCase()).not.toContain(secret);
    }

    // None of these left an action behind.
    const list = await (await as(user, "GET", "/api/audit/v1/action/")).json<ActionList>();
    expect(list.meta.total_count).toBe(0);
    // And the real trigger still works.
    await callOk(trigger.url);
  });

  it("a trigger stops accepting calls as soon as its DELETE has answered", async () => {
    const { user, trigger } = await setup();
    await callOk(trigger.url);
    const del = await asGo(user, "DELETE", trigger.resource_uri, {});
    expect(del.status).toBe(200);
    await expectJsonError(await post(trigger.url), 404);
  });

  it("a terminated service's triggers answer 404", async () => {
    const { user, svc, trigger } = await setup();
    const del = await as(user, "DELETE", svc.resource_uri);
    expect(del.status).toBeLessThan(300);
    await expectJsonError(await post(trigger.url), 404);
  });
});

describe("other methods on the call path", () => {
  it("GET, PUT, DELETE and PATCH answer 405 with Allow: POST (namespaced, non-namespaced, with a count)", async () => {
    const { svc, trigger } = await setup({}, { operation: "SCALEUP" });
    for (const path of [trigger.url, plainCall(svc, trigger), `${trigger.url}3/`]) {
      for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
        const res = await call(path, {
          method,
          ...(method === "GET" ? {} : { body: "{}", headers: { "content-type": "application/json" } }),
        });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.headers.get("allow"), `${method} ${path}`).toBe("POST");
        const body = await res.json<{ error: string }>();
        expect(body.error).toMatch(/POST/);
        expect(body.error).not.toContain(trigger.uuid);
      }
    }
  });
});

describe("SCALEUP counts", () => {
  it("call/3/ scales up by 3", async () => {
    const { user, svc, trigger } = await setup(
      { target_num_containers: 1, max_num_containers: 10 },
      { operation: "SCALEUP" },
    );
    const { action } = await callOk(`${trigger.url}3/`);
    expect(action.action).toBe("Service Scale");
    await waitForState(user, action.resource_uri, "Success");
    expect((await service(user, svc)).target_num_containers).toBe(4);
  });

  it("call/ alone scales up by 1", async () => {
    const { user, svc, trigger } = await setup(
      { target_num_containers: 2, max_num_containers: 10 },
      { operation: "SCALEUP" },
    );
    const { action } = await callOk(trigger.url);
    await waitForState(user, action.resource_uri, "Success");
    expect((await service(user, svc)).target_num_containers).toBe(3);
  });

  it("call/3 without a trailing slash and on the double-slash path scales up by 3 too", async () => {
    const { user, svc, trigger } = await setup(
      { target_num_containers: 1, max_num_containers: 10 },
      { operation: "SCALEUP" },
    );
    const { action } = await callOk(`/api/app/v1/service/${svc.uuid}//trigger/${trigger.uuid}/call/3`);
    await waitForState(user, action.resource_uri, "Success");
    expect((await service(user, svc)).target_num_containers).toBe(4);
  });

  it("concurrent calls each apply: 5 parallel call/2/ add 10", async () => {
    const { user, svc, trigger } = await setup(
      { target_num_containers: 1, max_num_containers: 20 },
      { operation: "SCALEUP" },
    );
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => callOk(`${trigger.url}2/`)));
    for (const r of results) await waitForState(user, r.action.resource_uri, "Success");
    expect((await service(user, svc)).target_num_containers).toBe(11);
  });

  it("a count that would take the target (plus pending scale-ups) past max_num_containers answers 409 at once, creates no action and leaves the service alone", async () => {
    const { user, svc, trigger } = await setup(
      { target_num_containers: 8, max_num_containers: 10 },
      { operation: "SCALEUP" },
    );
    const refused = async (n: string) => {
      const res = await post(`${trigger.url}${n}/`);
      expect(res.headers.get("x-dockercloud-action-uri"), n).toBeNull();
      const error = await expectJsonError(res, 409);
      expect(error, n).toMatch(/max_num_containers/);
      expect(error, n).not.toContain(trigger.uuid);
    };
    // 8 + 5 and 8 + 3 pass 10.
    await refused("5");
    await refused("3");
    const none = await (await as(user, "GET", "/api/audit/v1/action/")).json<ActionList>();
    expect(none.meta.total_count).toBe(0);
    expect((await service(user, svc)).target_num_containers).toBe(8);

    // 8 + 2 reaches the bound exactly: accepted. One more is refused at once, whether
    // the +2 is still pending (8 + 2 pending + 1) or already applied (10 + 1).
    const { action } = await callOk(`${trigger.url}2/`);
    await refused("1");
    await waitForState(user, action.resource_uri, "Success");
    expect((await service(user, svc)).target_num_containers).toBe(10);
    const list = await (await as(user, "GET", "/api/audit/v1/action/")).json<ActionList>();
    expect(list.objects.map((a) => a.uuid)).toEqual([action.uuid]);

    // Refused calls are counted apart from accepted ones.
    const t = await (await as(user, "GET", trigger.resource_uri)).json<{
      call_count: number;
      rejected_count: number;
      last_called: string | null;
    }>();
    expect(t.call_count).toBe(1);
    expect(t.rejected_count).toBe(3);
    expect(t.last_called).toMatch(RFC1123);
  });

  it("a count on a REDEPLOY trigger answers 400 and creates no action", async () => {
    const { user, trigger } = await setup({}, { operation: "REDEPLOY" });
    const res = await post(`${trigger.url}3/`);
    const error = await expectJsonError(res, 400);
    expect(error).not.toContain(trigger.uuid);
    const list = await (await as(user, "GET", "/api/audit/v1/action/")).json<ActionList>();
    expect(list.meta.total_count).toBe(0);
  });

  it("counts 0, -1, 1.5, abc, 1e1 and above max_num_containers answer 400 and change nothing", async () => {
    const { user, svc, trigger } = await setup(
      { target_num_containers: 1, max_num_containers: 10 },
      { operation: "SCALEUP" },
    );
    for (const n of ["0", "-1", "1.5", "abc", "1e1", "11", "00", "9999999"]) {
      const res = await post(`${trigger.url}${n}/`);
      const error = await expectJsonError(res, 400);
      expect(error, n).not.toContain(trigger.uuid);
    }
    const list = await (await as(user, "GET", "/api/audit/v1/action/")).json<ActionList>();
    expect(list.meta.total_count).toBe(0);
    expect((await service(user, svc)).target_num_containers).toBe(1);
    // max_num_containers itself is a valid count.
    const { action } = await callOk(`${trigger.url}9/`);
    await waitForState(user, action.resource_uri, "Success");
    expect((await service(user, svc)).target_num_containers).toBe(10);
  });
});

describe("the call runs and the audit API shows it", () => {
  it("a REDEPLOY call with a body ends Success with end_date and can_be_retried", async () => {
    const { user, svc, trigger } = await setup();
    const { action } = await callOk(trigger.url, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ push_data: { tag: "latest" } }),
    });
    const done = await waitForState(user, action.resource_uri, "Success");
    expect(done.uuid).toBe(action.uuid);
    expect(done.end_date).toMatch(RFC1123);
    expect(done.can_be_canceled).toBe(false);
    expect(done.can_be_retried).toBe(true);
    expect(done.trigger).toBe(trigger.resource_uri);
    expect(done.path).not.toContain(trigger.uuid);
    const after = await service(user, svc);
    expect(after.state).toBe("Running");
    expect(after.deployed_datetime).toMatch(RFC1123);
  });

  it("GET /api/audit/v1/action/ lists the actions newest first in the envelope", async () => {
    const { user, trigger } = await setup();
    // Each REDEPLOY call is made once the previous one has run: a call made while a
    // redeploy is still Pending would join it rather than create a new action.
    const first = (await callOk(trigger.url)).action;
    await waitForState(user, first.resource_uri, "Success");
    const second = (await callOk(trigger.url)).action;
    await waitForState(user, second.resource_uri, "Success");
    const third = (await callOk(trigger.url)).action;
    await waitForState(user, third.resource_uri, "Success");
    const res = await asPython(user, "GET", "/api/audit/v1/action/");
    expect(res.status).toBe(200);
    const body = await res.json<ActionList>();
    expect(Object.keys(body).sort()).toEqual(["meta", "objects"]);
    expect(body.meta).toEqual({ limit: 25, next: null, offset: 0, previous: null, total_count: 3 });
    expect(body.objects.map((a) => a.uuid)).toEqual([third.uuid, second.uuid, first.uuid]);
    for (const a of body.objects) expect(Object.keys(a).sort()).toEqual(ACTION_KEYS);

    const namespaced = await (await as(user, "GET", `/api/audit/v1/${user.username}/action/`)).json<ActionList>();
    expect(namespaced.objects.map((a) => a.uuid)).toEqual([third.uuid, second.uuid, first.uuid]);

    const paged = await (await as(user, "GET", "/api/audit/v1/action/?limit=2")).json<ActionList>();
    expect(paged.objects.map((a) => a.uuid)).toEqual([third.uuid, second.uuid]);
    expect(paged.meta.next).not.toBeNull();
    expect((paged.meta.next as string).startsWith("/api/audit/v1/action/?")).toBe(true);
    const rest = await (await asGo(user, "GET", `/api/${(paged.meta.next as string).slice(5)}`)).json<ActionList>();
    expect(rest.objects.map((a) => a.uuid)).toEqual([first.uuid]);
    expect(rest.meta.next).toBeNull();
  });

  it("filters: uuid, state, object", async () => {
    const { user, svc, trigger } = await setup();
    const other = await createService(user);
    const otherTrigger = await createTrigger(user, other);
    const a = (await callOk(trigger.url)).action;
    const b = (await callOk(otherTrigger.url)).action;
    await waitForState(user, a.resource_uri, "Success");
    await waitForState(user, b.resource_uri, "Success");
    // A third action that ends Failed: svc now sends its operations to a webhook that
    // refuses them with a 400 (Failed after one delivery, never retried). A count past
    // max_num_containers no longer makes a Failed action: the call itself is refused (409).
    const hook = `https://${uniqueName("hook")}.example.test/ops`;
    network.use(http.post(hook, () => HttpResponse.json({ error: "refused" }, { status: 400 })));
    const patched = await as(user, "PATCH", svc.resource_uri, { target: { type: "webhook", url: hook } });
    expect(patched.status).toBe(200);
    const up = await createTrigger(user, svc, { operation: "SCALEUP" });
    const c = (await callOk(up.url)).action;
    const failed = await waitForState(user, c.resource_uri, "Failed");
    expect(await logsOf(user, failed.resource_uri)).toMatch(/400/);

    const q = async (query: string) => {
      const res = await as(user, "GET", `/api/audit/v1/action/?${query}`);
      expect(res.status, query).toBe(200);
      const body = await res.json<ActionList>();
      expect(body.meta.total_count, query).toBe(body.objects.length);
      return body.objects.map((x) => x.uuid);
    };
    expect(await q(`uuid=${a.uuid}`)).toEqual([a.uuid]);
    expect(await q(`uuid=${a.uuid.toUpperCase()}`)).toEqual([a.uuid]);
    expect(await q(`uuid=${crypto.randomUUID()}`)).toEqual([]);
    expect(await q("state=Success")).toEqual([b.uuid, a.uuid]);
    expect(await q("state=Failed")).toEqual([c.uuid]);
    expect(await q(`state=${encodeURIComponent("In progress")}`)).toEqual([]);
    expect(await q(`object=${encodeURIComponent(svc.resource_uri)}`)).toEqual([c.uuid, a.uuid]);
    expect(await q(`object=${encodeURIComponent(other.resource_uri)}`)).toEqual([b.uuid]);
    expect(await q(`object=${encodeURIComponent(svc.resource_uri)}&state=Success`)).toEqual([a.uuid]);
  });

  it("filters: start_date__gte / start_date__lte with RFC 1123 dates", async () => {
    const { user, trigger } = await setup();
    const a = (await callOk(trigger.url)).action;
    await waitForState(user, a.resource_uri, "Success");
    const start = Date.parse(a.start_date);
    const fmt = (ms: number) => {
      const d = new Date(ms);
      const s = d.toUTCString(); // "Mon, 13 Oct 2014 11:01:43 GMT"
      return s.replace(/GMT$/, "+0000");
    };
    const q = async (params: Record<string, string>) => {
      const res = await as(user, "GET", `/api/audit/v1/action/?${new URLSearchParams(params).toString()}`);
      expect(res.status, JSON.stringify(params)).toBe(200);
      return (await res.json<ActionList>()).objects.map((x) => x.uuid);
    };
    const hourBefore = fmt(start - 3600_000);
    const hourAfter = fmt(start + 3600_000);
    expect(hourBefore).toMatch(RFC1123);
    expect(await q({ start_date__gte: hourBefore })).toEqual([a.uuid]);
    expect(await q({ start_date__gte: hourAfter })).toEqual([]);
    expect(await q({ start_date__lte: hourAfter })).toEqual([a.uuid]);
    expect(await q({ start_date__lte: hourBefore })).toEqual([]);
    expect(await q({ start_date__gte: hourBefore, start_date__lte: hourAfter })).toEqual([a.uuid]);
    expect(await q({ start_date__gte: a.start_date })).toEqual([a.uuid]);
    expect(await q({ start_date__lte: fmt(start + 1000) })).toEqual([a.uuid]);
    expect(await q({ start_date__lte: fmt(start - 1000) })).toEqual([]);
    expect(await q({ start_date__gte: fmt(start + 1000) })).toEqual([]);
  });

  it("start_date__lte with the action's own start_date (as the API prints it, to the second) includes the action", async () => {
    // action.md: start_date__lte is "before or on the date supplied"; the API only ever shows
    // dates to the second, so the value a client read back must match its own action.
    const { user, trigger } = await setup();
    const a = (await callOk(trigger.url)).action;
    await waitForState(user, a.resource_uri, "Success");
    const res = await as(
      user,
      "GET",
      `/api/audit/v1/action/?${new URLSearchParams({ start_date__lte: a.start_date, start_date__gte: a.start_date })}`,
    );
    expect(res.status).toBe(200);
    expect((await res.json<ActionList>()).objects.map((x) => x.uuid)).toEqual([a.uuid]);
  });

  it("an invalid state or date filter answers 400", async () => {
    const user = await createUser();
    expect(await expectJsonError(await as(user, "GET", "/api/audit/v1/action/?state=Done"), 400)).toMatch(/state/);
    expect(await expectJsonError(await as(user, "GET", "/api/audit/v1/action/?state=success"), 400)).toMatch(/state/);
    expect(
      await expectJsonError(await as(user, "GET", "/api/audit/v1/action/?start_date__gte=yesterday-ish"), 400),
    ).toMatch(/start_date__gte/);
  });

  it("the audit API needs credentials (401) and a non-existent action is 404", async () => {
    const user = await createUser();
    await expectJsonError(await call("/api/audit/v1/action/"), 401);
    await expectJsonError(await as(user, "GET", `/api/audit/v1/action/${crypto.randomUUID()}/`), 404);
    await expectJsonError(await as(user, "GET", "/api/audit/v1/action/not-a-uuid/"), 404);
  });
});

describe("organization services", () => {
  async function orgSetup() {
    const member = await createUser();
    const outsider = await createUser();
    const org = await createOrg(uniqueName("org"), [member.username]);
    const svc = await createService(member, { target_num_containers: 1, max_num_containers: 10 }, org);
    const trigger = await createTrigger(member, svc, { operation: "SCALEUP" });
    return { member, outsider, org, svc, trigger };
  }

  it("calls namespaced and non-namespaced answer 202 with org-namespaced object and resource_uri", async () => {
    const { member, org, svc, trigger } = await orgSetup();
    expect(trigger.url).toBe(`/api/app/v1/${org}/service/${svc.uuid}/trigger/${trigger.uuid}/call/`);
    const a = (await callOk(trigger.url)).action;
    const b = (await callOk(`/api/app/v1/service/${svc.uuid}//trigger/${trigger.uuid}/call/2/`)).action;
    for (const x of [a, b]) {
      expect(x.object).toBe(svc.resource_uri);
      expect(x.trigger).toBe(trigger.resource_uri);
      expect(x.resource_uri).toMatch(new RegExp(`^/api/audit/v1/(${org}/)?action/${x.uuid}/$`));
      expect(x.path).toBeNull();
    }
    await waitForState(member, a.resource_uri, "Success");
    await waitForState(member, b.resource_uri, "Success");
    expect((await service(member, svc)).target_num_containers).toBe(4);
  });

  it("the org's actions are listed under /api/audit/v1/<org>/action/ for a member, not under the member's own", async () => {
    const { member, outsider, org, trigger } = await orgSetup();
    const a = (await callOk(trigger.url)).action;
    const b = (await callOk(trigger.url)).action;
    await waitForState(member, b.resource_uri, "Success");
    const res = await as(member, "GET", `/api/audit/v1/${org}/action/`);
    expect(res.status).toBe(200);
    const body = await res.json<ActionList>();
    expect(body.meta.total_count).toBe(2);
    expect(body.objects.map((x) => x.uuid)).toEqual([b.uuid, a.uuid]);
    expect(
      (
        await (await as(member, "GET", `/api/audit/v1/${org}/action/?state=Success&uuid=${a.uuid}`)).json<ActionList>()
      ).objects.map((x) => x.uuid),
    ).toEqual([a.uuid]);

    const own = await (await as(member, "GET", "/api/audit/v1/action/")).json<ActionList>();
    expect(own.objects.map((x) => x.uuid)).not.toContain(a.uuid);

    await expectJsonError(await as(outsider, "GET", `/api/audit/v1/${org}/action/`), 403);
  });

  it("GET /api/audit/v1/action/<uuid>/ (non-namespaced) finds an org's action for a member; others get 404 / 403", async () => {
    const { member, outsider, org, trigger } = await orgSetup();
    const { res, action } = await callOk(trigger.url);
    const header = res.headers.get("x-dockercloud-action-uri") as string;
    expect(header).toBe(action.resource_uri);

    const plain = await as(member, "GET", `/api/audit/v1/action/${action.uuid}/`);
    expect(plain.status).toBe(200);
    expect((await plain.json<Action>()).uuid).toBe(action.uuid);
    const viaHeader = await asGo(member, "GET", header);
    expect(viaHeader.status).toBe(200);
    expect((await viaHeader.json<Action>()).uuid).toBe(action.uuid);

    await expectJsonError(await as(outsider, "GET", `/api/audit/v1/action/${action.uuid}/`), 404);
    await expectJsonError(await as(outsider, "GET", `/api/audit/v1/${org}/action/${action.uuid}/`), 403);
    const viaHeaderOutsider = await as(outsider, "GET", header);
    expect([403, 404]).toContain(viaHeaderOutsider.status);
  });

  it("another user's personal action: 404 non-namespaced, 403 namespaced", async () => {
    const { user, trigger } = await setup();
    const other = await createUser();
    const { action } = await callOk(trigger.url);
    await expectJsonError(await as(other, "GET", `/api/audit/v1/action/${action.uuid}/`), 404);
    await expectJsonError(await as(other, "GET", `/api/audit/v1/${user.username}/action/${action.uuid}/`), 403);
    const list = await (await as(other, "GET", "/api/audit/v1/action/")).json<ActionList>();
    expect(list.meta.total_count).toBe(0);
  });
});
