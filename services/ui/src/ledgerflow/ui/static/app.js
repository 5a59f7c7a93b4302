// ledgerflow UI: sign in, then list DAGs with their recent runs, refreshed every few
// seconds. Plain DOM code, no framework and no build step. Every value from the API is
// put into the page with textContent, never as HTML.
"use strict";

const REFRESH_MS = 3000;
const RUNS_SHOWN = 12;
const TOKEN_KEY = "ledgerflow.token";
const USER_KEY = "ledgerflow.user";

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "title") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// ---------------------------------------------------------------- API access

class Unauthorized extends Error {}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) throw new Unauthorized("session expired");
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data && data.detail;
    const message = typeof detail === "string" ? detail
      : detail && detail.message ? detail.message : `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return data;
}

const enc = encodeURIComponent;

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
    if (response.status === 401 || response.status === 403 || response.status === 422) {
      throw new Error("Wrong username or password.");
    }
    if (response.status >= 502 && response.status <= 504) {
      throw new Error("The UI cannot reach the API. Is it running?");
    }
    if (!response.ok) throw new Error(`Sign-in failed: the API answered ${response.status}.`);
    const data = await response.json();
    sessionStorage.setItem(TOKEN_KEY, data.access_token);
    sessionStorage.setItem(USER_KEY, username);
    $("password").value = "";
    showDags();
  } catch (err) {
    error.textContent = err instanceof TypeError ? "Cannot reach the server." : err.message;
    error.hidden = false;
  } finally {
    submit.disabled = false;
  }
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopRefreshing();
  $("session").hidden = true;
  $("dags-view").hidden = true;
  $("login-view").hidden = false;
  const error = $("login-error");
  error.textContent = message || "";
  error.hidden = !message;
  $("password").focus();
}

// ---------------------------------------------------------------- DAG list

let refreshTimer = null;
let refreshing = false;

function showDags() {
  $("login-view").hidden = true;
  $("dags-view").hidden = false;
  $("session").hidden = false;
  $("user-name").textContent = sessionStorage.getItem(USER_KEY) || "";
  refresh();
}

function stopRefreshing() {
  clearTimeout(refreshTimer);
  refreshTimer = null;
}

function scheduleRefresh() {
  stopRefreshing();
  if (token()) refreshTimer = setTimeout(refresh, REFRESH_MS);
}

async function refresh() {
  if (refreshing || !token()) return;
  refreshing = true;
  try {
    const { dags = [] } = await api("/api/v2/dags");
    const runsByDag = await Promise.all(dags.map((dag) => latestRuns(dag.dag_id)));
    renderDags(dags, runsByDag);
    $("dags-error").hidden = true;
    $("refresh-status").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (err instanceof Unauthorized) { refreshing = false; signOut("Your session has expired. Please sign in again."); return; }
    const banner = $("dags-error");
    banner.textContent = `Cannot load DAGs: ${err instanceof TypeError ? "the server is unreachable" : err.message}`;
    banner.hidden = false;
  } finally {
    refreshing = false;
  }
  if (!document.hidden) scheduleRefresh();
}

function runTime(run) {
  return run.queued_at || run.start_date || run.logical_date || "";
}

function runMillis(run) {
  const t = Date.parse(runTime(run));
  return Number.isNaN(t) ? 0 : t;
}

async function latestRuns(dagId) {
  try {
    const { dag_runs: runs = [] } = await api(`/api/v2/dags/${enc(dagId)}/dagRuns`);
    // Oldest first, newest on the right, like Airflow's grid.
    return runs.slice().sort((a, b) => runMillis(a) - runMillis(b)).slice(-RUNS_SHOWN);
  } catch (err) {
    if (err instanceof Unauthorized) throw err;
    return null; // shown as "runs unavailable" for this DAG only
  }
}

function describeRun(run) {
  const when = runTime(run) ? new Date(runTime(run)).toLocaleString() : "not started";
  return `${run.dag_run_id}: ${run.state || "no state"} (${when})`;
}

function renderRuns(runs) {
  if (runs === null) return el("span", { class: "muted", text: "runs unavailable" });
  if (runs.length === 0) return el("span", { class: "muted", text: "no runs yet" });
  const marks = el("ul", { class: "marks", "aria-label": "recent runs, oldest first" });
  for (const run of runs) {
    const state = run.state || "none";
    marks.append(el("li", {
      class: `mark state-${state}`,
      title: describeRun(run),
      "aria-label": describeRun(run),
      "data-state": state,
      "data-run-id": run.dag_run_id,
    }));
  }
  const latest = runs[runs.length - 1];
  const label = el("span", {
    class: `run-label text-${latest.state || "none"}`,
    text: latest.state || "no state",
    title: `latest run: ${describeRun(latest)}`,
  });
  return el("div", { class: "runs" }, marks, label);
}

function renderDags(dags, runsByDag) {
  $("dag-count").textContent = dags.length === 1 ? "1 DAG" : `${dags.length} DAGs`;
  $("dags-empty").hidden = dags.length > 0;
  const rows = dags.map((dag, i) => {
    const owners = Array.isArray(dag.owners) ? dag.owners.join(", ") : (dag.owners || "");
    const tags = el("div", { class: "tags" },
      ...(dag.tags || []).map((t) => el("span", { class: "tag", text: typeof t === "string" ? t : t.name })));
    const trigger = el("button", {
      type: "button", class: "button button-small", text: "Trigger",
      title: `Trigger a run of ${dag.dag_id}`, "data-dag-id": dag.dag_id,
    });
    trigger.addEventListener("click", () => triggerRun(dag.dag_id, trigger));
    return el("tr", { "data-dag-id": dag.dag_id },
      el("td", {},
        el("span", { class: "dag-id", text: dag.dag_id }),
        dag.description ? el("span", { class: "dag-description", text: dag.description }) : null),
      el("td", {}, el("span", {
        class: `badge ${dag.is_paused ? "badge-paused" : "badge-active"}`,
        text: dag.is_paused ? "paused" : "active",
      })),
      el("td", { text: owners }),
      el("td", {}, tags),
      el("td", {}, renderRuns(runsByDag[i])),
      el("td", { class: "col-actions" }, trigger));
  });
  $("dag-rows").replaceChildren(...rows);
}

async function triggerRun(dagId, button) {
  button.disabled = true;
  try {
    const run = await api(`/api/v2/dags/${enc(dagId)}/dagRuns`, {
      method: "POST",
      body: { conf: {}, logical_date: new Date().toISOString() },
    });
    toast(`Triggered ${dagId}: ${run.dag_run_id}`);
    refresh();
  } catch (err) {
    if (err instanceof Unauthorized) { signOut("Your session has expired. Please sign in again."); return; }
    toast(`Could not trigger ${dagId}: ${err.message}`, true);
  } finally {
    button.disabled = false;
  }
}

let toastTimer = null;
function toast(message, isError = false) {
  const box = $("toast");
  box.textContent = message;
  box.classList.toggle("toast-error", isError);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

// ---------------------------------------------------------------- start

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) stopRefreshing();
    else if (token()) refresh();
  });
  if (token()) showDags();
  else signOut();
});
