import { z } from "@hono/zod-openapi";
import { ACTION_KINDS, ACTION_STATES, type ActionJson, type CallerActionJson } from "../../domain/action";
import { AGENT_STATES, type AgentJson } from "../../domain/agent";
import type { ListMeta } from "../../domain/pagination";
import { REGISTRY_SOURCES } from "../../domain/registry-hook";
import { AUTOREDEPLOY_POLICIES, SERVICE_STATES, type ServiceJson } from "../../domain/service";
import { OPERATION_NAMES, type TriggerJson } from "../../domain/trigger";
import type { ApiKeyJson } from "../../durable-objects/namespace/api-keys";
import { TargetView } from "../../targets";

/**
 * The objects the API answers with, one schema per serializer. Each is checked against its
 * serializer's return type at the bottom of this file (each assignable to the other), so a key
 * added, dropped or retyped on either side is a type error, not a document that lies.
 */

/** A date as the API shows it: RFC 1123 with a numeric zone, or null. */
const date = (description?: string) =>
  z
    .string()
    .nullable()
    .openapi({ example: "Mon, 13 Oct 2014 11:01:43 +0000", ...(description ? { description } : {}) });
/** A Docker Cloud attribute this API keeps for clients' sake and always answers empty. */
const empty = () => z.array(z.never()).openapi({ type: "array", maxItems: 0, description: "always empty here" });
const int = () => z.number().int();

export const ServiceObject = z
  .object({
    autodestroy: z.string(),
    autoredeploy: z.boolean(),
    autoredeploy_policy: z.enum(AUTOREDEPLOY_POLICIES).openapi({
      description:
        "which registry pushes redeploy it when autoredeploy is on: tag (a push of the tag it runs), or patch, minor, major (a greater semver tag within that range, which it moves to)",
    }),
    autorestart: z.string(),
    bindings: empty(),
    cap_add: empty(),
    cap_drop: empty(),
    cgroup_parent: z.null(),
    container_envvars: empty(),
    container_ports: empty(),
    containers: empty(),
    cpu_shares: z.null(),
    cpuset: z.null(),
    current_num_containers: int(),
    deployed_datetime: date(),
    deployment_strategy: z.string(),
    destroyed_datetime: date(),
    devices: empty(),
    dns: empty(),
    dns_search: empty(),
    domainname: z.null(),
    entrypoint: z.string(),
    extra_hosts: empty(),
    hostname: z.null(),
    image_name: z.string().nullable(),
    image_tag: z.string().nullable(),
    labels: z.record(z.string(), z.string()),
    link_variables: z.record(z.string(), z.string()),
    linked_from_service: empty(),
    linked_to_service: empty(),
    mac_address: z.null(),
    max_num_containers: int().openapi({ description: "the most containers scaling may reach (ours)" }),
    memory: z.null(),
    memory_swap: z.null(),
    name: z.string(),
    net: z.string(),
    nickname: z.string(),
    pid: z.string(),
    privileged: z.boolean(),
    public_dns: z.null(),
    read_only: z.boolean(),
    resource_uri: z.string(),
    roles: empty(),
    run_command: z.string(),
    running_num_containers: int(),
    security_opt: empty(),
    sequential_deployment: z.boolean(),
    stack: z.string().nullable(),
    started_datetime: date(),
    state: z.enum(SERVICE_STATES),
    stdin_open: z.boolean(),
    stopped_datetime: date(),
    stopped_num_containers: int(),
    synchronized: z.boolean(),
    synchronized_at: date(
      "for a service an agent brings in: when the agent last confirmed its figures (stale since then while the agent is away); null otherwise",
    ),
    tags: empty(),
    target: TargetView,
    target_num_containers: int(),
    tty: z.boolean(),
    user: z.string(),
    uuid: z.string(),
    working_dir: z.string(),
  })
  .openapi("Service", {
    description:
      "Every attribute Docker Cloud documents, in its JSON type (those of containers, which this API does not run, are " +
      "fixed), plus max_num_containers and target: where operations go, never with a secret (the answer that sets a " +
      "webhook target shows its secret, once)",
  });

const actionState = z.enum(ACTION_STATES);
const actionLabel = z.enum([ACTION_KINDS.redeploy.label, ACTION_KINDS.scaleup.label, ACTION_KINDS.scale.label]);

export const ActionObject = z
  .object({
    uuid: z.string(),
    resource_uri: z.string(),
    object: z.string().openapi({ description: "resource URI of the service" }),
    action: actionLabel,
    method: z.string(),
    path: z.string(),
    user: z.string().nullable(),
    user_agent: z.string().nullable(),
    ip: z.string().nullable(),
    location: z.string().nullable(),
    start_date: date(),
    end_date: date(),
    state: actionState,
    is_user_action: z.boolean(),
    can_be_canceled: z.boolean(),
    can_be_retried: z.boolean(),
    trigger: z.string().nullable().openapi({ description: "resource URI of the trigger that was called, if any" }),
    retry_of: z.string().nullable().openapi({ description: "uuid of the action this one repeats (ours)" }),
  })
  .openapi("Action");

/**
 * The answer to a trigger call: the action as an anonymous caller may see it
 * (serializeActionForCaller): who started it, how and its history are null.
 */
export const CallerActionObject = z
  .object({
    uuid: z.string(),
    resource_uri: z.string(),
    object: z.string().openapi({ description: "resource URI of the service" }),
    action: actionLabel,
    method: z.null(),
    path: z.null(),
    user: z.null(),
    user_agent: z.null(),
    ip: z.null(),
    location: z.null(),
    start_date: date(),
    end_date: date(),
    state: actionState,
    is_user_action: z.null(),
    can_be_canceled: z.boolean(),
    can_be_retried: z.boolean(),
    trigger: z.string().openapi({ description: "resource URI of the caller's own trigger" }),
    retry_of: z.null(),
  })
  .openapi("CallerAction");

export const TriggerObject = z
  .object({
    uuid: z.string(),
    name: z.string(),
    operation: z.enum(OPERATION_NAMES),
    url: z.string().openapi({ description: "root-relative call path; POST to it with no credentials" }),
    resource_uri: z.string(),
    rate_limit: int().openapi({ description: "calls accepted per minute (ours)" }),
    call_count: int().openapi({ description: "calls accepted (ours)" }),
    rejected_count: int().openapi({ description: "calls refused with 409 or 429 (ours)" }),
    last_called: date("RFC 1123 date of the last call (ours)"),
  })
  .openapi("Trigger");

const apiKeyFields = {
  uuid: z.string(),
  label: z.string(),
  created: date(),
  last_used: date(),
  resource_uri: z.string(),
};
export const ApiKeyObject = z.object(apiKeyFields).openapi("ApiKey");
export const NewApiKeyObject = z
  .object({ ...apiKeyFields, key: z.string().openapi({ description: "the key; shown in this answer only" }) })
  .openapi("NewApiKey");

const ListMetaObject = z
  .object({
    limit: int(),
    next: z.string().nullable().openapi({ description: "root-relative path of the next page, or null" }),
    offset: int(),
    previous: z.string().nullable().openapi({ description: "root-relative path of the previous page, or null" }),
    total_count: int(),
  })
  .openapi("ListMeta");

/** A page of a list: `meta` and the objects, as Docker Cloud lists them. */
export const listOf = <T extends z.ZodType>(name: string, item: T) =>
  z.object({ meta: ListMetaObject, objects: z.array(item) }).openapi(name);

const AgentEndpointObject = z
  .object({ address: z.string().nullable(), node_id: z.string().nullable() })
  .openapi("AgentEndpoint");
const agentFields = {
  uuid: z.string(),
  name: z.string(),
  resource_uri: z.string(),
  state: z.enum(AGENT_STATES).openapi({ description: "whether the agent holds a connection now" }),
  created: date(),
  connected_since: date("since when the current connection is held, or null"),
  last_seen: date("the last message of the agent, or null"),
  agent_version: z.string().nullable().openapi({ description: "as its process reported on connecting" }),
  orchestrator: z.string().nullable().openapi({ description: "as its process reported on connecting" }),
  engine_version: z.string().nullable().openapi({ description: "as its process reported on connecting" }),
  node_id: z.string().nullable().openapi({ description: "as its process reported on connecting" }),
  address: z.string().nullable().openapi({ description: "the remote address of its last connection, or null" }),
  replaced_at: date("when a connection last took the place of another of this agent, or null"),
  replacement: z
    .object({ previous: AgentEndpointObject, current: AgentEndpointObject })
    .nullable()
    .openapi({ description: "where the replaced and the replacing connection came from, or null" }),
};
export const AgentObject = z.object(agentFields).openapi("Agent");
export const NewAgentObject = z
  .object({
    ...agentFields,
    token: z.string().openapi({ description: "the agent's token; shown in this answer only, stored as a hash" }),
  })
  .openapi("NewAgent");

const registryHookFields = {
  uuid: z.string(),
  name: z.string(),
  source: z.enum(REGISTRY_SOURCES),
  resource_uri: z.string(),
  url: z
    .string()
    .openapi({ description: "the path a registry posts to; its token is a secret, like a trigger's uuid" }),
  signed: z.boolean().openapi({ description: "whether calls must carry the source's signature or Authorization" }),
  created: date(),
  previous_url_until: date("until when the URL and secret before the last rotation still work, or null"),
};
export const RegistryHookObject = z.object(registryHookFields).openapi("RegistryHook");
export const NewRegistryHookObject = z
  .object({
    ...registryHookFields,
    secret: z.string().nullable().openapi({
      description: "the secret to configure in the registry, shown in this answer only; null: the source cannot sign",
    }),
    signing: z.string().openapi({ description: "how this source's registry sends the secret" }),
  })
  .openapi("NewRegistryHook");
export const DeliveryObject = z
  .object({
    received: date(),
    source: z.enum(REGISTRY_SOURCES),
    verdict: z.enum(["redeployed", "ignored", "refused"]),
    reason: z.string().nullable(),
    pushes: z.array(
      z.object({ repository: z.string(), tag: z.string(), digest: z.string().nullable(), kind: z.string() }),
    ),
    actions: z.array(z.string()),
    status: int(),
    via_previous_url: z.boolean(),
  })
  .openapi("RegistryHookDelivery");

export const HealthObject = z.object({ status: z.literal("ok") }).openapi("Health");

/** `true` when A and B are each assignable to the other. */
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Compiles only when T is `true`. */
type Assert<T extends true> = T;

/**
 * `target` is left out of the Service check: TargetView is the union of every adapter's view,
 * which the target registry types as unknown; the serializer's PublicTarget is what each view is.
 */
type _Service = Assert<Mutual<Omit<z.output<typeof ServiceObject>, "target">, Omit<ServiceJson, "target">>>;
type _ServiceKeys = Assert<Mutual<keyof z.output<typeof ServiceObject>, keyof ServiceJson>>;
type _Action = Assert<Mutual<z.output<typeof ActionObject>, ActionJson>>;
type _CallerAction = Assert<Mutual<z.output<typeof CallerActionObject>, CallerActionJson>>;
type _Trigger = Assert<Mutual<z.output<typeof TriggerObject>, TriggerJson>>;
type _ApiKey = Assert<Mutual<z.output<typeof ApiKeyObject>, ApiKeyJson>>;
type _NewApiKey = Assert<Mutual<z.output<typeof NewApiKeyObject>, ApiKeyJson & { key: string }>>;
type _Agent = Assert<Mutual<z.output<typeof AgentObject>, AgentJson>>;
type _NewAgent = Assert<Mutual<z.output<typeof NewAgentObject>, AgentJson & { token: string }>>;
type _ListMeta = Assert<Mutual<z.output<typeof ListMetaObject>, ListMeta>>;
