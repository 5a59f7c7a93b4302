// Runs and task instances as tables with filters.
import { api, el, errorText, fmtDuration, fmtInterval, fmtTime, runTypeBadge, runTypeInfo, secondsBetween, stateBadge, debounce, fill } from "./core.js";
import { buildHash } from "./nav.js";

const RUN_STATES = ["", "queued", "running", "success", "failed"];
const TI_STATES = ["", "scheduled", "queued", "running", "success", "failed", "up_for_retry", "up_for_reschedule", "upstream_failed", "skipped"];

const stateSelect = (id, states, label) => el("select", { id, "aria-label": label },
  states.map((s) => el("option", { value: s, text: s ? s.replace(/_/g, " ") : "any state" })));

export function renderRunsTable(container, model) {
  const state = stateSelect("runs-state-filter", RUN_STATES, "Filter runs by state");
  const type = el("select", { id: "runs-type-filter", "aria-label": "Filter runs by type" },
    ["", "manual", "scheduled", "backfill", "asset_triggered"].map((t) => el("option", { value: t, text: t ? runTypeInfo(t).label : "any type" })));
  const tbody = el("tbody");
  const count = el("span", { class: "muted small" });
  container.append(el("div", { class: "toolbar" }, state, type, count),
    el("div", { class: "card table-card" }, el("table", { class: "table", id: "runs-table" },
      el("thead", {}, el("tr", {}, ["Run", "State", "Type", "Data interval", "Queued", "Started", "Duration", "Triggered by"].map((h) => el("th", { scope: "col", text: h })))), tbody)));

  async function draw() {
    try {
      const { dag_runs: runs = [], total_entries: total } = await api(`${model.base}/dagRuns`, {
        query: { limit: 100, order_by: "-queued_at", state: state.value || undefined } });
      const shown = runs.filter((r) => !type.value || r.run_type === type.value);
      count.textContent = `${shown.length} of ${total ?? runs.length} runs`;
      fill(tbody, ...shown.map((r) => el("tr", { "data-run-id": r.dag_run_id },
        el("td", {}, el("a", { href: buildHash(["dags", model.dagId, "grid"], { run: r.dag_run_id }), text: r.dag_run_id })),
        el("td", {}, stateBadge(r.state)), el("td", {}, runTypeBadge(r.run_type)),
        el("td", { class: "small", text: fmtInterval(r.data_interval_start, r.data_interval_end) }), el("td", { text: fmtTime(r.queued_at) }),
        el("td", { text: fmtTime(r.start_date) }), el("td", { text: fmtDuration(r.start_date ? secondsBetween(r.start_date, r.end_date) : null) }),
        el("td", { text: r.triggered_by || "" }))));
    } catch (err) { count.textContent = errorText(err); }
  }
  state.addEventListener("change", draw);
  type.addEventListener("change", draw);
  draw();
  return { update: debounce(draw, 300) };
}

export function renderTaskInstancesTable(container, model) {
  const state = stateSelect("tis-state-filter", TI_STATES, "Filter task instances by state");
  const search = el("input", { type: "search", id: "tis-search", placeholder: "Task id", "aria-label": "Filter by task id" });
  const tbody = el("tbody");
  const count = el("span", { class: "muted small" });
  container.append(el("div", { class: "toolbar" }, search, state, count),
    el("div", { class: "card table-card" }, el("table", { class: "table", id: "tis-table" },
      el("thead", {}, el("tr", {}, ["Task", "Map index", "State", "Attempt", "Queued", "Started", "Duration", "Host"].map((h) => el("th", { scope: "col", text: h })))), tbody)));

  function draw() {
    const run = model.currentRun;
    if (!run) { count.textContent = "No run selected."; fill(tbody, ); return; }
    const q = search.value.trim().toLowerCase();
    const tis = [...(model.tis.get(run.dag_run_id)?.values() || [])]
      .filter((t) => (!state.value || t.state === state.value) && (!q || t.task_id.toLowerCase().includes(q)));
    count.textContent = `${tis.length} task instance${tis.length === 1 ? "" : "s"} of run ${run.dag_run_id}`;
    fill(tbody, ...tis.map((t) => el("tr", { "data-task-id": t.task_id },
      el("td", {}, el("button", { type: "button", class: "link", text: t.task_id, onclick: () => model.selectTask(t.task_id, t.map_index) })),
      el("td", { text: t.map_index >= 0 ? String(t.map_index) : "" }), el("td", {}, stateBadge(t.state)), el("td", { text: String(t.try_number) }),
      el("td", { text: fmtTime(t.queued_when) }), el("td", { text: fmtTime(t.start_date) }),
      el("td", { text: fmtDuration(t.duration ?? (t.start_date ? secondsBetween(t.start_date, t.end_date) : null)) }), el("td", { text: t.hostname || "" }))));
  }
  search.addEventListener("input", debounce(draw, 150));
  state.addEventListener("change", draw);
  draw();
  return { update: draw };
}
