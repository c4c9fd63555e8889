import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { network, unhandled } from "./helpers/msw";

beforeAll(() => network.enable());
afterEach(() => {
  network.resetHandlers();
  const seen = unhandled.splice(0);
  expect(seen, "outbound requests that no test mocked").toEqual([]);
});
afterAll(() => network.disable());
