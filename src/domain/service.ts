import { z } from "@hono/zod-openapi";
import { rfc1123 } from "./dates";

export const SERVICE_STATES = [
  "Not running",
  "Starting",
  "Running",
  "Partly running",
  "Scaling",
  "Redeploying",
  "Stopping",
  "Stopped",
  "Terminating",
  "Terminated",
] as const;
export type ServiceState = (typeof SERVICE_STATES)[number];

export const DEFAULT_MAX_CONTAINERS = 10;
/** Beyond this a count is a typo, not a deployment. */
export const CONTAINER_CEILING = 1000;

/** A container count, as every field of the API and every agent's report checks it. */
export const count = (field: string) =>
  z
    .number({ error: `${field} must be a whole number` })
    .int({ error: `${field} must be a whole number` })
    .min(0, { error: `${field} must be 0 or more` })
    .max(CONTAINER_CEILING, { error: `${field} must be at most ${CONTAINER_CEILING}` });

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** A service's name, as a user sets it and as an agent's inventory reports it. */
export const serviceName = z
  .string({ error: "name must be a string" })
  .regex(SERVICE_NAME, { error: "name must be 1 to 64 letters, digits, '-' or '_', starting with a letter or digit" });
/** A Docker image reference, as a user sets it and as an agent reports it. */
export const imageName = (field: string) =>
  z
    .string({ error: `${field} must be a string` })
    .min(1, { error: `${field} must not be empty` })
    .max(255, { error: `${field} must be at most 255 characters` })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/, { error: `${field} is not a Docker image reference` });
export const stackName = z
  .string({ error: "stack must be a string" })
  .regex(SERVICE_NAME, { error: "stack must be 1 to 64 letters, digits, '-' or '_'" });

/**
 * Which pushes redeploy an autoredeploy service: `tag`, a push of the tag it
 * runs (Docker Cloud's rule); `patch`, `minor`, `major`, a greater semver tag
 * within that range, which moves the service to it.
 */
export const AUTOREDEPLOY_POLICIES = ["tag", "patch", "minor", "major"] as const;
export type AutoredeployPolicy = (typeof AUTOREDEPLOY_POLICIES)[number];

/**
 * The fields of a service a client sets, every one optional on create (image
 * or name is checked by the route) and on PATCH. `target` is added by the
 * routes, from the target registry.
 */
export const serviceFields = {
  image: imageName("image").optional(),
  image_name: imageName("image_name").optional(),
  name: serviceName.optional(),
  target_num_containers: count("target_num_containers").optional(),
  max_num_containers: count("max_num_containers").min(1, { error: "max_num_containers must be 1 or more" }).optional(),
  stack: stackName.nullable().optional(),
  autoredeploy: z.boolean({ error: "autoredeploy must be true or false" }).optional(),
  autoredeploy_policy: z
    .enum(AUTOREDEPLOY_POLICIES, {
      error: `autoredeploy_policy must be one of: ${AUTOREDEPLOY_POLICIES.join(", ")}`,
    })
    .optional(),
};

/** A target as the API shows it: its adapter's public view, flat, with `type` and never a secret. */
export type PublicTarget = { type: string; [field: string]: string | number | boolean | null };

/** A service as the routes hand it over: validated, target already sealed. */
export type NewService = {
  uuid: string;
  name: string;
  image_name: string | null;
  image_tag: string | null;
  stack: string | null;
  target_num_containers: number;
  max_num_containers: number;
  target_public: PublicTarget | null;
  target_sealed: string | null;
  autoredeploy: boolean;
  autoredeploy_policy: AutoredeployPolicy;
};
export type ServiceChanges = Partial<Omit<NewService, "uuid">>;

export type ServiceFilters = {
  uuid?: string;
  uuid__startswith?: string;
  name?: string;
  stack__name?: string;
  state?: string;
};

/** "registry:5000/team/app:1.2" -> { image_name: "registry:5000/team/app:1.2", image_tag: "1.2", base: "app" } */
export function parseImage(ref: string): { image_name: string; image_tag: string; base: string } {
  const [withoutDigest] = ref.split("@");
  const path = withoutDigest ?? ref;
  const lastSlash = path.lastIndexOf("/");
  const colon = path.lastIndexOf(":");
  const hasTag = colon > lastSlash;
  const repo = hasTag ? path.slice(0, colon) : path;
  const tag = hasTag ? path.slice(colon + 1) : "latest";
  const base = repo.slice(repo.lastIndexOf("/") + 1);
  return { image_name: hasTag || ref.includes("@") ? ref : `${ref}:latest`, image_tag: tag, base };
}

/** The default service name: the image without registry, namespace and tag, made a valid name. */
export function defaultServiceName(ref: string): string {
  const base = parseImage(ref)
    .base.replace(/[^A-Za-z0-9_-]/g, "-")
    .replace(/^[^A-Za-z0-9]+/, "");
  return (base || "service").slice(0, 64);
}

export type ServiceRow = {
  uuid: string;
  name: string;
  image_name: string | null;
  image_tag: string | null;
  stack: string | null;
  state: ServiceState;
  target_num_containers: number;
  current_num_containers: number;
  running_num_containers: number;
  stopped_num_containers: number;
  max_num_containers: number;
  target_public: string | null;
  target_sealed: string | null;
  trigger_count: number;
  created_at: number;
  deployed_at: number | null;
  started_at: number | null;
  stopped_at: number | null;
  destroyed_at: number | null;
  /** The agent whose inventory brings the service in (it follows the orchestrator), or null. */
  agent_uuid: string | null;
  /** The orchestrator's id of the service, as the inventory last named it. */
  orchestrator_id: string | null;
  /** 1 while the orchestrator runs the service, 0 once it is gone; null for a service no inventory brings. */
  present: number | null;
  update_state: string | null;
  update_message: string | null;
  /** When the agent last confirmed these figures (they are stale while it is away). */
  synchronized_at: number | null;
  autoredeploy: number;
  autoredeploy_policy: AutoredeployPolicy;
};

export const serviceUri = (namespace: string, uuid: string) => `/api/app/v1/${namespace}/service/${uuid}/`;

/**
 * The Service object with every documented attribute in its documented JSON
 * type (the Go SDK decodes it into a typed struct), plus our two fields
 * `max_num_containers` and `target` (without its secret).
 */
export function serializeService(namespace: string, row: ServiceRow) {
  // Two halves, so each stays short; the keys keep their alphabetical order.
  return { ...attributesAtoM(row), ...attributesNtoZ(namespace, row) };
}

function attributesAtoM(row: ServiceRow) {
  return {
    autodestroy: "OFF",
    autoredeploy: row.autoredeploy === 1,
    autoredeploy_policy: row.autoredeploy_policy,
    autorestart: "OFF",
    bindings: [],
    cap_add: [],
    cap_drop: [],
    cgroup_parent: null,
    container_envvars: [],
    container_ports: [],
    containers: [],
    cpu_shares: null,
    cpuset: null,
    current_num_containers: row.current_num_containers,
    deployed_datetime: rfc1123(row.deployed_at),
    deployment_strategy: "EMPTIEST_NODE",
    destroyed_datetime: rfc1123(row.destroyed_at),
    devices: [],
    dns: [],
    dns_search: [],
    domainname: null,
    entrypoint: "",
    extra_hosts: [],
    hostname: null,
    image_name: row.image_name,
    image_tag: row.image_tag,
    labels: {},
    link_variables: {},
    linked_from_service: [],
    linked_to_service: [],
    mac_address: null,
    max_num_containers: row.max_num_containers,
    memory: null,
    memory_swap: null,
  };
}

function attributesNtoZ(namespace: string, row: ServiceRow) {
  const target = row.target_public ? (JSON.parse(row.target_public) as PublicTarget) : null;
  return {
    name: row.name,
    net: "bridge",
    nickname: row.name,
    pid: "none",
    privileged: false,
    public_dns: null,
    read_only: false,
    resource_uri: serviceUri(namespace, row.uuid),
    roles: [],
    run_command: "",
    running_num_containers: row.running_num_containers,
    security_opt: [],
    sequential_deployment: false,
    stack: row.stack,
    started_datetime: rfc1123(row.started_at),
    state: row.state,
    stdin_open: false,
    stopped_datetime: rfc1123(row.stopped_at),
    stopped_num_containers: row.stopped_num_containers,
    synchronized: true,
    synchronized_at: rfc1123(row.synchronized_at),
    tags: [],
    target,
    target_num_containers: row.target_num_containers,
    tty: false,
    user: "",
    uuid: row.uuid,
    working_dir: "/",
  };
}
export type ServiceJson = ReturnType<typeof serializeService>;
