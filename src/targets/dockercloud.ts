import { z } from "@hono/zod-openapi";
import { toBase64 } from "../domain/crypto";
import { ANY_UUID } from "../domain/ids";
import { NAMESPACE_NAME } from "../domain/names";
import { fail, ok } from "../domain/result";
import { quote, refuseUnsafeText } from "../domain/text";
import { isVerdict, type TargetFetch, type TargetResponse } from "./http";
import type { AttemptResult, Job, Verdict } from "./job";
import { selfTargetProblem } from "./loops";
import { classifyStatus } from "./outcome";
import type { Target } from "./target";
import { targetUrl } from "./url";

const Input = z
  .object({
    type: z.literal("dockercloud"),
    url: z.string().max(2048),
    // Both go into an Authorization header, which cannot carry control characters.
    username: z.string().min(1).max(100).superRefine(refuseUnsafeText("target.username")),
    apikey: z.string().min(1).max(256).superRefine(refuseUnsafeText("target.apikey")),
    namespace: z
      .string()
      .regex(NAMESPACE_NAME, { error: "target.namespace must be 4 to 30 of a-z0-9" })
      .nullable()
      .optional(),
    service_uuid: z.string().regex(ANY_UUID, { error: "target.service_uuid must be a uuid" }).nullable().optional(),
  })
  .openapi("DockerCloudTarget");

const View = z
  .object({
    type: z.literal("dockercloud"),
    url: z.string(),
    username: z.string(),
    namespace: z.string().nullable(),
    service_uuid: z.string().nullable(),
  })
  .openapi("DockerCloudTargetView");
type View = z.infer<typeof View>;

const Secrets = z.object({ apikey: z.string() });

/** A SCALEUP's remote count, fixed by the first attempt that read it, so a retry never adds N twice. */
const State = z.object({ remote_count: z.number().int().min(0) });
type State = z.infer<typeof State>;

/** What is read of the remote service: its count, checked before use. */
const RemoteService = z.object({ target_num_containers: z.number().int().min(0) });

/** What Basic authentication encodes: "username:apikey" in UTF-8 (RFC 7617). */
export const basicCredentials = (username: string, apikey: string): Uint8Array =>
  new TextEncoder().encode(`${username}:${apikey}`);

/**
 * Any server speaking the Docker Cloud service API, this project included:
 * REDEPLOY → POST .../redeploy/; SCALEUP → read the remote count, PATCH it to
 * count + N (capped by max_num_containers), POST .../scale/; scale → PATCH to
 * the service's count, POST .../scale/. The remote action URI is logged.
 */
export const dockerCloudTarget: Target<z.infer<typeof Input>, View, z.infer<typeof Secrets>, State> = {
  type: "dockercloud",
  delivery: "http",
  input: Input,
  view: View,
  secrets: Secrets,
  state: State,

  prepare(input, ctx) {
    const url = targetUrl(input.url, ctx.allowHttpLocalhost);
    if (!url.ok) return url;
    const loop = selfTargetProblem(input, ctx.self);
    if (loop) return fail("bad_request", loop);
    const view: View = {
      type: "dockercloud",
      url: url.value,
      username: input.username,
      namespace: input.namespace ?? null,
      service_uuid: input.service_uuid?.toLowerCase() ?? null,
    };
    return ok({ view, secrets: { apikey: input.apikey }, revealed: null });
  },

  // The API key goes alone and inside the Basic credentials (as base64 of "username:apikey").
  secretsSent: (view, secrets) => ({
    texts: [secrets.apikey],
    bytes: [basicCredentials(view.username, secrets.apikey)],
  }),

  async perform({ job, target, secrets, state, send }) {
    const remote = remoteService(job, target, secrets.apikey, send);
    if (job.kind === "redeploy") {
      const query = job.reuse_volumes === null ? "" : `?reuse_volumes=${job.reuse_volumes}`;
      return remoteAction(await remote("POST", `redeploy/${query}`), "redeploy");
    }
    let count = job.kind === "scale" ? job.new_target_num_containers : (state?.remote_count ?? null);
    let read = "";
    if (count === null) {
      const counted = await readRemoteCount(remote, job);
      if ("result" in counted) return counted;
      ({ count, read } = counted);
    }
    const kept = { remote_count: count };
    const patched = await remote("PATCH", "", { target_num_containers: count });
    if (isVerdict(patched)) return { ...patched, state: kept };
    if (patched.status < 200 || patched.status >= 300) {
      const why = prefix(
        `${read}setting target_num_containers to ${count}`,
        classifyStatus(patched.status, patched.text),
      );
      return { ...why, state: kept };
    }
    const scaled = remoteAction(await remote("POST", "scale/"), `scale to ${count}`);
    return { ...scaled, detail: `${read}${scaled.detail}`, state: kept };
  },
};

type Remote = (method: string, path: string, body?: unknown) => Promise<TargetResponse | Verdict>;

/** Requests to the remote service, authenticated; `send` scrubs the credentials from whatever comes back. */
function remoteService(job: Job, target: View, apikey: string, send: TargetFetch): Remote {
  const base = `${target.url.replace(/\/+$/, "")}/api/app/v1/${target.namespace ? `${target.namespace}/` : ""}service/${target.service_uuid ?? job.service.uuid}/`;
  const headers = {
    authorization: `Basic ${toBase64(basicCredentials(target.username, apikey))}`,
    accept: "application/json",
    "content-type": "application/json",
    "user-agent": "dockercloud-triggers/1 (dockercloud target)",
  };
  return (method, path, body) =>
    send(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** The count a SCALEUP sets: the remote's own count + N, refused past the service's max_num_containers. */
async function readRemoteCount(
  remote: Remote,
  job: Job,
): Promise<{ count: number; read: string } | AttemptResult<State>> {
  const res = await remote("GET", "");
  if (isVerdict(res)) return res;
  if (res.status !== 200) return prefix("reading the remote service", classifyStatus(res.status, res.text));
  let current: number;
  try {
    current = RemoteService.parse(JSON.parse(res.text)).target_num_containers;
  } catch {
    return { result: "failed", detail: "the remote service answer has no integer target_num_containers" };
  }
  const count = current + (job.scale_by ?? 1);
  const read = `remote count ${current}; `;
  if (count > job.service.max_num_containers) {
    return {
      result: "failed",
      detail: `${read}scaling up by ${job.scale_by ?? 1} would pass max_num_containers (${job.service.max_num_containers})`,
    };
  }
  return { count, read };
}

function remoteAction(res: TargetResponse | Verdict, what: string): Verdict {
  if (isVerdict(res)) return res;
  const outcome = classifyStatus(res.status, res.text);
  const uri = res.header("x-dockercloud-action-uri");
  return { ...outcome, detail: `${what}: ${outcome.detail}${uri ? `; remote action ${quote(uri)}` : ""}` };
}

const prefix = (what: string, r: Verdict): Verdict => ({ ...r, detail: `${what}: ${r.detail}` });
