// The namespace's events stream, shared by the pages: one WebSocket per signed-in tab, opened
// with a stream ticket and opened again (with a new ticket) after a drop, with a growing delay.

import { openStream, paths } from "./api.js";

const listeners = new Set();
const statusListeners = new Set();
let socket = null;
let namespace = "";
let retry = null;
let delay = 1000;
let generation = 0;

function setStatus(state, detail = "") {
  for (const fn of statusListeners) fn(state, detail);
}

function dispatch(message) {
  let event;
  try {
    event = JSON.parse(message.data);
  } catch {
    return;
  }
  for (const fn of listeners) fn(event);
}

function later(mine) {
  if (mine !== generation) return;
  clearTimeout(retry);
  retry = setTimeout(() => connect(mine), delay);
  delay = Math.min(delay * 2, 30_000);
}

async function connect(mine) {
  if (mine !== generation || !namespace) return;
  setStatus("connecting");
  let ws;
  try {
    ws = await openStream(namespace, paths.events(namespace));
  } catch (err) {
    setStatus("down", err.message);
    if (err.status !== 401 && err.status !== 403) later(mine);
    return;
  }
  if (mine !== generation) return ws.close();
  socket = ws;
  ws.addEventListener("open", () => {
    delay = 1000;
    setStatus("live");
  });
  ws.addEventListener("message", dispatch);
  ws.addEventListener("close", (e) => {
    if (socket === ws) socket = null;
    if (mine !== generation) return;
    // 4401: the key or the membership was revoked; 4402: the namespace is gone. Nothing to retry.
    if (e.code === 4401 || e.code === 4402) return setStatus("down", e.reason || "the stream was closed");
    setStatus("down", "reconnecting");
    later(mine);
  });
}

export const live = {
  /** Follows `ns` (closing any other namespace's stream). */
  start(ns) {
    if (ns === namespace && (socket || retry)) return;
    this.stop();
    namespace = ns;
    connect(generation);
  },
  stop() {
    generation += 1;
    clearTimeout(retry);
    retry = null;
    delay = 1000;
    namespace = "";
    socket?.close(1000, "done");
    socket = null;
    setStatus("off");
  },
  /** Calls `fn(event)` for every event; returns the function that stops it. */
  on(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
  onStatus(fn) {
    statusListeners.add(fn);
    return () => statusListeners.delete(fn);
  },
};

/** `fn` at most once per `ms`, after the last call (many events, one reload). */
export function debounce(fn, ms = 250) {
  let timer = null;
  const run = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  run.cancel = () => clearTimeout(timer);
  return run;
}
