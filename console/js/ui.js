// The console's shared pieces: confirmation dialogs, buttons that show their work is running,
// errors shown next to what caused them, copy buttons, and the figures' formats.

import { fill, h, uid } from "./dom.js";

/**
 * Asks before doing something: a modal <dialog> with `Confirm` and `Cancel` (Escape cancels).
 * Resolves true when confirmed; focus goes back to where it was.
 */
export function confirmDialog(title, message) {
  const back = document.activeElement;
  const titleId = uid("dialog-title");
  const textId = uid("dialog-text");
  return new Promise((resolve) => {
    const finish = (answer) => {
      dialog.close();
      dialog.remove();
      if (back instanceof HTMLElement) back.focus();
      resolve(answer);
    };
    const confirm = h("button", { type: "button", class: "primary", onclick: () => finish(true) }, "Confirm");
    const cancel = h("button", { type: "button", onclick: () => finish(false) }, "Cancel");
    const dialog = h(
      "dialog",
      {
        "aria-labelledby": titleId,
        "aria-describedby": textId,
        oncancel: (e) => {
          e.preventDefault();
          finish(false);
        },
      },
      h("h2", { id: titleId }, title),
      h("p", { id: textId }, message),
      h("div", { class: "buttons" }, confirm, cancel),
    );
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** Where an error of the API shows, next to what caused it; `show(null)` clears it. */
export function errorSlot() {
  const el = h("p", { class: "error", role: "alert", hidden: true });
  el.show = (err) => {
    if (!err) {
      el.hidden = true;
      el.textContent = "";
      return;
    }
    el.hidden = false;
    fill(el, h("strong", {}, err.status ? `The API answered ${err.status}: ` : "Error: "), err.message);
  };
  return el;
}

/**
 * Runs `work` while `button` says it is running (aria-busy, a spinner, further presses ignored);
 * a refusal goes to `errors`. Returns whatever `work` returned, or undefined after an error.
 */
export async function busy(button, errors, work) {
  if (button.getAttribute("aria-busy") === "true") return undefined;
  errors?.show(null);
  button.setAttribute("aria-busy", "true");
  button.setAttribute("aria-disabled", "true");
  try {
    return await work();
  } catch (err) {
    if (errors) errors.show(err);
    else throw err;
    return undefined;
  } finally {
    button.removeAttribute("aria-busy");
    button.removeAttribute("aria-disabled");
  }
}

/** A button that copies `text()` and says so (`Copied`) in a live region beside it. */
export function copyButton(label, text) {
  const said = h("span", { class: "copied", role: "status" });
  const button = h("button", { type: "button", class: "small" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text());
      said.textContent = "Copied";
    } catch {
      said.textContent = "Copy refused by the browser: select the text instead";
    }
    setTimeout(() => {
      said.textContent = "";
    }, 4000);
  });
  return [button, said];
}

/** A status as text in a badge; the colour only repeats what the word says. */
export function badge(state) {
  const kind = String(state ?? "")
    .toLowerCase()
    .replace(/[^a-z]+/g, "-");
  return h("span", { class: `badge state-${kind}` }, state || "—");
}

/** A date of the API (RFC 1123) as local time, in a <time>. */
export function when(text) {
  if (!text) return h("span", { class: "muted" }, "—");
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return text;
  return h("time", { datetime: date.toISOString(), title: text }, date.toLocaleString());
}

/** Image name, tag and digest of `nginx:1.27@sha256:...` (the tag may also come on its own). */
export function imageParts(service) {
  const full = service.image_name ?? "";
  const [named, digest = ""] = full.split("@");
  const slash = named.lastIndexOf("/");
  const colon = named.lastIndexOf(":");
  const tagged = colon > slash;
  return {
    name: tagged ? named.slice(0, colon) : named,
    tag: service.image_tag || (tagged ? named.slice(colon + 1) : "latest"),
    digest,
  };
}

/** Where a service's operations go, in a few words. */
export function targetText(target) {
  if (!target) return "none";
  if (target.type === "agent") return `agent ${target.agent ?? ""}`.trim();
  if (target.type === "webhook") return "webhook";
  return target.type ?? "—";
}

/** A page's level-1 heading, focusable so that moving to a page moves the focus there. */
export const heading = (text) => h("h1", { tabindex: "-1" }, text);

/**
 * A button that opens a form in its place: the form's first field gets the focus, and closing
 * the form gives it back to the button. Returns `toggle(show)`.
 */
export function formOpener(open, form, first) {
  const toggle = (show) => {
    form.hidden = !show;
    open.hidden = show;
    open.setAttribute("aria-expanded", String(show));
    (show ? first : open).focus();
  };
  open.addEventListener("click", () => toggle(true));
  return toggle;
}

/** What to do when a list is empty. */
export const emptyState = (...lines) => h("div", { class: "empty" }, ...lines.map((l) => h("p", {}, l)));

/** A loading line while the first answer is awaited. */
export const loading = (what) =>
  h("p", { class: "muted", role: "status" }, h("span", { class: "spinner" }), ` Loading ${what}…`);
