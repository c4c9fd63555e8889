// A service's recent actions, in a region named Actions.

import { paths } from "../api.js";
import { h } from "../dom.js";
import { actionList } from "./action-list.js";

export function serviceActions(ns, service) {
  const list = actionList(ns, {
    serviceUri: paths.service(ns, service),
    limit: 10,
    empty: "No actions yet. Redeploy or scale above, or call one of its triggers.",
  });
  const el = h(
    "section",
    { class: "panel", "aria-labelledby": "service-actions-title" },
    h("h2", { id: "service-actions-title" }, "Actions"),
    list.el,
  );
  return { el, reload: list.reload, dispose: list.dispose };
}
