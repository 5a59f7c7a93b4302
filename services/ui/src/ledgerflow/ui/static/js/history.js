// History: the selected run's event timeline (who, what, when) and a slider that shows
// the run as it was at any earlier event, read from the API with ?as_of=<sequence>.
import { api, debounce, el, enc, errorText, fmtTime, isMissing, stateBadge, unavailable, fill } from "./core.js";

const WHO = ["user", "triggered_by", "requested_by", "changed_by", "submitted_by", "set_by", "deleted_by", "cleared_by", "marked_by", "by", "created_by", "hostname"];

function flat(e) {
  return e.data && typeof e.data === "object" ? { ...e.data, ...e, data: e.data } : e;
}
const typeOf = (e) => String(e.type || e.event || e.data?.type || "").replace(/^io\.ledgerflow\./, "");
const positionOf = (e) => e.sequence ?? e.position ?? e.offset ?? e.event_log_id ?? e.id ?? e.time;
const whenOf = (e) => e.time || e.when || e.at || e.timestamp || e.data?.at;
function whoOf(e) {
  const f = flat(e);
  for (const k of WHO) if (f[k]) return k === "hostname" ? `executor on ${f[k]}` : f[k];
  const source = e.source || "";
  return source.replace(/^ledgerflow\//, "") || "";
}
function whatOf(e) {
  const f = flat(e);
  const task = f.task_id ? `${f.task_id}${f.map_index >= 0 ? `[${f.map_index}]` : ""}${f.try_number ? ` #${f.try_number}` : ""}` : "";
  return [typeOf(e), task].filter(Boolean).join(" · ");
}

export function renderHistory(container, model) {
  const box = el("div", { class: "history", id: "history" });
  container.append(box);
  let events = [];
  let runId = null;

  async function load() {
    const run = model.currentRun;
    if (!run) { fill(box, el("p", { class: "muted", text: "No run selected." })); return; }
    runId = run.dag_run_id;
    try {
      const data = await api(`${model.base}/dagRuns/${enc(runId)}/events`, { query: { limit: 1000 } });
      events = data.events || data.items || data.event_logs || [];
    } catch (err) {
      fill(box, isMissing(err) ? unavailable("The run's history", "GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/events")
        : el("p", { class: "form-error", text: errorText(err) }));
      return;
    }
    draw();
  }

  function draw() {
    if (!events.length) { fill(box, el("p", { class: "muted", text: "No events for this run yet." })); return; }
    const slider = el("input", { type: "range", id: "history-slider", min: 0, max: events.length - 1, value: events.length - 1, step: 1,
      "aria-label": "Show the run as it was after event", "aria-valuetext": "" });
    const at = el("p", { class: "history-at", id: "history-at", "aria-live": "polite" });
    const snapshot = el("div", { class: "card snapshot", id: "history-snapshot" });
    const list = el("ol", { class: "timeline card", id: "history-events" }, events.map((e, i) => el("li", { "data-index": i },
      el("button", { type: "button", class: "timeline-item", onclick: () => { slider.value = i; pick(); } },
        el("time", { datetime: whenOf(e) || "", title: fmtTime(whenOf(e)), text: fmtTime(whenOf(e), { withDate: false }) }),
        el("span", { class: "timeline-what", text: whatOf(e) }),
        el("span", { class: "muted small", text: whoOf(e) ? `by ${whoOf(e)}` : "" })))));
    const pick = debounce(async () => {
      const i = Number(slider.value);
      const e = events[i];
      for (const li of list.children) li.classList.toggle("timeline-current", Number(li.dataset.index) === i);
      slider.setAttribute("aria-valuetext", `${i + 1} of ${events.length}: ${whatOf(e)}`);
      at.textContent = `As of event ${i + 1} of ${events.length}: ${whatOf(e)} at ${fmtTime(whenOf(e))}`;
      const asOf = positionOf(e);
      try {
        const q = { as_of: asOf };
        const [run, { task_instances: tis = [] }] = await Promise.all([
          api(`${model.base}/dagRuns/${enc(runId)}`, { query: q }),
          api(`${model.base}/dagRuns/${enc(runId)}/taskInstances`, { query: { ...q, limit: 1000 } }),
        ]);
        fill(snapshot, el("p", {}, el("strong", { text: "Run " }), stateBadge(run.state)),
          el("table", { class: "table compact" }, el("tbody", {}, tis.map((t) => el("tr", { "data-task-id": t.task_id },
            el("td", { text: `${t.task_id}${t.map_index >= 0 ? `[${t.map_index}]` : ""}` }), el("td", {}, stateBadge(t.state)),
            el("td", { class: "muted small", text: `attempt ${t.try_number}` }))))));
      } catch (err) { fill(snapshot, el("p", { class: "form-error", text: `Cannot read the run as of that event: ${errorText(err)}` })); }
    }, 120);
    slider.addEventListener("input", pick);
    fill(box, el("div", { class: "history-controls" }, el("label", { for: "history-slider", text: "Replay" }), slider), at,
      el("div", { class: "history-cols" }, list, snapshot));
    pick();
  }

  load();
  // New events of this run extend the timeline only while the slider is at its end, so
  // scrubbing through the past is never interrupted.
  const following = () => { const s = box.querySelector("#history-slider"); return !s || Number(s.value) === Number(s.max); };
  const reload = debounce(load, 400);
  return { update: (what) => { if (what === "selection" || (what === runId && following())) reload(); } };
}
