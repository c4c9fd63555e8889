// A small DOM builder: every node is made with createElement and textContent, never from HTML
// text, so nothing the API answers can become markup or script.

/**
 * An element: `props` are attributes (true: present, false/null/undefined: absent), `on<event>`
 * functions are listeners, `value` and `checked` are set as properties; children are nodes,
 * strings (text), arrays of them, or null (nothing).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "value" || name === "checked") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let counter = 0;
/** A unique id for label/aria references. */
export const uid = (prefix = "id") => `${prefix}-${++counter}`;
