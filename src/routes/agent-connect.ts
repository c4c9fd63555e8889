import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { tokenNamespace } from "../domain/agent";
import { namespaceNameProblem } from "../domain/names";
import { namespaceStub } from "../durable-objects/namespace";
import { AGENT_HEADERS, SOCKET_DOORS } from "../durable-objects/namespace/sockets";
import { bearerToken } from "../http/credentials";
import { ApiError } from "../http/errors";

const REALM = { "WWW-Authenticate": 'Bearer realm="Docker Cloud agents"' };

/**
 * GET /api/agent/v1/connect/: an agent dials out here and upgrades to a
 * WebSocket, its token as a Bearer header, so it needs no inbound port. The
 * token names its namespace; that namespace's object checks the token and
 * holds the connection. Every refusal of a token is the same 401.
 */
export function registerAgentConnectRoutes(app: OpenAPIHono<AppEnv>): void {
  app.get("/api/agent/v1/connect/", async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError(
        "upgrade_required",
        "this is an agent's connection: send Upgrade: websocket with Authorization: Bearer <agent token>",
        { Upgrade: "websocket" },
      );
    }
    const token = bearerToken(c.req.header("authorization"));
    const ns = token ? tokenNamespace(token) : null;
    if (!token || !ns || namespaceNameProblem(ns) !== null) {
      throw new ApiError("unauthorized", "send Authorization: Bearer <agent token> (dca_...)", REALM);
    }
    const answer = await namespaceStub(c.env, ns).fetch(`https://namespace.internal${SOCKET_DOORS.agent}`, {
      // The edge sets CF-Connecting-IP; members see it on the agent, to tell a thief's connection from theirs.
      headers: {
        upgrade: "websocket",
        [AGENT_HEADERS.token]: token,
        [AGENT_HEADERS.address]: c.req.header("cf-connecting-ip") ?? "",
      },
    });
    if (answer.status !== 101 || !answer.webSocket) {
      throw new ApiError("unauthorized", "unknown or revoked agent token", REALM);
    }
    return new Response(null, { status: 101, webSocket: answer.webSocket });
  });
}
