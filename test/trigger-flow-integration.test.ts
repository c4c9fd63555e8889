import { describe, expect, it, vi } from "vitest";
import { as, asGo, call, createService, createTrigger, createUser } from "./helpers/api";
import { RFC1123_SHAPE } from "./helpers/formats";

describe("trigger flow with no target", () => {
  it("create service -> trigger -> call -> action Success, registry updated", async () => {
    const user = await createUser();
    const svc = await createService(user, { target_num_containers: 2, max_num_containers: 5 });
    expect(svc.resource_uri).toBe(`/api/app/v1/${user.username}/service/${svc.uuid}/`);
    const redeploy = await createTrigger(user, svc, { name: "ci" });
    const scaleup = await createTrigger(user, svc, { operation: "scaleup" });
    expect(redeploy.operation).toBe("REDEPLOY");
    expect(scaleup.operation).toBe("SCALEUP");

    const r1 = await call(redeploy.url, { method: "POST", body: "hello" });
    expect(r1.status).toBe(202);
    const a1 = await r1.json<{ uuid: string; resource_uri: string; state: string; path: string | null }>();
    expect(r1.headers.get("x-dockercloud-action-uri")).toBe(a1.resource_uri);
    // A call's answer leaves the path out; the audit view keeps it, with the trigger uuid redacted.
    expect(a1.path).toBeNull();
    const recorded = await (await as(user, "GET", a1.resource_uri)).json<{ path: string }>();
    expect(recorded.path).toMatch(/\/trigger\/\[redacted\]\/call\/$/);

    const r2 = await call(`/api/app/v1/service/${svc.uuid}//trigger/${scaleup.uuid}/call/2/`, { method: "POST" });
    expect(r2.status).toBe(202);
    const a2 = await r2.json<{ resource_uri: string }>();

    await vi.waitUntil(
      async () => {
        const s1 = await (await as(user, "GET", a1.resource_uri)).json<{ state: string }>();
        const s2 = await (await as(user, "GET", a2.resource_uri)).json<{ state: string }>();
        return s1.state === "Success" && s2.state === "Success";
      },
      { timeout: 10_000, interval: 100 },
    );
    const after = await (await asGo(user, "GET", `/api/app/v1/service/${svc.uuid}/`)).json<{
      target_num_containers: number;
      state: string;
      deployed_datetime: string | null;
    }>();
    expect(after.target_num_containers).toBe(4);
    expect(after.state).toBe("Running");
    expect(after.deployed_datetime).toMatch(RFC1123_SHAPE);
  });
});
