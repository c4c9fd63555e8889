import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

it("serves openapi", async () => {
  const res = await exports.default.fetch("http://x/api/openapi.json");
  expect(res.status).toBe(200);
  const doc = await res.json<{ paths: Record<string, unknown> }>();
  expect(Object.keys(doc.paths).length).toBeGreaterThan(10);
});
