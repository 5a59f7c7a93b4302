// The DAG list: search, tags, paused filter and toggle, owner, schedule, recent runs as
// coloured marks, trigger; paginated. Run marks follow the event stream.
import { api, el, enc, errorText, fmtInterval, fmtTime, fmtUtc, isMissing, openDialog, runTypeInfo, session, stateLabel, stateOf, STATE_ICONS, debounce, toast, fill } from "./core.js";
import { subscribe, setQuery } from "./nav.js";
import { openTriggerDialog, setPaused } from "./actions.js";

const PAGE_SIZE = 25;
const RUNS_SHOWN = 10;

export function renderDagList(page, query) {
  let offset = Number(query.offset || 0);
  let search = query.search || "";
  let tag = query.tag || "";
  let paused = query.paused || "all";
  const rowsByDag = new Map();
  const knownTags = new Set();

  const searchInput = el("input", { type: "search", id: "dag-search", placeholder: "Search DAGs", value: search, "aria-label": "Search DAGs by id" });
  const pausedSelect = el("select", { id: "dag-paused-filter", "aria-label": "Filter by paused" },
    ["all", "active", "paused"].map((v) => el("option", { value: v, text: v === "all" ? "All DAGs" : v === "active" ? "Active" : "Paused", selected: v === paused })));
  const tagBox = el("div", { class: "tag-filter", "aria-label": "Filter by tag" });
  const count = el("span", { class: "muted", id: "dag-count" });
  const banner = el("p", { class: "banner banner-error", role: "alert", hidden: true });
  const tbody = el("tbody", { id: "dag-rows" });
  const pager = el("nav", { class: "pager", "aria-label": "Pages" });
  const empty = el("div", { class: "empty", id: "dags-empty", hidden: true },
    el("p", {}, el("strong", { text: "No DAGs match." })),
    el("p", { class: "muted" }, "Submit a DAG file with ", el("code", { text: "ledgerflow dags submit FILE.py" }), "."));

  page.append(
    el("div", { class: "page-head" }, el("h1", { text: "DAGs" }), count,
      session.can("user") ? el("button", { type: "button", class: "button", id: "upload-dag", text: "Submit DAG file…", onclick: () => openUploadDialog(load) }) : null),
    el("div", { class: "toolbar" }, searchInput, pausedSelect, tagBox),
    banner,
    el("div", { class: "card table-card" },
      el("table", { class: "table dags" },
        el("thead", {}, el("tr", {},
          el("th", { scope: "col", class: "col-toggle", text: "On" }),
          el("th", { scope: "col", text: "DAG" }),
          el("th", { scope: "col", text: "Owner" }),
          el("th", { scope: "col", text: "Schedule" }),
          el("th", { scope: "col", text: "Recent runs" }),
          el("th", { scope: "col", class: "col-actions" }, el("span", { class: "visually-hidden", text: "Actions" })))),
        tbody),
      empty),
    pager,
    legend());

  const renderTags = () => {
    fill(tagBox, ...[...knownTags].sort().map((t) => el("button", {
      type: "button", class: `tag tag-button${t === tag ? " tag-active" : ""}`, text: t, "aria-pressed": String(t === tag),
      onclick: () => { tag = t === tag ? "" : t; offset = 0; load(); },
    })));
  };

  async function load() {
    setQuery({ search, tag, paused: paused === "all" ? "" : paused, offset: offset || "" });
    try {
      const data = await api("/api/v2/dags", { query: {
        limit: PAGE_SIZE, offset, dag_id_pattern: search || undefined, tags: tag || undefined,
        paused: paused === "all" ? undefined : String(paused === "paused"),
      } });
      banner.hidden = true;
      const dags = data.dags || [];
      for (const d of dags) for (const t of d.tags || []) knownTags.add(typeof t === "string" ? t : t.name);
      renderTags();
      const total = data.total_entries ?? dags.length;
      count.textContent = total === 1 ? "1 DAG" : `${total} DAGs`;
      empty.hidden = dags.length > 0;
      rowsByDag.clear();
      fill(tbody, ...dags.map((dag) => { const row = dagRow(dag); rowsByDag.set(dag.dag_id, row); return row.tr; }));
      renderPager(total);
      await Promise.all(dags.map((d) => loadRuns(d.dag_id)));
    } catch (err) {
      banner.textContent = `Cannot load DAGs: ${errorText(err)}`;
      banner.hidden = false;
    }
  }

  function renderPager(total) {
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const at = Math.floor(offset / PAGE_SIZE) + 1;
    fill(pager, 
      el("button", { type: "button", class: "button button-small", text: "‹ Previous", disabled: at <= 1, onclick: () => { offset -= PAGE_SIZE; load(); } }),
      el("span", { class: "muted", text: `Page ${at} of ${pages}` }),
      el("button", { type: "button", class: "button button-small", text: "Next ›", disabled: at >= pages, onclick: () => { offset += PAGE_SIZE; load(); } }));
    pager.hidden = pages <= 1;
  }

  function dagRow(dag) {
    const owners = Array.isArray(dag.owners) ? dag.owners.join(", ") : (dag.owners || "");
    const runsCell = el("td", { class: "runs-cell" }, el("span", { class: "muted", text: "…" }));
    const toggle = el("button", {
      type: "button", role: "switch", class: "switch", "aria-checked": String(!dag.is_paused),
      "aria-label": `${dag.is_paused ? "Unpause" : "Pause"} ${dag.dag_id}`, disabled: !session.can("user"),
      title: session.can("user") ? (dag.is_paused ? "Paused: click to unpause" : "Active: click to pause") : "Your role may not pause DAGs",
      "data-dag-id": dag.dag_id,
    });
    toggle.addEventListener("click", async () => {
      const next = toggle.getAttribute("aria-checked") === "true";
      if (await setPaused(dag.dag_id, next)) {
        toggle.setAttribute("aria-checked", String(!next));
        toggle.setAttribute("aria-label", `${next ? "Unpause" : "Pause"} ${dag.dag_id}`);
        pausedBadge.replaceWith(pausedBadge = badge(next));
      }
    });
    const badge = (p) => el("span", { class: `badge ${p ? "badge-paused" : "badge-active"}`, text: p ? "paused" : "active" });
    let pausedBadge = badge(dag.is_paused);
    const next = dag.next_dagrun_run_after || dag.next_dagrun_logical_date || dag.next_dagrun;
    const tags = (dag.tags || []).map((t) => typeof t === "string" ? t : t.name);
    const tr = el("tr", { "data-dag-id": dag.dag_id },
      el("td", { class: "col-toggle" }, toggle),
      el("td", {},
        el("a", { class: "dag-id", href: `#/dags/${enc(dag.dag_id)}/grid`, text: dag.dag_display_name || dag.dag_id }),
        " ", pausedBadge,
        dag.description ? el("span", { class: "dag-description", text: dag.description }) : null,
        tags.length ? el("div", { class: "tags" }, tags.map((t) => el("span", { class: "tag", text: t }))) : null),
      el("td", { text: owners }),
      el("td", {},
        el("span", { class: "schedule", text: dag.timetable_description || dag.timetable_summary || "None (manual only)" }),
        next ? el("span", { class: "muted small block next-run", "data-next-run": next,
          title: `next logical date ${fmtUtc(dag.next_dagrun_logical_date)}${dag.next_dagrun_data_interval_start ? `, data interval ${fmtInterval(dag.next_dagrun_data_interval_start, dag.next_dagrun_data_interval_end)}` : ""}`,
          text: `next run: ${fmtTime(next)}` }) : null),
      runsCell,
      el("td", { class: "col-actions" }, session.can("user")
        ? el("button", { type: "button", class: "button button-small", text: "Trigger", "aria-label": `Trigger ${dag.dag_id}`,
          "data-dag-id": dag.dag_id, onclick: () => openTriggerDialog(dag.dag_id, { onTriggered: () => loadRuns(dag.dag_id) }) })
        : null));
    return { tr, runsCell, dag };
  }

  async function loadRuns(dagId) {
    const row = rowsByDag.get(dagId);
    if (!row) return;
    try {
      const { dag_runs: runs = [] } = await api(`/api/v2/dags/${enc(dagId)}/dagRuns`, { query: { limit: RUNS_SHOWN, order_by: "-queued_at" } });
      fill(row.runsCell, renderRunMarks(dagId, runs.slice().reverse()));
    } catch (err) {
      if (!isMissing(err)) fill(row.runsCell, el("span", { class: "muted", text: "runs unavailable" }));
    }
  }

  const refreshers = new Map();
  const unsubscribe = subscribe((evt) => {
    if (evt.type === "resync") { for (const dagId of rowsByDag.keys()) loadRuns(dagId); return; }
    if (!evt.dagId || !rowsByDag.has(evt.dagId)) {
      if (evt.type === "DagVersionPublished") debouncedLoad();
      return;
    }
    // A scheduled run was created: the DAG's next run time moved on.
    if (evt.type === "DagRunQueued" && evt.data.run_type === "scheduled") debouncedLoad();
    if (/^(DagRun|TriggerRejected|DagPause)/.test(evt.type)) {
      if (!refreshers.has(evt.dagId)) refreshers.set(evt.dagId, debounce(() => loadRuns(evt.dagId), 150));
      refreshers.get(evt.dagId)();
    }
  });
  const debouncedLoad = debounce(load, 500);
  const debouncedSearch = debounce(() => { search = searchInput.value.trim(); offset = 0; load(); }, 250);
  searchInput.addEventListener("input", debouncedSearch);
  pausedSelect.addEventListener("change", () => { paused = pausedSelect.value; offset = 0; load(); });
  load();
  return () => unsubscribe();
}

export function renderRunMarks(dagId, runs) {
  if (runs.length === 0) return el("span", { class: "muted", text: "no runs yet" });
  const describe = (run) => `${run.dag_run_id} (${runTypeInfo(run.run_type).label}): ${stateLabel(run.state)} (${fmtTime(run.queued_at || run.logical_date)})`;
  const latest = runs[runs.length - 1];
  return el("div", { class: "runs" },
    el("ul", { class: "marks", "aria-label": "recent runs, oldest first" }, runs.map((run) => el("li", {},
      el("a", { class: `mark state-bg-${stateOf(run.state)}`, href: `#/dags/${enc(dagId)}/grid?run=${enc(run.dag_run_id)}`,
        title: describe(run), "aria-label": describe(run), "data-state": stateOf(run.state), "data-run-id": run.dag_run_id },
      el("span", { class: "mark-icon", "aria-hidden": "true", text: STATE_ICONS[stateOf(run.state)] || "" }))))),
    el("span", { class: `run-label text-${stateOf(latest.state)}`, text: stateLabel(latest.state), title: `latest run: ${describe(latest)}` }));
}

export function legend() {
  const states = ["queued", "scheduled", "running", "success", "failed", "up_for_retry", "upstream_failed", "skipped", "none"];
  return el("ul", { class: "legend", "aria-label": "States" }, states.map((s) => el("li", {},
    el("span", { class: `legend-swatch state-bg-${s}`, "aria-hidden": "true", text: STATE_ICONS[s] }), stateLabel(s === "none" ? null : s))));
}

/** Submit a DAG file (POST /api/v2/dagFiles); the API parses it and answers with its DAGs. */
export function openUploadDialog(onDone) {
  const file = el("input", { type: "file", id: "dag-file", accept: ".py,text/x-python", "aria-describedby": "dag-file-hint" });
  const error = el("p", { class: "form-error", id: "upload-error", role: "alert", hidden: true });
  openDialog("Submit a DAG file", el("form", { class: "form" },
    el("div", { class: "field" }, el("label", { for: "dag-file", text: "DAG file (.py)" }), file,
      el("span", { class: "hint", id: "dag-file-hint", text: "Parsed by the API; a new version of each DAG it defines is published." })), error), [
    { label: "Cancel" },
    { label: "Submit", id: "upload-submit", kind: "primary", onClick: async (close) => {
      error.hidden = true;
      const f = file.files[0];
      if (!f) { error.textContent = "Choose a file first."; error.hidden = false; return; }
      try {
        const { dags = [] } = await api("/api/v2/dagFiles", { method: "POST", body: { filename: f.name, content: await f.text() } });
        close();
        toast(`Submitted ${f.name}: ${dags.map((d) => d.dag_id).join(", ") || "no DAGs"}`);
        if (onDone) onDone(dags);
      } catch (err) { error.textContent = errorText(err); error.hidden = false; }
    } },
  ], { id: "upload-dialog" });
}
