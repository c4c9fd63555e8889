import { HttpResponse, http } from "msw";
import { Webhook } from "standardwebhooks";
import { describe, expect, it, vi } from "vitest";
import { as, call, createTrigger, createUser } from "./helpers/api";
import { network } from "./helpers/msw";

describe("webhook target", () => {
  it("delivers a signed webhook that standardwebhooks verifies", async () => {
    const user = await createUser();
    const url = "https://hooks.example.test/deploy";
    const created = await as(user, "POST", "/api/app/v1/service/", {
      image: "nginx:1.27",
      target: { type: "webhook", url },
    });
    expect(created.status).toBe(201);
    const svc = await created.json<{ uuid: string; resource_uri: string; name: string; target: { secret: string } }>();
    const secret = svc.target.secret;
    expect(secret).toMatch(/^whsec_/);
    const fetched = await (await as(user, "GET", svc.resource_uri)).json<{ target: Record<string, unknown> }>();
    expect(fetched.target).toEqual({ type: "webhook", url });

    const deliveries: unknown[] = [];
    network.use(
      http.post(url, async ({ request }) => {
        const body = await request.text();
        const headers = Object.fromEntries(request.headers);
        deliveries.push(new Webhook(secret).verify(body, headers));
        return HttpResponse.json({ ok: true });
      }),
    );
    const trigger = await createTrigger(user, svc as never);
    const r = await call(trigger.url, { method: "POST", body: '{"push":"main"}' });
    expect(r.status).toBe(202);
    const action = await r.json<{ resource_uri: string; uuid: string }>();
    await vi.waitUntil(
      async () => (await (await as(user, "GET", action.resource_uri)).json<{ state: string }>()).state === "Success",
      {
        timeout: 10_000,
        interval: 100,
      },
    );
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({
      type: "service.redeploy",
      data: {
        action: { uuid: action.uuid },
        namespace: user.username,
        trigger_body: '{"push":"main"}',
        scale_by: null,
      },
    });
  });
});
