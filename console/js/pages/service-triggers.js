// A service's triggers: each with its full call URL, a copy button and a ready-made curl line;
// create (name, operation) and revoke (confirmed; gone from the list at once).

import { api, paths } from "../api.js";
import { fill, h } from "../dom.js";
import { debounce, live } from "../live.js";
import { busy, confirmDialog, copyButton, emptyState, errorSlot, formOpener, loading } from "../ui.js";

const callUrl = (trigger) => new URL(trigger.url, location.origin).href;

const curlLine = (trigger) => `curl -X POST ${callUrl(trigger)}`;

function item(trigger, onRevoke) {
  const errors = errorSlot();
  const revoke = h("button", { type: "button", class: "danger small" }, "Revoke");
  revoke.addEventListener("click", async () => {
    const question = `Revoke the trigger ${trigger.name}?`;
    const why = "Its URL stops working at once; whoever calls it gets a 404.";
    if (!(await confirmDialog(question, why))) return;
    const gone = await busy(revoke, errors, () => api("DELETE", trigger.resource_uri));
    if (gone) onRevoke(trigger);
  });
  return h(
    "li",
    { class: "trigger" },
    h(
      "p",
      { class: "title" },
      h("strong", {}, trigger.name || "(no name)"),
      " ",
      h("span", { class: "badge" }, trigger.operation),
    ),
    h(
      "p",
      { class: "code-line" },
      h("code", {}, callUrl(trigger)),
      " ",
      copyButton("Copy URL", () => callUrl(trigger)),
    ),
    h(
      "p",
      { class: "code-line" },
      h("code", {}, curlLine(trigger)),
      " ",
      copyButton("Copy curl line", () => curlLine(trigger)),
    ),
    trigger.operation === "SCALEUP"
      ? h("p", { class: "muted" }, "Adds one container per call; POST to <url>N/ to add N.")
      : null,
    h("div", { class: "buttons" }, revoke),
    errors,
  );
}

function createForm(ns, service, onCreated) {
  const errors = errorSlot();
  const open = h("button", { type: "button", "aria-expanded": "false" }, "Create trigger");
  const name = h("input", { id: "trigger-name", maxlength: "255", autocomplete: "off" });
  const operation = h(
    "select",
    { id: "trigger-operation" },
    h("option", { value: "REDEPLOY" }, "REDEPLOY"),
    h("option", { value: "SCALEUP" }, "SCALEUP"),
  );
  const create = h("button", { type: "submit", class: "primary" }, "Create");
  const close = h("button", { type: "button" }, "Close");
  const form = h(
    "form",
    { class: "card", hidden: true, "aria-label": "New trigger" },
    h("div", { class: "field" }, h("label", { for: "trigger-name" }, "Name"), name),
    h("div", { class: "field" }, h("label", { for: "trigger-operation" }, "Operation"), operation),
    errors,
    h("div", { class: "buttons" }, create, close),
  );
  const toggle = formOpener(open, form, name);
  close.addEventListener("click", () => {
    errors.show(null);
    toggle(false);
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: name.value, operation: operation.value };
    const made = await busy(create, errors, () => api("POST", paths.triggers(ns, service), { body }));
    if (!made) return;
    name.value = "";
    toggle(false);
    onCreated(made);
  });
  return h("div", {}, open, form);
}

const NONE =
  "No triggers yet. Create one: its URL redeploys or scales up this service when anything POSTs to it, with no credentials.";

/** The list as last read, changed at once by what this page does (a revoked trigger goes now). */
function triggerList(onEmptied) {
  const el = h("div", {}, loading("triggers"));
  let triggers = [];
  const show = () =>
    fill(
      el,
      triggers.length
        ? h(
            "ul",
            { class: "items" },
            triggers.map((t) => item(t, remove)),
          )
        : emptyState(NONE),
    );
  const remove = (gone) => {
    triggers = triggers.filter((t) => t.uuid !== gone.uuid);
    show();
    onEmptied();
  };
  return {
    el,
    set(list) {
      triggers = list;
      show();
    },
    add(t) {
      triggers = [t, ...triggers.filter((x) => x.uuid !== t.uuid)];
      show();
    },
  };
}

export function serviceTriggers(ns, service) {
  const errors = errorSlot();
  const title = h("h2", { id: "triggers-title", tabindex: "-1" }, "Triggers");
  const list = triggerList(() => title.focus());
  const load = async () => {
    try {
      list.set((await api("GET", `${paths.triggers(ns, service)}?limit=100`)).objects);
      errors.show(null);
    } catch (err) {
      errors.show(err);
    }
  };
  const reload = debounce(load, 200);
  const ours = (event) => event.type === "trigger" && event.parents?.some((p) => p.includes(service));
  const stop = live.on((event) => ours(event) && reload());
  load();
  const el = h(
    "section",
    { class: "panel", "aria-labelledby": "triggers-title" },
    title,
    createForm(ns, service, (t) => list.add(t)),
    errors,
    list.el,
  );
  const dispose = () => {
    stop();
    reload.cancel();
  };
  return { el, dispose };
}
