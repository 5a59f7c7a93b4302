// Backfills (POST/GET /api/v2/backfills, Airflow 3's API): the dialog that shows, by a dry
// run, the logical dates a backfill would run before creating it, and the DAG page's
// Backfills tab with each backfill's progress and pause/unpause/cancel. Progress follows
// the event stream (Backfill* events and the backfill's runs), never a timer.
import { api, confirmAction, debounce, el, enc, errorText, fmtTime, fmtUtc, openDialog, session, stateLabel, stateOf, STATE_ICONS, toast, fill } from "./core.js";
import { buildHash, subscribe } from "./nav.js";
import { checkParam } from "./actions.js";

const REPROCESS = [
  ["none", "Missing runs only", "Dates that already have a run are skipped."],
  ["failed", "Missing and failed runs", "Dates whose run failed are run again."],
  ["completed", "All runs", "Every date runs again, whatever its run did."],
];

/** "2026-01-02T00:00" (an <input type=datetime-local> value, read as UTC) as ISO, or null. */
export function utcInput(value) {
  if (!value) return null;
  const d = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(value) ? value : `${value}Z`);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}
const toInput = (d) => d.toISOString().slice(0, 16);

/** Whether the DAG has a schedule a backfill can follow. */
export function canBackfill(dag) {
  const s = dag && (dag.timetable_summary ?? dag.schedule_interval);
  return Boolean(s) && !["None", "null", "@once", "@continuous"].includes(String(s)) && !String(s).startsWith("Asset");
}

/** The backfill dialog; `onCreated(backfill)` once the API accepted it. */
export function openBackfillDialog(model, { onCreated } = {}) {
  const dag = model.dag || {};
  const today = new Date(); today.setUTCHours(0, 0, 0, 0);
  const from = el("input", { id: "backfill-from", type: "datetime-local", required: true, value: toInput(new Date(today.getTime() - 3 * 86400000)) });
  const to = el("input", { id: "backfill-to", type: "datetime-local", required: true, value: toInput(today) });
  const reprocess = el("select", { id: "backfill-reprocess", "aria-describedby": "backfill-reprocess-hint" },
    REPROCESS.map(([v, label]) => el("option", { value: v, text: label })));
  const reprocessHint = el("span", { class: "hint", id: "backfill-reprocess-hint", text: REPROCESS[0][2] });
  const maxActive = el("input", { id: "backfill-max-active", type: "number", min: 1, max: 10000, step: 1, value: String(Math.min(dag.max_active_runs || 10, 10)) });
  const backwards = el("input", { id: "backfill-backwards", type: "checkbox" });
  const conf = el("textarea", { id: "backfill-conf", rows: 3, class: "mono", placeholder: "{}", "aria-describedby": "backfill-conf-hint" });
  const error = el("p", { class: "form-error", id: "backfill-error", role: "alert", hidden: true });
  const preview = el("div", { class: "preview", id: "backfill-preview", "aria-live": "polite" });
  const form = el("form", { class: "form", id: "backfill-form", novalidate: true },
    el("p", { class: "muted", text: `Runs ${model.dagId} for every logical date of its schedule (${dag.timetable_description || dag.timetable_summary || "none"}) between the two dates. Dates are UTC.` }),
    el("div", { class: "field-row" },
      el("div", { class: "field" }, el("label", { for: "backfill-from", text: "From (UTC)" }), from),
      el("div", { class: "field" }, el("label", { for: "backfill-to", text: "To (UTC)" }), to)),
    el("div", { class: "field" }, el("label", { for: "backfill-reprocess", text: "Reprocess behaviour" }), reprocess, reprocessHint),
    el("div", { class: "field-row" },
      el("div", { class: "field" }, el("label", { for: "backfill-max-active", text: "Max active runs" }), maxActive),
      el("label", { class: "check", for: "backfill-backwards" }, backwards, el("span", { text: "Run backwards (newest date first)" }))),
    el("div", { class: "field" }, el("label", { for: "backfill-conf", text: "Run conf (JSON object)" }), conf,
      el("span", { class: "hint", id: "backfill-conf-hint", text: "Given to every run, checked against the DAG's params." })),
    error, preview);

  let planned = null; // the request whose dry run succeeded with at least one date
  const showError = (message, input) => {
    error.textContent = message; error.hidden = false;
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  };

  /** The request body from the form, or throws an Error naming the bad field. */
  function read() {
    for (const i of [from, to, maxActive, conf]) i.removeAttribute("aria-invalid");
    const body = { dag_id: model.dagId, from_date: utcInput(from.value), to_date: utcInput(to.value),
      reprocess_behavior: reprocess.value, max_active_runs: Number(maxActive.value), run_backwards: backwards.checked, dag_run_conf: {} };
    const bad = (message, input) => Object.assign(new Error(message), { input });
    if (!body.from_date) throw bad("From: enter a date.", from);
    if (!body.to_date) throw bad("To: enter a date.", to);
    if (body.from_date > body.to_date) throw bad("From must not be after To.", from);
    if (!Number.isInteger(body.max_active_runs) || body.max_active_runs < 1 || body.max_active_runs > 10000) {
      throw bad("Max active runs must be a whole number from 1 to 10000.", maxActive);
    }
    const raw = conf.value.trim();
    if (raw) {
      let parsed;
      try { parsed = JSON.parse(raw); } catch { throw bad("Run conf is not valid JSON.", conf); }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw bad("Run conf must be a JSON object.", conf);
      const params = dag.params || {};
      for (const [name, value] of Object.entries(parsed)) {
        const problem = name in params ? checkParam(name, value, (params[name] || {}).schema || {}) : null;
        if (problem) throw bad(`Invalid input for param ${name}: ${problem}`, conf);
      }
      body.dag_run_conf = parsed;
    }
    return body;
  }

  let submit = null;
  const dryRun = debounce(async () => {
    error.hidden = true;
    planned = null;
    if (submit) submit.disabled = true;
    let body;
    try { body = read(); } catch (err) { fill(preview); showError(err.message); return; }
    fill(preview, el("p", { class: "muted", text: "Working out the dates…" }));
    const key = JSON.stringify(body);
    try {
      const { backfills: dates = [], total_entries: total } = await api("/api/v2/backfills/dry_run", { method: "POST", body });
      if (key !== JSON.stringify(safeRead())) return; // the form changed meanwhile
      if (!dates.length) { fill(preview, el("p", { class: "muted", id: "backfill-nothing", text: "No logical date in this range needs a run." })); return; }
      planned = body;
      if (submit) submit.disabled = false;
      fill(preview,
        el("p", { text: `${total ?? dates.length} run${dates.length === 1 ? "" : "s"} will be created or re-run, in this order:` }),
        el("ol", { class: "date-list", id: "backfill-dates", "aria-label": "Logical dates to run" },
          dates.map((d) => el("li", {}, el("time", { datetime: d.logical_date, text: fmtUtc(d.logical_date) })))));
    } catch (err) {
      fill(preview);
      showError(errorText(err));
    }
  }, 250);
  const safeRead = () => { try { return read(); } catch { return null; } };

  reprocess.addEventListener("change", () => { reprocessHint.textContent = REPROCESS.find((r) => r[0] === reprocess.value)[2]; });
  // A change of the request voids the dates shown until the new dry run answers (a
  // "change" event on blur with the same values, e.g. when the button is clicked, does not).
  const changed = () => {
    const now = safeRead();
    if (planned && now && JSON.stringify(now) === JSON.stringify(planned)) return;
    planned = null;
    if (submit) submit.disabled = true;
    dryRun();
  };
  for (const input of [from, to, reprocess, maxActive, backwards, conf]) {
    input.addEventListener("input", changed);
    input.addEventListener("change", changed);
  }

  const create = async (close) => {
    let body;
    try { body = read(); } catch (err) { return showError(err.message, err.input); }
    if (!planned || JSON.stringify(planned) !== JSON.stringify(body)) {
      changed();
      setTimeout(() => { if (!planned) submit.disabled = true; }, 0); // the dialog re-enables it on return
      return showError("Check the dates it will run first (the list below), then create it.");
    }
    try {
      const backfill = await api("/api/v2/backfills", { method: "POST", body });
      close();
      toast(`Backfill ${backfill.id} of ${model.dagId} created`);
      if (onCreated) onCreated(backfill);
    } catch (err) { showError(errorText(err)); }
  };
  const { dialog, close } = openDialog(`Backfill ${model.dagId}`, form, [
    { label: "Cancel", id: "cancel" },
    { label: "Create backfill", id: "backfill-submit", kind: "primary", onClick: (c) => create(c) },
  ], { id: "backfill-dialog", wide: true });
  submit = dialog.querySelector('[data-action="backfill-submit"]');
  submit.disabled = true;
  form.addEventListener("submit", (e) => { e.preventDefault(); create(close); });
  from.focus();
  dryRun();
  return dialog;
}

// ---------------------------------------------------------------- the Backfills tab
export function backfillStatus(b) {
  if (b.cancelled) return { key: "cancelled", icon: "✕", label: "cancelled" };
  if (b.completed_at) return { key: "completed", icon: "✓", label: "completed" };
  if (b.is_paused) return { key: "paused", icon: "⏸", label: "paused" };
  return { key: "running", icon: "▶", label: "running" };
}

const DONE = new Set(["success", "failed"]);

function progress(b) {
  const runs = (b.dag_runs || []).filter((r) => r.action !== "skip");
  const done = runs.filter((r) => DONE.has(r.state)).length;
  const failed = runs.filter((r) => r.state === "failed").length;
  return { runs, done, failed, skipped: (b.dag_runs || []).length - runs.length };
}

export function renderBackfills(container, model) {
  const body = el("div", { id: "backfills" }, el("p", { class: "muted pad", text: "Loading backfills…" }));
  container.append(body);
  let stopped = false;
  let anyActive = true;

  async function change(b, action) {
    if (action === "cancel" && !(await confirmAction(`Cancel backfill ${b.id}?`,
      "It creates no more runs; its runs that have not started are marked failed. Running ones finish.", { confirmLabel: "Cancel backfill", danger: true }))) return;
    try {
      await api(`/api/v2/backfills/${enc(b.id)}/${action}`, { method: "PUT" });
      toast(`Backfill ${b.id}: ${action === "cancel" ? "cancelled" : `${action}d`}`);
    } catch (err) { toast(`Could not ${action} backfill ${b.id}: ${errorText(err)}`, true); }
  }

  function card(b) {
    const status = backfillStatus(b);
    const p = progress(b);
    const pct = p.runs.length ? Math.round((100 * p.done) / p.runs.length) : 0;
    const active = !b.completed_at;
    const buttons = session.can("user") && active ? el("div", { class: "button-row", role: "group", "aria-label": `Backfill ${b.id} actions` },
      b.is_paused
        ? el("button", { type: "button", class: "button button-small", text: "Unpause", "data-backfill-action": "unpause", onclick: () => change(b, "unpause") })
        : el("button", { type: "button", class: "button button-small", text: "Pause", "data-backfill-action": "pause", onclick: () => change(b, "pause") }),
      el("button", { type: "button", class: "button button-small button-danger", text: "Cancel", "data-backfill-action": "cancel", onclick: () => change(b, "cancel") }))
      : null;
    const label = `${p.done} of ${p.runs.length} runs finished${p.failed ? `, ${p.failed} failed` : ""}${p.skipped ? `, ${p.skipped} skipped` : ""}`;
    return el("section", { class: "card backfill", "data-backfill-id": String(b.id), "data-status": status.key, "aria-label": `Backfill ${b.id}` },
      el("header", { class: "backfill-head" },
        el("h3", { text: `Backfill ${b.id}` }),
        el("span", { class: `badge backfill-status backfill-${status.key}` }, el("span", { "aria-hidden": "true", text: status.icon }), el("span", { text: status.label })),
        el("span", { class: "muted small", text: `${fmtUtc(b.from_date)} → ${fmtUtc(b.to_date)}` }),
        buttons),
      el("div", { class: "backfill-progress" },
        el("progress", { max: 100, value: pct, "aria-label": `Backfill ${b.id} progress` }),
        el("span", { class: "small backfill-progress-text", text: label })),
      p.runs.length || p.skipped ? el("ul", { class: "marks backfill-marks", "aria-label": `Backfill ${b.id} logical dates` }, (b.dag_runs || []).map((r) => {
        const s = r.action === "skip" ? "skipped" : stateOf(r.state);
        const text = `${fmtUtc(r.logical_date)}: ${r.action === "skip" ? `skipped (${r.exception_reason || "has a run"})` : `${r.action === "rerun" ? "re-run, " : ""}${stateLabel(r.state)}`}`;
        const mark = r.dag_run_id && r.action !== "skip"
          ? el("a", { class: `mark state-bg-${s}`, href: buildHash(["dags", model.dagId, "grid"], { run: r.dag_run_id }), title: text, "aria-label": text, "data-state": s, "data-run-id": r.dag_run_id },
            el("span", { class: "mark-icon", "aria-hidden": "true", text: STATE_ICONS[s] || "" }))
          : el("span", { class: `mark state-bg-${s}`, title: text, "aria-label": text, "data-state": s, role: "img" },
            el("span", { class: "mark-icon", "aria-hidden": "true", text: STATE_ICONS[s] || "" }));
        return el("li", {}, mark);
      })) : null,
      el("dl", { class: "backfill-facts small" },
        fact("Reprocess", (REPROCESS.find((r) => r[0] === b.reprocess_behavior) || [null, b.reprocess_behavior])[1]),
        fact("Max active runs", String(b.max_active_runs)),
        fact("Order", b.run_backwards ? "newest first" : "oldest first"),
        Object.keys(b.dag_run_conf || {}).length ? fact("Conf", JSON.stringify(b.dag_run_conf)) : null,
        fact("Created", `${fmtTime(b.created_at)}${b.triggering_user_name ? ` by ${b.triggering_user_name}` : ""}`),
        b.completed_at ? fact("Completed", fmtTime(b.completed_at)) : null));
  }

  async function load() {
    try {
      const { backfills: list = [] } = await api("/api/v2/backfills", { query: { dag_id: model.dagId, order_by: "-id", limit: 25 } });
      // Each backfill's dates and runs (GET /backfills/{id}): the active ones and the newest few.
      const full = await Promise.all(list.map((b, i) => (!b.completed_at || i < 10
        ? api(`/api/v2/backfills/${enc(b.id)}`).catch(() => b) : Promise.resolve(b))));
      if (stopped) return;
      anyActive = full.some((b) => !b.completed_at);
      const head = el("div", { class: "toolbar" }, el("span", { class: "muted small", id: "backfills-count", text: `${full.length} backfill${full.length === 1 ? "" : "s"}` }),
        session.can("user") && canBackfill(model.dag) ? el("button", { type: "button", class: "button button-small", text: "New backfill…",
          onclick: () => openBackfillDialog(model) }) : null);
      fill(body, head, full.length ? full.map(card)
        : el("div", { class: "card empty" }, el("p", { text: "No backfills yet." }),
          el("p", { class: "muted", text: canBackfill(model.dag) ? "A backfill runs the DAG for past intervals of its schedule." : "This DAG has no schedule, so it cannot be backfilled." })));
    } catch (err) { if (!stopped) fill(body, el("p", { class: "form-error", text: `Cannot load backfills: ${errorText(err)}` })); }
  }
  const reload = debounce(load, 250);
  // Backfill events carry the DAG id but no run id: the DAG page leaves them to us.
  const unsubscribe = subscribe((evt) => {
    if (evt.type === "resync" || (evt.dagId === model.dagId && /Backfill/.test(evt.type))) reload();
  });
  load();
  return {
    // A run changed: only an active backfill's progress can have moved.
    update: (what) => { if (what !== "selection" && anyActive) reload(); },
    cleanup: () => { stopped = true; unsubscribe(); },
  };
}

function fact(name, value) {
  return el("div", {}, el("dt", { text: name }), el("dd", { text: value }));
}
