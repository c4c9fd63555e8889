/**
 * Any sender that can sign with Standard Webhooks (a CI job, a script, a
 * registry we do not know): {"image": "[registry/]repository:tag", "digest"?:
 * "sha256:..."}. The webhook-id header is the delivery's id; the signed
 * webhook-timestamp header orders two pushes of one tag (a sender that tells
 * them in the wrong order does not roll the service back).
 */
import { z } from "zod";
import { standardWebhooks } from "./auth";
import { collect, guarded, idOf, pushOf, readBody, timeOfSeconds } from "./payload";
import { splitImage } from "./reference";
import type { Source } from "./source";

const GenericPush = z.object({ image: z.string(), digest: z.string().nullish() });

export const genericSource: Source = {
  name: "generic",
  ...standardWebhooks,
  parse: guarded((headers, body) => {
    const payload = readBody(body, GenericPush);
    if (!payload.ok) return payload;
    const image = splitImage(payload.value.image);
    if (image.tag === null || image.tag === "") return { ok: false, error: "image must name a tag" };
    const digest = payload.value.digest || image.digest;
    if (payload.value.digest && image.digest !== null && payload.value.digest !== image.digest) {
      return { ok: false, error: "digest differs from the digest in image" };
    }
    const push = pushOf(
      {
        id: idOf(headers.get("webhook-id")),
        registry: image.registry,
        repository: image.repository,
        tag: image.tag,
        digest,
        pushedAt: sentAt(headers),
      },
      {
        id: "the webhook-id header",
        registry: "image (its registry)",
        repository: "image (its repository)",
        tag: "image (its tag)",
        digest: payload.value.digest ? "digest" : "image (its digest)",
      },
    );
    return collect([push]);
  }),
};

/** The signed send time (the signature check refused any other), or null when the header is not seconds. */
function sentAt(headers: Headers): number | null {
  const stamp = headers.get("webhook-timestamp") ?? "";
  if (!/^\d{1,12}$/.test(stamp)) return null;
  const at = timeOfSeconds("webhook-timestamp", Number(stamp));
  return at.ok ? at.value : null;
}
