// The namespace's agents: connected or not and when last seen, following the events stream;
// create (the token shown once, with the command that starts the agent) and delete (confirmed).

import { api, paths } from "../api.js";
import { fill, h } from "../dom.js";
import { debounce, live } from "../live.js";
import {
  badge,
  busy,
  confirmDialog,
  copyButton,
  emptyState,
  errorSlot,
  formOpener,
  heading,
  loading,
  when,
} from "../ui.js";

function item(ns, agent, onDeleted) {
  const errors = errorSlot();
  const remove = h("button", { type: "button", class: "danger small" }, "Delete");
  remove.addEventListener("click", async () => {
    const why = "Its connection closes at once and its token stops working; services it runs keep their triggers.";
    if (!(await confirmDialog(`Delete the agent ${agent.name}?`, why))) return;
    if (await busy(remove, errors, () => api("DELETE", paths.agent(ns, agent.uuid)))) onDeleted(agent);
  });
  const about = [agent.orchestrator, agent.engine_version, agent.agent_version && `agent ${agent.agent_version}`];
  return h(
    "li",
    { class: "agent", "data-uuid": agent.uuid },
    h("p", { class: "title" }, h("strong", {}, agent.name), " ", badge(agent.state)),
    h(
      "p",
      { class: "muted" },
      "Last seen ",
      when(agent.last_seen),
      about.some(Boolean) ? ` · ${about.filter(Boolean).join(", ")}` : "",
    ),
    h("div", { class: "buttons" }, remove),
    errors,
  );
}

/** The new agent's token, shown once (only in this page's memory), with the command that uses it. */
function tokenPanel(agent) {
  const command = `DOCKERCLOUD_AGENT_TOKEN=${agent.token} npm run agent -- --url ${location.origin} --allow-label deploy=auto`;
  return h(
    "section",
    { class: "panel token", "aria-labelledby": "token-title" },
    h("h2", { id: "token-title", tabindex: "-1" }, "Token"),
    h("p", {}, `The token of ${agent.name}, shown this once: keep it now. Whoever holds it is the agent.`),
    h(
      "p",
      { class: "code-line" },
      h("code", {}, agent.token),
      " ",
      copyButton("Copy token", () => agent.token),
    ),
    h("p", {}, "Start the agent next to your swarm manager or Docker host (from a checkout of this project):"),
    h(
      "p",
      { class: "code-line" },
      h("code", {}, command),
      " ",
      copyButton("Copy command", () => command),
    ),
  );
}

function createForm(ns, onCreated) {
  const errors = errorSlot();
  const open = h("button", { type: "button", "aria-expanded": "false" }, "Create agent");
  const name = h("input", { id: "agent-name", maxlength: "100", autocomplete: "off", required: true });
  const create = h("button", { type: "submit", class: "primary" }, "Create");
  const close = h("button", { type: "button" }, "Close");
  const form = h(
    "form",
    { class: "card", hidden: true, "aria-label": "New agent", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "agent-name" }, "Name"), name),
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
    const made = await busy(create, errors, () => api("POST", paths.agents(ns), { body: { name: name.value.trim() } }));
    if (!made) return;
    name.value = "";
    toggle(false);
    onCreated(made);
  });
  return h("div", {}, open, form);
}

export function agentsPage({ ns }) {
  const errors = errorSlot();
  const token = h("div", {});
  const list = h("div", {}, loading("agents"));
  const load = async () => {
    try {
      const agents = (await api("GET", `${paths.agents(ns)}?limit=100`)).objects;
      errors.show(null);
      const none = emptyState(
        "No agents yet. Create one, then start it next to your swarm or Docker host with the command shown.",
      );
      fill(
        list,
        agents.length
          ? h(
              "ul",
              { class: "items" },
              agents.map((a) => item(ns, a, gone)),
            )
          : none,
      );
    } catch (err) {
      errors.show(err);
    }
  };
  const gone = (agent) => {
    list.querySelector(`[data-uuid="${agent.uuid}"]`)?.remove();
    load();
    el.querySelector("h1")?.focus();
  };
  const created = (agent) => {
    fill(token, tokenPanel(agent));
    token.querySelector("h2")?.focus();
    load();
  };
  const reload = debounce(load, 200);
  const stop = live.on((event) => event.type === "agent" && reload());
  load();
  const el = h("div", {}, heading("Agents"), createForm(ns, created), token, errors, list);
  return {
    el,
    dispose: () => {
      stop();
      reload.cancel();
    },
  };
}
