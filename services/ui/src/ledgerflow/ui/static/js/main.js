// Boot, sign-in, header (user, role, health, live status, theme) and the hash router.
import { $, api, el, errorText, openDialog, session, setUnauthorizedHandler, fill } from "./core.js";
import { LiveStream, VIEW_TYPES } from "./live.js";
import { renderDagList } from "./dags.js";
import { renderDagPage } from "./dag.js";
import { renderAdmin } from "./admin.js";
import { renderAssets } from "./assets.js";
import { parseHash, publish, routeState } from "./nav.js";

let stream = null;

const LIVE_TEXT = { connecting: "connecting", live: "live", reconnecting: "reconnecting", unavailable: "no live stream", off: "offline" };
function showLive(status) {
  const box = $("live-status");
  box.dataset.live = status;
  $("live-text").textContent = LIVE_TEXT[status] || status;
  box.title = status === "unavailable"
    ? "The API has no /api/v2/events/stream yet: reload to see changes"
    : "Updates arrive from the event stream";
}

function startStream() {
  if (stream) stream.stop();
  // The log tail has its own filtered stream; this one leaves log chunks out.
  stream = new LiveStream({ types: VIEW_TYPES.join(",") }, {
    onEvent: (evt) => { if (evt.type !== "TaskLogChunk" && evt.type !== "TaskAttemptHeartbeat") publish(evt); },
    onStatus: showLive,
  }).start();
}

// ---------------------------------------------------------------- health
let healthTimer = null;
async function refreshHealth() {
  clearTimeout(healthTimer);
  const button = $("health");
  let data = null;
  try {
    const response = await fetch("/health/system", { headers: { Accept: "application/json" } });
    data = await response.json().catch(() => null);
    if (!data) data = { status: response.ok ? "healthy" : "unhealthy", reasons: [`${response.status}`] };
  } catch (err) { data = { status: "unhealthy", reasons: [errorText(err)] }; }
  button.dataset.status = data.status;
  const count = (list) => (Array.isArray(list) ? list.length : 0);
  $("health-text").textContent = `${data.status === "healthy" ? "healthy" : "unhealthy"}`
    + (Array.isArray(data.schedulers) ? ` · ${count(data.schedulers)} sched · ${count(data.executors)} exec` : "");
  button.title = `Kafka, projection lag, schedulers and executors seen alive (click for details)`;
  button.onclick = () => showHealth(data);
  button.hidden = false;
  // A health check, not data: the page's data arrives from the event stream.
  healthTimer = setTimeout(refreshHealth, 30000);
}

function describe(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function instanceRows(title, list) {
  if (!Array.isArray(list)) return [];
  const head = el("tr", {}, el("th", { scope: "row", text: title }),
    el("td", { text: list.length ? `${list.length} alive` : "none seen alive" }));
  return [head, ...list.map((m) => el("tr", {},
    el("th", { scope: "row", class: "muted", text: m.instance_id }),
    el("td", { text: `${m.hostname} pid ${m.pid}, last seen ${m.last_seen}${m.details && Object.keys(m.details).length ? `, ${describe(m.details)}` : ""}` })))];
}

function showHealth(data) {
  const rows = [];
  const section = (name, obj) => {
    if (!obj || typeof obj !== "object") return;
    for (const [k, v] of Object.entries(obj)) rows.push(el("tr", {}, el("th", { scope: "row", text: `${name} ${k}` }), el("td", { text: describe(v) })));
  };
  section("Kafka", data.kafka);
  section("Projection", data.projection);
  rows.push(...instanceRows("Schedulers", data.schedulers));
  rows.push(...instanceRows("Executors", data.executors));
  rows.push(...instanceRows("Projectors", data.projectors));
  const body = el("div", {},
    el("p", {}, el("strong", { text: data.status })),
    data.reasons && data.reasons.length ? el("ul", {}, data.reasons.map((r) => el("li", { text: r }))) : null,
    el("table", { class: "kv", "aria-label": "System health" }, el("tbody", {}, rows)));
  openDialog("System health", body, [{ label: "Close" }]);
}

// ---------------------------------------------------------------- theme
const THEMES = ["system", "light", "dark"];
function applyTheme(theme) {
  if (theme === "system") { delete document.documentElement.dataset.theme; localStorage.removeItem("ledgerflow.theme"); }
  else { document.documentElement.dataset.theme = theme; localStorage.setItem("ledgerflow.theme", theme); }
  $("theme-toggle").setAttribute("aria-label", `Theme: ${theme}`);
  $("theme-toggle").title = `Theme: ${theme} (click to switch)`;
}

// ---------------------------------------------------------------- sign in / out
async function signIn(event) {
  event.preventDefault();
  const error = $("login-error");
  const submit = $("login-submit");
  error.hidden = true;
  submit.disabled = true;
  const username = $("username").value.trim();
  try {
    const response = await fetch("/auth/token", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username, password: $("password").value }),
    });
    if (response.status === 429) throw new Error("Too many failed attempts; wait a moment and try again.");
    if ([401, 403, 422].includes(response.status)) throw new Error("Wrong username or password.");
    if (response.status >= 502 && response.status <= 504) throw new Error("The UI cannot reach the API. Is it running?");
    if (!response.ok) throw new Error(`Sign-in failed: the API answered ${response.status}.`);
    const data = await response.json();
    session.save(data.access_token, username);
    $("password").value = "";
    enterApp();
  } catch (err) {
    error.textContent = err instanceof TypeError ? "Cannot reach the server." : err.message;
    error.hidden = false;
  } finally {
    submit.disabled = false;
  }
}

function signOut(message) {
  session.clear();
  if (stream) stream.stop();
  stream = null;
  if (cleanup) { cleanup(); cleanup = null; }
  $("page").replaceChildren();
  for (const id of ["session", "nav", "live-status", "health"]) $(id).hidden = true;
  $("login-view").hidden = false;
  const error = $("login-error");
  error.textContent = message || "";
  error.hidden = !message;
  $("password").focus();
}

function enterApp() {
  $("login-view").hidden = true;
  for (const id of ["session", "nav", "live-status"]) $(id).hidden = false;
  $("user-name").textContent = session.user;
  $("user-role").textContent = session.role;
  document.body.dataset.role = session.role;
  startStream();
  refreshHealth();
  // Optional pages: shown only when the API serves them.
  api("/api/v2/assets", { query: { limit: 1 } }).then(() => { $("nav-assets").hidden = false; }).catch(() => {});
  route();
}

// ---------------------------------------------------------------- router
let cleanup = null;
function route() {
  if (!session.token) return signOut();
  if (location.hash === routeState.current && cleanup) return;
  const { parts, query } = parseHash();
  const view = parts[0] || "dags";
  const base = `${view}/${parts[1] || ""}`;
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  // Within one DAG page, the page handles tab and query changes itself.
  if (cleanup && cleanup.base === base && cleanup.update) {
    routeState.current = location.hash;
    cleanup.update(parts, query);
    return;
  }
  if (cleanup) cleanup();
  cleanup = null;
  routeState.current = location.hash;
  const page = $("page");
  fill(page, );
  let result;
  if (view === "dags" && parts[1]) result = renderDagPage(page, parts, query);
  else if (view === "dags") result = renderDagList(page, query);
  else if (view === "assets") result = renderAssets(page, parts, query);
  else result = renderAdmin(page, view, query);
  cleanup = typeof result === "function" ? result : (result && result.cleanup) || (() => {});
  if (result && result.update) { cleanup.update = result.update; }
  cleanup.base = base;
}

document.addEventListener("DOMContentLoaded", () => {
  setUnauthorizedHandler(() => signOut("Your session has expired. Please sign in again."));
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("theme-toggle").addEventListener("click", () => {
    const now = document.documentElement.dataset.theme || "system";
    applyTheme(THEMES[(THEMES.indexOf(now) + 1) % THEMES.length]);
  });
  applyTheme(document.documentElement.dataset.theme || "system");
  window.addEventListener("hashchange", route);
  if (session.token) enterApp(); else signOut();
});
