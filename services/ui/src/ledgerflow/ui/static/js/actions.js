// Actions, each confirmed first: trigger (a form generated from the DAG's params and
// validated before sending; the API validates again), pause/unpause, clear (with
// upstream/downstream/failed-only and the dry-run list), mark success/failed. Buttons
// are not shown to roles that may not use them; the API refuses them anyway.
import { api, confirmAction, el, enc, errorText, openDialog, session, stateBadge, toast, fill } from "./core.js";

// ---------------------------------------------------------------- params form
function paramType(schema, value) {
  let t = schema.type;
  if (Array.isArray(t)) t = t.find((x) => x !== "null") || t[0];
  if (t) return t;
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  if (Array.isArray(value)) return "array";
  if (value && typeof value === "object") return "object";
  return "string";
}

/** The problem with `value` for `schema` (a subset of JSON Schema the form can check), or null. */
export function checkParam(name, value, schema) {
  const nullable = Array.isArray(schema.type) && schema.type.includes("null");
  if (value === undefined || value === null || value === "") {
    return nullable || !("type" in schema) ? null : `${name} is required`;
  }
  const t = paramType(schema, value);
  if ((t === "integer" && !Number.isInteger(value)) || (t === "number" && typeof value !== "number")) return `${name} must be ${t === "integer" ? "an integer" : "a number"}`;
  if (t === "string" && typeof value !== "string") return `${name} must be text`;
  if (t === "boolean" && typeof value !== "boolean") return `${name} must be true or false`;
  if (t === "array" && !Array.isArray(value)) return `${name} must be a list`;
  if (t === "object" && (typeof value !== "object" || Array.isArray(value))) return `${name} must be an object`;
  if (schema.enum && !schema.enum.some((v) => JSON.stringify(v) === JSON.stringify(value))) return `${name} must be one of ${schema.enum.join(", ")}`;
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) return `${name} must be at least ${schema.minimum}`;
    if (schema.maximum !== undefined && value > schema.maximum) return `${name} must be at most ${schema.maximum}`;
  }
  if (typeof value === "string") {
    if (schema.minLength !== undefined && value.length < schema.minLength) return `${name} must have at least ${schema.minLength} characters`;
    if (schema.maxLength !== undefined && value.length > schema.maxLength) return `${name} must have at most ${schema.maxLength} characters`;
    if (schema.pattern && !new RegExp(schema.pattern).test(value)) return `${name} must match ${schema.pattern}`;
  }
  return null;
}

function paramField(name, param) {
  const schema = param.schema || {};
  const value = param.value;
  const t = paramType(schema, value);
  const id = `param-${name}`;
  let input;
  if (schema.enum) {
    input = el("select", { id, name }, schema.enum.map((v) => el("option", { value: JSON.stringify(v), text: String(v), selected: JSON.stringify(v) === JSON.stringify(value) })));
    input.read = () => JSON.parse(input.value);
  } else if (t === "boolean") {
    input = el("input", { id, name, type: "checkbox", checked: Boolean(value) });
    input.read = () => input.checked;
  } else if (t === "integer" || t === "number") {
    input = el("input", { id, name, type: "text", inputmode: "decimal", value: value ?? "" });
    input.read = () => {
      const raw = input.value.trim();
      if (raw === "") return null;
      const n = Number(raw);
      return Number.isNaN(n) ? raw : n;
    };
  } else if (t === "array" || t === "object") {
    input = el("textarea", { id, name, rows: 3, class: "mono", value: value === null || value === undefined ? "" : JSON.stringify(value, null, 2) });
    input.read = () => {
      const raw = input.value.trim();
      if (!raw) return null;
      try { return JSON.parse(raw); } catch { throw new Error(`${name}: not valid JSON`); }
    };
  } else {
    input = el("input", { id, name, type: "text", value: value ?? "" });
    input.read = () => input.value;
  }
  const hint = [param.description || schema.description, schema.enum ? null : t !== "string" ? t : null].filter(Boolean).join(" · ");
  return { name, schema, input, node: el("div", { class: "field" },
    el("label", { for: id, text: schema.title || name }), input, hint ? el("span", { class: "hint", text: hint }) : null) };
}

/** The trigger dialog; `onTriggered(run)` after the API accepted the run. */
export async function openTriggerDialog(dagId, { onTriggered } = {}) {
  let details = {};
  try { details = await api(`/api/v2/dags/${enc(dagId)}/details`); } catch (err) { toast(`Cannot read ${dagId}'s params: ${errorText(err)}`, true); }
  const params = details.params || {};
  const fields = Object.entries(params).map(([name, p]) => paramField(name, p || {}));
  const confBox = el("textarea", { id: "trigger-conf", rows: 4, class: "mono", "aria-describedby": "trigger-conf-hint", value: "" });
  const runIdInput = el("input", { id: "trigger-run-id", type: "text", placeholder: "generated when empty" });
  const dateInput = el("input", { id: "trigger-logical-date", type: "datetime-local", step: 1 });
  const error = el("p", { class: "form-error", id: "trigger-error", role: "alert", hidden: true });
  const form = el("form", { class: "form", id: "trigger-form", novalidate: true },
    fields.length ? el("fieldset", {}, el("legend", { text: "Params" }), fields.map((f) => f.node))
      : el("p", { class: "muted", text: "This DAG declares no params." }),
    el("details", { open: fields.length === 0 },
      el("summary", { text: "Advanced: run id, logical date, extra conf" }),
      el("div", { class: "field" }, el("label", { for: "trigger-run-id", text: "Run id" }), runIdInput),
      el("div", { class: "field" }, el("label", { for: "trigger-logical-date", text: "Logical date" }), dateInput),
      el("div", { class: "field" }, el("label", { for: "trigger-conf", text: "Conf (JSON object, merged over the params)" }), confBox,
        el("span", { class: "hint", id: "trigger-conf-hint", text: "e.g. {\"key\": \"value\"}" }))),
    error);

  const showError = (message) => { error.textContent = message; error.hidden = false; };
  const submit = async (close) => {
    error.hidden = true;
    const conf = {};
    try {
      for (const f of fields) {
        const value = f.input.read();
        const problem = checkParam(f.name, value, f.schema);
        f.input.setAttribute("aria-invalid", String(Boolean(problem)));
        if (problem) { f.input.focus(); return showError(`Invalid input for param ${f.name}: ${problem}`); }
        if (value !== null && value !== "") conf[f.name] = value;
      }
      const extra = confBox.value.trim();
      if (extra) {
        let parsed;
        try { parsed = JSON.parse(extra); } catch { confBox.focus(); return showError("Conf is not valid JSON."); }
        if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return showError("Conf must be a JSON object.");
        Object.assign(conf, parsed);
        for (const f of fields) {
          if (!(f.name in parsed)) continue;
          const problem = checkParam(f.name, parsed[f.name], f.schema);
          if (problem) return showError(`Invalid input for param ${f.name}: ${problem}`);
        }
      }
    } catch (err) { return showError(err.message); }
    const body = { conf, logical_date: dateInput.value ? new Date(dateInput.value).toISOString() : new Date().toISOString() };
    if (runIdInput.value.trim()) body.dag_run_id = runIdInput.value.trim();
    try {
      const run = await api(`/api/v2/dags/${enc(dagId)}/dagRuns`, { method: "POST", body });
      close();
      toast(`Triggered ${dagId}: ${run.dag_run_id}`);
      if (onTriggered) onTriggered(run);
    } catch (err) { showError(errorText(err)); }
  };
  const { dialog, close } = openDialog(`Trigger ${dagId}`, form, [
    { label: "Cancel", id: "cancel" },
    { label: "Trigger", id: "trigger-submit", kind: "primary", onClick: (c) => submit(c) },
  ], { id: "trigger-dialog" });
  form.addEventListener("submit", (e) => { e.preventDefault(); submit(close); });
  (fields[0]?.input || runIdInput).focus();
  return dialog;
}

// ---------------------------------------------------------------- pause
export async function setPaused(dagId, paused) {
  const ok = await confirmAction(paused ? `Pause ${dagId}?` : `Unpause ${dagId}?`,
    paused ? "No new runs will be scheduled until it is unpaused." : "The scheduler will start creating runs on its schedule.",
    { confirmLabel: paused ? "Pause" : "Unpause" });
  if (!ok) return false;
  try {
    await api(`/api/v2/dags/${enc(dagId)}`, { method: "PATCH", body: { is_paused: paused } });
    toast(`${dagId} ${paused ? "paused" : "unpaused"}`);
    return true;
  } catch (err) { toast(`Could not ${paused ? "pause" : "unpause"} ${dagId}: ${errorText(err)}`, true); return false; }
}

// ---------------------------------------------------------------- clear and mark
function tiList(tis) {
  if (!tis.length) return el("p", { class: "muted", text: "Nothing would change." });
  return el("ul", { class: "ti-list", "aria-label": "Affected task instances" }, tis.map((ti) => el("li", {},
    el("code", { text: `${ti.task_id}${ti.map_index >= 0 ? `[${ti.map_index}]` : ""}` }), " ", el("span", { class: "muted small", text: ti.dag_run_id }), " ", stateBadge(ti.state))));
}

function checkbox(id, label, checked = false) {
  const input = el("input", { type: "checkbox", id, checked });
  return { input, node: el("label", { class: "check", for: id }, input, el("span", { text: label })) };
}

/** Clear a task instance (with options) after showing what it would clear. */
export async function openClearDialog(model, runId, taskId, mapIndex) {
  const down = checkbox("clear-downstream", "Downstream", true);
  const up = checkbox("clear-upstream", "Upstream");
  const failed = checkbox("clear-only-failed", "Only failed");
  const preview = el("div", { class: "preview", id: "clear-preview", "aria-live": "polite" }, el("p", { class: "muted", text: "Loading what would be cleared…" }));
  const body = (dryRun) => ({
    dry_run: dryRun, dag_run_id: runId, task_ids: [mapIndex >= 0 ? [taskId, mapIndex] : taskId],
    include_downstream: down.input.checked, include_upstream: up.input.checked, only_failed: failed.input.checked,
  });
  const refresh = async () => {
    try {
      const { task_instances: tis = [] } = await api(`${model.base}/clearTaskInstances`, { method: "POST", body: body(true) });
      fill(preview, el("p", { text: `${tis.length} task instance${tis.length === 1 ? "" : "s"} will be cleared:` }), tiList(tis));
    } catch (err) { fill(preview, el("p", { class: "form-error", text: errorText(err) })); }
  };
  for (const c of [down, up, failed]) c.input.addEventListener("change", refresh);
  openDialog(`Clear ${taskId}${mapIndex >= 0 ? `[${mapIndex}]` : ""}`, el("div", {},
    el("p", { text: "Clearing sets the task instances back to no status, so the scheduler runs them again." }),
    el("div", { class: "checks" }, down.node, up.node, failed.node), preview), [
    { label: "Cancel", id: "cancel" },
    { label: "Clear", id: "clear-confirm", kind: "danger", onClick: async (close) => {
      try {
        await api(`${model.base}/clearTaskInstances`, { method: "POST", body: body(false) });
        close(); toast(`Cleared ${taskId}`);
      } catch (err) { toast(`Could not clear: ${errorText(err)}`, true); }
    } },
  ], { id: "clear-dialog" });
  refresh();
}

/** Mark a task instance success or failed, after showing what it would change. */
export async function openMarkDialog(model, runId, taskId, mapIndex, state) {
  const down = checkbox("mark-downstream", "Downstream");
  const up = checkbox("mark-upstream", "Upstream");
  const preview = el("div", { class: "preview", "aria-live": "polite" });
  const path = `${model.base}/dagRuns/${enc(runId)}/taskInstances/${enc(taskId)}${mapIndex >= 0 ? `/${mapIndex}` : ""}`;
  const body = () => ({ new_state: state, include_downstream: down.input.checked, include_upstream: up.input.checked });
  const refresh = async () => {
    try {
      const { task_instances: tis = [] } = await api(`${path}/dry_run`, { method: "PATCH", body: body() });
      fill(preview, el("p", { text: `${tis.length} task instance${tis.length === 1 ? "" : "s"} will be marked ${state}:` }), tiList(tis));
    } catch (err) { fill(preview, el("p", { class: "form-error", text: errorText(err) })); }
  };
  for (const c of [down, up]) c.input.addEventListener("change", refresh);
  openDialog(`Mark ${taskId} ${state}`, el("div", {}, el("div", { class: "checks" }, down.node, up.node), preview), [
    { label: "Cancel", id: "cancel" },
    { label: `Mark ${state}`, id: "mark-confirm", kind: state === "failed" ? "danger" : "primary", onClick: async (close) => {
      try { await api(path, { method: "PATCH", body: body() }); close(); toast(`Marked ${taskId} ${state}`); }
      catch (err) { toast(`Could not mark: ${errorText(err)}`, true); }
    } },
  ], { id: "mark-dialog" });
  refresh();
}

/** Buttons for the selected run: clear it, mark it success or failed. */
export function runActions(model, run) {
  if (!session.can("user")) return el("span", { class: "muted small", text: "read-only (viewer)" });
  const runPath = `${model.base}/dagRuns/${enc(run.dag_run_id)}`;
  const clearRun = async (onlyFailed) => {
    let tis = [];
    try { ({ task_instances: tis = [] } = await api(`${runPath}/clear`, { method: "POST", body: { dry_run: true, only_failed: onlyFailed } })); }
    catch (err) { toast(`Cannot clear: ${errorText(err)}`, true); return; }
    if (!(await confirmAction(`Clear run ${run.dag_run_id}?`, `${tis.length} task instance(s) will run again.`, { confirmLabel: "Clear", danger: true, extra: tiList(tis) }))) return;
    try { await api(`${runPath}/clear`, { method: "POST", body: { dry_run: false, only_failed: onlyFailed } }); toast("Run cleared"); }
    catch (err) { toast(`Could not clear: ${errorText(err)}`, true); }
  };
  const markRun = async (state) => {
    if (!(await confirmAction(`Mark run ${state}?`, `Unfinished task instances of ${run.dag_run_id} follow; running attempts are stopped.`, { confirmLabel: `Mark ${state}`, danger: state === "failed" }))) return;
    try { await api(runPath, { method: "PATCH", body: { state } }); toast(`Run marked ${state}`); }
    catch (err) { toast(`Could not mark the run: ${errorText(err)}`, true); }
  };
  return el("div", { class: "button-row", role: "group", "aria-label": "Run actions" },
    el("button", { type: "button", class: "button button-small", text: "Clear run", id: "run-clear", onclick: () => clearRun(false) }),
    el("button", { type: "button", class: "button button-small", text: "Clear failed", id: "run-clear-failed", onclick: () => clearRun(true) }),
    el("button", { type: "button", class: "button button-small", text: "Mark success", id: "run-mark-success", onclick: () => markRun("success") }),
    el("button", { type: "button", class: "button button-small", text: "Mark failed", id: "run-mark-failed", onclick: () => markRun("failed") }));
}
