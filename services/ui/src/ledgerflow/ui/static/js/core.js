// Shared helpers: DOM building, the API client, the session (token and role), dialogs,
// toasts and formatting. Every value from the API goes into the page as text
// (textContent or attributes), never as HTML.

export const $ = (id) => document.getElementById(id);
export const enc = encodeURIComponent;

/** el("button", {class: "x", text: "Go", onclick: fn}, child...) */
export function el(tag, props = {}, ...children) {
  const node = tag === "svg" || props.svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false || key === "svg") continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "value" || key === "checked" || key === "disabled" || key === "selected") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

/** replaceChildren that skips null/false children (replaceChildren would print "null"). */
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

export function svg(tag, attrs = {}, ...children) { return el(tag, { ...attrs, svg: true }, ...children); }

// ---------------------------------------------------------------- session
const TOKEN_KEY = "ledgerflow.token";
const USER_KEY = "ledgerflow.user";
export const ROLES = ["viewer", "user", "op", "admin"];

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  get user() { return sessionStorage.getItem(USER_KEY) || this.claims.sub || ""; },
  get claims() {
    const t = this.token;
    if (!t || t.split(".").length !== 3) return {};
    try {
      const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    } catch { return {}; }
  },
  /** The token's role claim; the API re-checks every request (this only hides buttons). */
  get role() { return ROLES.includes(this.claims.role) ? this.claims.role : "viewer"; },
  can(role) { return ROLES.indexOf(this.role) >= ROLES.indexOf(role); },
  save(token, user) { sessionStorage.setItem(TOKEN_KEY, token); sessionStorage.setItem(USER_KEY, user); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

// ---------------------------------------------------------------- API
export class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}
export class Unauthorized extends ApiError {}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

function detailMessage(data, response) {
  const detail = data && data.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  if (detail && detail.message) return detail.message;
  return `${response.status} ${response.statusText}`;
}

/** JSON request to the API (through the UI's proxy); throws ApiError with the API's words. */
export async function api(path, { method = "GET", body, query, accept = "application/json" } = {}) {
  const headers = { Accept: accept, Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      for (const item of Array.isArray(v) ? v : [v]) params.append(k, item);
    }
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) { onUnauthorized(); throw new Unauthorized("Your session has expired.", 401); }
  if (accept !== "application/json") {
    if (!response.ok) throw new ApiError(`${response.status} ${response.statusText}`, response.status);
    return response.text();
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(detailMessage(data, response), response.status);
  return data;
}

/** Whether an error means "this API has no such endpoint yet". */
export const isMissing = (err) => err instanceof ApiError && (err.status === 404 || err.status === 405);

// ---------------------------------------------------------------- states
export const STATE_ICONS = {
  success: "✓", failed: "✕", running: "▶", queued: "…", scheduled: "◷", up_for_retry: "↻",
  up_for_reschedule: "⟳", upstream_failed: "⚠", skipped: "⤼", removed: "−", restarting: "↺",
  deferred: "⏸", none: "○",
};
export const stateOf = (s) => s || "none";
export const stateLabel = (s) => (s ? s.replace(/_/g, " ") : "no status");

/** A state badge: colour plus icon plus text (never colour alone). */
export function stateBadge(state, { short = false } = {}) {
  const s = stateOf(state);
  return el("span", { class: `badge state-bg-${s}`, "data-state": s },
    el("span", { class: "state-icon", "aria-hidden": "true", text: STATE_ICONS[s] || "•" }),
    short ? null : el("span", { text: stateLabel(state) }));
}

// ---------------------------------------------------------------- formatting
export function fmtTime(iso, { withDate = true } = {}) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return withDate ? d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" })
    : d.toLocaleTimeString();
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function secondsBetween(a, b) {
  if (!a) return null;
  const end = b ? Date.parse(b) : Date.now();
  return (end - Date.parse(a)) / 1000;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// ---------------------------------------------------------------- toast and dialogs
let toastTimer = null;
export function toast(message, isError = false) {
  const box = $("toast");
  box.textContent = message;
  box.classList.toggle("toast-error", isError);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, isError ? 8000 : 4000);
}

/**
 * A modal dialog (native <dialog>: focus trap, Escape closes). `body` is a node;
 * `actions` [{label, kind, onClick(close) -> Promise}]; returns {dialog, close}.
 */
export function openDialog(title, body, actions = [], { wide = false, id } = {}) {
  const dialog = el("dialog", { class: `modal${wide ? " modal-wide" : ""}`, "aria-label": title, id });
  const close = () => { dialog.close(); dialog.remove(); };
  const footer = el("div", { class: "modal-actions" });
  for (const a of actions) {
    const button = el("button", { type: "button", class: `button ${a.kind ? `button-${a.kind}` : ""}`, text: a.label,
      "data-action": a.id || a.label.toLowerCase().replace(/\s+/g, "-") });
    button.addEventListener("click", async () => {
      if (!a.onClick) return close();
      button.disabled = true;
      try { await a.onClick(close, button); } finally { button.disabled = false; }
    });
    footer.append(button);
  }
  dialog.append(el("header", { class: "modal-head" }, el("h2", { text: title }),
    el("button", { type: "button", class: "icon-button", "aria-label": "Close", text: "×", onclick: close })),
  el("div", { class: "modal-body" }, body), footer);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

/** Ask before doing: resolves true when confirmed. */
export function confirmAction(title, message, { confirmLabel = "Confirm", danger = false, extra } = {}) {
  return new Promise((resolve) => {
    let done = false;
    const { dialog } = openDialog(title, el("div", {}, el("p", { text: message }), extra || null), [
      { label: "Cancel", id: "cancel", onClick: (close) => { close(); } },
      { label: confirmLabel, id: "confirm", kind: danger ? "danger" : "primary",
        onClick: (close) => { done = true; close(); resolve(true); } },
    ]);
    dialog.addEventListener("close", () => { if (!done) resolve(false); });
  });
}

export function errorText(err) {
  return err instanceof TypeError ? "the server is unreachable" : err.message;
}

/** A note in place of a view the API cannot serve yet. */
export function unavailable(what, endpoint) {
  return el("div", { class: "card empty unavailable", role: "note" },
    el("p", {}, el("strong", { text: `${what} is not available yet.` })),
    el("p", { class: "muted", text: `This API does not serve ${endpoint} yet; the view appears once it does.` }));
}

// ---------------------------------------------------------------- run types
/** How a run came to be (Airflow's run_type): an icon and a word, never the icon alone. */
export const RUN_TYPES = {
  manual: { icon: "▸", label: "manual", title: "Triggered by hand (UI, API or CLI)" },
  scheduled: { icon: "◷", label: "scheduled", title: "Created by the scheduler for its data interval" },
  backfill: { icon: "⟲", label: "backfill", title: "Created by a backfill" },
  asset_triggered: { icon: "◆", label: "asset-triggered", title: "Triggered by asset events or a Kafka message" },
};
export const runTypeInfo = (t) => RUN_TYPES[t] || { icon: "•", label: t ? String(t).replace(/_/g, " ") : "unknown", title: "" };

/** A run type badge: icon plus label (`short`: icon only, the label in title and aria-label). */
export function runTypeBadge(type, { short = false } = {}) {
  const info = runTypeInfo(type);
  return el("span", { class: `run-type run-type-${type || "unknown"}`, "data-run-type": type || "", title: `${info.label}: ${info.title}`,
    "aria-label": short ? `${info.label} run` : null },
  el("span", { class: "run-type-icon", "aria-hidden": "true", text: info.icon }), short ? null : el("span", { text: info.label }));
}

/** "2026-01-02 00:00 UTC": a logical date as the scheduler sees it (dates are UTC). */
export function fmtUtc(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const s = d.toISOString();
  return `${s.slice(0, 10)} ${s.slice(11, d.getUTCSeconds() ? 19 : 16)} UTC`;
}

/** A run's data interval, "start → end" in UTC, or "" when it has none. */
export function fmtInterval(start, end) {
  return start || end ? `${fmtUtc(start) || "…"} → ${fmtUtc(end) || "…"}` : "";
}
