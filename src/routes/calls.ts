import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { redactTriggerPath } from "../domain/action";
import { namespaceNameProblem } from "../domain/names";
import { locateService } from "../durable-objects/locator";
import { namespaceStub } from "../durable-objects/namespace";
import { ApiError, unwrap } from "../http/errors";
import { readBody, utf8Body } from "../http/normalize";
import { type Ctx, dual, errorResponses, jsonResponse } from "./common";
import { requestMeta } from "./meta";
import { CountParam, uuidParam } from "./schemas/inputs";
import { CallerActionObject } from "./schemas/objects";

const tags = ["triggers"];

/** One answer for every trigger that cannot be called, so the answer tells nothing about uuids. */
const TRIGGER_NOT_FOUND = "Trigger not found";
const notFound = () => new ApiError("not_found", TRIGGER_NOT_FOUND);

/** A malformed service or trigger uuid is the same 404 as an unknown one. */
const CallParams = z.object({
  uuid: uuidParam("the service uuid", () => TRIGGER_NOT_FOUND),
  trigger_uuid: uuidParam("the trigger uuid", () => TRIGGER_NOT_FOUND),
});
const CountParams = CallParams.extend({ count: CountParam });

/**
 * The call's body as stored and forwarded: any bytes, decoded as text; but a body that says it
 * is JSON (which RFC 8259 requires in UTF-8) and is not UTF-8 is refused, not stored mangled.
 */
function callBody(raw: Uint8Array, contentType: string | undefined): string {
  if (/^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType ?? "")) return utf8Body(raw, "call body (declared JSON)");
  return new TextDecoder().decode(raw);
}

/** Idempotency-Key: at most 255 visible ASCII characters. */
function idempotencyKey(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  if (!/^[\x21-\x7e]{1,255}$/.test(raw)) {
    throw new ApiError("bad_request", "Idempotency-Key must be 1 to 255 visible ASCII characters");
  }
  return raw;
}

type Call = { service: string; trigger: string; scaleBy: number | null };

/**
 * POST .../trigger/<T>/call/[N/]: no credentials (the URL is the secret; an
 * Authorization header is ignored). Answers 202 as soon as the action is
 * recorded; the operation runs from the queue. The answer is the caller's view
 * of the action (see serializeActionForCaller), joined or replayed ones included.
 */
async function callTrigger(c: Ctx, { service, trigger, scaleBy }: Call) {
  const raw = await readBody(c.req.raw);

  const named = c.req.param("namespace");
  const ns = named !== undefined ? named : await locateService(c.env, service);
  if (!ns || namespaceNameProblem(ns) !== null) throw notFound();

  const meta = requestMeta(c, redactTriggerPath(c.req.path));
  const result = await namespaceStub(c.env, ns).callTrigger({
    service,
    trigger,
    idempotency_key: idempotencyKey(c.req.header("idempotency-key")),
    scale_by: scaleBy,
    body: raw.byteLength ? callBody(raw, c.req.header("content-type")) : null,
    meta,
  });
  const action = unwrap(result, (f) => (f.code === "not_found" ? notFound() : null));
  return c.json(action, 202, { "X-DockerCloud-Action-URI": action.resource_uri });
}

export function registerCallRoutes(app: OpenAPIHono<AppEnv>): void {
  const responses = {
    202: jsonResponse(
      "The action that will perform the operation, as an anonymous caller may see it: `trigger` is the caller's own trigger; method, path, user, user_agent, ip, location, is_user_action, logs and retry_of are null. Its URI is in X-DockerCloud-Action-URI",
      CallerActionObject,
    ),
    ...errorResponses(400, 404, 405, 413),
  };
  dual(
    app,
    {
      method: "post",
      subsystem: "app",
      path: "/service/{uuid}/trigger/{trigger_uuid}/call/",
      auth: false,
      tags,
      operationId: "callTrigger",
      summary: "Call a trigger (no credentials)",
      request: { params: CallParams },
      responses,
    },
    async (c) => {
      const { uuid, trigger_uuid } = c.req.valid("param");
      return callTrigger(c, { service: uuid, trigger: trigger_uuid, scaleBy: null });
    },
  );
  dual(
    app,
    {
      method: "post",
      subsystem: "app",
      path: "/service/{uuid}/trigger/{trigger_uuid}/call/{count}/",
      auth: false,
      tags,
      operationId: "callTriggerWithCount",
      summary: "Call a SCALEUP trigger, scaling up by count (no credentials)",
      request: { params: CountParams },
      responses,
    },
    async (c) => {
      const { uuid, trigger_uuid, count } = c.req.valid("param");
      return callTrigger(c, { service: uuid, trigger: trigger_uuid, scaleBy: count });
    },
  );
}
