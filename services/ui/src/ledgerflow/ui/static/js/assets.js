// The Assets page (GET /api/v2/assets, Airflow 3's API): every asset with its group, the
// tasks that produce it, the DAGs scheduled on it and its latest event; an asset's events
// (GET /assets/events?asset_id=) with where each came from and its extra; "Create event"
// (POST /assets/events) and "Materialize" (POST /assets/{id}/materialize), confirmed
// first. AssetEventEmitted events on the stream refresh what they name, nothing polls.
import { api, confirmAction, debounce, el, enc, errorText, fmtTime, isMissing, openDialog, session, stateBadge, toast, unavailable, fill } from "./core.js";
import { buildHash, routeState, subscribe } from "./nav.js";

const EVENTS_SHOWN = 50;

const dagLink = (dagId, runId) => el("a", { href: buildHash(["dags", dagId, "grid"], runId ? { run: runId } : {}), text: dagId });

function extraText(extra) {
  return extra && Object.keys(extra).length ? JSON.stringify(extra) : "";
}

/** Where an event came from: a task of a run, or a request through the API. */
export function eventSource(e) {
  if (e.source_dag_id) {
    const task = `${e.source_task_id || "?"}${e.source_map_index >= 0 ? `[${e.source_map_index}]` : ""}`;
    return el("span", { class: "event-source", "data-source": "task" }, "task ", el("code", { text: task }), " of ",
      dagLink(e.source_dag_id, e.source_run_id), e.source_run_id ? el("span", { class: "muted small block", text: e.source_run_id }) : null);
  }
  return el("span", { class: "event-source", "data-source": "api" },
    e.created_by ? `API, by ${e.created_by}` : "API (created from outside a task)");
}

export function renderAssets(container, parts) {
  let selectedId = parts[1] ? Number(parts[1]) : null;
  let assets = [];
  let stopped = false;
  const count = el("span", { class: "muted", id: "assets-count" });
  const search = el("input", { type: "search", id: "asset-search", placeholder: "Search assets", "aria-label": "Search assets by name" });
  const listBox = el("div", { id: "assets-list" }, el("p", { class: "muted pad", text: "Loading assets…" }));
  const detail = el("section", { class: "card asset-detail", id: "asset-detail", "aria-live": "polite", hidden: true });
  container.append(el("div", { class: "page-head" }, el("h1", { text: "Assets" }), count),
    el("div", { class: "toolbar" }, search), listBox, detail);

  const byId = (id) => assets.find((a) => a.id === id) || null;

  async function loadList() {
    try {
      const data = await api("/api/v2/assets", { query: { limit: 1000, order_by: "name", name_pattern: search.value.trim() || undefined } });
      if (stopped) return;
      assets = data.assets || [];
      count.textContent = `${data.total_entries ?? assets.length} asset${assets.length === 1 ? "" : "s"}`;
      drawList();
      if (selectedId !== null) drawDetailHead();
    } catch (err) {
      if (!stopped) fill(listBox, isMissing(err) ? unavailable("Assets", "GET /api/v2/assets") : el("p", { class: "form-error", text: errorText(err) }));
    }
  }

  function drawList() {
    if (!assets.length) {
      fill(listBox, el("div", { class: "card empty" }, el("p", { text: "No assets." }),
        el("p", { class: "muted", text: "An asset appears when a DAG names it in a task's outlets or inlets or in its schedule." })));
      return;
    }
    const rows = assets.map((a) => {
      const latest = a.last_asset_event && a.last_asset_event.timestamp;
      return el("tr", { "data-asset-id": String(a.id), "data-asset-name": a.name, class: a.id === selectedId ? "row-selected" : "" },
        el("td", {}, el("button", { type: "button", class: "link asset-name", text: a.name, "aria-label": `Show asset ${a.name}`,
          "aria-pressed": String(a.id === selectedId), onclick: () => select(a.id) }),
        a.uri && a.uri !== a.name ? el("span", { class: "muted small block mono", text: a.uri }) : null),
        el("td", {}, el("span", { class: "tag", text: a.group || "asset" })),
        el("td", {}, list((a.producing_tasks || []).map((t) => el("span", {}, dagLink(t.dag_id), ".", el("code", { text: t.task_id }))))),
        el("td", {}, list((a.scheduled_dags || []).map((d) => dagLink(d.dag_id)))),
        el("td", { class: "asset-latest", text: latest ? fmtTime(latest) : "never" }),
        el("td", { class: "col-actions" }, actions(a)));
    });
    fill(listBox, el("div", { class: "card table-card" }, el("table", { class: "table", id: "assets-table" },
      el("thead", {}, el("tr", {}, ["Asset", "Group", "Producing tasks", "Scheduled DAGs", "Latest event", ""].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows))));
  }

  function actions(a) {
    if (!session.can("user")) return null;
    return el("div", { class: "button-row", role: "group", "aria-label": `Actions for ${a.name}` },
      el("button", { type: "button", class: "button button-small", text: "Create event", "data-asset-action": "create-event",
        "aria-label": `Create an event for ${a.name}`, onclick: () => openCreateEvent(a) }),
      (a.producing_tasks || []).length ? el("button", { type: "button", class: "button button-small", text: "Materialize", "data-asset-action": "materialize",
        "aria-label": `Materialize ${a.name}`, onclick: () => materialize(a) }) : null);
  }

  function select(id) {
    selectedId = id;
    const hash = buildHash(["assets", String(id)]);
    routeState.current = hash;
    if (location.hash !== hash) history.replaceState(null, "", hash);
    drawList();
    drawDetailHead();
    loadEvents();
  }

  const eventsBody = el("div", { id: "asset-events" });
  function drawDetailHead() {
    const a = byId(selectedId);
    detail.hidden = false;
    if (!a) { fill(detail, el("p", { class: "muted", text: `No asset with id ${selectedId}.` })); return; }
    fill(detail,
      el("header", { class: "panel-title" }, el("h2", { text: a.name }), actions(a)),
      el("dl", { class: "backfill-facts small" },
        fact("URI", a.uri), fact("Group", a.group || "asset"),
        extraText(a.extra) ? fact("Extra", extraText(a.extra)) : null,
        (a.consuming_tasks || []).length ? fact("Read by", a.consuming_tasks.map((t) => `${t.dag_id}.${t.task_id}`).join(", ")) : null,
        (a.aliases || []).length ? fact("Aliases", a.aliases.map((x) => x.name).join(", ")) : null),
      el("h3", { text: "Events" }), eventsBody);
  }

  async function loadEvents() {
    if (selectedId === null) return;
    const id = selectedId;
    try {
      const { asset_events: events = [], total_entries: total } = await api("/api/v2/assets/events",
        { query: { asset_id: id, order_by: "-timestamp", limit: EVENTS_SHOWN } });
      if (stopped || id !== selectedId) return;
      if (!events.length) { fill(eventsBody, el("p", { class: "muted", id: "asset-events-empty", text: "No events yet." })); return; }
      fill(eventsBody, el("p", { class: "muted small", text: `${events.length} of ${total ?? events.length} events, newest first` }),
        el("div", { class: "table-card" }, el("table", { class: "table compact", id: "asset-events-table" },
          el("thead", {}, el("tr", {}, ["When", "Source", "Extra", "Runs it triggered"].map((h) => el("th", { scope: "col", text: h })))),
          el("tbody", {}, events.map((e) => el("tr", { "data-event-id": String(e.id) },
            el("td", {}, el("time", { datetime: e.timestamp, text: fmtTime(e.timestamp) })),
            el("td", {}, eventSource(e)),
            el("td", {}, extraText(e.extra) ? el("code", { class: "event-extra small", text: extraText(e.extra) }) : el("span", { class: "muted", text: "—" })),
            el("td", {}, list((e.created_dagruns || []).map((r) => el("span", {}, dagLink(r.dag_id, r.run_id), " ", stateBadge(r.state)))))))))));
    } catch (err) { if (!stopped) fill(eventsBody, el("p", { class: "form-error", text: errorText(err) })); }
  }

  function openCreateEvent(a) {
    const extra = el("textarea", { id: "asset-event-extra", rows: 4, class: "mono", placeholder: "{}", "aria-describedby": "asset-event-extra-hint" });
    const error = el("p", { class: "form-error", id: "asset-event-error", role: "alert", hidden: true });
    const scheduled = (a.scheduled_dags || []).map((d) => d.dag_id);
    const form = el("form", { class: "form", id: "asset-event-form", novalidate: true },
      el("p", { text: `Records that ${a.name} was updated, as if a task had done it.` }),
      el("p", { class: "muted", text: scheduled.length ? `DAGs scheduled on it may run: ${scheduled.join(", ")}.` : "No DAG is scheduled on it." }),
      el("div", { class: "field" }, el("label", { for: "asset-event-extra", text: "Extra (JSON object)" }), extra,
        el("span", { class: "hint", id: "asset-event-extra-hint", text: "e.g. {\"rows\": 42}; shown with the event and given to the runs it triggers." })),
      error);
    const submit = async (close) => {
      error.hidden = true;
      extra.removeAttribute("aria-invalid");
      let body = {};
      const raw = extra.value.trim();
      if (raw) {
        try { body = JSON.parse(raw); } catch { body = undefined; }
        if (!body || typeof body !== "object" || Array.isArray(body)) {
          extra.setAttribute("aria-invalid", "true"); extra.focus();
          error.textContent = body === undefined ? "Extra is not valid JSON." : "Extra must be a JSON object.";
          error.hidden = false;
          return;
        }
      }
      try {
        await api("/api/v2/assets/events", { method: "POST", body: { asset_id: a.id, extra: body } });
        close();
        toast(`Event created for ${a.name}`);
        if (selectedId !== a.id) select(a.id); else { loadEvents(); loadList(); }
      } catch (err) { error.textContent = errorText(err); error.hidden = false; }
    };
    const { close } = openDialog(`Create an event for ${a.name}`, form, [
      { label: "Cancel", id: "cancel" },
      { label: "Create event", id: "asset-event-submit", kind: "primary", onClick: (c) => submit(c) },
    ], { id: "asset-event-dialog" });
    form.addEventListener("submit", (e) => { e.preventDefault(); submit(close); });
    extra.focus();
  }

  async function materialize(a) {
    const dags = [...new Set((a.producing_tasks || []).map((t) => t.dag_id))];
    if (!(await confirmAction(`Materialize ${a.name}?`,
      `Triggers a run of ${dags.join(", ")}, the DAG whose task produces it.`, { confirmLabel: "Materialize" }))) return;
    try {
      const run = await api(`/api/v2/assets/${enc(a.id)}/materialize`, { method: "POST", body: {} });
      toast(`Triggered ${run.dag_id}: ${run.dag_run_id}`);
    } catch (err) { toast(`Could not materialize ${a.name}: ${errorText(err)}`, true); }
  }

  const reloadList = debounce(loadList, 200);
  const reloadEvents = debounce(loadEvents, 200);
  const unsubscribe = subscribe((evt) => {
    if (evt.type === "resync") { reloadList(); reloadEvents(); return; }
    if (evt.type === "AssetEventEmitted") {
      reloadList();
      const a = byId(selectedId);
      if (a && (evt.data.name === a.name || !evt.data.name)) reloadEvents();
    } else if (evt.type === "DagVersionPublished" || evt.type === "DagDeleted") reloadList();
    else if (selectedId !== null && /^DagRun(Queued|Succeeded|Failed)/.test(evt.type) && /^asset_triggered/.test(evt.runId || "")) reloadEvents();
  });
  search.addEventListener("input", debounce(loadList, 250));
  loadList().then(() => { if (selectedId !== null) { drawDetailHead(); loadEvents(); } });
  return {
    cleanup: () => { stopped = true; unsubscribe(); },
    update: (newParts) => {
      const id = newParts[1] ? Number(newParts[1]) : null;
      if (id !== selectedId && id !== null) select(id);
    },
  };
}

function list(nodes) {
  if (!nodes.length) return el("span", { class: "muted", text: "—" });
  return el("ul", { class: "inline-list" }, nodes.map((n) => el("li", {}, n)));
}

function fact(name, value) {
  return el("div", {}, el("dt", { text: name }), el("dd", { text: value }));
}
