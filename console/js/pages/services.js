// The namespace's services: a table that follows the events stream (any change to a service
// reloads the list, without reloading the page).

import { api, paths } from "../api.js";
import { fill, h } from "../dom.js";
import { debounce, live } from "../live.js";
import { badge, emptyState, errorSlot, heading, imageParts, loading, when } from "../ui.js";

const COLUMNS = ["Name", "State", "Running / target", "Image", "Agent", "Last update"];

/** A data cell that names its column (shown beside it when the table is stacked on a narrow screen). */
const cell = (column, attrs, ...children) =>
  h("td", { role: "cell", "data-label": COLUMNS[column], ...attrs }, ...children);

function row(service) {
  const image = imageParts(service);
  return h(
    "tr",
    { role: "row" },
    h("th", { scope: "row", role: "rowheader" }, h("a", { href: `#/services/${service.uuid}` }, service.name)),
    cell(1, {}, badge(service.state)),
    cell(2, { class: "num" }, `${service.running_num_containers} / ${service.target_num_containers}`),
    cell(
      3,
      { class: "image" },
      h("span", {}, `${image.name}:${image.tag}`),
      image.digest ? h("code", { class: "digest", title: image.digest }, image.digest.slice(0, 19)) : null,
    ),
    cell(4, {}, service.target?.type === "agent" ? service.target.agent : "—"),
    cell(5, {}, when(service.synchronized_at ?? service.deployed_datetime ?? service.started_datetime)),
  );
}

/**
 * The table. Its roles are said outright: on a narrow screen its rows are stacked as blocks
 * (style.css), and the roles keep it a table for assistive technology all the same.
 */
function table(services) {
  return h(
    "table",
    { role: "table", "aria-label": "Services", class: "stacking" },
    h("caption", { class: "visually-hidden" }, "Services"),
    h(
      "thead",
      { role: "rowgroup" },
      h(
        "tr",
        { role: "row" },
        COLUMNS.map((c) => h("th", { scope: "col", role: "columnheader" }, c)),
      ),
    ),
    h("tbody", { role: "rowgroup" }, services.map(row)),
  );
}

function empty(ns) {
  return emptyState(
    `No services in ${ns} yet.`,
    "Connect an agent (see Agents) to bring in the services of a swarm or a Docker host, or create one with the API: " +
      `curl -u <user>:<key> -H 'Content-Type: application/json' -X POST ${location.origin}${paths.services(ns)} -d '{"image":"nginx:1.27"}'`,
  );
}

export function servicesPage({ ns }) {
  const errors = errorSlot();
  const body = h("div", {}, loading("services"));
  const count = h("p", { class: "muted", role: "status" });
  const load = async () => {
    try {
      const list = await api("GET", `${paths.services(ns)}?limit=100`);
      errors.show(null);
      fill(body, list.objects.length ? table(list.objects) : empty(ns));
      count.textContent = list.objects.length ? `${list.meta.total_count} service(s)` : "";
    } catch (err) {
      errors.show(err);
      fill(body);
    }
  };
  const reload = debounce(load, 200);
  const stop = live.on((event) => event.type === "service" && reload());
  load();
  const el = h("div", {}, heading("Services"), count, errors, body);
  return {
    el,
    dispose: () => {
      stop();
      reload.cancel();
    },
  };
}
