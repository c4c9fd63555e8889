// The console in a real browser (Debian's chromium through playwright-core) against `npm run
// dev`: signing in (with the keyboard alone, and with a wrong key), the services table, a
// service's triggers (created with the keyboard, called from outside, revoked through the
// dialog), an action followed without a reload and its log, agents and their token shown once;
// axe-core on every page, no console error and no CSP violation, screenshots at 1440 and 360 px.
//
// Run: npm run test:browser   (node --test 'e2e-browser/*.test.mjs'; needs /usr/bin/chromium)
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import { adminToken, apiRequest, createUserWithKey, createWorker, failureTracker } from "../e2e/helpers.mjs";
import { checkAxe, openBrowser, screenshots, tabTo } from "./browser.mjs";

const STEP_MS = 60_000;
const worker = createWorker();
const t = failureTracker();
const state = { user: null, org: "", service: null, triggerUrl: "", actionHref: "", browser: null, axe: [] };

/** The page's role-based lookups, exact names as the issue gives them. */
const role = (scope, name, opts = {}) => scope.getByRole(name, { exact: true, ...opts });
const visible = (locator, timeout = 15_000) => locator.waitFor({ state: "visible", timeout });

async function axe(what) {
  const found = await checkAxe(state.browser.page, what);
  state.axe.push({ page: what, ...found });
}

/** The element that has the focus shows it (an outline or a box shadow). */
async function assertFocusVisible(page) {
  const shown = await page.evaluate(() => {
    const s = getComputedStyle(document.activeElement);
    return (s.outlineStyle !== "none" && Number.parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none";
  });
  assert.ok(shown, "the focused element shows its focus");
}

describe("the console", { concurrency: false }, () => {
  before(async () => {
    await worker.start();
    state.user = await createUserWithKey(worker.base, { prefix: "web" });
    const admin = `Bearer ${adminToken()}`;
    state.org = `org${Date.now().toString(36)}`;
    const org = await apiRequest(worker.base, "POST", "/api/admin/v1/organization/", {
      authorization: admin,
      body: { name: state.org },
    });
    assert.equal(org.status, 201, org.text);
    const member = await apiRequest(worker.base, "POST", `/api/admin/v1/organization/${state.org}/member/`, {
      authorization: admin,
      body: { username: state.user.username },
    });
    assert.equal(member.status, 201, member.text);
    const svc = await apiRequest(worker.base, "POST", "/api/app/v1/service/", {
      authorization: state.user.basic,
      body: { image: "nginx:1.27", name: "web", target_num_containers: 2 },
    });
    assert.equal(svc.status, 201, svc.text);
    state.service = svc.json;
    state.browser = await openBrowser();
  });

  after(async () => {
    await state.browser?.close();
    if (t.failed) console.log(`wrangler output:\n${worker.outputTail()}`);
    await worker.stop();
    if (state.axe.length) console.log(`axe: ${JSON.stringify(state.axe)}`);
  });

  t.step(
    "a wrong API key shows the API's own error, and nothing is kept",
    async () => {
      const { page, problems } = state.browser;
      const before = problems.length;
      await page.goto(`${worker.base}/`);
      await visible(role(page, "heading", { name: "Sign in", level: 1 }));
      await axe("sign-in");
      await screenshots(page, "sign-in");
      await role(page, "textbox", { name: "Username" }).fill(state.user.username);
      await page.getByLabel("API key", { exact: true }).fill("0".repeat(40));
      await role(page, "button", { name: "Sign in" }).click();
      const alert = page.getByRole("alert").filter({ hasText: "invalid username or API key" });
      await visible(alert);
      assert.match(await alert.textContent(), /401/);
      assert.equal(await role(page, "button", { name: "Sign out" }).count(), 0);
      assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
      await axe("sign-in with an error");
      // The browser reports the refused request itself; that one, and only that one, is expected here.
      const seen = problems.splice(before);
      assert.deepEqual(seen, [
        "console error: Failed to load resource: the server responded with a status of 401 (Unauthorized)",
      ]);
    },
    STEP_MS,
  );

  t.step(
    "the keyboard alone signs in; the key stays in sessionStorage, out of the URL and the page",
    async () => {
      const { page } = state.browser;
      await page.goto(`${worker.base}/`);
      const username = role(page, "textbox", { name: "Username" });
      await visible(username);
      await tabTo(page, username);
      await assertFocusVisible(page);
      await page.keyboard.type(state.user.username);
      await page.keyboard.press("Tab");
      await page.keyboard.type(state.user.key);
      await page.keyboard.press("Tab");
      await assertFocusVisible(page);
      await page.keyboard.press("Enter");
      await visible(role(page, "button", { name: "Sign out" }));
      await visible(role(page, "heading", { name: "Services", level: 1 }));
      const { key } = state.user;
      const kept = await page.evaluate(() => ({
        session: JSON.stringify(Object.entries(sessionStorage)),
        local: localStorage.length,
        cookies: document.cookie,
        html: document.documentElement.outerHTML,
        url: location.href,
      }));
      assert.ok(kept.session.includes(key), "the key is in sessionStorage");
      assert.equal(kept.local, 0);
      assert.equal(kept.cookies, "");
      assert.ok(!kept.html.includes(key), "the key is not in the page");
      assert.ok(!kept.url.includes(key), "the key is not in the URL");
      const picker = role(page, "combobox", { name: "Namespace" });
      const options = await picker.locator("option").evaluateAll((os) => os.map((o) => o.value));
      assert.deepEqual(options, [state.user.username, state.org]);
    },
    STEP_MS,
  );

  t.step(
    "the services table lists the namespace's services; another namespace says what to do",
    async () => {
      const { page } = state.browser;
      const table = role(page, "table", { name: "Services" });
      await visible(table);
      const rows = table.locator("tbody tr");
      assert.equal(await rows.count(), 1);
      const first = rows.first().locator("th, td").first();
      assert.equal(await role(first, "link", { name: "web" }).count(), 1);
      assert.match(await rows.first().textContent(), /0 \/ 2/);
      await axe("services");
      await screenshots(page, "services");
      await role(page, "combobox", { name: "Namespace" }).selectOption(state.org);
      await visible(page.getByText(`No services in ${state.org} yet.`));
      await axe("services, empty");
      await role(page, "combobox", { name: "Namespace" }).selectOption(state.user.username);
      await visible(role(page, "table", { name: "Services" }));
    },
    STEP_MS,
  );

  t.step(
    "the keyboard alone creates a trigger, shown with its full URL and a curl line",
    async () => {
      const { page } = state.browser;
      await role(page, "link", { name: "web" }).click();
      await visible(role(page, "heading", { name: "web", level: 1 }));
      await visible(role(page, "button", { name: "Redeploy" }));
      await visible(role(page, "button", { name: "Scale" }));
      const triggers = role(page, "region", { name: "Triggers" });
      await visible(triggers.getByText("No triggers yet."));
      await tabTo(page, role(triggers, "button", { name: "Create trigger" }));
      await assertFocusVisible(page);
      await page.keyboard.press("Enter");
      const name = role(triggers, "textbox", { name: "Name" });
      await visible(name);
      await tabTo(page, name);
      await page.keyboard.type("ci");
      await page.keyboard.press("Tab");
      const operation = role(triggers, "combobox", { name: "Operation" });
      assert.ok(await operation.evaluate((el) => el === document.activeElement));
      assert.deepEqual(await operation.locator("option").allTextContents(), ["REDEPLOY", "SCALEUP"]);
      await tabTo(page, role(triggers, "button", { name: "Create" }));
      await page.keyboard.press("Enter");
      const item = role(triggers, "listitem").filter({ hasText: "ci" });
      await visible(item);
      const text = await item.textContent();
      const url = /(http:\/\/[^\s]+\/call\/)/.exec(text)?.[1];
      assert.ok(url?.startsWith(`${worker.base}/api/app/v1/`), `a full call URL in: ${text}`);
      assert.ok(text.includes(`curl -X POST ${url}`), "a ready-made curl line");
      assert.equal(await role(item, "button", { name: "Copy URL" }).count(), 1);
      assert.equal(await role(item, "button", { name: "Revoke" }).count(), 1);
      state.triggerUrl = url;
      await axe("service");
    },
    STEP_MS,
  );

  t.step(
    "a call to the URL shows its action on the service page, up to Success, without a reload",
    async () => {
      const { page } = state.browser;
      await page.evaluate(() => {
        window.__sameDocument = true;
      });
      const res = await fetch(state.triggerUrl, { method: "POST", body: "built abc" });
      assert.equal(res.status, 202, await res.text());
      const actions = role(page, "region", { name: "Actions" });
      const done = role(actions, "listitem").filter({ hasText: "Success" });
      await visible(done, 30_000);
      assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload happened");
      state.actionHref = await role(done, "link").first().getAttribute("href");
      await screenshots(page, "service");
    },
    STEP_MS,
  );

  t.step(
    "the action page shows its log",
    async () => {
      const { page } = state.browser;
      const actions = role(page, "region", { name: "Actions" });
      await role(actions, "listitem").filter({ hasText: "Success" }).getByRole("link").first().click();
      await visible(role(page, "heading", { name: "Service Redeploy", level: 1 }));
      const log = role(page, "region", { name: "Log" });
      await visible(role(log, "listitem").first());
      assert.ok((await role(log, "listitem").count()) >= 1);
      await visible(role(page, "button", { name: "Retry" }));
      assert.equal(await role(page, "button", { name: "Cancel" }).count(), 0, "a finished action cannot be canceled");
      await axe("action");
      await screenshots(page, "action");
    },
    STEP_MS,
  );

  t.step(
    "the Actions page lists it, with its state",
    async () => {
      const { page } = state.browser;
      await role(page, "link", { name: "Actions" }).click();
      await visible(role(page, "heading", { name: "Actions", level: 1 }));
      await visible(role(page, "listitem").filter({ hasText: "Success" }).first());
      await axe("actions");
      await screenshots(page, "actions");
    },
    STEP_MS,
  );

  t.step(
    "revoking the trigger through the dialog removes it at once; its URL answers 404",
    async () => {
      const { page } = state.browser;
      await page.goto(`${worker.base}/#/services/${state.service.uuid}`);
      const triggers = role(page, "region", { name: "Triggers" });
      const item = role(triggers, "listitem").filter({ hasText: "ci" });
      await visible(item);
      await role(item, "button", { name: "Revoke" }).click();
      const dialog = page.getByRole("dialog");
      await visible(dialog);
      assert.equal(await role(dialog, "button", { name: "Cancel" }).count(), 1);
      await axe("service, confirmation dialog");
      await role(dialog, "button", { name: "Confirm" }).click();
      await item.waitFor({ state: "detached", timeout: 10_000 });
      const res = await fetch(state.triggerUrl, { method: "POST" });
      assert.equal(res.status, 404);
    },
    STEP_MS,
  );

  t.step(
    "an agent's token is shown once, with its command, and gone after a reload",
    async () => {
      const { page } = state.browser;
      await role(page, "link", { name: "Agents" }).click();
      await visible(role(page, "heading", { name: "Agents", level: 1 }));
      await visible(page.getByText("No agents yet."));
      await role(page, "button", { name: "Create agent" }).click();
      await role(page, "textbox", { name: "Name" }).fill("manager-1");
      await role(page, "button", { name: "Create" }).click();
      const token = role(page, "region", { name: "Token" });
      await visible(token);
      const shown = /dca_[a-z0-9]+_[0-9a-f]{40}/.exec(await token.textContent())?.[0];
      assert.ok(shown, "the token is shown");
      assert.ok(
        (await token.textContent()).includes(`DOCKERCLOUD_AGENT_TOKEN=${shown} npm run agent -- --url ${worker.base}`),
      );
      assert.equal(await role(token, "button", { name: "Copy token" }).count(), 1);
      const agent = role(page, "listitem").filter({ hasText: "manager-1" });
      await visible(agent);
      assert.match(await agent.textContent(), /Disconnected/);
      await axe("agents");
      await screenshots(page, "agents");
      await page.reload();
      await visible(role(page, "heading", { name: "Agents", level: 1 }));
      await visible(role(page, "listitem").filter({ hasText: "manager-1" }));
      assert.equal(await role(page, "region", { name: "Token" }).count(), 0);
      assert.ok(!(await page.content()).includes(shown), "the token is gone");
      await role(role(page, "listitem").filter({ hasText: "manager-1" }), "button", { name: "Delete" }).click();
      await role(page.getByRole("dialog"), "button", { name: "Confirm" }).click();
      await visible(page.getByText("No agents yet."));
    },
    STEP_MS,
  );

  t.step(
    "signing out forgets the key",
    async () => {
      const { page } = state.browser;
      await role(page, "button", { name: "Sign out" }).click();
      await visible(role(page, "heading", { name: "Sign in", level: 1 }));
      assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    },
    STEP_MS,
  );

  t.step(
    "no page printed an error or met a Content-Security-Policy violation",
    async () => {
      assert.deepEqual(state.browser.problems, []);
    },
    STEP_MS,
  );

  t.step(
    "the key was in no URL; the streams were opened with tickets, which no log line holds",
    async () => {
      const { urls } = state.browser;
      assert.deepEqual(
        urls.filter((u) => u.includes(state.user.key)),
        [],
      );
      const streams = urls.filter((u) => u.startsWith("ws://"));
      assert.ok(streams.length >= 2, "the events stream and an action's log");
      const tickets = streams.map((u) => new URL(u).searchParams.get("ticket"));
      assert.ok(
        tickets.every((x) => /^dst_[0-9a-f]{66}$/.test(x ?? "")),
        `tickets: ${tickets}`,
      );
      const log = worker.output.join("\n");
      assert.ok(!log.includes(state.user.key), "the key is in no line of the Worker's output");
      for (const ticket of tickets) assert.ok(!log.includes(ticket), "no ticket is in the Worker's output");
    },
    STEP_MS,
  );
});
