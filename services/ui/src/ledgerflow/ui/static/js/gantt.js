// Gantt for the selected run: per task and attempt, time queued (light) and running
// (state colour). Attempts come from the run's event history when the API serves it,
// else from the task instances (their latest attempt).
import { api, el, enc, fmtDuration, fmtTime, isMissing, STATE_ICONS, stateLabel, stateOf, debounce, fill } from "./core.js";

/** Per (task, map index, try): {queued, start, end, state} from the run's events. */
export function attemptsFromEvents(events) {
  const out = new Map();
  for (const raw of events) {
    const e = raw.data && typeof raw.data === "object" ? { ...raw, ...raw.data } : raw;
    const type = String(e.type || e.event || "").replace(/^io\.ledgerflow\./, "");
    if (!e.task_id || !e.try_number) continue;
    const key = `${e.task_id}|${e.map_index ?? -1}|${e.try_number}`;
    const a = out.get(key) || { task_id: e.task_id, map_index: e.map_index ?? -1, try_number: e.try_number, state: "queued" };
    const at = e.at || e.time || e.when || e.timestamp;
    if (type === "TaskInstanceQueued") a.queued = e.queued_when || at;
    else if (type === "TaskAttemptStarted") { a.start = e.start_date || e.started_at || at; a.state = "running"; }
    else if (/^TaskAttempt(Succeeded|Failed|Skipped|Rescheduled)$/.test(type)) {
      a.end = e.end_date || e.finished_at || at;
      a.state = { TaskAttemptSucceeded: "success", TaskAttemptFailed: "failed", TaskAttemptSkipped: "skipped", TaskAttemptRescheduled: "up_for_reschedule" }[type];
    } else continue;
    out.set(key, a);
  }
  return [...out.values()];
}

export function renderGantt(container, model) {
  const wrap = el("div", { class: "gantt-wrap card", id: "gantt" });
  const note = el("p", { class: "muted small" });
  container.append(note, wrap);
  let history = null; // null: not asked; false: the API has no history endpoint

  async function loadHistory(runId) {
    if (history === false) return null;
    try {
      const data = await api(`${model.base}/dagRuns/${enc(runId)}/events`, { query: { limit: 1000 } });
      history = true;
      return data.events || data.event_logs || data.items || [];
    } catch (err) { if (isMissing(err)) history = false; return null; }
  }

  async function draw() {
    const run = model.currentRun;
    if (!run) { fill(wrap, el("p", { class: "muted pad", text: "No run selected." })); return; }
    const tis = [...(model.tis.get(run.dag_run_id)?.values() || [])];
    let bars;
    const events = await loadHistory(run.dag_run_id);
    if (events && events.length) {
      bars = attemptsFromEvents(events);
      note.textContent = "Every attempt, from the run's event history: light = queued, solid = running.";
    } else {
      bars = tis.filter((t) => t.queued_when || t.start_date).map((t) => ({ task_id: t.task_id, map_index: t.map_index, try_number: t.try_number,
        queued: t.queued_when, start: t.start_date, end: t.end_date, state: t.state }));
      note.textContent = "Latest attempt of each task instance: light = queued, solid = running.";
    }
    const order = new Map(model.tasks.map((t, i) => [t.task_id, i]));
    bars.sort((a, b) => (order.get(a.task_id) ?? 1e9) - (order.get(b.task_id) ?? 1e9) || a.map_index - b.map_index || a.try_number - b.try_number);
    if (!bars.length) { fill(wrap, el("p", { class: "muted pad", text: "Nothing has been queued in this run yet." })); return; }
    const now = Date.now();
    const t = (iso) => (iso ? Date.parse(iso) : null);
    const t0 = Math.min(...bars.map((b) => t(b.queued) ?? t(b.start) ?? now));
    const t1 = Math.max(...bars.map((b) => t(b.end) ?? (b.start || b.queued ? now : t0)), t0 + 1);
    const pct = (ms) => `${(((ms - t0) / (t1 - t0)) * 100).toFixed(3)}%`;
    const width = (a, b) => `${Math.max(0.3, ((b - a) / (t1 - t0)) * 100).toFixed(3)}%`;
    const rows = bars.map((b) => {
      const q = t(b.queued), s = t(b.start), e = t(b.end) ?? now;
      const st = stateOf(b.state);
      const label = `${b.task_id}${b.map_index >= 0 ? `[${b.map_index}]` : ""} attempt ${b.try_number}: ${stateLabel(b.state)}; queued ${fmtTime(b.queued)}, ${s ? `ran ${fmtDuration((e - s) / 1000)}` : "not started"}${q && s ? `, waited ${fmtDuration((s - q) / 1000)}` : ""}`;
      return el("div", { class: "gantt-row", role: "listitem", "data-task-id": b.task_id, "data-try": b.try_number },
        el("button", { type: "button", class: "gantt-name", title: label, onclick: () => model.selectTask(b.task_id, b.map_index),
          text: `${b.task_id}${b.map_index >= 0 ? `[${b.map_index}]` : ""}${b.try_number > 1 ? ` #${b.try_number}` : ""}` }),
        el("div", { class: "gantt-track", title: label, "aria-label": label },
          q ? el("span", { class: "gantt-queued", style: `left:${pct(q)};width:${width(q, s ?? e)}` }) : null,
          s ? el("span", { class: `gantt-run state-bg-${st}`, style: `left:${pct(s)};width:${width(s, e)}` },
            el("span", { class: "gantt-icon", "aria-hidden": "true", text: STATE_ICONS[st] || "" })) : null));
    });
    fill(wrap, 
      el("div", { class: "gantt-axis muted small" }, el("span", { text: fmtTime(new Date(t0).toISOString(), { withDate: false }) }),
        el("span", { text: `${fmtDuration((t1 - t0) / 1000)} in all` }), el("span", { text: fmtTime(new Date(t1).toISOString(), { withDate: false }) })),
      el("div", { class: "gantt", role: "list", "aria-label": `Gantt of run ${run.dag_run_id}` }, rows));
  }
  const redraw = debounce(draw, 150);
  draw();
  return { update: redraw };
}
