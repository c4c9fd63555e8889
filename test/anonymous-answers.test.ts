import fc from "fast-check";
import { HttpResponse, http } from "msw";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ACTION_KEYS, FINISHED, gate, logsOf, readJson, WAIT, waitForState } from "./helpers/actions";
import {
  as,
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
import { RFC1123 } from "./helpers/formats";
import { network } from "./helpers/msw";

/**
 * What an anonymous trigger call learns from its answer. Whoever holds one trigger URL of a
 * service (a chat bot's) must not collect the others (the CI's) from the answers, nor learn who
 * else deploys. So the 202 of POST .../trigger/<T>/call/[N/] (a call that joins a pending
 * redeploy, and an Idempotency-Key replay, included) and its X-DockerCloud-Action-URI carry only
 * the action's uuid, resource_uri, kind, object, state and dates, and the caller's OWN trigger.
 * Every text check below covers the whole answer (body and headers), case-insensitively, with
 * uuids also searched without their dashes. The authenticated audit view keeps full detail, and
 * webhook deliveries name a trigger by name and a non-secret id, never by its uuid.
 */

type Action = {
  uuid: string;
  resource_uri: string;
  object: string;
  action: string;
  method: string | null;
  path: string | null;
  user: string | null;
  user_agent: string | null;
  ip: string | null;
  location: string | null;
  start_date: string | null;
  end_date: string | null;
  state: string;
  is_user_action: boolean | null;
  can_be_canceled: boolean;
  can_be_retried: boolean;
  trigger: string | null;
  retry_of: string | null;
};
type Service = ServiceJson & { target: { secret?: string } | null };
/** Who makes a request, as the audit log records it. */
type Identity = { ua: string; ip: string };

/** What a call's answer never discloses: who started the action, how, and what came before it. */
const UNDISCLOSED = ["method", "path", "user", "user_agent", "ip", "location", "is_user_action", "retry_of"] as const;

/** A uuid as it may show up in text: as issued, and without dashes. */
const uuidForms = (uuid: string) => [uuid.toLowerCase(), uuid.toLowerCase().replaceAll("-", "")];

/** The whole answer as text (headers, then body), lower-cased. */
async function wholeText(r: Response): Promise<string> {
  const headers = [...r.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
  return `${headers}\n\n${await r.clone().text()}`.toLowerCase();
}

/** The `secrets` that show in `text` (lower-cased); [] when nothing leaks. */
const shown = (text: string, secrets: string[]) => secrets.filter((s) => text.includes(s.toLowerCase()));

/** An anonymous call that must be accepted: its answer, parsed and as text. */
async function anonymousCall(url: string, who?: Identity, headers: Record<string, string> = {}) {
  const res = await call(url, {
    method: "POST",
    headers: { ...(who ? { "user-agent": who.ua, "cf-connecting-ip": who.ip } : {}), ...headers },
    body: "built main",
  });
  const text = await wholeText(res);
  expect(res.status, text).toBe(202);
  const answer = await res.json<Action>();
  expect(res.headers.get("x-dockercloud-action-uri")).toBe(answer.resource_uri);
  // What happened to the action is in no action object: its log is at <action>logs/, for members only.
  expect(answer).not.toHaveProperty("logs");
  return { answer, text };
}

/** A member's POST .../redeploy/, from its own machine and place; returns the action URI. */
async function memberRedeploy(member: User, svc: ServiceJson, who: Identity & { city: string }): Promise<string> {
  const r = await call(`${svc.resource_uri}redeploy/`, {
    method: "POST",
    headers: { authorization: member.auth, "user-agent": who.ua, "cf-connecting-ip": who.ip },
    cf: { city: who.city, country: "PT" },
  } as RequestInit);
  expect(r.status, await r.clone().text()).toBe(202);
  return r.headers.get("x-dockercloud-action-uri") as string;
}

async function actionsOf(user: User, ns: string): Promise<Action[]> {
  const r = await as(user, "GET", `/api/audit/v1/${ns}/action/?limit=100`);
  expect(r.status).toBe(200);
  return (await r.json<{ objects: Action[] }>()).objects;
}

const settle = (user: User, ns: string) =>
  vi.waitUntil(async () => (await actionsOf(user, ns)).every((a) => FINISHED.includes(a.state)), WAIT);

/**
 * Held services still to finish. This afterEach runs before setup.ts's (hooks run as a stack),
 * so even a failed test's deliveries are done while its mock still answers them.
 */
const unfinished: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const finish of unfinished.splice(0)) await finish();
});

/**
 * An organization (owner and member) whose service's webhook target holds its first delivery
 * (an owner's redeploy) until `finish` (at the latest, when the test ends), so the actions made
 * meanwhile stay Pending and REDEPLOY calls join them. The hold is released well inside the 2 s
 * target timeout.
 */
async function heldService() {
  const owner = await createUser();
  const member = await createUser();
  const org = await createOrg(uniqueName("org"), [owner.username, member.username]);
  const url = `https://${uniqueName("hook")}.example.test/ops`;
  const svc = await createService(owner, { target: { type: "webhook", url } }, org);
  const held = gate();
  let deliveries = 0;
  network.use(
    http.post(url, async () => {
      deliveries += 1;
      if (deliveries === 1) await held.wait;
      return HttpResponse.json({ ok: true });
    }),
  );
  expect((await as(owner, "POST", `${svc.resource_uri}redeploy/`)).status).toBe(202);
  await vi.waitUntil(() => deliveries === 1, WAIT);
  const finish = async () => {
    held.release();
    await settle(owner, org);
  };
  unfinished.push(finish);
  return { owner, member, org, svc, finish };
}

describe("a call's answer shows only the caller's own trigger", () => {
  it("a call that joins another trigger's pending redeploy: neither that trigger's uuid or name, nor its caller", async () => {
    const w = await heldService();
    const ci = await createTrigger(w.owner, w.svc, { name: uniqueName("ci") });
    const bot = await createTrigger(w.owner, w.svc, { name: uniqueName("chatbot") });
    const ciRunner = { ua: `ci-runner/${uniqueName("v")}`, ip: "198.51.100.23" };

    const first = await anonymousCall(ci.url, ciRunner);
    const joined = await anonymousCall(bot.url, { ua: "chatbot/2.0", ip: "203.0.113.9" });
    expect(joined.answer.uuid, "the bot's call joined the CI's pending redeploy").toBe(first.answer.uuid);

    expect(Object.keys(joined.answer).sort()).toEqual(ACTION_KEYS);
    expect(joined.answer).toMatchObject({
      resource_uri: first.answer.resource_uri,
      object: w.svc.resource_uri,
      action: "Service Redeploy",
      state: "Pending",
      end_date: null,
      trigger: bot.resource_uri,
    });
    expect(joined.answer.start_date).toMatch(RFC1123);
    for (const key of UNDISCLOSED) expect(joined.answer[key], key).toBeNull();
    expect(shown(joined.text, [...uuidForms(ci.uuid), ci.name, ciRunner.ua, ciRunner.ip])).toEqual([]);
    // The CI's own answer names the CI's trigger only.
    expect(first.answer.trigger).toBe(ci.resource_uri);
    expect(shown(first.text, [...uuidForms(bot.uuid), bot.name])).toEqual([]);

    // The audit view keeps everything.
    const audit = await readJson<Action>(w.owner, first.answer.resource_uri);
    expect(audit).toMatchObject({ trigger: ci.resource_uri, user_agent: ciRunner.ua, ip: ciRunner.ip, method: "POST" });
    expect(audit.path).toMatch(/\/trigger\/\[redacted\]\/call\/$/);
    expect(await logsOf(w.owner, first.answer.resource_uri)).toContain(
      `a call to trigger ${JSON.stringify(bot.name)} joined this pending redeploy`,
    );
    // ...and the log, which names the other triggers, is not for the anonymous caller.
    const anonymousLogs = await call(`${first.answer.resource_uri}logs/`);
    expect(anonymousLogs.status, await anonymousLogs.clone().text()).toBe(401);
    expect(shown(await wholeText(anonymousLogs), [...uuidForms(bot.uuid), bot.name])).toEqual([]);
  });

  it("a call that joins a member's redeploy/: nothing of the member (user, user agent, ip, location, path)", async () => {
    const w = await heldService();
    const bot = await createTrigger(w.owner, w.svc, { name: uniqueName("chatbot") });
    const laptop = { ua: `laptop/${uniqueName("ua")}`, ip: "192.0.2.77", city: `Porto${uniqueName("c")}` };
    const uri = await memberRedeploy(w.member, w.svc, laptop);

    const joined = await anonymousCall(bot.url);
    expect(joined.answer.resource_uri, "the call joined the member's redeploy").toBe(uri);

    // The audit view shows who started the action...
    const audit = await readJson<Action>(w.owner, uri);
    expect(audit).toMatchObject({
      user: w.member.username,
      user_agent: laptop.ua,
      ip: laptop.ip,
      is_user_action: true,
      path: `/api/app/v1/${w.org}/service/${w.svc.uuid}/redeploy/`,
      trigger: null,
    });
    expect(audit.location).toContain(laptop.city);
    // ...the anonymous answer shows none of it.
    expect(shown(joined.text, [w.member.username, laptop.ua, laptop.ip, laptop.city, "/redeploy/"])).toEqual([]);
    for (const key of UNDISCLOSED) expect(joined.answer[key], key).toBeNull();
    expect(joined.answer.trigger).toBe(bot.resource_uri);
  });

  it("an Idempotency-Key replay shows the caller's own trigger only: after another trigger joined, after the action ran, after that trigger was revoked", async () => {
    const w = await heldService();
    const ci = await createTrigger(w.owner, w.svc, { name: uniqueName("ci") });
    const bot = await createTrigger(w.owner, w.svc, { name: uniqueName("chatbot") });
    const ciRunner = { ua: `ci-runner/${uniqueName("v")}`, ip: "198.51.100.24" };
    const key = { "Idempotency-Key": "deploy-7" };
    const others = [...uuidForms(ci.uuid), ci.name, ciRunner.ua, ciRunner.ip];

    const created = await anonymousCall(bot.url, undefined, key);
    const ciJoined = await anonymousCall(ci.url, ciRunner);
    expect(ciJoined.answer.uuid).toBe(created.answer.uuid);
    const replay = await anonymousCall(bot.url, undefined, key);
    expect(replay.answer.uuid).toBe(created.answer.uuid);
    expect(replay.answer.trigger).toBe(bot.resource_uri);
    expect(shown(replay.text, others)).toEqual([]);

    await w.finish();
    expect((await as(w.owner, "DELETE", ci.resource_uri)).status).toBe(200);
    const late = await anonymousCall(bot.url, undefined, key);
    expect(late.answer).toMatchObject({ uuid: created.answer.uuid, state: "Success", trigger: bot.resource_uri });
    expect(late.answer.end_date).toMatch(RFC1123);
    for (const key of UNDISCLOSED) expect(late.answer[key], key).toBeNull();
    expect(shown(late.text, others)).toEqual([]);
  });

  it("no trigger URL read in an answer outlives the revocation of the caller's own trigger", async () => {
    const w = await heldService();
    const ci = await createTrigger(w.owner, w.svc, { name: uniqueName("ci") });
    const bot = await createTrigger(w.owner, w.svc, { name: uniqueName("chatbot") });
    await anonymousCall(ci.url);
    const joined = await anonymousCall(bot.url);
    // Every trigger uuid the bot's holder could read in the answer (body or headers)...
    const read = new Set([...joined.text.matchAll(/\/trigger\/([0-9a-f-]{36})\//g)].map((m) => m[1] as string));

    // ...is dead once the bot's own URL is revoked.
    expect((await as(w.owner, "DELETE", bot.resource_uri)).status).toBe(200);
    const alive: string[] = [];
    for (const uuid of read) {
      const r = await call(`${w.svc.resource_uri}trigger/${uuid}/call/`, { method: "POST" });
      if (r.status !== 404) alive.push(`${uuid === ci.uuid ? "the CI's trigger" : uuid}: ${r.status}`);
    }
    expect(alive).toEqual([]);
    expect([...read]).toEqual([bot.uuid]);
  });
});

describe("outbound requests never carry a trigger uuid", () => {
  it("webhook deliveries name the trigger by name and a stable, non-secret id (body and headers)", async () => {
    const user = await createUser();
    const url = `https://${uniqueName("hook")}.example.test/ops`;
    const svc = (await createService(user, { target: { type: "webhook", url } })) as Service;
    const secret = svc.target?.secret as string;
    const seen: { text: string; payload: { data: { trigger: { id: string; name: string } | null } } }[] = [];
    network.use(
      http.post(url, async ({ request }) => {
        const body = await request.text();
        const headers = Object.fromEntries(request.headers);
        const payload = new Webhook(secret).verify(body, headers) as (typeof seen)[number]["payload"];
        seen.push({ text: `${JSON.stringify(headers)}\n${body}`.toLowerCase(), payload });
        return HttpResponse.json({ ok: true });
      }),
    );
    const ci = await createTrigger(user, svc, { name: uniqueName("ci") });
    const scaler = await createTrigger(user, svc, { name: uniqueName("scaler"), operation: "SCALEUP" });
    // One call at a time, each run to the end, so none joins another.
    for (const path of [ci.url, ci.url, `${scaler.url}2/`]) {
      await waitForState(user, (await anonymousCall(path)).answer.resource_uri, "Success");
    }
    const own = await as(user, "POST", `${svc.resource_uri}redeploy/`);
    await waitForState(user, own.headers.get("x-dockercloud-action-uri") as string, "Success");

    expect(seen).toHaveLength(4);
    const secrets = [...uuidForms(ci.uuid), ...uuidForms(scaler.uuid)];
    expect(seen.map((d) => shown(d.text, secrets))).toEqual([[], [], [], []]);
    const [first, second, scaled, userRedeploy] = seen.map((d) => d.payload.data.trigger);
    expect(first).toEqual({ id: expect.stringMatching(/^trg_[0-9a-f]{32}$/), name: ci.name });
    expect(second, "the id is stable per trigger").toEqual(first);
    expect(scaled).toEqual({ id: expect.stringMatching(/^trg_[0-9a-f]{32}$/), name: scaler.name });
    expect(scaled?.id).not.toBe(first?.id);
    expect(userRedeploy).toBeNull();
  });

  it("the Docker Cloud target's requests (URL, headers, body) carry no trigger uuid", async () => {
    const user = await createUser();
    const remote = `https://${uniqueName("remote")}.example.test`;
    const requests: string[] = [];
    network.use(
      http.all(`${remote}/*`, async ({ request }) => {
        const body = request.method === "GET" ? "" : await request.text();
        requests.push(`${request.method} ${request.url}\n${JSON.stringify([...request.headers])}\n${body}`);
        if (request.method === "GET") return HttpResponse.json({ target_num_containers: 1 });
        if (request.method === "PATCH") return HttpResponse.json({ target_num_containers: 3 });
        return HttpResponse.json(
          {},
          { status: 202, headers: { "X-DockerCloud-Action-URI": "/api/audit/v1/action/x/" } },
        );
      }),
    );
    const svc = await createService(user, {
      target: { type: "dockercloud", url: remote, username: "remoteuser", apikey: "remote-api-key" },
    });
    const redeploy = await createTrigger(user, svc);
    const scaleup = await createTrigger(user, svc, { operation: "SCALEUP" });
    for (const path of [redeploy.url, `${scaleup.url}2/`]) {
      await waitForState(user, (await anonymousCall(path)).answer.resource_uri, "Success");
    }
    expect(requests.length).toBeGreaterThanOrEqual(4);
    const secrets = [...uuidForms(redeploy.uuid), ...uuidForms(scaleup.uuid)];
    expect(requests.filter((r) => shown(r.toLowerCase(), secrets).length > 0)).toEqual([]);
  });
});

describe("property", () => {
  const NUM_RUNS = 25;
  const TRIGGERS = 4;

  it(`over random calls across ${TRIGGERS} triggers and member redeploys on one service, no anonymous answer shows another trigger or another caller (${NUM_RUNS} runs)`, async () => {
    const owner = await createUser();
    const member = await createUser();
    const org = await createOrg(uniqueName("org"), [owner.username, member.username]);
    const members: { user: User; who: Identity & { city: string } }[] = [owner, member].map((user, i) => ({
      user,
      who: { ua: `member-agent-${i}-${uniqueName("m")}`, ip: `192.0.2.10${i}`, city: `City${i}${uniqueName("c")}` },
    }));
    let run = 0;
    let foreignJoins = 0;

    const command = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant("call" as const),
          trigger: fc.nat(TRIGGERS - 1),
          key: fc.option(fc.constantFrom("k1", "k2"), { nil: undefined }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("member" as const), member: fc.nat(1) }) },
    );

    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 10 }), async (commands) => {
        run += 1;
        // No target: actions run at once from the queue, so calls join a Pending one or make their own.
        const svc = await createService(owner, { max_num_containers: 100 }, org);
        const triggers: TriggerJson[] = [];
        for (let i = 0; i < TRIGGERS; i++) {
          triggers.push(
            await createTrigger(owner, svc, {
              name: `t${i}x${uniqueName("n")}`,
              operation: i === 0 ? "SCALEUP" : "REDEPLOY",
            }),
          );
        }
        /** Who made each action: a trigger's index, or a member's. */
        const madeBy = new Map<string, string>();
        const callers: Identity[] = [];
        const problems: string[] = [];

        for (const [n, c] of commands.entries()) {
          if (c.kind === "member") {
            const m = members[c.member] as (typeof members)[number];
            const uri = await memberRedeploy(m.user, svc, m.who);
            if (!madeBy.has(uri)) madeBy.set(uri, `member ${c.member}`);
            continue;
          }
          // Same-length ids, so no caller's id is part of another's.
          const who = {
            ua: `agent-${run}-${String(n).padStart(2, "0")}-x`,
            ip: `10.${run}.1${String(n).padStart(2, "0")}.1`,
          };
          callers.push(who);
          const own = triggers[c.trigger] as TriggerJson;
          const { answer, text } = await anonymousCall(own.url, who, c.key ? { "Idempotency-Key": c.key } : {});
          const maker = madeBy.get(answer.resource_uri);
          if (maker === undefined) madeBy.set(answer.resource_uri, `trigger ${c.trigger}`);
          else if (maker !== `trigger ${c.trigger}`) foreignJoins += 1;

          const others = [
            ...triggers.filter((t) => t !== own).flatMap((t) => [...uuidForms(t.uuid), t.name]),
            ...members.flatMap((m) => [m.user.username, m.who.ua, m.who.ip, m.who.city]),
            ...callers.filter((x) => x !== who).flatMap((x) => [x.ua, x.ip]),
          ];
          const where = `command ${n} (${JSON.stringify(c)}) on an action made by ${maker ?? "this call"}`;
          if (answer.trigger !== own.resource_uri) problems.push(`${where}: trigger is ${answer.trigger}`);
          const leaked = shown(text, others);
          if (leaked.length) problems.push(`${where}: shows ${leaked.join(", ")}`);
        }
        expect(problems).toEqual([]);
      }),
      { numRuns: NUM_RUNS },
    );
    // The property is not vacuous: calls did join actions made by other triggers or members.
    expect(foreignJoins).toBeGreaterThan(0);
    await settle(owner, org);
  }, 120_000);
});
