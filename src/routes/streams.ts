import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { config } from "../config";
import { hideIds } from "../domain/ids";
import { DEFAULT_TAIL, MAX_TAIL } from "../domain/log-lines";
import { namespaceNameProblem } from "../domain/names";
import { envelope } from "../domain/pagination";
import { namespaceStub } from "../durable-objects/namespace";
import { SOCKET_DOORS, STREAM_HEADERS } from "../durable-objects/namespace/sockets";
import { redeemStreamTicket } from "../durable-objects/stream-tickets";
import { ApiError, unwrap } from "../http/errors";
import { type StreamCaller, streamCaller, verifiedCaller } from "../http/stream-auth";
import { type Ctx, dual, errorResponses, jsonResponse } from "./common";
import { uuidParam } from "./schemas/inputs";

const tags = ["streams"];

const LogMessage = z
  .object({ type: z.literal("log"), log: z.string(), timestamp: z.number().int() })
  .openapi("LogMessage");
const LogList = z
  .object({
    meta: z.object({
      limit: z.number().int(),
      offset: z.number().int(),
      total_count: z.number().int(),
      next: z.string().nullable(),
      previous: z.string().nullable(),
    }),
    objects: z.array(LogMessage),
  })
  .openapi("LogList");

const LogsQuery = z.object({
  follow: z
    .enum(["true", "false"], { error: "follow must be true or false" })
    .optional()
    .openapi({ description: "on a WebSocket: keep sending lines until the action finishes" }),
  tail: z.coerce
    .number({ error: `tail must be a whole number from 1 to ${MAX_TAIL}` })
    .int({ error: `tail must be a whole number from 1 to ${MAX_TAIL}` })
    .min(1, { error: `tail must be a whole number from 1 to ${MAX_TAIL}` })
    .max(MAX_TAIL, { error: `tail must be a whole number from 1 to ${MAX_TAIL}` })
    .optional()
    .openapi({ description: `the last N lines (default ${DEFAULT_TAIL})` }),
  user: z.string().optional().openapi({ description: "Go's GetLogs: the username, instead of a header" }),
  token: z.string().optional().openapi({ description: "Go's GetLogs: the API key, instead of a header" }),
});
const LogsParam = z.object({ uuid: uuidParam("the action uuid", () => "Action not found") });

const isUpgrade = (c: Ctx) => c.req.header("upgrade")?.toLowerCase() === "websocket";

const verify = (c: Ctx) => (user: string, apikey: string) => namespaceStub(c.env, user).authenticate(apikey);

/**
 * The caller and the namespace it asks for (its own unless the path names
 * one). A namespace it may not use is a 403, as for REST, or on a stream
 * (`upgrade`) the 401 every refused upgrade is.
 */
async function streamScope(c: Ctx, upgrade: boolean): Promise<{ caller: StreamCaller; ns: string }> {
  const ticket = upgrade ? new URL(c.req.url).searchParams.get("ticket") : null;
  if (ticket !== null) return ticketScope(c, ticket);
  const caller = await streamCaller(c.req.header("authorization"), new URL(c.req.url).searchParams, verify(c));
  const ns = c.req.param("namespace") ?? caller.user;
  if (namespaceNameProblem(ns) !== null) {
    const message = `namespace '${hideIds(ns).slice(0, 40)}' does not exist or you are not a member of it`;
    throw new ApiError(upgrade ? "unauthorized" : "forbidden", message);
  }
  return { caller, ns };
}

/**
 * The caller and namespace of a stream ticket (POST .../streamticket/), redeemed: it works once,
 * within its minute, for the namespace it was issued for; its credentials are then checked as a
 * header's are. Every refusal is the 401 of streams.
 */
async function ticketScope(c: Ctx, ticket: string): Promise<{ caller: StreamCaller; ns: string }> {
  const redeemed = await redeemStreamTicket(c.env, ticket);
  if (!redeemed) {
    throw new ApiError(
      "unauthorized",
      "stream ticket unknown, already used or expired: ask POST /api/audit/v1/<namespace>/streamticket/ for another",
    );
  }
  const ns = c.req.param("namespace") ?? redeemed.creds.username;
  if (ns !== redeemed.namespace) throw new ApiError("unauthorized", "this stream ticket is for another namespace");
  return { caller: await verifiedCaller(redeemed.creds, verify(c)), ns };
}

/**
 * Hands an authenticated stream to the namespace's object, which checks the
 * membership and holds the socket; any refusal comes back as the same 401.
 */
async function openStream(c: Ctx, door: string, extra: Record<string, string>): Promise<Response> {
  if (crossSite(c)) throw new ApiError("unauthorized", "a stream cannot be opened from another site's page");
  const { caller, ns } = await streamScope(c, true);
  const answer = await namespaceStub(c.env, ns).fetch(`https://namespace.internal${door}`, {
    headers: {
      upgrade: "websocket",
      [STREAM_HEADERS.user]: caller.user,
      [STREAM_HEADERS.key]: caller.keyHash,
      [STREAM_HEADERS.namespace]: ns,
      ...extra,
    },
  });
  if (answer.status === 101 && answer.webSocket)
    return new Response(null, { status: 101, webSocket: answer.webSocket });
  const why = await answer
    .json<{ error?: string }>()
    .then((b) => b.error)
    .catch(() => undefined);
  throw new ApiError("unauthorized", why ?? "you may not open this stream");
}

/**
 * Whether an upgrade comes from a page of another site. WebSockets have no
 * CORS: any page may dial one, and a browser holding Basic credentials for
 * this host (typed into a URL once) would attach them, handing the page the
 * namespace's events. Browsers always send Origin on an upgrade; the SDKs send
 * none (Go) or one naming the host they dial (Python's websocket-client:
 * `http://<host>`, whatever the scheme), so the Origin's host is compared with
 * the request's and the deployment's other names (SELF_ORIGINS).
 */
function crossSite(c: Ctx): boolean {
  const origin = c.req.header("origin");
  if (origin === undefined) return false;
  const hostOf = (url: string) => {
    try {
      return new URL(url).host.toLowerCase();
    } catch {
      return null;
    }
  };
  const ours = [c.req.url, ...config(c.env).SELF_ORIGINS].map(hostOf);
  const theirs = hostOf(origin);
  return theirs === null || !ours.includes(theirs);
}

/** The events stream: one message per change in the namespace, filtered as Go asks. */
async function events(c: Ctx): Promise<Response> {
  if (!isUpgrade(c)) {
    throw new ApiError(
      "upgrade_required",
      "this is the events stream: connect with a WebSocket (Upgrade: websocket) and your Basic credentials",
      { Upgrade: "websocket" },
    );
  }
  const q = new URL(c.req.url).searchParams;
  const filters = {
    object: q.get("object"),
    type: q.get("type"),
    parents: (q.get("parents") ?? "").split(",").filter((p) => p !== ""),
  };
  return openStream(c, SOCKET_DOORS.events, { [STREAM_HEADERS.filters]: JSON.stringify(filters) });
}

/** An action's log as a stream; a request it cannot serve is refused with a 401, as every stream's. */
async function logsStream(c: Ctx): Promise<Response> {
  const param = LogsParam.safeParse({ uuid: c.req.param("uuid") });
  const query = LogsQuery.safeParse(Object.fromEntries(new URL(c.req.url).searchParams));
  if (!param.success) throw new ApiError("unauthorized", "Action not found");
  if (!query.success) throw new ApiError("unauthorized", query.error.issues[0]?.message ?? "invalid query");
  const { follow = "false", tail = DEFAULT_TAIL } = query.data;
  return openStream(c, SOCKET_DOORS.logs, {
    [STREAM_HEADERS.action]: param.data.uuid,
    [STREAM_HEADERS.follow]: follow,
    [STREAM_HEADERS.tail]: String(tail),
  });
}

/**
 * The live streams, on the API's host (`DOCKERCLOUD_STREAM_HOST` points at it):
 * `/api/audit/v1/[<ns>/]events` and `/api/audit/v1/[<ns>/]action/<uuid>/logs/`.
 */
export function registerStreamRoutes(app: OpenAPIHono<AppEnv>): void {
  for (const ns of ["", "/:namespace"]) {
    for (const slash of ["", "/"]) app.get(`/api/audit/v1${ns}/events${slash}`, events);
    // The same path as the JSON answer below: an upgrade is a stream, anything else the list.
    app.use(`/api/audit/v1${ns}/action/:uuid/logs/`, async (c, next) => (isUpgrade(c) ? logsStream(c) : next()));
  }

  dual(
    app,
    {
      method: "get",
      subsystem: "audit",
      auth: "handler",
      path: "/action/{uuid}/logs/",
      tags,
      operationId: "getActionLogs",
      summary: "An action's log lines; with Upgrade: websocket, a stream of them (follow=true: until it finishes)",
      request: { params: LogsParam, query: LogsQuery },
      responses: { 200: jsonResponse("The last lines", LogList), ...errorResponses(400, 401, 403, 404) },
    },
    async (c) => {
      const { uuid } = c.req.valid("param");
      const { tail = DEFAULT_TAIL } = c.req.valid("query");
      const { caller, ns } = await streamScope(c, false);
      const lines = unwrap(await namespaceStub(c.env, ns).actionLogs(caller.user, ns, uuid, tail));
      // No query in the links: a `token` there would be echoed.
      const page = { limit: tail, offset: 0 };
      return c.json(envelope(c.req.path, new URLSearchParams(), page, lines.length, lines), 200);
    },
  );
}
