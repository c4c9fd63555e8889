/// <reference types="vite/client" />
/**
 * The contract every registry source keeps, run against each entry of
 * SOURCES: every payload under test/fixtures/registry/<source>/ parses to the
 * answer the fixture states (pushes, what is left alone and why, or the 400
 * naming the field), and a call signed the way the registry signs it
 * verifies, while a wrong secret, a changed body or a missing header does
 * not. Adding a source means adding its fixtures: the first test fails until then.
 */
import { describe, expect, it } from "vitest";
import { toHex } from "../src/domain/crypto";
import { type Parsed, SOURCE_NAMES, SOURCES, type Source, type SourceAuth } from "../src/registry-hooks/sources";
import { signWebhook } from "../src/targets/signing";

type Fixture = {
  description: string;
  documentation?: string;
  headers: Record<string, string>;
  /** The payload, sent as its JSON text; or `rawBody`, sent as is. */
  body?: unknown;
  rawBody?: string;
  expected: Parsed;
};

const FILES = import.meta.glob<Fixture>("./fixtures/registry/*/*.json", { eager: true, import: "default" });
const FIXTURES = Object.entries(FILES).map(([file, fixture]) => {
  const [source = "", name = ""] = file.split("/").slice(-2);
  return { source, name: name.replace(/\.json$/, ""), fixture };
});
const fixturesOf = (source: string) => FIXTURES.filter((f) => f.source === source);
const bodyOf = (fixture: Fixture) => fixture.rawBody ?? JSON.stringify(fixture.body);

const encoder = new TextEncoder();

/** GitHub's X-Hub-Signature-256, computed here as GitHub documents it rather than with the library under test. */
async function hubSignature(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return `sha256=${toHex(await crypto.subtle.sign("HMAC", key, encoder.encode(body)))}`;
}

/** The headers a registry adds to prove it knows `secret`, signed `secondsAgo` ago. */
const SIGNERS: Record<
  SourceAuth,
  (secret: string, body: string, secondsAgo?: number) => Promise<Record<string, string>>
> = {
  "hmac-sha256": async (secret, body) => ({ "x-hub-signature-256": await hubSignature(secret, body) }),
  authorization: async (secret) => ({ authorization: `Bearer ${secret}` }),
  "standard-webhooks": async (secret, body, secondsAgo = 0) => {
    const timestamp = Math.floor(Date.now() / 1000) - secondsAgo;
    const id = "msg_contract_0001";
    return {
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": await signWebhook(secret, id, timestamp, body),
    };
  },
  none: async () => ({}),
};

/** The form of each kind of secret, as the user pastes it into the registry. */
const SECRET_FORMS: Record<SourceAuth, RegExp | null> = {
  "hmac-sha256": /^[0-9a-f]{64}$/,
  authorization: /^rhs_[0-9a-f]{40}$/,
  "standard-webhooks": /^whsec_[A-Za-z0-9+/]{32}$/,
  none: null,
};

const headersOf = (...parts: Record<string, string>[]) => new Headers(Object.assign({}, ...parts));

it("every registry source has fixtures, and every fixture folder names a source", () => {
  for (const name of SOURCE_NAMES) expect(fixturesOf(name).length, `fixtures of ${name}`).toBeGreaterThan(0);
  expect([...new Set(FIXTURES.map((f) => f.source))].sort()).toEqual([...SOURCE_NAMES].sort());
});

it("each entry of SOURCES is filed under its own name", () => {
  for (const name of SOURCE_NAMES) expect(SOURCES[name].name).toBe(name);
});

describe.each(SOURCE_NAMES.map((name) => [name, SOURCES[name]] as const))(
  "registry source contract: %s",
  (name, source) => {
    const fixtures = fixturesOf(name);

    it.each(fixtures.map((f) => [f.name, f.fixture] as const))("parses %s as its fixture states", (_, fixture) => {
      expect(source.parse(headersOf(fixture.headers), bodyOf(fixture))).toEqual(fixture.expected);
    });

    it("a new secret has the form its registry takes, and differs each time", () => {
      const form = SECRET_FORMS[source.auth];
      const first = source.newSecret();
      const second = source.newSecret();
      if (form === null) {
        expect(first).toBeNull();
        return;
      }
      expect(first).toMatch(form);
      expect(second).toMatch(form);
      expect(second).not.toBe(first);
    });

    it("verifies every fixture signed as the registry signs it", async () => {
      const secret = source.newSecret() ?? "";
      for (const { name: fixtureName, fixture } of fixtures) {
        const body = bodyOf(fixture);
        const signed = headersOf(fixture.headers, await SIGNERS[source.auth](secret, body));
        expect(await source.verify(secret, signed, body), fixtureName).toBe(true);
      }
    });

    it.skipIf(source.auth === "none")("refuses a wrong secret, a missing header, a changed body", async () => {
      const secret = source.newSecret() ?? "";
      const other = source.newSecret() ?? "";
      for (const { name: fixtureName, fixture } of fixtures) {
        const body = bodyOf(fixture);
        const proof = await SIGNERS[source.auth](secret, body);
        expect(
          await source.verify(other, headersOf(fixture.headers, proof), body),
          `${fixtureName}: wrong secret`,
        ).toBe(false);
        expect(await source.verify(secret, headersOf(fixture.headers), body), `${fixtureName}: no proof`).toBe(false);
        for (const header of Object.keys(proof)) {
          const { [header]: _, ...rest } = proof;
          expect(
            await source.verify(secret, headersOf(fixture.headers, rest), body),
            `${fixtureName}: no ${header}`,
          ).toBe(false);
        }
        if (source.auth !== "authorization") {
          expect(await source.verify(secret, headersOf(proof), `${body} `), `${fixtureName}: changed body`).toBe(false);
        }
      }
    });

    it.runIf(source.auth === "none")("takes every call: the hook's URL is the only credential", async () => {
      for (const { fixture } of fixtures) {
        expect(await source.verify("", headersOf(fixture.headers), bodyOf(fixture))).toBe(true);
      }
    });
  },
);

describe("how each kind of proof is read", () => {
  const sourceWith = (auth: SourceAuth): Source => {
    const found = SOURCE_NAMES.map((name) => SOURCES[name]).find((s) => s.auth === auth);
    if (!found) throw new Error(`no source authenticates with ${auth}`);
    return found;
  };
  const body = '{"events":[]}';

  it("authorization: only the exact header, never a look-alike", async () => {
    const source = sourceWith("authorization");
    const secret = source.newSecret() ?? "";
    for (const sent of [`bearer ${secret}`, `Basic ${secret}`, secret, `Bearer ${secret}x`, `Bearer  ${secret}`]) {
      expect(await source.verify(secret, headersOf({ authorization: sent }), body), sent).toBe(false);
    }
    expect(await source.verify("", headersOf({ authorization: "Bearer " }), body)).toBe(false);
    expect(await source.verify("rhs_short", headersOf({ authorization: "Bearer rhs_short" }), body)).toBe(false);
  });

  it("hmac-sha256: GitHub's form only, whatever else the header holds", async () => {
    const source = sourceWith("hmac-sha256");
    const secret = source.newSecret() ?? "";
    const good = await hubSignature(secret, body);
    for (const sent of [
      good.toUpperCase(),
      good.replace("sha256=", "sha1="),
      good.slice(0, -1),
      `x${good}`,
      "sha256=zz",
      "sha256=",
      good.replace("sha256=", ""),
      `${good.slice(0, 20)}-${good.slice(20)}`,
    ]) {
      expect(await source.verify(secret, headersOf({ "x-hub-signature-256": sent }), body), sent).toBe(false);
    }
    expect(await source.verify(secret, headersOf({ "x-hub-signature-256": await hubSignature(secret, "") }), "")).toBe(
      false,
    );
  });

  it("standard-webhooks: a signature older than five minutes, or a timestamp that is not a number, fails", async () => {
    const source = sourceWith("standard-webhooks");
    const secret = source.newSecret() ?? "";
    const old = await SIGNERS["standard-webhooks"](secret, body, 10 * 60);
    expect(await source.verify(secret, headersOf(old), body)).toBe(false);
    const fresh = await SIGNERS["standard-webhooks"](secret, body);
    expect(await source.verify(secret, headersOf(fresh), body)).toBe(true);
    const padded = { ...fresh, "webhook-timestamp": `${fresh["webhook-timestamp"]}junk` };
    expect(await source.verify(secret, headersOf(padded), body)).toBe(false);
    expect(await source.verify("whsec_%%%", headersOf(fresh), body)).toBe(false);
  });
});
