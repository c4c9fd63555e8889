/**
 * The contract every target adapter keeps, run against each one in the
 * registry through the same entry points the product uses (`prepareTarget`
 * when a target is set, `perform` when an attempt runs): a 2xx succeeds, a
 * 503 and a network error are worth another try, a 400 fails for good, what
 * the target answers never brings a secret into the log line, and what an
 * adapter keeps between attempts comes back as JSON. Adding an adapter means
 * adding its fixture here; the first test fails until then. (Agent targets
 * are performed by their agent: test/agent-jobs.test.ts.)
 */
import { env } from "cloudflare:test";
import { HttpResponse, http } from "msw";
import { describe, expect, it } from "vitest";
import { toBase64 } from "../src/domain/crypto";
import { HTTP_TARGET_TYPES, perform, prepareTarget } from "../src/targets";
import type { Job } from "../src/targets/job";
import { network } from "./helpers/msw";

const WEBHOOK_KEY = new Uint8Array(32).map((_, i) => (i * 37 + 11) % 256);
const WEBHOOK_SECRET = `whsec_${toBase64(WEBHOOK_KEY)}`;
const APIKEY = "c0ntr4ct-4p1-k3y-0123456789abcdef";

type Fixture = {
  /** A valid target, as a client sets it, sending to `url`. */
  input: (url: string) => Record<string, unknown>;
  /** Every form of its secrets that must never reach a log. */
  secrets: string[];
};

const FIXTURES: Record<string, Fixture> = {
  webhook: {
    input: (url) => ({ type: "webhook", url: `${url}/hook`, secret: WEBHOOK_SECRET }),
    secrets: [WEBHOOK_SECRET, toBase64(WEBHOOK_KEY)],
  },
  dockercloud: {
    input: (url) => ({ type: "dockercloud", url, username: "contract", apikey: APIKEY }),
    secrets: [APIKEY, toBase64(new TextEncoder().encode(`contract:${APIKEY}`))],
  },
};

let hosts = 0;
const host = () => `https://contract-${++hosts}-${crypto.randomUUID().slice(0, 8)}.example.test`;

function job(kind: Job["kind"], target: { target_public: Job["target"]; target_sealed: string | null }): Job {
  const uuid = crypto.randomUUID();
  const service = crypto.randomUUID();
  return {
    namespace: "contract",
    attempt: 1,
    kind,
    action: { uuid, resource_uri: `/api/audit/v1/contract/action/${uuid}/` },
    service: {
      uuid: service,
      name: "web",
      resource_uri: `/api/app/v1/contract/service/${service}/`,
      image_name: "nginx:latest",
      target_num_containers: 1,
      max_num_containers: 10,
    },
    trigger: null,
    scale_by: kind === "scaleup" ? 1 : null,
    new_target_num_containers: kind === "scale" ? 2 : null,
    trigger_body: null,
    reuse_volumes: null,
    target: target.target_public,
    target_sealed: target.target_sealed,
    target_state: null,
    hops: 0,
    image: null,
  };
}

/** Sets the adapter's target on a fresh host whose every request is answered by `answer`. */
async function targetAt(type: string, answer: (req: Request) => Response | Promise<Response>) {
  const url = host();
  network.use(http.all(`${url}/*`, ({ request }) => answer(request as unknown as Request)));
  const prepared = await prepareTarget(env, FIXTURES[type]?.input(url) ?? null, {
    origin: "https://self.example.test",
    namespace: "contract",
    serviceUuid: crypto.randomUUID(),
  });
  if (!prepared.ok) throw new Error(`the fixture of ${type} is refused: ${prepared.message}`);
  return prepared.value;
}

/** A remote service answer, for adapters that read one before they write. */
const remoteService = () => HttpResponse.json({ target_num_containers: 1 }, { status: 200 });

it("every registered target type has a contract fixture", () => {
  expect(Object.keys(FIXTURES).sort()).toEqual([...HTTP_TARGET_TYPES].sort());
});

describe.each(HTTP_TARGET_TYPES.map((type) => [type]))("target contract: %s", (type) => {
  it("a 2xx answer succeeds, for every kind of action", async () => {
    for (const kind of ["redeploy", "scaleup", "scale"] as const) {
      const target = await targetAt(type, (req) =>
        req.method === "GET" ? remoteService() : new HttpResponse(null, { status: 202 }),
      );
      const result = await perform(env, job(kind, target));
      expect(result.result, `${kind}: ${result.detail}`).toBe("success");
    }
  });

  it("a 503 answer is worth another try", async () => {
    const target = await targetAt(type, () => new HttpResponse("busy", { status: 503 }));
    expect((await perform(env, job("redeploy", target))).result).toBe("retry");
  });

  it("a network error is worth another try", async () => {
    const target = await targetAt(type, () => HttpResponse.error());
    expect((await perform(env, job("redeploy", target))).result).toBe("retry");
  });

  it("a 400 answer fails for good", async () => {
    const target = await targetAt(type, () => new HttpResponse("no", { status: 400 }));
    expect((await perform(env, job("redeploy", target))).result).toBe("failed");
  });

  it("a target that echoes its secrets and credentials brings none of them into the log line", async () => {
    const secrets = FIXTURES[type]?.secrets ?? [];
    // The answer's excerpt in the log is short: each secret is echoed at the start of an answer of its own.
    for (const [i, secret] of secrets.entries()) {
      const target = await targetAt(
        type,
        (req) => new HttpResponse(`${secret} ${req.headers.get("authorization") ?? ""}`, { status: 400 }),
      );
      const result = await perform(env, job(i % 2 ? "scale" : "redeploy", target));
      expect(result.result).toBe("failed");
      expect(result.detail).toContain("[redacted]");
      for (const s of secrets) expect(result.detail).not.toContain(s);
    }
  });

  it("what an adapter keeps between attempts is JSON, and goes back to it on the next attempt", async () => {
    const target = await targetAt(type, (req) =>
      req.method === "GET" ? remoteService() : new HttpResponse(null, { status: 503 }),
    );
    const first = await perform(env, job("scaleup", target));
    expect(first.result).toBe("retry");
    if (first.state === undefined) return;
    expect(() => JSON.parse(first.state as string)).not.toThrow();
    const again = await perform(env, { ...job("scaleup", target), attempt: 2, target_state: first.state });
    expect(again.result).toBe("retry");
  });

  it("stored state the adapter cannot read fails the attempt with a reason, never throws", async () => {
    const target = await targetAt(type, () => new HttpResponse(null, { status: 202 }));
    const result = await perform(env, { ...job("scaleup", target), target_state: '{"not":"this adapter\'s"}' });
    expect(["success", "failed"]).toContain(result.result);
    expect(result.detail).not.toBe("");
  });
});
