/**
 * Azure Container Registry webhooks: one event per call, shaped as
 * Distribution's ({id, timestamp, action, target, request}), with the actions
 * push, delete, chart_push and chart_delete. ACR adds no signature and no
 * header of its own, so the hook's URL is the credential.
 */
import { urlOnly } from "./auth";
import { collect, guarded, readBody } from "./payload";
import { eventOutcome, RegistryEvent } from "./registry-event";
import type { Source } from "./source";

export const acrSource: Source = {
  name: "acr",
  ...urlOnly,
  parse: guarded((_headers, body) => {
    const event = readBody(body, RegistryEvent);
    if (!event.ok) return { ok: false, error: event.error };
    return collect([eventOutcome(event.value, "")]);
  }),
};
