// The console's entry: the frame (navigation, namespace, sign out), the router (#/services,
// #/services/<uuid>, #/actions, #/actions/<uuid>, #/agents) and the sign-in page.

import { ApiError, api, paths } from "./api.js";
import { fill, h } from "./dom.js";
import { live } from "./live.js";
import { actionPage } from "./pages/action.js";
import { actionsPage } from "./pages/actions.js";
import { agentsPage } from "./pages/agents.js";
import { servicePage } from "./pages/service.js";
import { servicesPage } from "./pages/services.js";
import { signInPage } from "./pages/signin.js";
import { session } from "./session.js";

const root = document.getElementById("app");
const state = { namespaces: [], dispose: null, main: null, nav: null, status: null };

const ROUTES = [
  { pattern: /^\/services\/([^/]+)$/, page: servicePage, section: "services" },
  { pattern: /^\/actions\/([^/]+)$/, page: actionPage, section: "actions" },
  { pattern: /^\/services$/, page: servicesPage, section: "services" },
  { pattern: /^\/actions$/, page: actionsPage, section: "actions" },
  { pattern: /^\/agents$/, page: agentsPage, section: "agents" },
];

function route() {
  const path = decodeURIComponent(location.hash.replace(/^#/, "")) || "/services";
  for (const r of ROUTES) {
    const match = r.pattern.exec(path);
    if (match) return { ...r, params: match.slice(1) };
  }
  return { ...ROUTES[2], params: [] };
}

function namespacePicker() {
  const current = session.namespace();
  const select = h(
    "select",
    { id: "namespace", onchange: (e) => switchNamespace(e.target.value) },
    state.namespaces.map((ns) =>
      h("option", { value: ns.name, selected: ns.name === current }, ns.kind === "user" ? `${ns.name} (you)` : ns.name),
    ),
  );
  return h("div", { class: "picker" }, h("label", { for: "namespace" }, "Namespace"), select);
}

function frame() {
  const who = session.get();
  state.nav = h(
    "nav",
    { "aria-label": "Main" },
    h(
      "ul",
      {},
      ["Services", "Agents", "Actions"].map((name) => h("li", {}, h("a", { href: `#/${name.toLowerCase()}` }, name))),
    ),
  );
  state.status = h("p", { class: "live-status", role: "status" });
  state.main = h("main", { id: "main" });
  const signOut = h("button", { type: "button", onclick: signOutNow }, "Sign out");
  const header = h(
    "header",
    { class: "top" },
    h("a", { class: "brand", href: "#/services" }, "Triggers console"),
    state.nav,
    h("div", { class: "account" }, namespacePicker(), h("span", { class: "who" }, who.username), signOut),
  );
  fill(root, header, state.main, h("footer", {}, state.status));
}

function showLiveStatus(status, detail) {
  if (!state.status) return;
  const words = {
    live: "Live updates on",
    connecting: "Connecting to live updates…",
    off: "",
    down: "Live updates interrupted",
  };
  state.status.textContent = [words[status], detail].filter(Boolean).join(": ");
  state.status.dataset.state = status;
}

function render({ focus = true } = {}) {
  state.dispose?.();
  state.dispose = null;
  const r = route();
  for (const a of state.nav.querySelectorAll("a")) {
    if (a.getAttribute("href") === `#/${r.section}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const page = r.page({ ns: session.namespace(), params: r.params, navigate });
  fill(state.main, page.el);
  state.dispose = page.dispose ?? null;
  if (focus) state.main.querySelector("h1")?.focus();
}

function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function switchNamespace(ns) {
  session.setNamespace(ns);
  live.start(ns);
  // A service or an action belongs to one namespace: go to the list of the new one.
  const section = route().section;
  navigate(`#/${section}`);
}

function signOutNow() {
  state.dispose?.();
  state.dispose = null;
  live.stop();
  session.signOut();
  state.namespaces = [];
  state.main = null;
  showSignIn();
}

function showSignIn(error) {
  const page = signInPage({ onSignedIn: signedIn, error });
  fill(root, page.el);
  page.el.querySelector("input")?.focus();
}

function signedIn(namespaces) {
  state.namespaces = namespaces;
  const ns = session.namespace();
  if (!namespaces.some((n) => n.name === ns)) session.setNamespace(namespaces[0]?.name ?? "");
  frame();
  live.start(session.namespace());
  render();
}

async function boot() {
  window.addEventListener("hashchange", () => state.main && render());
  live.onStatus(showLiveStatus);
  const who = session.get();
  if (!who) return showSignIn();
  try {
    const list = await api("GET", paths.namespaces());
    signedIn(list.objects);
  } catch (err) {
    // A key revoked since: sign in again. Anything else: say it, keep the session.
    if (err instanceof ApiError && err.status === 401) session.signOut();
    showSignIn(err);
  }
}

boot();
