/**
 * The OpenAPI document (GET /api/openapi.json): a valid OpenAPI 3.1 document
 * (checked by @readme/openapi-parser, inside the Workers runtime), every 2xx
 * answer of every operation described by a real JSON schema, parameters that
 * carry the constraints the API enforces, and answers that are what their
 * schemas say.
 */
import { validate } from "@readme/openapi-parser";
import { beforeAll, describe, expect, it } from "vitest";
import { AdminUser } from "../src/routes/schemas/admin";
import {
  ActionObject,
  ApiKeyObject,
  CallerActionObject,
  ServiceObject,
  TriggerObject,
} from "../src/routes/schemas/objects";
import { ADMIN_TOKEN, as, call, createService, createTrigger, createUser, type User } from "./helpers/api";
import type { Json } from "./helpers/bad-input";

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

async function fetchDocument(): Promise<Json> {
  const res = await call("/api/openapi.json");
  expect(res.status).toBe(200);
  return res.json<Json>();
}

function resolve(doc: Json, schema: Json): Json {
  const ref: unknown = schema?.$ref;
  if (typeof ref !== "string") return schema;
  const name = ref.replace("#/components/schemas/", "");
  return doc.components.schemas[name];
}

/** Every operation of the document: [label, operation, its path item's parameters]. */
function operations(doc: Json): [string, Json][] {
  return Object.entries<Json>(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((m): [string, Json] => [`${m.toUpperCase()} ${path}`, item[m]]),
  );
}

function parameter(doc: Json, method: string, path: string, name: string): Json {
  const op = doc.paths[path]?.[method];
  expect(op, `${method.toUpperCase()} ${path}`).toBeDefined();
  const p = (op.parameters ?? []).find((x: Json) => x.name === name);
  expect(p, `parameter ${name} of ${method.toUpperCase()} ${path}`).toBeDefined();
  return p;
}

describe("the OpenAPI document", () => {
  let doc: Json;
  beforeAll(async () => {
    doc = await fetchDocument();
  });

  it("is a valid OpenAPI 3.1 document", async () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    // The parser dereferences in place: give it a copy.
    const result = await validate(structuredClone(doc));
    expect(result.valid ? [] : result.errors.map((e) => e.message)).toEqual([]);
  });

  it("the validator refuses a broken copy (it is not vacuous)", async () => {
    const broken = structuredClone(doc);
    const ns = broken.paths["/api/app/v1/{namespace}/service/"].get;
    ns.parameters = ns.parameters.filter((p: Json) => p.name !== "namespace");
    const result = await validate(broken);
    expect(result.valid).toBe(false);
  });

  it("every 2xx answer of every operation has a JSON schema naming its fields", () => {
    const ops = operations(doc);
    expect(ops.length).toBeGreaterThan(30);
    for (const [label, op] of ops) {
      const success = Object.keys(op.responses ?? {}).filter((code) => /^2\d\d$/.test(code));
      expect(success.length, `${label} documents a 2xx answer`).toBeGreaterThan(0);
      for (const code of success) {
        const what = `${label} ${code}`;
        const schema = resolve(doc, op.responses[code].content?.["application/json"]?.schema);
        expect(schema, `${what}: a JSON schema`).toBeDefined();
        expect(schema.type, `${what}: an object`).toBe("object");
        expect(Object.keys(schema.properties ?? {}).length, `${what}: not the empty object`).toBeGreaterThan(0);
        expect(schema.required?.length ?? 0, `${what}: its fields are required`).toBeGreaterThan(0);
        // Not loose: no `additionalProperties: true` or `{}` standing for "anything else too".
        const extra = schema.additionalProperties;
        const loose = extra === true || (typeof extra === "object" && Object.keys(extra).length === 0);
        expect(loose, `${what}: not a loose object`).toBe(false);
      }
    }
  });

  it("list answers are the envelope of their own object type", () => {
    const lists: [string, string][] = [
      ["/api/app/v1/service/", "Service"],
      ["/api/app/v1/{namespace}/service/{uuid}/trigger/", "Trigger"],
      ["/api/audit/v1/action/", "Action"],
      ["/api/account/v1/apikey/", "ApiKey"],
      ["/api/admin/v1/user/", "AdminUser"],
      ["/api/admin/v1/organization/", "AdminOrganization"],
    ];
    for (const [path, item] of lists) {
      const list = resolve(doc, doc.paths[path].get.responses["200"].content["application/json"].schema);
      expect(list.required, path).toEqual(["meta", "objects"]);
      expect(resolve(doc, list.properties.meta).required, path).toEqual([
        "limit",
        "next",
        "offset",
        "previous",
        "total_count",
      ]);
      expect(list.properties.objects.items, path).toEqual({ $ref: `#/components/schemas/${item}` });
    }
  });

  it("limit and offset say 1 to 100 and 0 or more, as integers", () => {
    for (const path of ["/api/app/v1/service/", "/api/audit/v1/{namespace}/action/", "/api/admin/v1/user/"]) {
      const limit = parameter(doc, "get", path, "limit");
      expect(limit.required, path).toBe(false);
      expect(limit.schema, path).toMatchObject({ type: "integer", minimum: 1, maximum: 100, default: 25 });
      expect(parameter(doc, "get", path, "offset").schema, path).toMatchObject({ type: "integer", minimum: 0 });
    }
  });

  it("uuids in paths carry the uuid pattern, either case", () => {
    const real = crypto.randomUUID();
    for (const [path, name] of [
      ["/api/app/v1/service/{uuid}/", "uuid"],
      ["/api/app/v1/{namespace}/service/{uuid}/trigger/{trigger_uuid}/", "trigger_uuid"],
      ["/api/app/v1/service/{uuid}/trigger/{trigger_uuid}/call/", "uuid"],
      ["/api/audit/v1/action/{uuid}/", "uuid"],
    ] as const) {
      const schema = parameter(doc, "get" in doc.paths[path] ? "get" : "post", path, name).schema;
      expect(schema.format, path).toBe("uuid");
      const pattern = new RegExp(schema.pattern);
      expect(pattern.test(real), path).toBe(true);
      expect(pattern.test(real.toUpperCase()), path).toBe(true);
      for (const bad of ["not-a-uuid", real.slice(0, 35), `${real}0`, "c232ab00-9414-11ec-b3c8-9e6bdeced846"]) {
        expect(pattern.test(bad), `${path} ${bad}`).toBe(false);
      }
    }
    const revoke = parameter(doc, "delete", "/api/account/v1/apikey/{uuid}/", "uuid").schema;
    expect(revoke.pattern).toBeDefined();
  });

  it("a call's count is an integer of 1 or more; reuse_volumes a boolean; the namespace a name", () => {
    const count = parameter(
      doc,
      "post",
      "/api/app/v1/{namespace}/service/{uuid}/trigger/{trigger_uuid}/call/{count}/",
      "count",
    );
    expect(count.schema).toMatchObject({ type: "integer", minimum: 1, maximum: 1000 });
    const reuse = parameter(doc, "post", "/api/app/v1/service/{uuid}/redeploy/", "reuse_volumes");
    expect(reuse.schema.type).toBe("boolean");
    const ns = parameter(doc, "get", "/api/app/v1/{namespace}/service/", "namespace");
    expect(ns).toMatchObject({ in: "path", required: true, schema: { type: "string", pattern: "^[a-z0-9]{4,30}$" } });
  });
});

describe("values outside a documented constraint get the API's own answers", () => {
  let user: User;
  let service: string;
  let trigger: string;
  beforeAll(async () => {
    user = await createUser();
    const svc = await createService(user);
    service = svc.uuid;
    trigger = (await createTrigger(user, svc, { operation: "SCALEUP" })).uuid;
  });

  const expectAnswer = async (res: Response, status: number, error: string) => {
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual({ error });
  };

  it("limit and offset", async () => {
    await expectAnswer(
      await as(user, "GET", "/api/app/v1/service/?limit=0"),
      400,
      "limit must be a whole number from 1 to 100",
    );
    await expectAnswer(
      await as(user, "GET", "/api/audit/v1/action/?offset=-1"),
      400,
      "offset must be a whole number, 0 or more",
    );
  });

  it("a malformed uuid in a path is a 404, as one that names nothing", async () => {
    await expectAnswer(
      await as(user, "GET", "/api/app/v1/service/not-a-uuid/"),
      404,
      "Service not found: 'not-a-uuid' is not a service uuid",
    );
    await expectAnswer(await as(user, "GET", "/api/audit/v1/action/not-a-uuid/"), 404, "Action not found");
    await expectAnswer(await as(user, "DELETE", "/api/account/v1/apikey/not-a-uuid/"), 404, "API key not found");
    await expectAnswer(
      await call(`/api/app/v1/service/${service}/trigger/not-a-uuid/call/`, { method: "POST" }),
      404,
      "Trigger not found",
    );
  });

  it("a call's count, reuse_volumes and a date filter", async () => {
    await expectAnswer(
      await call(`/api/app/v1/service/${service}/trigger/${trigger}/call/0/`, { method: "POST" }),
      400,
      "the count to scale up by must be a whole number of 1 or more, not '0'",
    );
    await expectAnswer(
      await as(user, "POST", `/api/app/v1/service/${service}/redeploy/?reuse_volumes=maybe`),
      400,
      "reuse_volumes must be true or false, not 'maybe'",
    );
    await expectAnswer(
      await as(user, "GET", "/api/audit/v1/action/?end_date__lte=yesterday"),
      400,
      "end_date__lte must be a date (RFC 1123, ISO 8601 or epoch seconds)",
    );
  });

  it("with several faults, the one the API always answered first", async () => {
    // The path's uuid before the query's values, as when the handlers checked them.
    await expectAnswer(
      await as(user, "GET", "/api/app/v1/service/not-a-uuid/trigger/?limit=0"),
      404,
      "Service not found: 'not-a-uuid' is not a service uuid",
    );
    // The body before the path's uuid: the body was validated before the handler ran.
    const res = await as(user, "PATCH", "/api/app/v1/service/not-a-uuid/", { target_num_containers: "x" });
    expect(res.status).toBe(400);
    expect((await res.json<{ error: string }>()).error).toMatch(/^invalid request body: target_num_containers: /);
    // The namespace before the page on a list without ids of its own.
    await expectAnswer(
      await as(user, "GET", "/api/app/v1/UPPERCASE/service/?limit=0"),
      403,
      "namespace 'UPPERCASE' does not exist or you are not a member of it",
    );
  });
});

describe("answers are what their schemas say, key for key", () => {
  const issues = (schema: { safeParse(v: unknown): { error?: { issues: unknown[] } } }, value: unknown) =>
    schema.safeParse(value).error?.issues ?? [];

  it("a service with a webhook target, as created (with its secret) and as read", async () => {
    const user = await createUser();
    const created = await as(user, "POST", "/api/app/v1/service/", {
      image: "tutum/hello-world",
      target: { type: "webhook", url: "https://hooks.example.test/deploy" },
    });
    expect(created.status).toBe(201);
    const svc = await created.json<{ resource_uri: string; target: { secret?: string } }>();
    expect(svc.target.secret, "the secret is shown in the answer that sets it").toBeDefined();
    expect(issues(ServiceObject.strict(), svc)).toEqual([]);
    expect(issues(ServiceObject.strict(), await (await as(user, "GET", svc.resource_uri)).json())).toEqual([]);
  });

  it("a trigger, a call's action, the action, keys, users, health", async () => {
    const user = await createUser();
    const svc = await createService(user);
    const trg = await (await as(user, "POST", `${svc.resource_uri}trigger/`, { name: "ci" })).json<{
      url: string;
    }>();
    expect(issues(TriggerObject.strict(), trg)).toEqual([]);

    const called = await call(trg.url, { method: "POST", body: "built" });
    expect(called.status).toBe(202);
    const answer = await called.json<{ resource_uri: string }>();
    expect(issues(CallerActionObject.strict(), answer)).toEqual([]);
    expect(issues(ActionObject.strict(), await (await as(user, "GET", answer.resource_uri)).json())).toEqual([]);

    const keys = await (await as(user, "GET", "/api/account/v1/apikey/")).json<{ objects: unknown[] }>();
    expect(keys.objects.length).toBeGreaterThan(0);
    for (const k of keys.objects) expect(issues(ApiKeyObject.strict(), k)).toEqual([]);

    const users = await call("/api/admin/v1/user/?limit=1", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    for (const u of (await users.json<{ objects: unknown[] }>()).objects) {
      expect(issues(AdminUser.strict(), u)).toEqual([]);
    }
    expect(await (await call("/api/health/")).json()).toEqual({ status: "ok" });
  });
});
