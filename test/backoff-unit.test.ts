import { describe, expect, it } from "vitest";
import { backoffSeconds } from "../src/domain/backoff";

describe("backoffSeconds", () => {
  it("doubles from the base for each failed attempt, starting at the base for attempt 1", () => {
    const delays = [1, 2, 3, 4].map((attempts) => backoffSeconds(attempts, 5, 10_000));
    expect(delays).toEqual([5, 10, 20, 40]);
  });

  it("is capped: 5, 10, 20, 40, then 60 for ever with a cap of 60", () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 20].map((attempts) => backoffSeconds(attempts, 5, 60));
    expect(delays).toEqual([5, 10, 20, 40, 60, 60, 60, 60]);
  });

  it("never exceeds the cap, even for absurd attempt counts", () => {
    for (const attempts of [31, 100, 1_000_000, Number.MAX_SAFE_INTEGER]) {
      const d = backoffSeconds(attempts, 5, 300);
      expect(d, `attempts=${attempts}`).toBe(300);
      expect(Number.isFinite(d)).toBe(true);
    }
  });

  it("a cap below the base caps the first delay too", () => {
    expect(backoffSeconds(1, 30, 10)).toBe(10);
  });

  it("treats attempts of 0 or less like the first attempt (the runtime counts from 1)", () => {
    expect(backoffSeconds(0, 5, 60)).toBe(5);
    expect(backoffSeconds(-3, 5, 60)).toBe(5);
  });

  it("a base of 0 means no delay at all, whatever the attempt", () => {
    for (const attempts of [1, 2, 5, 50]) expect(backoffSeconds(attempts, 0, 300)).toBe(0);
  });

  it("returns whole seconds (Queues takes an integer delaySeconds)", () => {
    for (const attempts of [1, 2, 3, 4, 5]) {
      expect(Number.isInteger(backoffSeconds(attempts, 1.5, 300))).toBe(true);
    }
    expect([1, 2, 3].map((a) => backoffSeconds(a, 1.5, 300))).toEqual([2, 3, 6]);
  });
});
