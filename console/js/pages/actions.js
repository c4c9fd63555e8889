// The namespace's actions, newest first, following the events stream.

import { h } from "../dom.js";
import { heading } from "../ui.js";
import { actionList } from "./action-list.js";

export function actionsPage({ ns }) {
  const list = actionList(ns, {
    limit: 50,
    empty: "No actions yet. They appear here when a trigger is called, or a service is redeployed or scaled.",
  });
  const el = h("div", {}, heading("Actions"), h("p", { class: "muted" }, "The last 50, newest first."), list.el);
  return { el, dispose: list.dispose };
}
