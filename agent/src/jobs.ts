import { type AllowRules, refusal } from "./allow.ts";
import type { Change, Orchestrator, Service, TagLookup } from "./orchestrator.ts";
import type { AgentMessage, Job, Observed, PushedImage } from "./protocol.ts";
import { repositoryOf } from "./registry-auth.ts";

/**
 * The job runner: performs the operations the service asks for (redeploy,
 * scale up, scale) on the orchestrator, where the agent's rules allow it,
 * and tells the service how each went. It does nothing else: no message of
 * the service can make the agent run anything but these operations.
 *
 * Each job is applied at most once, even across crashes and redeliveries.
 * Two records say a job was applied, because each misses a case:
 * - the service's own spec carries the action's uuid in a label, written in
 *   the same update as the change: if the agent dies after the orchestrator
 *   accepted the update but before it could tell the service, the next
 *   delivery finds the label and only waits;
 * - the service (the API) records `applied` when the agent sends it: a
 *   rollback restores the whole previous spec, labels included, so after one
 *   the label is gone, and the API's `job.applied` is what stops a second try.
 * Within one process a redelivery while the job still runs joins that run.
 */

export type Send = (message: AgentMessage) => void;

export type RunnerOptions = {
  rules: AllowRules;
  /** Check and say what would be done, change nothing. */
  dryRun: boolean;
  /** How often a change in progress is looked at. */
  pollMs?: number;
  log?: (line: string) => void;
};

type Result = { result: "success" | "failed"; detail: string; observed: Observed | null };

/** One run of an action and the deliveries waiting for its report: each connection, with the latest attempt. */
type Run = { deliveries: Map<Send, number>; done: Promise<void> };

/** The service keeps at most 500 characters of a progress line. */
const LINE_MAX = 500;

export class JobRunner<Target> {
  private readonly orchestrator: Orchestrator<Target>;
  private readonly options: RunnerOptions;
  private readonly runs = new Map<string, Run>();

  constructor(orchestrator: Orchestrator<Target>, options: RunnerOptions) {
    this.orchestrator = orchestrator;
    this.options = options;
  }

  /** Takes a delivered job: acks it at once, then runs it (or joins its run); settles when reported. */
  handle(job: Job, send: Send): Promise<void> {
    send({ type: "ack", action: job.action, attempt: job.attempt });
    const running = this.runs.get(job.action);
    if (running) {
      running.deliveries.set(send, Math.max(job.attempt, running.deliveries.get(send) ?? 0));
      this.options.log?.(`action ${job.action} delivered again (attempt ${job.attempt}); it is still running`);
      return running.done;
    }
    const run: Run = { deliveries: new Map([[send, job.attempt]]), done: Promise.resolve() };
    const toAll = (message: AgentMessage) => {
      for (const to of run.deliveries.keys()) to(message);
    };
    run.done = this.run(job, toAll).then((result) => {
      this.runs.delete(job.action);
      this.options.log?.(`action ${job.action} (${job.kind} ${job.service}): ${result.result}: ${result.detail}`);
      for (const [to, attempt] of run.deliveries) to({ type: "report", action: job.action, attempt, ...result });
    });
    this.runs.set(job.action, run);
    return run.done;
  }

  /** Settles when every job under way has reported. */
  async idle(): Promise<void> {
    await Promise.all([...this.runs.values()].map((r) => r.done));
  }

  private async run(job: Job, send: Send): Promise<Result> {
    const deadline = Date.now() + job.converge_seconds * 1000;
    let service: Service | null = null;
    try {
      service = await this.orchestrator.find(job.service);
      if (!service) return { result: "failed", detail: this.orchestrator.unknownService(job.service), observed: null };
      // A service the rules keep the agent from is not reported on either: its numbers are none of the API's business.
      const refused = refusal(this.options.rules, service);
      if (refused) return { result: "failed", detail: refused, observed: null };
      const change = changeOf(job, service);
      if (typeof change === "string") return await this.finish(service, "failed", change);
      return await this.perform(job, service, change, deadline, send);
    } catch (err) {
      const detail = `the orchestrator failed: ${err instanceof Error ? err.message : String(err)}`;
      return service ? await this.finish(service, "failed", detail) : { result: "failed", detail, observed: null };
    }
  }

  private async perform(job: Job, service: Service, asked: Change, deadline: number, send: Send): Promise<Result> {
    const o = this.orchestrator;
    const progress = (line: string) => send({ type: "progress", action: job.action, line: line.slice(0, LINE_MAX) });
    const applied = job.applied || service.appliedAction === job.action;
    // An applied push only waits: the tag may have moved since, and what was deployed is not undone for that.
    const pinned = job.image && asked.kind === "redeploy" && !applied ? await pinPushed(o, service, job.image) : null;
    if (typeof pinned === "string") return this.finish(service, "failed", pinned);
    const change: Change = pinned && asked.kind === "redeploy" ? { ...asked, image: pinned.image } : asked;
    if (this.options.dryRun) {
      const how = pinned ? ` (${pinned.how})` : "";
      const plan = `dry run: ${await o.plan(service, change)}${how}${applied ? " (already applied: would only wait)" : ""}`;
      progress(plan);
      return this.finish(service, "success", plan);
    }
    let target: Target;
    if (applied) {
      progress("already applied: waiting for the service to converge");
      target = await o.applied(service, change, job.action, progress, deadline);
    } else {
      if (pinned) progress(`deploying ${pinned.image} (${pinned.how})`);
      target = await o.apply(service, change, job.action, progress, deadline);
      send({ type: "applied", action: job.action });
    }
    const verdict = await this.converge(target, deadline, job.converge_seconds, progress);
    return this.finish(service, verdict.ok ? "success" : "failed", verdict.detail);
  }

  /** Looks at the change until it converges, fails, or the deadline passes; logs each new state. */
  private async converge(target: Target, deadline: number, seconds: number, progress: (line: string) => void) {
    const pollMs = this.options.pollMs ?? 300;
    let last = "";
    for (;;) {
      // The change is applied: an orchestrator that fails to answer once is asked again until the deadline.
      const verdict = await this.orchestrator.check(target).catch((err: unknown) => ({
        state: "waiting" as const,
        line: last,
        detail: `the orchestrator did not answer: ${err instanceof Error ? err.message : String(err)}`,
      }));
      if (verdict.line !== last) progress(verdict.line);
      last = verdict.line;
      if (verdict.state !== "waiting") return { ok: verdict.state === "converged", detail: verdict.detail };
      if (Date.now() + pollMs > deadline) {
        const why = verdict.detail ? `: ${verdict.detail}` : "";
        return { ok: false, detail: `the service did not converge within ${seconds} s (${verdict.line})${why}` };
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  private async finish(service: Service, result: Result["result"], detail: string): Promise<Result> {
    let observed: Observed | null = null;
    try {
      observed = await this.orchestrator.observe(service);
    } catch {
      // The report matters more than its numbers: without them it still says how the job went.
    }
    return { result, detail, observed };
  }
}

/** The change a job asks of a service, or why it cannot be made. */
export function changeOf(job: Job, service: Service): Change | string {
  if (job.kind === "redeploy") return { kind: "redeploy", body: job.body };
  if (service.mode === "global" || service.replicas === null) {
    return `service '${service.name}' is global (one task per node): it cannot be scaled`;
  }
  if (job.kind === "scale") {
    if (job.replicas === null || !Number.isInteger(job.replicas) || job.replicas < 0) {
      return `a scale needs a number of replicas, not ${job.replicas}`;
    }
    return { kind: "scale", replicas: job.replicas };
  }
  if (job.scale_by === null || !Number.isInteger(job.scale_by) || job.scale_by < 1) {
    return `a scale-up needs a positive number to scale by, not ${job.scale_by}`;
  }
  // The replicas this very action added before (a run cut short) are not counted twice.
  const replicas = service.replicas - (service.madeBy?.[job.action] ?? 0) + job.scale_by;
  if (replicas > job.max_replicas) {
    return `scaling '${service.name}' up by ${job.scale_by} would make ${replicas} replicas, more than its maximum of ${job.max_replicas}`;
  }
  return { kind: "scale", replicas };
}

/** The image a push deploys, and how its digest was found, in the words of the action's log. */
export type Pinned = { image: string; how: string };

const LEFT = "; the service was left as it was";

/**
 * The exact image a redeploy of a registry push deploys, `reference@digest`, checked in the registry
 * before anything changes; or why the job fails. A push is deployed as pushed or not at all: unlike
 * a trigger's redeploy, no failure here falls back to the digest the service runs.
 */
export async function pinPushed<T>(
  o: Orchestrator<T>,
  service: Service,
  pushed: PushedImage,
): Promise<Pinned | string> {
  const { reference, digest } = pushed;
  const name = reference.slice(reference.lastIndexOf("/") + 1);
  if (reference.includes("@") || !name.includes(":")) {
    return `the push names ${reference}, not a repository and a tag to deploy${LEFT}`;
  }
  // The API chooses the service and the image; the agent still never puts another repository on a service.
  if (service.image !== undefined && repositoryOf(reference) !== repositoryOf(service.image)) {
    return `the push is of ${reference}, not of the repository service '${service.name}' runs (${service.image})${LEFT}`;
  }
  const found: TagLookup = await o.lookUp(reference).catch((err: unknown) => ({
    unreachable: err instanceof Error ? err.message : String(err),
  }));
  if ("missing" in found) return `${reference} does not exist in the registry: ${found.missing}${LEFT}`;
  if ("unreachable" in found) {
    return `could not ask the registry for ${reference}'s digest (${found.unreachable})${LEFT}`;
  }
  if (digest === null) return { image: `${reference}@${found.digest}`, how: "resolved: the push named no digest" };
  if (found.digest !== digest) {
    return `the registry serves ${found.digest} for ${reference}, not the pushed ${digest}${LEFT}`;
  }
  return { image: `${reference}@${digest}`, how: "the pushed digest, verified" };
}
