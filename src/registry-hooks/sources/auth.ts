/**
 * The ways a registry's call proves it knows the hook's secret. Each answers
 * false, never throws, for a call that does not carry the proof, whatever its
 * headers, body or the stored secret hold.
 */
// The package's "browser" build (Web Crypto), which the Workers bundler and test pool pick.
import { verify as verifyHubSignature } from "@octokit/webhooks-methods";
import { Webhook } from "standardwebhooks";
import { randomHex, secretsEqual, toBase64 } from "../../domain/crypto";
import type { Source } from "./source";

type Auth = Pick<Source, "auth" | "newSecret" | "verify">;

/** No stored secret this short comes from `newSecret`: an empty or damaged one never lets a call in. */
const MIN_SECRET_LENGTH = 16;

/** Docker Hub, Quay and ACR cannot sign their calls: the hook's secret URL is the only credential. */
export const urlOnly: Auth = {
  auth: "none",
  newSecret: () => null,
  verify: async () => true,
};

/**
 * A static token the registry sends as "Authorization: Bearer rhs_...":
 * Distribution's `notifications.endpoints[].headers`, Harbor's "Auth Header".
 * The whole header is compared, so "bearer", "Basic" or a padded token fail.
 */
export const bearerToken: Auth = {
  auth: "authorization",
  newSecret: () => `rhs_${randomHex(20)}`,
  async verify(secret, headers) {
    try {
      const sent = headers.get("authorization");
      if (sent === null || secret.length < MIN_SECRET_LENGTH) return false;
      return await secretsEqual(sent, `Bearer ${secret}`);
    } catch {
      return false;
    }
  },
};

const HUB_SIGNATURE = /^sha256=[0-9a-f]{64}$/;

/**
 * GitHub's X-Hub-Signature-256: "sha256=" and the hex HMAC-SHA256 of the raw
 * body, keyed with the secret the user pasted into the webhook's settings.
 */
export const hubSignature: Auth = {
  auth: "hmac-sha256",
  newSecret: () => randomHex(32),
  async verify(secret, headers, body) {
    const signature = headers.get("x-hub-signature-256");
    // The library throws on an empty body or secret, and its Web Crypto build reads any hex pairs out of
    // a malformed header: only GitHub's exact form reaches it.
    if (signature === null || !HUB_SIGNATURE.test(signature) || body === "") return false;
    if (secret.length < MIN_SECRET_LENGTH) return false;
    try {
      return await verifyHubSignature(secret, body, signature);
    } catch {
      return false;
    }
  },
};

const STANDARD_SECRET_BYTES = 24;
const SECONDS = /^\d{1,12}$/;

/**
 * Standard Webhooks: webhook-id, webhook-timestamp (within the library's five
 * minutes) and webhook-signature ("v1,<base64 HMAC>", several allowed).
 */
export const standardWebhooks: Auth = {
  auth: "standard-webhooks",
  newSecret: () => `whsec_${toBase64(crypto.getRandomValues(new Uint8Array(STANDARD_SECRET_BYTES)))}`,
  async verify(secret, headers, body) {
    const id = headers.get("webhook-id");
    const timestamp = headers.get("webhook-timestamp");
    const signature = headers.get("webhook-signature");
    if (!id || !signature || secret.length < MIN_SECRET_LENGTH) return false;
    // The library signs the number it reads from the front of the header: "1700000000junk" would pass as
    // "1700000000", so only digits are let through.
    if (timestamp === null || !SECONDS.test(timestamp)) return false;
    try {
      new Webhook(secret).verify(
        body,
        { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature },
        { jsonParse: false },
      );
      return true;
    } catch {
      return false;
    }
  },
};
