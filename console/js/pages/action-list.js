// A list of actions (the Actions page, and a service's recent ones): each a link to the action
// and its state as text, kept current by the events stream.

import { api, paths } from "../api.js";
import { fill, h } from "../dom.js";
import { debounce, live } from "../live.js";
import { badge, emptyState, errorSlot, loading, when } from "../ui.js";

function item(action, showService) {
  return h(
    "li",
    { class: "action" },
    h("a", { href: `#/actions/${action.uuid}` }, `${action.action} `, when(action.start_date)),
    " ",
    badge(action.state),
    showService ? h("span", { class: "muted" }, ` ${serviceName(action.object)}`) : null,
    action.trigger
      ? h("span", { class: "muted" }, " by a trigger")
      : action.user
        ? h("span", { class: "muted" }, ` by ${action.user}`)
        : null,
  );
}

const names = new Map();
const serviceName = (uri) => names.get(uri) ?? "";

/** Finds the names of the services the actions are about, once each (the list shows them). */
async function learnNames(actions) {
  const missing = [...new Set(actions.map((a) => a.object))].filter((uri) => uri && !names.has(uri));
  await Promise.all(
    missing.map((uri) =>
      api("GET", uri)
        .then((s) => names.set(uri, s.name))
        .catch(() => names.set(uri, "")),
    ),
  );
}

/**
 * The actions of `ns` (of the service `serviceUri` when given), newest first, `limit` of them;
 * `empty` says what to do when there are none.
 */
export function actionList(ns, { serviceUri = null, limit = 25, empty }) {
  const errors = errorSlot();
  const body = h("div", {}, loading("actions"));
  const load = async () => {
    try {
      const query = new URLSearchParams({ limit: String(limit) });
      if (serviceUri) query.set("object", serviceUri);
      const list = await api("GET", `${paths.actions(ns)}?${query}`);
      if (!serviceUri) await learnNames(list.objects);
      errors.show(null);
      fill(
        body,
        list.objects.length
          ? h(
              "ul",
              { class: "items" },
              list.objects.map((a) => item(a, !serviceUri)),
            )
          : emptyState(empty),
      );
    } catch (err) {
      errors.show(err);
    }
  };
  const reload = debounce(load, 150);
  const stop = live.on((event) => {
    if (event.type !== "action") return;
    if (!serviceUri || event.parents?.includes(serviceUri) || event.data?.object === serviceUri) reload();
  });
  load();
  return {
    el: h("div", {}, errors, body),
    reload,
    dispose: () => {
      stop();
      reload.cancel();
    },
  };
}
