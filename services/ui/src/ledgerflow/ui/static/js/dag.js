// The DAG page: header (pause, trigger, run picker, run actions), tabs, and the shared
// model (tasks, recent runs and their task instances) that the event stream keeps
// current. An event names a run (and maybe a task): only that run is fetched again.
import { api, debounce, el, enc, errorText, fmtInterval, fmtTime, fmtUtc, runTypeBadge, runTypeInfo, session, stateBadge, stateOf, toast, fill } from "./core.js";
import { subscribe, setQuery, buildHash } from "./nav.js";
import { openTriggerDialog, setPaused, runActions } from "./actions.js";
import { renderGrid } from "./grid.js";
import { renderGraph } from "./graph.js";
import { renderGantt } from "./gantt.js";
import { renderCode } from "./code.js";
import { renderRunsTable, renderTaskInstancesTable } from "./tables.js";
import { renderHistory } from "./history.js";
import { TaskPanel } from "./task.js";
import { legend } from "./dags.js";
import { canBackfill, openBackfillDialog, renderBackfills } from "./backfill.js";

export const RUNS_IN_GRID = 25;
const TABS = [
  ["grid", "Grid", renderGrid], ["graph", "Graph", renderGraph], ["gantt", "Gantt", renderGantt],
  ["code", "Code", renderCode], ["runs", "Runs", renderRunsTable], ["tasks", "Task instances", renderTaskInstancesTable],
  ["history", "History", renderHistory], ["backfills", "Backfills", renderBackfills],
];

export const tiKey = (taskId, mapIndex) => `${taskId}|${mapIndex ?? -1}`;

/** What every tab reads; `changed(runId?)` tells the open tab and panel to redraw. */
export class DagModel {
  constructor(dagId) {
    this.dagId = dagId;
    this.dag = null;
    this.tasks = [];
    this.runs = [];                 // oldest first
    this.tis = new Map();           // run id -> Map(tiKey -> task instance)
    this.selectedRun = null;
    this.listeners = new Set();
  }
  onChange(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  changed(what) { for (const fn of this.listeners) fn(what); }
  get base() { return `/api/v2/dags/${enc(this.dagId)}`; }
  run(runId) { return this.runs.find((r) => r.dag_run_id === runId) || null; }
  get currentRun() { return this.run(this.selectedRun) || this.runs[this.runs.length - 1] || null; }

  async loadDag() {
    const [dag, tasks] = await Promise.all([
      api(`${this.base}/details`).catch(() => api(this.base)),
      api(`${this.base}/tasks`).then((d) => d.tasks || []).catch(() => []),
    ]);
    this.dag = dag;
    this.tasks = tasks;
  }

  async loadRuns() {
    const { dag_runs: runs = [] } = await api(`${this.base}/dagRuns`, { query: { limit: RUNS_IN_GRID, order_by: "-queued_at" } });
    this.runs = runs.slice().reverse();
    await Promise.all(this.runs.map((r) => this.loadTis(r.dag_run_id, { quiet: true })));
  }

  async loadRun(runId) {
    try {
      const run = await api(`${this.base}/dagRuns/${enc(runId)}`);
      const i = this.runs.findIndex((r) => r.dag_run_id === runId);
      if (i >= 0) this.runs[i] = run;
      else { this.runs.push(run); this.runs = this.runs.slice(-RUNS_IN_GRID); }
    } catch (err) { if (err.status !== 404) throw err; }
  }

  async loadTis(runId, { quiet = false } = {}) {
    const { task_instances: list = [] } = await api(`${this.base}/dagRuns/${enc(runId)}/taskInstances`, { query: { limit: 1000 } });
    this.tis.set(runId, new Map(list.map((ti) => [tiKey(ti.task_id, ti.map_index), ti])));
    if (!quiet) this.changed(runId);
  }

  /** Task instances of `taskId` in `runId` (several for a mapped task). */
  tisOf(runId, taskId) {
    const map = this.tis.get(runId);
    if (!map) return [];
    return [...map.values()].filter((ti) => ti.task_id === taskId).sort((a, b) => a.map_index - b.map_index);
  }
}

export function renderDagPage(page, parts, query) {
  const model = new DagModel(parts[1]);
  let tab = TABS.some((t) => t[0] === parts[2]) ? parts[2] : "grid";
  model.selectedRun = query.run || null;
  let tabView = null;
  const panel = new TaskPanel(model);

  const title = el("h1", { text: model.dagId });
  const meta = el("div", { class: "dag-meta muted" });
  const headActions = el("div", { class: "head-actions" });
  const runPicker = el("select", { id: "run-picker", "aria-label": "Selected run" });
  const runBar = el("div", { class: "run-bar" });
  const banner = el("p", { class: "banner banner-error", role: "alert", hidden: true });
  const tablist = el("div", { class: "tabs", role: "tablist", "aria-label": "DAG views" });
  const content = el("div", { class: "tab-content", role: "tabpanel", id: "tab-content" });
  const layout = el("div", { class: "dag-layout" }, el("div", { class: "dag-main" }, content), panel.node);

  page.append(
    el("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, el("a", { href: "#/dags", text: "DAGs" }), " / ", el("span", { text: model.dagId })),
    el("div", { class: "page-head" }, el("div", {}, title, meta), headActions),
    banner, runBar, tablist, layout, legend());

  const tabButtons = TABS.map(([id, label]) => el("a", {
    role: "tab", class: "tab", id: `tab-${id}`, href: buildHash(["dags", model.dagId, id], { run: model.selectedRun }),
    text: label, "aria-selected": String(id === tab), "data-tab": id,
  }));
  tablist.append(...tabButtons);
  tablist.addEventListener("keydown", (e) => {
    const i = tabButtons.indexOf(document.activeElement);
    if (i < 0 || !["ArrowRight", "ArrowLeft"].includes(e.key)) return;
    const next = tabButtons[(i + (e.key === "ArrowRight" ? 1 : tabButtons.length - 1)) % tabButtons.length];
    next.focus(); next.click();
  });

  function renderHeader() {
    const dag = model.dag || {};
    title.textContent = dag.dag_display_name || model.dagId;
    const owners = (dag.owners || []).join(", ");
    const tags = (dag.tags || []).map((t) => (typeof t === "string" ? t : t.name));
    const next = dag.next_dagrun_run_after || dag.next_dagrun_logical_date;
    const nextInterval = fmtInterval(dag.next_dagrun_data_interval_start, dag.next_dagrun_data_interval_end);
    fill(meta,
      el("span", { id: "dag-schedule", title: dag.timetable_summary ? `Schedule: ${dag.timetable_summary}` : null,
        text: `Schedule: ${dag.timetable_description || dag.timetable_summary || "None (manual only)"}` }),
      next ? el("span", { id: "dag-next-run", title: `logical date ${fmtUtc(dag.next_dagrun_logical_date)}${nextInterval ? `, data interval ${nextInterval}` : ""}`,
        text: `Next run: ${fmtTime(next)}` }) : null,
      owners ? el("span", { text: `Owner: ${owners}` }) : null,
      tags.length ? el("span", { class: "tags" }, tags.map((t) => el("span", { class: "tag", text: t }))) : null,
      dag.latest_version_number ? el("span", { text: `Version ${dag.latest_version_number}` }) : null);
    const toggle = el("button", { type: "button", role: "switch", class: "switch", id: "dag-pause-toggle",
      "aria-checked": String(!dag.is_paused), "aria-label": dag.is_paused ? "Unpause DAG" : "Pause DAG",
      disabled: !session.can("user"), title: dag.is_paused ? "Paused" : "Active" });
    toggle.addEventListener("click", async () => {
      if (await setPaused(model.dagId, !dag.is_paused)) { dag.is_paused = !dag.is_paused; renderHeader(); }
    });
    fill(headActions, 
      el("label", { class: "switch-label" }, toggle, el("span", { text: dag.is_paused ? "Paused" : "Active" })),
      session.can("user") && canBackfill(dag) ? el("button", { type: "button", class: "button", id: "backfill-button", text: "Backfill…",
        title: "Run the DAG for past intervals of its schedule", onclick: () => openBackfillDialog(model) }) : null,
      session.can("user") ? el("button", { type: "button", class: "button button-primary", id: "trigger-button", text: "Trigger",
        onclick: () => openTriggerDialog(model.dagId, { onTriggered: (run) => { if (run) selectRun(run.dag_run_id); } }) }) : null);
  }

  function renderRunBar() {
    fill(runPicker, ...model.runs.slice().reverse().map((r) => el("option", {
      value: r.dag_run_id, text: `${r.dag_run_id} — ${stateOf(r.state)} (${runTypeInfo(r.run_type).label})`, selected: r.dag_run_id === model.currentRun?.dag_run_id })));
    const run = model.currentRun;
    if (!run) { fill(runBar, el("span", { class: "muted", text: "No runs yet." })); return; }
    const interval = fmtInterval(run.data_interval_start, run.data_interval_end);
    fill(runBar,
      el("label", { class: "run-picker-label" }, el("span", { text: "Run" }), runPicker),
      stateBadge(run.state), runTypeBadge(run.run_type),
      el("span", { class: "muted small", id: "run-details" },
        run.logical_date ? el("span", { text: `logical date ${fmtUtc(run.logical_date)} · ` }) : null,
        interval ? el("span", { id: "run-data-interval", text: `data interval ${interval} · ` }) : null,
        el("span", { text: `queued ${fmtTime(run.queued_at)}${run.triggered_by ? ` · by ${run.triggered_by}` : ""}` })),
      runActions(model, run));
  }
  runPicker.addEventListener("change", () => selectRun(runPicker.value));

  function selectRun(runId) {
    model.selectedRun = runId;
    setQuery({ run: runId });
    for (const b of tabButtons) b.href = buildHash(["dags", model.dagId, b.dataset.tab], { run: runId });
    renderRunBar();
    model.changed("selection");
  }
  model.selectRun = selectRun;
  model.selectTask = (taskId, mapIndex = -1, runId = null) => {
    if (runId && runId !== model.selectedRun) selectRun(runId);
    panel.open(model.currentRun?.dag_run_id, taskId, mapIndex);
    setQuery({ task: taskId, map: mapIndex === -1 ? "" : mapIndex });
  };

  function showTab(id) {
    tab = id;
    for (const b of tabButtons) b.setAttribute("aria-selected", String(b.dataset.tab === id));
    content.setAttribute("aria-labelledby", `tab-${id}`);
    if (tabView && tabView.cleanup) tabView.cleanup();
    fill(content, );
    const render = TABS.find((t) => t[0] === id)[2];
    tabView = render(content, model) || {};
    document.body.dataset.tab = id;
  }

  const stopModel = model.onChange((what) => {
    if (what !== "selection") renderRunBar();
    if (tabView && tabView.update) tabView.update(what);
    panel.update(what);
  });

  // ------------------------------------------------------------ live
  const pendingRuns = new Set();
  let needRunList = false, needTasks = false;
  const flush = debounce(async () => {
    const runs = [...pendingRuns]; pendingRuns.clear();
    const list = needRunList, tasks = needTasks; needRunList = needTasks = false;
    try {
      if (tasks) { await model.loadDag(); renderHeader(); }
      if (list) await model.loadRuns();
      await Promise.all(runs.map(async (runId) => { await model.loadRun(runId); await model.loadTis(runId, { quiet: true }); }));
      if (list && !model.selectedRun) { /* follow the newest run */ }
      model.changed(runs.length === 1 && !list ? runs[0] : "all");
    } catch (err) { toast(`Live update failed: ${errorText(err)}`, true); }
  }, 120);
  const unsubscribe = subscribe((evt) => {
    if (evt.type === "resync") { needRunList = true; flush(); return; }
    if (evt.dagId !== model.dagId) return;
    if (evt.type === "DagVersionPublished" || evt.type === "DagPauseChanged") { needTasks = true; flush(); return; }
    if (evt.type === "BackfillRejected") { toast(`Backfill ${evt.data.backfill_id} was refused: ${evt.data.reason}`, true); return; }
    if (!evt.runId) return;
    if (evt.type === "DagRunQueued") needTasks = true; // the next run time moves on
    if (!model.run(evt.runId)) needRunList = true;
    else pendingRuns.add(evt.runId);
    flush();
  });

  async function load() {
    try {
      await Promise.all([model.loadDag(), model.loadRuns()]);
      banner.hidden = true;
    } catch (err) {
      banner.textContent = `Cannot load ${model.dagId}: ${errorText(err)}`;
      banner.hidden = false;
    }
    renderHeader();
    renderRunBar();
    showTab(tab);
    if (query.task) model.selectTask(query.task, Number(query.map ?? -1));
  }
  load();

  return {
    cleanup: () => { unsubscribe(); stopModel(); panel.close(); if (tabView && tabView.cleanup) tabView.cleanup(); },
    update: (newParts, newQuery) => {
      if (newQuery.run && newQuery.run !== model.selectedRun) selectRun(newQuery.run);
      const nextTab = TABS.some((t) => t[0] === newParts[2]) ? newParts[2] : "grid";
      if (nextTab !== tab) showTab(nextTab);
    },
  };
}
