/**
 * CNCF Distribution (registry:2, registry:3) notifications: an envelope
 * {"events": [...]} sent as application/vnd.docker.distribution.events.v1+json
 * or v2+json, to an endpoint configured with
 * `headers: {Authorization: ["Bearer rhs_..."]}`. One envelope mixes unrelated
 * events: the layer and config blobs of a push, its manifest, pulls, mounts.
 * The registry's address is only in request.host and target.url.
 */
import { z } from "zod";
import { bearerToken } from "./auth";
import { collect, guarded, readBody } from "./payload";
import { eventOutcome, RegistryEvent } from "./registry-event";
import type { Source } from "./source";

const Envelope = z.object({ events: z.array(RegistryEvent) });

export const distributionSource: Source = {
  name: "distribution",
  ...bearerToken,
  parse: guarded((_headers, body) => {
    const envelope = readBody(body, Envelope);
    if (!envelope.ok) return { ok: false, error: envelope.error };
    return collect(envelope.value.events.map((event, i) => eventOutcome(event, `events[${i}].`)));
  }),
};
