import { z } from "zod";
import { toBase64 } from "../domain/crypto";
import { quote } from "../domain/text";
import type { Job } from "../queue/messages";
import type { DockerCloudSecrets, PublicDockerCloudTarget } from "./config";
import { isAttemptResult, type TargetFetch, type TargetResponse } from "./http";
import { type AttemptResult, classifyStatus } from "./outcome";

/** What is read of the remote service: its count, checked before use. */
const RemoteService = z.object({ target_num_containers: z.number().int().min(0) });

/**
 * Performs an operation on any server speaking the Docker Cloud service API
 * (this project included): REDEPLOY → POST .../redeploy/; SCALEUP → read the
 * remote count, PATCH it to count + N (capped by max_num_containers), POST
 * .../scale/; scale → PATCH to the service's count, POST .../scale/. The
 * remote action URI is logged. A SCALEUP's remote count is fixed by its first
 * attempt that read it, so a retry never adds N twice.
 */
export async function performDockerCloud(
  job: Job,
  target: PublicDockerCloudTarget,
  secrets: DockerCloudSecrets,
  fetchTarget: TargetFetch,
): Promise<AttemptResult> {
  const base = `${target.url.replace(/\/+$/, "")}/api/app/v1/${target.namespace ? `${target.namespace}/` : ""}service/${target.service_uuid ?? job.service.uuid}/`;
  const headers = {
    authorization: `Basic ${toBase64(basicCredentials(target.username, secrets.apikey))}`,
    accept: "application/json",
    "content-type": "application/json",
    "user-agent": "dockercloud-triggers/1 (dockercloud target)",
  };
  // fetchTarget scrubs the credentials from whatever the remote answers.
  const send = (method: string, path: string, body?: unknown) =>
    fetchTarget(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });

  if (job.kind === "redeploy") {
    const query = job.reuse_volumes === null ? "" : `?reuse_volumes=${job.reuse_volumes}`;
    return remoteAction(await send("POST", `redeploy/${query}`), "redeploy");
  }

  let count = job.kind === "scale" ? job.new_target_num_containers : job.remote_target;
  let read = "";
  if (count === null) {
    const res = await send("GET", "");
    if (isAttemptResult(res)) return res;
    if (res.status !== 200) return prefix("reading the remote service", classifyStatus(res.status, res.text));
    let remote: z.infer<typeof RemoteService>;
    try {
      remote = RemoteService.parse(JSON.parse(res.text));
    } catch {
      return { result: "failed", detail: "the remote service answer has no integer target_num_containers" };
    }
    count = remote.target_num_containers + (job.scale_by ?? 1);
    read = `remote count ${remote.target_num_containers}; `;
    if (count > job.service.max_num_containers) {
      return {
        result: "failed",
        detail: `${read}scaling up by ${job.scale_by ?? 1} would pass max_num_containers (${job.service.max_num_containers})`,
      };
    }
  }
  const patched = await send("PATCH", "", { target_num_containers: count });
  if (isAttemptResult(patched)) return { ...patched, remoteTarget: count };
  if (patched.status < 200 || patched.status >= 300) {
    return {
      ...prefix(`${read}setting target_num_containers to ${count}`, classifyStatus(patched.status, patched.text)),
      remoteTarget: count,
    };
  }
  const scaled = remoteAction(await send("POST", "scale/"), `scale to ${count}`);
  return { ...scaled, detail: `${read}${scaled.detail}`, remoteTarget: count };
}

function remoteAction(res: TargetResponse | AttemptResult, what: string): AttemptResult {
  if (isAttemptResult(res)) return res;
  const outcome = classifyStatus(res.status, res.text);
  const uri = res.header("x-dockercloud-action-uri");
  return { ...outcome, detail: `${what}: ${outcome.detail}${uri ? `; remote action ${quote(uri)}` : ""}` };
}

/** What Basic authentication encodes: "username:apikey" in UTF-8 (RFC 7617). */
export const basicCredentials = (username: string, apikey: string): Uint8Array =>
  new TextEncoder().encode(`${username}:${apikey}`);

const prefix = (what: string, r: AttemptResult): AttemptResult => ({ ...r, detail: `${what}: ${r.detail}` });
