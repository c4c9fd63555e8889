// One suite's world: `npm run dev` (with the agent settings given), a user, the agents it
// creates and the agent programs it runs, the swarm services it creates, and the API calls the
// scenarios make. `swarmSuite()` registers the `before`/`after` hooks; `after` kills the agent
// programs, removes the swarm services, stops the Worker, and prints the Worker's and the
// agents' output tails when a step failed.

import assert from "node:assert/strict";
import { after, before } from "node:test";
import {
  actionLogs,
  apiRequest,
  createUserWithKey,
  createWorker,
  failureTracker,
  REQUEST_TIMEOUT_MS,
  waitFor,
} from "../e2e/helpers.mjs";
import { createSwarmService, removeSwarmServices, SWARM, startAgent } from "./swarm.mjs";

export const TERMINAL = ["Success", "Failed", "Canceled"];
/** How long an action may take to end here: a rollout is 1–5 s, a rolled-back one about 3 s. */
export const ACTION_TIMEOUT_MS = 60_000;

/**
 * `vars` override wrangler.jsonc's for this suite's Worker. AGENT_CONVERGE_SECONDS is 30 by
 * default here (a rollout takes seconds), so that a stuck operation fails within a test's bounds.
 */
export function swarmSuite({ vars = {} } = {}) {
  const worker = createWorker({ vars: { AGENT_CONVERGE_SECONDS: "30", ...vars } });
  const tracker = failureTracker();
  /** @type {ReturnType<typeof startAgent>[]} */
  const programs = [];
  const swarmNames = [];
  const s = {
    worker,
    basic: "",
    username: "",
    step: (name, fn, timeout = 90_000) => tracker.step(name, fn, timeout),
    programs,

    api: (method, path, body) => apiRequest(worker.base, method, path, { body, authorization: s.basic }),

    /** An agent of the API (201 with its token). */
    async createAgent(name) {
      const res = await s.api("POST", "/api/agent/v1/agent/", { name });
      assert.equal(res.status, 201, res.text);
      return res.json;
    },
    agentState: async (agent) => (await s.api("GET", agent.resource_uri)).json,

    /**
     * The agent program for `agent` (the API object with its token), acting on the swarm, or with
     * `plain` on the plain engine (Compose); `env` adds to its environment.
     */
    runAgent(agent, { allow, args, bundle, plain, env } = {}) {
      const program = startAgent({ base: worker.base, token: agent.token, allow, args, bundle, plain, env });
      program.name = agent.name;
      programs.push(program);
      return program;
    },
    async waitConnected(agent, program) {
      await waitFor(
        `agent ${agent.name} to show Connected`,
        async () => (await s.agentState(agent)).state === "Connected",
        {
          timeoutMs: 15_000,
          describe: () => (program ? `agent output:\n${program.outputTail()}` : ""),
        },
      );
    },
    /** Runs the agent program and waits until the API shows it Connected. */
    async connectAgent(agent, opts) {
      const program = s.runAgent(agent, opts);
      await s.waitConnected(agent, program);
      return program;
    },

    /** A swarm service, removed in `after`. */
    async swarmService(name, opts) {
      swarmNames.push(name);
      return createSwarmService(name, opts);
    },

    /**
     * The API's service whose operations go to `agent` (its uuid or name) on `swarmService`:
     * POST /api/app/v1/service/ with an agent target. Resolves with the whole answer.
     */
    createTargetedService({ name, agent, swarmService = name, image = SWARM.IMAGE, replicas = 1, max = 10 }) {
      return s.api("POST", "/api/app/v1/service/", {
        name,
        image,
        target_num_containers: replicas,
        max_num_containers: max,
        target: { type: "agent", agent, swarm_service: swarmService },
      });
    },
    /**
     * As createTargetedService, asserting the 201; or, when the agent's inventory brought the swarm
     * service in first (409: the name is taken), that service, which must target the agent, with
     * the `max` asked for.
     */
    async targetedService(opts) {
      const res = await s.createTargetedService(opts);
      if (res.status === 409) return s.broughtIn(opts);
      assert.equal(res.status, 201, `POST /api/app/v1/service/ with an agent target: ${res.status} ${res.text}`);
      assert.equal(res.json.target?.type, "agent", res.text);
      return res.json;
    },
    /** The service an agent's inventory brought in under `name`, given the `max` asked for. */
    async broughtIn({ name, agent, swarmService = name, max = 10 }) {
      const list = await s.api("GET", `/api/app/v1/service/?name=${encodeURIComponent(name)}`);
      const [found] = list.json.objects;
      assert.ok(found, `the service ${name}: ${list.text}`);
      assert.equal(found.target?.type, "agent", JSON.stringify(found.target));
      assert.equal(found.target?.swarm_service, swarmService, JSON.stringify(found.target));
      // Another agent of the suite (its rules allow everything) may have brought it in: point it at this one.
      const target = { type: "agent", agent, swarm_service: swarmService };
      const patched = await s.api("PATCH", found.resource_uri, { max_num_containers: max, target });
      assert.equal(patched.status, 200, patched.text);
      return patched.json;
    },

    getService: async (service) => (await s.api("GET", service.resource_uri)).json,

    async createTrigger(service, operation) {
      const res = await s.api("POST", `${service.resource_uri}trigger/`, { name: operation.toLowerCase(), operation });
      assert.equal(res.status, 201, res.text);
      return res.json;
    },

    /** Calls the trigger with no credentials (`suffix` "2/" for call/2/); resolves with the action's URI. */
    async call(trigger, { suffix = "", body } = {}) {
      const res = await fetch(`${worker.base}${trigger.url}${suffix}`, {
        method: "POST",
        headers: body === undefined ? {} : { "content-type": "text/plain" },
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      assert.equal(res.status, 202, `call ${suffix}: ${text}`);
      const uri = res.headers.get("x-dockercloud-action-uri");
      assert.ok(uri, "X-DockerCloud-Action-URI");
      return uri;
    },
    /** POST .../redeploy/ or .../scale/ on the service; resolves with the action's URI. */
    async operate(service, op) {
      const res = await s.api("POST", `${service.resource_uri}${op}/`);
      assert.equal(res.status, 202, `${op}/: ${res.text}`);
      const uri = res.headers.get("x-dockercloud-action-uri");
      assert.ok(uri, "X-DockerCloud-Action-URI");
      return uri;
    },

    action: async (uri) => {
      const res = await s.api("GET", uri);
      assert.equal(res.status, 200, res.text);
      return res.json;
    },
    /** The action's logs as one string: its lines at <action>logs/ (the action object has none). */
    logsOf: (action) => actionLogs(worker.base, s.basic, action.resource_uri),

    /**
     * Polls the action until its state is one of `states` (a string or a list), and resolves with
     * it; a terminal state not asked for stops the wait at once, with the action's logs.
     * `each(action)` runs on every poll (to check what holds while it runs).
     */
    async waitAction(uri, states, { timeoutMs = ACTION_TIMEOUT_MS, intervalMs = 150, each } = {}) {
      const wanted = [states].flat();
      let last;
      try {
        return await waitFor(
          `action ${uri} to be ${wanted.join(" or ")}`,
          async () => {
            last = await s.action(uri);
            await each?.(last);
            if (wanted.includes(last.state)) return last;
            if (TERMINAL.includes(last.state)) {
              throw Object.assign(
                new Error(`action ended ${last.state}, not ${wanted.join("/")}; logs:\n${await s.logsOf(last)}`),
                {
                  fatal: true,
                },
              );
            }
            return null;
          },
          { timeoutMs, intervalMs, describe: () => `last: ${last?.state}` },
        );
      } catch (err) {
        // A timeout: the logs of the last state seen (a fatal error already has them).
        if (!err.fatal && last) err.message += `; logs:\n${await s.logsOf(last).catch((e) => e.message)}`;
        throw err;
      }
    },
  };

  before(
    async () => {
      await worker.start();
      const user = await createUserWithKey(worker.base, { prefix: "swm" });
      s.basic = user.basic;
      s.username = user.username;
    },
    { timeout: 90_000 },
  );

  after(
    async () => {
      for (const p of programs) if (p.exit === null) p.child.kill("SIGKILL");
      if (tracker.failed) {
        console.error(`wrangler output (tail):\n${worker.outputTail(80)}`);
        for (const p of programs) {
          console.error(`agent ${p.name} output (tail; exit ${JSON.stringify(p.exit)}):\n${p.outputTail(40)}`);
        }
      }
      await removeSwarmServices(swarmNames);
      await worker.stop();
    },
    { timeout: 60_000 },
  );

  return s;
}
