/**
 * Docker Hub repository webhooks: {callback_url, push_data: {pushed_at,
 * pusher, tag}, repository: {repo_name, namespace, name, ...}}. Docker Hub
 * sends one on every push to the repository, with no event type, no digest
 * and no signature: the hook's URL is the credential.
 */
import { z } from "zod";
import { urlOnly } from "./auth";
import { collect, guarded, pushOf, readBody, timeOfSeconds } from "./payload";
import type { Source } from "./source";

const DockerHubPush = z.object({
  push_data: z.object({ tag: z.string(), pushed_at: z.number().nullish() }),
  repository: z.object({ repo_name: z.string() }),
});

export const dockerHubSource: Source = {
  name: "dockerhub",
  ...urlOnly,
  parse: guarded((_headers, body) => {
    const payload = readBody(body, DockerHubPush);
    if (!payload.ok) return { ok: false, error: payload.error };
    const { push_data, repository } = payload.value;
    const pushedAt = timeOfSeconds("push_data.pushed_at", push_data.pushed_at);
    if (!pushedAt.ok) return { ok: false, error: pushedAt.error };
    const push = pushOf(
      {
        id: null,
        registry: "docker.io",
        repository: repository.repo_name,
        tag: push_data.tag,
        digest: null,
        pushedAt: pushedAt.value,
      },
      { repository: "repository.repo_name", tag: "push_data.tag" },
    );
    return collect([push]);
  }),
};
