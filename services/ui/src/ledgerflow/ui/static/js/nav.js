// The live-event bus and the URL (hash) state, shared by every view.

const subscribers = new Set();
/** Views subscribe to live events; returns the unsubscribe function. */
export function subscribe(fn) { subscribers.add(fn); return () => subscribers.delete(fn); }
export function publish(evt) {
  for (const fn of subscribers) { try { fn(evt); } catch (e) { console.error(e); } }
}

export const routeState = { current: "" };

export function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "/dags";
  const [path, qs = ""] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: Object.fromEntries(new URLSearchParams(qs)) };
}

export function buildHash(parts, query = {}) {
  const q = { ...query };
  for (const [k, v] of Object.entries(q)) if (v === null || v === undefined || v === "") delete q[k];
  const qs = new URLSearchParams(q).toString();
  return `#/${parts.map(encodeURIComponent).join("/")}${qs ? `?${qs}` : ""}`;
}

/** Change the query of the current route without re-rendering the view. */
export function setQuery(changes, { replace = true } = {}) {
  const { parts, query } = parseHash();
  const hash = buildHash(parts, { ...query, ...changes });
  routeState.current = hash;
  if (hash === location.hash) return;
  if (replace) history.replaceState(null, "", hash); else history.pushState(null, "", hash);
}
