// An action: its figures, Cancel and Retry where the API allows them (each confirmed), and its
// log, followed live while it runs (the logs stream with follow=true).

import { api, openStream, paths } from "../api.js";
import { fill, h } from "../dom.js";
import { debounce, live } from "../live.js";
import { badge, busy, confirmDialog, errorSlot, heading, loading, when } from "../ui.js";

const FINISHED = ["Success", "Failed", "Canceled"];

function figures(action, serviceName) {
  const rows = [
    ["State", badge(action.state)],
    ["Service", h("a", { href: `#/services/${action.object.split("/").at(-2)}` }, serviceName || "the service")],
    ["Started", when(action.start_date)],
    ["Ended", when(action.end_date)],
    ["Started by", action.trigger ? "a trigger call" : (action.user ?? "—")],
    ["Repeats", action.retry_of ? h("a", { href: `#/actions/${action.retry_of}` }, "an earlier action") : "—"],
  ];
  return h(
    "dl",
    { class: "figures" },
    rows.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]),
  );
}

function controls(ns, action, { onChanged, navigate }) {
  const errors = errorSlot();
  const buttons = h("div", { class: "buttons" });
  if (action.can_be_canceled) {
    const cancel = h("button", { type: "button", class: "danger" }, "Cancel");
    cancel.addEventListener("click", async () => {
      if (!(await confirmDialog("Cancel this action?", "It has not started; it will not run."))) return;
      if (await busy(cancel, errors, () => api("POST", `${paths.action(ns, action.uuid)}cancel/`))) onChanged();
    });
    buttons.append(cancel);
  }
  if (action.can_be_retried) {
    const retry = h("button", { type: "button" }, "Retry");
    retry.addEventListener("click", async () => {
      if (!(await confirmDialog("Retry this action?", "The same operation runs again, as a new action."))) return;
      const again = await busy(retry, errors, () => api("POST", `${paths.action(ns, action.uuid)}retry/`));
      if (again) navigate(`#/actions/${again.uuid}`);
    });
    buttons.append(retry);
  }
  return h("div", { class: "operations" }, buttons, errors);
}

/** The log: its lines so far, then, while the action runs, each new line as it is written. */
function logPanel(ns, uuid) {
  const errors = errorSlot();
  const list = h("ul", { class: "log", tabindex: "0", "aria-live": "polite", "aria-relevant": "additions" });
  const body = h("div", {}, loading("the log"));
  let socket = null;
  const add = (line) => {
    const at = line.timestamp ? new Date(line.timestamp * 1000).toLocaleTimeString() : "";
    list.append(h("li", {}, h("span", { class: "at" }, at), " ", line.log));
  };
  const empty = () => list.children.length === 0 && fill(body, h("p", { class: "muted" }, "No log lines yet."));
  const show = async (follow) => {
    socket?.close();
    socket = null;
    try {
      if (!follow) {
        const lines = await api("GET", `${paths.logs(ns, uuid)}?tail=1000`);
        fill(list);
        for (const line of lines.objects) add(line);
        fill(body, list);
        return empty();
      }
      fill(list);
      fill(body, list);
      socket = await openStream(ns, paths.logs(ns, uuid), { follow: "true", tail: "1000" });
      socket.addEventListener("message", (m) => add(JSON.parse(m.data)));
      socket.addEventListener("close", () => empty());
    } catch (err) {
      errors.show(err);
    }
  };
  const el = h(
    "section",
    { class: "panel", "aria-labelledby": "log-title" },
    h("h2", { id: "log-title" }, "Log"),
    errors,
    body,
  );
  return { el, show, stop: () => socket?.close() };
}

export function actionPage({ ns, params: [uuid], navigate }) {
  const errors = errorSlot();
  const title = heading("Action");
  const top = h("div", {}, loading("the action"));
  const log = logPanel(ns, uuid);
  let following = null;
  const load = async () => {
    try {
      const action = await api("GET", paths.action(ns, uuid));
      const service = await api("GET", action.object).catch(() => null);
      errors.show(null);
      title.textContent = action.action;
      fill(top, figures(action, service?.name), controls(ns, action, { onChanged: reload, navigate }));
      const follow = !FINISHED.includes(action.state);
      // Once: followed while it runs; read once more when it finishes (the stream has closed).
      if (following !== follow) log.show(follow);
      following = follow;
    } catch (err) {
      errors.show(err);
      fill(top);
    }
  };
  const reload = debounce(load, 150);
  const stop = live.on((event) => event.type === "action" && event.uuid === uuid && reload());
  load();
  const el = h("div", {}, title, errors, top, log.el);
  return {
    el,
    dispose: () => {
      stop();
      reload.cancel();
      log.stop();
    },
  };
}
