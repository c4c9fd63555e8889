// The signed-in person: username, API key and chosen namespace, in sessionStorage only (gone
// when the tab closes; never in localStorage, a cookie or a URL).

const KEY = "dockercloud-console";

function read() {
  try {
    const value = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
    return value && typeof value.username === "string" && typeof value.apikey === "string" ? value : null;
  } catch {
    return null;
  }
}

function write(value) {
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
}

export const session = {
  /** { username, apikey, namespace } or null. */
  get: read,
  signIn(username, apikey, namespace) {
    write({ username, apikey, namespace });
  },
  signOut() {
    write(null);
  },
  setNamespace(namespace) {
    const current = read();
    if (current) write({ ...current, namespace });
  },
  namespace() {
    return read()?.namespace ?? "";
  },
};
