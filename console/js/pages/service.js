// A service: its figures, redeploy and scale (each confirmed), its triggers and its recent
// actions, kept current by the events stream.

import { api, paths } from "../api.js";
import { fill, h } from "../dom.js";
import { debounce, live } from "../live.js";
import { badge, busy, confirmDialog, errorSlot, heading, imageParts, loading, targetText, when } from "../ui.js";
import { serviceActions } from "./service-actions.js";
import { serviceTriggers } from "./service-triggers.js";

function figures(service) {
  const image = imageParts(service);
  const rows = [
    ["State", badge(service.state)],
    ["Running / target", `${service.running_num_containers} / ${service.target_num_containers}`],
    ["Most containers", String(service.max_num_containers)],
    ["Image", `${image.name}:${image.tag}`],
    ["Digest", image.digest ? h("code", {}, image.digest) : "—"],
    ["Target", targetText(service.target)],
    ["Stack", service.stack ?? "—"],
    ["Deployed", when(service.deployed_datetime)],
    ["Confirmed by its agent", when(service.synchronized_at)],
  ];
  return h(
    "dl",
    { class: "figures" },
    rows.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]),
  );
}

/** Redeploy and Scale, each confirmed; the action they start shows in the Actions list below. */
function operations(ns, service, done) {
  const errors = errorSlot();
  const said = h("p", { class: "muted", role: "status" });
  const redeploy = h("button", { type: "button", class: "primary" }, "Redeploy");
  const count = h("input", {
    id: "scale-count",
    type: "number",
    min: "0",
    max: String(service.max_num_containers),
    value: String(service.target_num_containers),
    inputmode: "numeric",
  });
  const scale = h("button", { type: "button" }, "Scale");
  redeploy.addEventListener("click", async () => {
    if (!(await confirmDialog(`Redeploy ${service.name}?`, "Its containers are replaced, one at a time."))) return;
    const started = await busy(redeploy, errors, () => api("POST", `${paths.service(ns, service.uuid)}redeploy/`));
    if (!started) return;
    said.textContent = "Redeploy started: see Actions below.";
    done();
  });
  scale.addEventListener("click", async () => {
    const n = Number(count.value);
    const question = `Scale ${service.name} to ${count.value} container(s)?`;
    if (!(await confirmDialog(question, `It runs ${service.running_num_containers} now.`))) return;
    const started = await busy(scale, errors, async () => {
      await api("PATCH", paths.service(ns, service.uuid), { body: { target_num_containers: n } });
      return api("POST", `${paths.service(ns, service.uuid)}scale/`);
    });
    if (!started) return;
    said.textContent = `Scaling to ${n} started: see Actions below.`;
    done();
  });
  return h(
    "div",
    { class: "operations" },
    h("div", { class: "buttons" }, redeploy),
    h("div", { class: "buttons" }, h("label", { for: "scale-count" }, "Target containers"), count, scale),
    errors,
    said,
  );
}

export function servicePage({ ns, params: [uuid] }) {
  const errors = errorSlot();
  const title = heading("Service");
  const top = h("div", {}, loading("the service"));
  const triggers = serviceTriggers(ns, uuid);
  const actions = serviceActions(ns, uuid);
  let shown = false;
  const load = async () => {
    try {
      const service = await api("GET", paths.service(ns, uuid));
      errors.show(null);
      title.textContent = service.name;
      document.title = `${service.name} · Triggers console`;
      // The figures follow the stream; the controls are built once, so focus and a typed count stay.
      if (!shown) fill(top, h("div", { class: "figures-slot" }), operations(ns, service, actions.reload));
      fill(top.firstChild, figures(service));
      shown = true;
    } catch (err) {
      errors.show(err);
      if (!shown) fill(top);
    }
  };
  const reload = debounce(load, 200);
  const stop = live.on((event) => {
    if (event.type === "service" && event.uuid === uuid) reload();
  });
  load();
  const el = h("div", {}, title, errors, top, triggers.el, actions.el);
  const dispose = () => {
    stop();
    reload.cancel();
    triggers.dispose();
    actions.dispose();
    document.title = "Triggers console";
  };
  return { el, dispose };
}
