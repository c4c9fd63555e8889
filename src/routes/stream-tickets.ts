import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { rfc1123 } from "../domain/dates";
import { hideIds } from "../domain/ids";
import { STREAM_TICKET_SECONDS } from "../domain/stream-ticket";
import { namespaceStub } from "../durable-objects/namespace";
import { issueStreamTicket } from "../durable-objects/stream-tickets";
import { parseAuthorization } from "../http/credentials";
import { ApiError, unwrap } from "../http/errors";
import { askedNamespace, type Ctx, dual, errorResponses, jsonResponse } from "./common";

const StreamTicketObject = z
  .object({
    ticket: z.string().openapi({ description: "pass it as ?ticket= on the stream's upgrade; it works once" }),
    namespace: z.string().openapi({ description: "the namespace whose streams it opens" }),
    expires: z.string().openapi({ description: "when it stops working, unused" }),
    expires_in: z.number().int().openapi({ description: "seconds from now" }),
  })
  .openapi("StreamTicket");

/** The namespace asked for, if the caller may act in it: its own, or an organization it belongs to. */
async function memberNamespace(c: Ctx): Promise<string> {
  const ns = askedNamespace(c);
  const user = c.get("user");
  if (ns === user || (await namespaceStub(c.env, user).memberships()).includes(ns)) return ns;
  throw new ApiError(
    "forbidden",
    `namespace '${hideIds(ns).slice(0, 40)}' does not exist or you are not a member of it`,
  );
}

/**
 * Stream tickets: the way a browser page opens the events stream or an action's log without
 * putting the API key in a URL (domain/stream-ticket.ts says how they hold).
 */
export function registerStreamTicketRoutes(app: OpenAPIHono<AppEnv>): void {
  dual(
    app,
    {
      method: "post",
      subsystem: "audit",
      path: "/streamticket/",
      tags: ["streams"],
      operationId: "createStreamTicket",
      summary:
        `A single-use ticket to open one stream of the namespace (events, or an action's log) as ?ticket=, ` +
        `within ${STREAM_TICKET_SECONDS} s: for browsers, which cannot set Authorization on a WebSocket`,
      responses: {
        201: jsonResponse("The ticket, shown once", StreamTicketObject),
        ...errorResponses(400, 401, 403, 429),
      },
    },
    async (c) => {
      const ns = await memberNamespace(c);
      // requireUser has checked this header already.
      const creds = parseAuthorization(c.req.header("authorization"));
      if (!creds) throw new ApiError("unauthorized", "invalid username or API key");
      const issued = unwrap(await issueStreamTicket(c.env, creds, ns));
      const expires = rfc1123(issued.expires_at) ?? "";
      return c.json({ ticket: issued.ticket, namespace: ns, expires, expires_in: STREAM_TICKET_SECONDS }, 201);
    },
  );
}
