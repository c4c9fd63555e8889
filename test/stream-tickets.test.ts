/**
 * Stream tickets: POST /api/audit/v1/[<ns>/]streamticket/ (Basic auth) answers a ticket that opens
 * one stream of the namespace as `?ticket=`, once, within a minute, for the user and namespace it
 * was issued for; every refused ticket is a 401 with {"error"}. The stored row holds neither the
 * ticket nor the key, and no log line either.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_LIVE_TICKETS_PER_USER, STREAM_TICKET, ticketShard } from "../src/domain/stream-ticket";
import { issueStreamTicket } from "../src/durable-objects/stream-tickets";
import { waitForState } from "./helpers/actions";
import { as, call, createOrg, createService, createTrigger, createUser, type User } from "./helpers/api";
import { listen } from "./helpers/sockets";

type Ticket = { ticket: string; namespace: string; expires: string; expires_in: number };

async function issue(user: User, ns?: string): Promise<Ticket> {
  const res = await as(user, "POST", ns ? `/api/audit/v1/${ns}/streamticket/` : "/api/audit/v1/streamticket/");
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json<Ticket>();
}

const upgrade = (path: string) => call(path, { headers: { upgrade: "websocket" } });

async function refusedWith401(path: string): Promise<string> {
  const res = await upgrade(path);
  expect(res.status).toBe(401);
  const body = await res.json<{ error: string }>();
  expect(Object.keys(body)).toEqual(["error"]);
  return body.error;
}

afterEach(() => vi.restoreAllMocks());

describe("issuing a stream ticket", () => {
  it("answers 201 with a ticket for the caller's own namespace, or a namespace it names", async () => {
    const user = await createUser();
    const org = await createOrg(undefined, [user.username]);
    const own = await issue(user);
    expect(own.ticket).toMatch(STREAM_TICKET);
    expect(own).toMatchObject({ namespace: user.username, expires_in: 60 });
    expect(Date.parse(own.expires)).toBeGreaterThan(Date.now() - 1000);
    expect((await issue(user, org)).namespace).toBe(org);
    expect((await issue(user, user.username)).namespace).toBe(user.username);
  });

  it("refuses without credentials (401), for another's namespace (403), and bad input with a 4xx {error}", async () => {
    const user = await createUser();
    const other = await createUser();
    const org = await createOrg();
    const cases: [string, RequestInit, number][] = [
      ["/api/audit/v1/streamticket/", { method: "POST" }, 401],
      ["/api/audit/v1/streamticket/", { method: "POST", headers: { authorization: "Basic bm9wZTpub3Bl" } }, 401],
      [`/api/audit/v1/${other.username}/streamticket/`, { method: "POST", headers: { authorization: user.auth } }, 403],
      [`/api/audit/v1/${org}/streamticket/`, { method: "POST", headers: { authorization: user.auth } }, 403],
      ["/api/audit/v1/NOT-A-NAME/streamticket/", { method: "POST", headers: { authorization: user.auth } }, 403],
      ["/api/audit/v1/streamticket/", { method: "GET", headers: { authorization: user.auth } }, 405],
      [
        "/api/audit/v1/streamticket/",
        { method: "POST", headers: { authorization: user.auth, "content-type": "text/plain" }, body: "x" },
        415,
      ],
      [
        "/api/audit/v1/streamticket/",
        { method: "POST", headers: { authorization: user.auth, origin: "https://evil.example" } },
        403,
      ],
      [
        "/api/audit/v1/streamticket/",
        { method: "POST", headers: { authorization: user.auth, "content-type": "application/json" }, body: "[1]" },
        400,
      ],
    ];
    for (const [path, init, status] of cases) {
      const res = await call(path, init);
      expect(res.status, `${init.method} ${path}`).toBe(status);
      expect(Object.keys(await res.json<object>()), path).toEqual(["error"]);
    }
  });

  it(`holds at most ${MAX_LIVE_TICKETS_PER_USER} unused tickets per user (429, then free again once used)`, async () => {
    const user = await createUser();
    const tickets: Ticket[] = [];
    for (let i = 0; i < MAX_LIVE_TICKETS_PER_USER; i++) tickets.push(await issue(user));
    const over = await as(user, "POST", "/api/audit/v1/streamticket/");
    expect(over.status).toBe(429);
    expect(over.headers.get("retry-after")).toBe("60");
    expect((await over.json<{ error: string }>()).error).toContain("unused stream tickets");
    const used = await upgrade(`/api/audit/v1/events?ticket=${tickets[0]?.ticket}`);
    expect(used.status).toBe(101);
    used.webSocket?.accept();
    used.webSocket?.close();
    await issue(user);
  });
});

describe("opening a stream with a ticket", () => {
  it("opens the events stream once; the second use is a 401", async () => {
    const user = await createUser();
    const { ticket } = await issue(user);
    const res = await upgrade(`/api/audit/v1/events?ticket=${ticket}`);
    expect(res.status).toBe(101);
    const events = listen(res.webSocket as WebSocket);
    const svc = await createService(user);
    await events.until(() => events.parsed().some((e) => e.uuid === svc.uuid), "the service's event");
    events.ws.close();
    expect(await refusedWith401(`/api/audit/v1/events?ticket=${ticket}`)).toContain("already used or expired");
  });

  it("opens an action's log, followed, in an organization the user belongs to", async () => {
    const user = await createUser();
    const org = await createOrg(undefined, [user.username]);
    const svc = await createService(user, {}, org);
    const trigger = await createTrigger(user, svc);
    const fired = await call(trigger.url, { method: "POST" });
    const action = await fired.json<{ uuid: string; resource_uri: string }>();
    await waitForState(user, action.resource_uri, "Success");
    const { ticket } = await issue(user, org);
    const res = await upgrade(`/api/audit/v1/${org}/action/${action.uuid}/logs/?follow=true&ticket=${ticket}`);
    expect(res.status).toBe(101);
    const log = listen(res.webSocket as WebSocket);
    await log.until(() => log.closed() !== null, "the finished action's log to close");
    expect(log.parsed().length).toBeGreaterThan(0);
    expect(log.parsed()[0]).toMatchObject({ type: "log" });
  });

  it("refuses an expired ticket, one for another namespace, a malformed one, and one whose key was revoked", async () => {
    const user = await createUser();
    const org = await createOrg(undefined, [user.username]);
    const creds = { username: user.username, apikey: user.apikey };
    const expired = await issueStreamTicket(env, creds, user.username, Date.now() - 61_000);
    if (!expired.ok) throw new Error(expired.message);
    expect(await refusedWith401(`/api/audit/v1/events?ticket=${expired.value.ticket}`)).toContain("expired");

    const own = await issue(user);
    expect(await refusedWith401(`/api/audit/v1/${org}/events?ticket=${own.ticket}`)).toContain("another namespace");
    // Refused, and used up all the same.
    expect(await refusedWith401(`/api/audit/v1/events?ticket=${own.ticket}`)).toContain("already used");
    const forOrg = await issue(user, org);
    expect(await refusedWith401(`/api/audit/v1/events?ticket=${forOrg.ticket}`)).toContain("another namespace");

    for (const bad of ["", "dst_", "x".repeat(300), `dst_zz${"0".repeat(64)}`, `dst_00${"0".repeat(64)}`]) {
      await refusedWith401(`/api/audit/v1/events?ticket=${encodeURIComponent(bad)}`);
    }

    const late = await issue(user);
    const keys = await (await as(user, "GET", "/api/account/v1/apikey/")).json<{ objects: { uuid: string }[] }>();
    for (const k of keys.objects) await as(user, "DELETE", `/api/account/v1/apikey/${k.uuid}/`);
    expect(await refusedWith401(`/api/audit/v1/events?ticket=${late.ticket}`)).toContain("invalid username or API key");
  });

  it("is refused from another site's page, and a ticket on a plain GET opens nothing", async () => {
    const user = await createUser();
    const { ticket } = await issue(user);
    const res = await call(`/api/audit/v1/events?ticket=${ticket}`, {
      headers: { upgrade: "websocket", origin: "https://evil.example" },
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "a stream cannot be opened from another site's page" });
    const plain = await call(`/api/audit/v1/events?ticket=${ticket}`);
    expect(plain.status).toBe(426);
    const logs = await call(`/api/audit/v1/action/00000000-0000-4000-8000-000000000000/logs/?ticket=${ticket}`);
    expect(logs.status).toBe(401);
    // Neither of those used it up.
    const ok = await upgrade(`/api/audit/v1/events?ticket=${ticket}`);
    expect(ok.status).toBe(101);
    ok.webSocket?.accept();
    ok.webSocket?.close();
  });
});

describe("what a ticket leaves behind", () => {
  it("stores neither the ticket nor the key, and writes neither to a log", async () => {
    const logged: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        logged.push(args.map((a) => (a instanceof Error ? `${a.message} ${a.stack}` : String(a))).join(" "));
      });
    }
    const user = await createUser();
    const { ticket } = await issue(user);
    const stub = env.STREAM_TICKETS.getByName(`stream-tickets-${await ticketShard(user.username)}`);
    const rows = await runInDurableObject(stub, (_instance, state) =>
      JSON.stringify(state.storage.sql.exec("SELECT * FROM tickets").toArray()),
    );
    expect(rows).toContain(user.username);
    expect(rows).not.toContain(ticket);
    expect(rows).not.toContain(ticket.slice(6));
    expect(rows).not.toContain(user.apikey);
    const res = await upgrade(`/api/audit/v1/events?ticket=${ticket}`);
    expect(res.status).toBe(101);
    res.webSocket?.accept();
    res.webSocket?.close();
    await refusedWith401(`/api/audit/v1/events?ticket=${ticket}`);
    const after = await runInDurableObject(stub, (_instance, state) =>
      state.storage.sql
        .exec<{ n: number }>("SELECT COUNT(*) AS n FROM tickets WHERE username = ?", user.username)
        .one(),
    );
    expect(after.n).toBe(0);
    for (const line of logged) {
      expect(line).not.toContain(ticket.slice(6));
      expect(line).not.toContain(user.apikey);
    }
  });
});
