import { config } from "../../config";
import { putPointers } from "../locator";
import { Actions } from "./actions";
import { Agents } from "./agents/agents";
import { InventoryDesk } from "./agents/inventory";
import { AgentJobs } from "./agents/jobs";
import { AgentLinks } from "./agents/links";
import { Attempts } from "./attempts";
import { Members } from "./members";
import { Autoredeploy } from "./registry-hooks/autoredeploy";
import { Deliveries } from "./registry-hooks/deliveries";
import { RegistryHooks } from "./registry-hooks/hooks";
import { Scheduler } from "./scheduler";
import { Services } from "./services";
import { FollowedServices } from "./services-followed";
import { agentJobSettings, attemptSettings } from "./settings";
import { Streams } from "./streams";
import { Triggers } from "./triggers";

/** The modules of a namespace's object, each owning its tables (see index.ts). */
export type Rooms = {
  members: Members;
  scheduler: Scheduler;
  streams: Streams;
  services: Services;
  triggers: Triggers;
  agents: Agents;
  links: AgentLinks;
  actions: Actions;
  attempts: Attempts;
  agentJobs: AgentJobs;
  registryHooks: RegistryHooks;
  deliveries: Deliveries;
  autoredeploy: Autoredeploy;
};

/**
 * Builds the modules and wires them together. Settings are read when used,
 * from `env()`, the object's settings at that moment (tests swap them).
 */
export function buildRooms(ctx: DurableObjectState, env: () => Env, migrated: () => boolean): Rooms {
  const sql = ctx.storage.sql;
  const members = new Members(sql, migrated);
  const name = () => members.name;
  const scheduler = new Scheduler(ctx.storage, sql);
  const streams = new Streams(ctx);
  const services = new Services(sql, name, streams);
  const triggers = new Triggers(sql, name, streams);
  let links: AgentLinks | undefined;
  let agentJobs: AgentJobs | undefined;
  const agents = new Agents(sql, name, (uuid) => links?.lastPing(uuid) ?? null);
  const leaseMs = () => config(env()).DISPATCH_LEASE_SECONDS * 1000;
  const actions = new Actions(sql, name, scheduler, leaseMs, streams);
  const reserve = (uuids: string[]) => putPointers(env(), uuids, name());
  const inventory = { desk: new InventoryDesk(new FollowedServices(sql, services), actions), reserve };
  links = new AgentLinks(ctx, agents, () => agentJobs as AgentJobs, streams, inventory);
  const attempts = new Attempts(sql, name, actions, services, scheduler, () => attemptSettings(config(env())));
  agentJobs = new AgentJobs(sql, { actions, attempts, services, agents }, scheduler, links, () =>
    agentJobSettings(config(env())),
  );
  const registryHooks = new RegistryHooks(sql, name);
  const deliveries = new Deliveries(sql);
  const autoredeploy = new Autoredeploy(sql, actions, (svc, now) => agentJobs?.offerIfAgent(svc, now));
  return {
    ...{ members, scheduler, streams, services, triggers, agents, links, actions, attempts, agentJobs },
    ...{ registryHooks, deliveries, autoredeploy },
  };
}
