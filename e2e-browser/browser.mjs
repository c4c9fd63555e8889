// The browser of the console's tests: Debian's chromium (scripts/browser/install.sh puts it at
// /usr/bin/chromium), driven by playwright-core, headless, with a fresh profile per run. What
// the pages print as errors and every Content-Security-Policy violation are collected; axe-core
// checks a page; screenshots go to e2e-browser/output/ (git ignores it).

import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import AxeBuilder from "@axe-core/playwright";
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), "output");
export const WIDE = { width: 1440, height: 900 };
export const NARROW = { width: 360, height: 780 };

const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Chromium with a fresh profile, one page, and what the page complained about. */
export async function openBrowser() {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/browser/install.sh`);
  mkdirSync(OUTPUT, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), "console-browser-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: WIDE,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  const urls = [];
  page.on("request", (r) => urls.push(r.url()));
  page.on("websocket", (ws) => urls.push(ws.url()));
  // Reported by the page itself as well: a violation the console did not print still counts.
  await page.exposeFunction("__cspViolation", (text) => problems.push(`CSP violation: ${text}`));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
    });
  });
  return {
    context,
    page,
    problems,
    /** Every URL the page asked for, WebSockets included. */
    urls,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** axe-core on the page as it is: no violation of serious or critical impact. */
export async function checkAxe(page, what) {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const told = bad.map(
    (v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`,
  );
  assert.deepEqual(told, [], `axe on ${what}`);
  return { violations: result.violations.length, passes: result.passes.length };
}

/** Screenshots of the page at 1440 and 360 px wide, full length, then back to 1440. */
export async function screenshots(page, name) {
  for (const size of [WIDE, NARROW]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(100);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    const wide = overflow > 1 ? await page.evaluate(widest) : [];
    assert.ok(overflow <= 1, `${name} at ${size.width} px: the page is ${overflow} px wider than the window: ${wide}`);
    await page.screenshot({ path: join(OUTPUT, `${name}-${size.width}.png`), fullPage: true });
  }
  await page.setViewportSize(WIDE);
}

/** The elements that reach past the window's right edge (run in the page). */
function widest() {
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 0.5)
      out.push(`${el.tagName.toLowerCase()}.${el.className} (${Math.round(r.right)} px)`);
  }
  return out.slice(0, 8).join(", ");
}

/** Presses Tab (at most `max` times) until `locator` has the focus: the keyboard alone gets there. */
export async function tabTo(page, locator, max = 60) {
  for (let i = 0; i < max; i++) {
    if (await locator.evaluate((el) => el === document.activeElement).catch(() => false)) return;
    await page.keyboard.press("Tab");
  }
  assert.fail(`Tab never reached ${locator}`);
}
