// Signing in: the username and API key are checked against the API (the namespaces they may act
// in) before the console says signed in; only then are they kept, in sessionStorage.

import { api, paths } from "../api.js";
import { h } from "../dom.js";
import { session } from "../session.js";
import { busy, errorSlot } from "../ui.js";

export function signInPage({ onSignedIn, error }) {
  const errors = errorSlot();
  const username = h("input", {
    id: "username",
    name: "username",
    autocomplete: "username",
    autocapitalize: "none",
    spellcheck: "false",
    required: true,
  });
  const apikey = h("input", { id: "apikey", name: "apikey", type: "password", autocomplete: "off", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "username" }, "Username"), username),
    h("div", { class: "field" }, h("label", { for: "apikey" }, "API key"), apikey),
    errors,
    h("div", { class: "buttons" }, submit),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const creds = { username: username.value.trim(), apikey: apikey.value.trim() };
    if (!creds.username || !creds.apikey) {
      errors.show({ message: "enter your username and one of your API keys" });
      (creds.username ? apikey : username).focus();
      return;
    }
    const list = await busy(submit, errors, () => api("GET", paths.namespaces(), { creds }));
    if (!list) return;
    session.signIn(creds.username, creds.apikey, list.objects[0]?.name ?? creds.username);
    onSignedIn(list.objects);
  });
  if (error) errors.show(error);
  const el = h(
    "main",
    { id: "main", class: "narrow" },
    h("h1", { id: "signin-title", tabindex: "-1" }, "Sign in"),
    h(
      "p",
      {},
      "Sign in with your Docker Cloud username and an API key. The key stays in this tab only, and is forgotten when you sign out or close it.",
    ),
    form,
  );
  return { el };
}
