import type { z } from "@hono/zod-openapi";
import type { Hidden } from "../domain/redact";
import type { Result } from "../domain/result";
import type { PublicTarget } from "../domain/service";
import type { TargetFetch } from "./http";
import type { AttemptResult, Job } from "./job";
import type { SelfRef } from "./loops";

/** The schema of a target as clients send it: an object whose `type` names its adapter. */
export type TargetSchema<Type extends string> = z.ZodObject<{ type: z.ZodLiteral<Type> } & z.ZodRawShape>;

/** What a target is checked against when it is set. */
export type PrepareContext = {
  /** ALLOW_HTTP_LOCALHOST_TARGETS: http://localhost targets are allowed (local development). */
  allowHttpLocalhost: boolean;
  /** The deployment and the service the target is set on, so a target that is that service is refused. */
  self: SelfRef;
};

/** A checked target: what the API shows, what is sealed, and what the answer that set it reveals once. */
export type Prepared<View, Secrets> = { view: View; secrets: Secrets; revealed: Record<string, string> | null };

/** One attempt as an adapter receives it: its stored parts already read back and checked. */
export type Attempt<View, Secrets, State> = {
  job: Job;
  target: View;
  secrets: Secrets;
  /** What an earlier attempt of this action kept, or null. */
  state: State | null;
  /** Every request to the target goes through this: bounded, secrets scrubbed from answers, hops counted. */
  send: TargetFetch;
};

/**
 * A kind of target: where a service's operations are sent. Each adapter
 * declares what a client sends (`input`, whose `type` names the adapter),
 * what the API shows of it (`view`, never a secret), what is sealed
 * (`secrets`), and what it keeps per action between attempts (`state`, or
 * null). The core stores all of these as opaque JSON; the registry
 * (targets/index.ts) checks them with these schemas on the way back.
 */
export type Target<Input extends { type: string }, View extends PublicTarget, Secrets, State = never> = {
  readonly type: Input["type"];
  /**
   * How operations reach it: "http", an attempt the queue's consumer performs
   * (`perform`); "agent", pushed by the namespace's object to a connected agent.
   */
  readonly delivery: "http" | "agent";
  readonly input: TargetSchema<Input["type"]> & z.ZodType<Input>;
  readonly view: z.ZodType<View>;
  readonly secrets: z.ZodType<Secrets>;
  readonly state: z.ZodType<State> | null;
  /** Checks a target as a client sent it; a refusal is a 400 naming the field. */
  prepare(input: Input, ctx: PrepareContext): Result<Prepared<View, Secrets>>;
  /** The secrets as they go out on the wire, so that no echo of them reaches a log. */
  secretsSent(view: View, secrets: Secrets): Hidden;
  /** One attempt: never throws; a network failure is a retryable result. */
  perform(attempt: Attempt<View, Secrets, State>): Promise<AttemptResult<State>>;
};
