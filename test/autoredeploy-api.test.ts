/**
 * `autoredeploy`, as Docker Cloud's clients set it: on create and PATCH, kept
 * and shown; with our `autoredeploy_policy` (tag, patch, minor, major). What a
 * registry push does with it: registry-hooks tests.
 */
import { describe, expect, it } from "vitest";
import { readJson } from "./helpers/actions";
import { as, asGo, asPython, createService, createUser } from "./helpers/api";

type Service = { resource_uri: string; autoredeploy: boolean; autoredeploy_policy: string };

describe("autoredeploy on a service", () => {
  it("is false by default, set on create and by PATCH (as the CLI's service set does), and shown on GET", async () => {
    const user = await createUser();
    const plain = await createService(user, { name: "plain" });
    expect(plain).toMatchObject({ autoredeploy: false, autoredeploy_policy: "tag" });
    const on = await createService(user, { name: "on", autoredeploy: true, autoredeploy_policy: "minor" });
    expect(on).toMatchObject({ autoredeploy: true, autoredeploy_policy: "minor" });
    expect(await readJson<Service>(user, on.resource_uri)).toMatchObject({
      autoredeploy: true,
      autoredeploy_policy: "minor",
    });

    const python = await asPython(user, "PATCH", plain.resource_uri, { autoredeploy: true });
    expect(python.status).toBe(200);
    expect(await readJson<Service>(user, plain.resource_uri)).toMatchObject({
      autoredeploy: true,
      autoredeploy_policy: "tag",
    });
    const go = await asGo(user, "PATCH", plain.resource_uri, { autoredeploy: false });
    expect(go.status).toBe(200);
    expect((await readJson<Service>(user, plain.resource_uri)).autoredeploy).toBe(false);
  });

  it("refuses a value that is not a boolean, or an unknown policy, and changes nothing", async () => {
    const user = await createUser();
    const svc = await createService(user, { name: "web" });
    for (const [body, words] of [
      [{ autoredeploy: "yes" }, "autoredeploy must be true or false"],
      [{ autoredeploy: 1 }, "autoredeploy must be true or false"],
      [{ autoredeploy_policy: "latest" }, "autoredeploy_policy must be one of: tag, patch, minor, major"],
    ] as const) {
      const r = await as(user, "PATCH", svc.resource_uri, body);
      expect(r.status).toBe(400);
      expect((await r.json<{ error: string }>()).error).toContain(words);
    }
    expect(await readJson<Service>(user, svc.resource_uri)).toMatchObject({
      autoredeploy: false,
      autoredeploy_policy: "tag",
    });
  });
});
