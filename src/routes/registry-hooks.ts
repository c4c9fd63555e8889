import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app";
import { config } from "../config";
import { decryptSecret, encryptSecret, randomHex } from "../domain/crypto";
import { namespaceNameProblem } from "../domain/names";
import {
  DEFAULT_GRACE_SECONDS,
  RegistryHookCreate,
  RegistryHookRotate,
  type RegistrySource,
} from "../domain/registry-hook";
import { namespaceStub } from "../durable-objects/namespace";
import type { HookCredentials } from "../durable-objects/namespace/registry-hooks/hooks";
import type { HookAnswer, HookCall } from "../durable-objects/namespace/registry-hooks/surface";
import { unwrap } from "../http/errors";
import { HOOK_BODY_BYTES, readBody } from "../http/normalize";
import { SOURCES } from "../registry-hooks/sources";
import { askedNamespace, type Ctx, dual, errorResponses, jsonBody, jsonResponse, listResponse } from "./common";
import { requestMeta } from "./meta";
import { PageQuery, uuidParam } from "./schemas/inputs";
import { DeliveryObject, listOf, NewRegistryHookObject, RegistryHookObject } from "./schemas/objects";

const tags = ["registry hooks"];
const HookParam = z.object({ uuid: uuidParam("the registry hook uuid", () => "Registry hook not found") });
const HookList = listOf("RegistryHookList", RegistryHookObject);
const DeliveryList = listOf("RegistryHookDeliveryList", DeliveryObject);
const NOT_FOUND = "Registry hook not found";

/** What the source's senders are told to send, in the create's answer. */
const SIGNING: Record<RegistrySource, string> = {
  dockerhub: "Docker Hub cannot sign its webhooks: the URL is the only credential; keep it secret",
  quay: "Quay cannot sign its notifications: the URL is the only credential; keep it secret",
  acr: "Azure Container Registry's webhooks carry no signature the hook can check: the URL is the only credential",
  github: "set this secret as the webhook's secret: GitHub signs each delivery (X-Hub-Signature-256)",
  harbor: "set the webhook's Auth Header to `Bearer <secret>`: Harbor sends it as the Authorization header",
  distribution: "add `Authorization: [Bearer <secret>]` to the notifications endpoint's headers",
  generic: "sign each call as Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature) with this secret",
};

/** A new token for a hook's URL, and its source's secret, shown once and kept sealed. */
async function credentialsFor(c: Ctx, source: RegistrySource) {
  const secret = SOURCES[source].newSecret();
  const sealed = secret === null ? null : await encryptSecret(config(c.env).secretsKey, secret);
  const credentials: HookCredentials = { token: randomHex(20), secret_sealed: sealed };
  return { credentials, secret };
}

/**
 * Registry hooks of a namespace (Basic auth): create, list, get, delete,
 * rotate, and each hook's last deliveries; and the call a registry makes
 * (no credentials of a user: the URL's token, and a signature where the
 * source signs).
 */
export function registerRegistryHookRoutes(app: OpenAPIHono<AppEnv>): void {
  dual(
    app,
    {
      method: "post",
      subsystem: "app",
      path: "/registryhook/",
      tags,
      operationId: "createRegistryHook",
      summary:
        "Create a registry hook; its secret (for sources that sign: github, harbor, distribution, generic) is in this answer only",
      request: { body: jsonBody(RegistryHookCreate) },
      responses: { 201: jsonResponse("The hook", NewRegistryHookObject), ...errorResponses(400, 401, 403, 409) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const input = c.req.valid("json");
      const { credentials, secret } = await credentialsFor(c, input.source);
      const hook = unwrap(await namespaceStub(c.env, ns).createRegistryHook(c.get("user"), ns, input, credentials));
      return c.json({ ...hook, secret, signing: SIGNING[input.source] }, 201);
    },
  );

  dual(
    app,
    {
      method: "get",
      subsystem: "app",
      path: "/registryhook/",
      tags,
      operationId: "listRegistryHooks",
      summary: "List registry hooks",
      request: { query: z.object(PageQuery) },
      responses: { 200: jsonResponse("Hooks", HookList), ...errorResponses(400, 401, 403) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const page = c.req.valid("query");
      const listing = unwrap(await namespaceStub(c.env, ns).listRegistryHooks(c.get("user"), ns, page));
      return c.json(listResponse(c, RegistryHookObject, page, listing), 200);
    },
  );

  dual(
    app,
    {
      method: "get",
      subsystem: "app",
      path: "/registryhook/{uuid}/",
      tags,
      operationId: "getRegistryHook",
      summary: "Get a registry hook",
      request: { params: HookParam },
      responses: { 200: jsonResponse("The hook", RegistryHookObject), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { uuid } = c.req.valid("param");
      return c.json(unwrap(await namespaceStub(c.env, ns).getRegistryHook(c.get("user"), ns, uuid)), 200);
    },
  );

  dual(
    app,
    {
      method: "delete",
      subsystem: "app",
      path: "/registryhook/{uuid}/",
      tags,
      operationId: "deleteRegistryHook",
      summary: "Delete a registry hook; its URLs are dead from this answer on",
      request: { params: HookParam },
      responses: { 200: jsonResponse("The deleted hook", RegistryHookObject), ...errorResponses(401, 403, 404) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { uuid } = c.req.valid("param");
      return c.json(unwrap(await namespaceStub(c.env, ns).deleteRegistryHook(c.get("user"), ns, uuid)), 200);
    },
  );

  dual(
    app,
    {
      method: "post",
      subsystem: "app",
      path: "/registryhook/{uuid}/rotate/",
      tags,
      operationId: "rotateRegistryHook",
      summary: `A new URL and secret (shown in this answer only); the old ones keep working for grace_seconds (default ${DEFAULT_GRACE_SECONDS}), their calls marked in the deliveries`,
      request: { params: HookParam, body: jsonBody(RegistryHookRotate) },
      responses: { 200: jsonResponse("The hook", NewRegistryHookObject), ...errorResponses(400, 401, 403, 404) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { uuid } = c.req.valid("param");
      const grace = c.req.valid("json").grace_seconds ?? DEFAULT_GRACE_SECONDS;
      const stub = namespaceStub(c.env, ns);
      const hook = unwrap(await stub.getRegistryHook(c.get("user"), ns, uuid));
      const { credentials, secret } = await credentialsFor(c, hook.source);
      const rotated = unwrap(await stub.rotateRegistryHook(c.get("user"), ns, uuid, credentials, grace));
      return c.json({ ...rotated, secret, signing: SIGNING[hook.source] }, 200);
    },
  );

  dual(
    app,
    {
      method: "get",
      subsystem: "app",
      path: "/registryhook/{uuid}/delivery/",
      tags,
      operationId: "listRegistryHookDeliveries",
      summary: "The hook's last 100 deliveries, newest first: what each payload said and what was done with it",
      request: { params: HookParam, query: z.object(PageQuery) },
      responses: { 200: jsonResponse("Deliveries", DeliveryList), ...errorResponses(400, 401, 403, 404) },
    },
    async (c) => {
      const ns = askedNamespace(c);
      const { uuid } = c.req.valid("param");
      const page = c.req.valid("query");
      const listing = unwrap(await namespaceStub(c.env, ns).listHookDeliveries(c.get("user"), ns, uuid, page));
      return c.json(listResponse(c, DeliveryObject, page, listing), 200);
    },
  );

  registerHookCall(app);
}

const CallParams = z.object({
  namespace: z.string().openapi({ description: "the namespace the hook belongs to" }),
  token: z.string().openapi({ description: "the secret of the hook's URL" }),
});

/** POST /api/app/v1/<ns>/registryhook/call/<token>/: what a registry sends when an image is pushed. */
function registerHookCall(app: OpenAPIHono<AppEnv>): void {
  const route = createRoute({
    method: "post",
    path: "/api/app/v1/{namespace}/registryhook/call/{token}/",
    tags,
    operationId: "callRegistryHook",
    summary: `A registry's call: 202 with the actions it started, 200 with why it started none (no credentials; at most ${HOOK_BODY_BYTES / 1024 / 1024} MiB)`,
    request: { params: CallParams },
    responses: {
      202: jsonResponse("The actions started", z.object({ actions: z.array(z.string()) }).openapi("HookStarted")),
      200: jsonResponse("Nothing started, and why", z.object({ ignored: z.string() }).openapi("HookIgnored")),
      ...errorResponses(400, 401, 404, 413, 429),
    },
  });
  app.openapi(route, async (c) => {
    const { namespace, token } = c.req.valid("param");
    const answer = await callHook(c, namespace, token);
    return c.json(answer.body, answer.status as 200) as never;
  });
}

async function callHook(c: Ctx, ns: string, token: string): Promise<HookAnswer> {
  const raw = await readBody(c.req.raw, HOOK_BODY_BYTES);
  if (namespaceNameProblem(ns) !== null || !/^[0-9a-f]{40}$/.test(token)) return notFound();
  const stub = namespaceStub(c.env, ns);
  const called = await stub.registryHookOf(token);
  if (!called) return notFound();
  const source = SOURCES[called.hook.source];
  const body = new TextDecoder().decode(raw);
  const headers = c.req.raw.headers;
  const meta = requestMeta(c, `/api/app/v1/${ns}/registryhook/call/[redacted]/`);
  let call: HookCall;
  if (source.auth !== "none" && !(await genuine(c, called.secretSealed, source, headers, body))) {
    call = {
      kind: "refused",
      status: 401,
      reason: "the call's signature or Authorization does not match this hook's secret",
    };
  } else {
    const parsed = source.parse(headers, body);
    call = parsed.ok
      ? { kind: "parsed", pushes: parsed.pushes, ignored: parsed.ignored }
      : { kind: "refused", status: 400, reason: parsed.error };
  }
  return stub.registryCall(called.hook.uuid, called.viaPrevious, call, meta);
}

async function genuine(
  c: Ctx,
  sealed: string | null,
  source: (typeof SOURCES)[RegistrySource],
  headers: Headers,
  body: string,
): Promise<boolean> {
  if (sealed === null) return false;
  try {
    const secret = await decryptSecret(config(c.env).secretsKey, sealed);
    return await source.verify(secret, headers, body);
  } catch {
    // A secret that cannot be unsealed (SECRETS_KEY changed) checks nothing: refused, and the deliveries say so.
    return false;
  }
}

const notFound = (): HookAnswer => ({ status: 404, body: { error: NOT_FOUND } });
