// Grid: runs as columns (oldest left), tasks as rows. Task groups (dotted task ids,
// Airflow's group_id.task_id) are collapsible rows with the combined state of their
// tasks; a mapped task shows its count. Each cell is a button: colour, icon and an
// accessible label; clicking it opens the task instance panel.
import { el, fmtDuration, fmtInterval, fmtUtc, runTypeInfo, secondsBetween, STATE_ICONS, stateLabel, stateOf, fill } from "./core.js";

const PRIORITY = ["failed", "upstream_failed", "up_for_retry", "up_for_reschedule", "running", "restarting",
  "deferred", "queued", "scheduled", "none", "skipped", "success", "removed"];

/** One state standing for several (a group, or a mapped task's indexes). */
export function combinedState(states) {
  if (states.length === 0) return null;
  const s = states.map(stateOf);
  if (s.every((x) => x === "success" || x === "skipped")) return s.includes("success") ? "success" : "skipped";
  const done = s.filter((x) => x !== "none");
  if (done.length && done.length < s.length && done.every((x) => x === "success" || x === "skipped")) return "running";
  return PRIORITY.find((p) => s.includes(p)) || "none";
}

/** Task ids as a tree: groups from dotted prefixes, in the API's order. */
export function taskTree(tasks) {
  const root = { id: "", children: [], isGroup: true };
  const groups = new Map([["", root]]);
  const groupOf = (id) => {
    if (groups.has(id)) return groups.get(id);
    const parentId = id.includes(".") ? id.slice(0, id.lastIndexOf(".")) : "";
    const node = { id, label: id.slice(id.lastIndexOf(".") + 1), children: [], isGroup: true, depth: 0 };
    groupOf(parentId).children.push(node);
    groups.set(id, node);
    return node;
  };
  for (const task of tasks) {
    const id = task.task_id;
    const parentId = id.includes(".") ? id.slice(0, id.lastIndexOf(".")) : "";
    groupOf(parentId).children.push({ id, label: id.slice(id.lastIndexOf(".") + 1), task, isGroup: false });
  }
  return root;
}

export function leafIds(node) {
  return node.isGroup ? node.children.flatMap(leafIds) : [node.id];
}

export function renderGrid(container, model) {
  const collapsed = new Set();
  const wrap = el("div", { class: "grid-wrap card", id: "grid" });
  container.append(wrap);

  function cellFor(run, rowNode) {
    const runId = run.dag_run_id;
    let tis, states, count = null;
    if (rowNode.isGroup) {
      tis = leafIds(rowNode).flatMap((id) => model.tisOf(runId, id));
      states = tis.map((t) => t.state);
    } else {
      tis = model.tisOf(runId, rowNode.id);
      const mapped = rowNode.task?.is_mapped || tis.some((t) => t.map_index >= 0);
      const expanded = tis.filter((t) => t.map_index >= 0);
      if (mapped) count = expanded.length;
      states = (mapped && expanded.length ? expanded : tis).map((t) => t.state);
    }
    const state = states.length ? combinedState(states) : null;
    const s = stateOf(state);
    const ti = !rowNode.isGroup && tis.length === 1 ? tis[0] : null;
    const dur = ti ? fmtDuration(ti.duration ?? (ti.start_date ? secondsBetween(ti.start_date, ti.end_date) : null)) : "";
    const label = `${rowNode.isGroup ? "group " : ""}${rowNode.id}, run ${runId}: ${stateLabel(state)}${count !== null ? `, ${count} mapped` : ""}${dur ? `, ${dur}` : ""}`;
    const cell = el("button", {
      type: "button", class: `cell state-bg-${s}${runId === model.currentRun?.dag_run_id ? " cell-selected-run" : ""}`,
      "data-state": s, "data-run-id": runId, "data-task-id": rowNode.id, "aria-label": label, title: label,
    }, el("span", { class: "cell-icon", "aria-hidden": "true", text: count !== null ? String(count) : STATE_ICONS[s] || "" }));
    cell.addEventListener("click", () => {
      if (rowNode.isGroup) { toggle(rowNode.id); return; }
      model.selectTask(rowNode.id, count !== null && tis.length ? (tis.find((t) => t.map_index >= 0)?.map_index ?? -1) : -1, runId);
    });
    return el("td", {}, cell);
  }

  function toggle(groupId) {
    if (collapsed.has(groupId)) collapsed.delete(groupId); else collapsed.add(groupId);
    draw();
  }

  function rows(node, depth, out) {
    for (const child of node.children) {
      out.push({ node: child, depth });
      if (child.isGroup && !collapsed.has(child.id)) rows(child, depth + 1, out);
    }
    return out;
  }

  function draw() {
    const focusedKey = document.activeElement?.closest?.("#grid") ? `${document.activeElement.dataset.runId}|${document.activeElement.dataset.taskId}` : null;
    const runs = model.runs;
    const selected = model.currentRun?.dag_run_id;
    if (!model.tasks.length) { fill(wrap, el("p", { class: "muted pad", text: "This DAG has no tasks." })); return; }
    const head = el("tr", {}, el("th", { scope: "col", class: "grid-task-head", text: runs.length ? "Task \\ Run" : "Task (no runs yet)" }),
      runs.map((run) => {
        const s = stateOf(run.state);
        const type = runTypeInfo(run.run_type);
        const interval = fmtInterval(run.data_interval_start, run.data_interval_end);
        const label = `run ${run.dag_run_id} (${type.label}): ${stateLabel(run.state)}`
          + `${run.logical_date ? `, logical date ${fmtUtc(run.logical_date)}` : ""}${interval ? `, data interval ${interval}` : ""}`;
        return el("th", { scope: "col", class: "grid-run-head" }, el("button", {
          type: "button", class: `run-bar-mark state-bg-${s}${run.dag_run_id === selected ? " selected" : ""}`,
          "data-run-id": run.dag_run_id, "data-state": s, "data-run-type": run.run_type || "", "aria-label": label, title: label,
          "aria-pressed": String(run.dag_run_id === selected), onclick: () => model.selectRun(run.dag_run_id),
        }, el("span", { "aria-hidden": "true", text: STATE_ICONS[s] || "" })),
        el("span", { class: `run-type-mini run-type-${run.run_type || "unknown"}`, "aria-hidden": "true", title: type.label, text: type.icon }));
      }));
    const body = rows(taskTree(model.tasks), 0, []).map(({ node, depth }) => {
      const name = node.isGroup
        ? el("button", { type: "button", class: "group-toggle", "aria-expanded": String(!collapsed.has(node.id)),
          onclick: () => toggle(node.id), "data-group-id": node.id },
          el("span", { "aria-hidden": "true", text: collapsed.has(node.id) ? "▸ " : "▾ " }), node.label, el("span", { class: "muted small", text: ` (${leafIds(node).length})` }))
        : el("button", { type: "button", class: "task-name", text: node.label + (node.task?.is_mapped ? " [ ]" : ""),
          title: node.id, onclick: () => model.selectTask(node.id, -1) });
      return el("tr", { "data-row": node.id, class: node.isGroup ? "group-row" : "" },
        el("th", { scope: "row", class: "grid-task", style: `padding-left:${0.5 + depth * 1.1}rem` }, name),
        runs.map((run) => cellFor(run, node)));
    });
    fill(wrap, el("table", { class: "grid", "aria-label": "Task instances by run" }, el("thead", {}, head), el("tbody", {}, body)));
    wrap.scrollLeft = wrap.scrollWidth;
    if (focusedKey) {
      const [runId, taskId] = focusedKey.split("|");
      wrap.querySelector(`[data-run-id="${CSS.escape(runId)}"][data-task-id="${CSS.escape(taskId)}"]`)?.focus();
    }
  }

  draw();
  return { update: draw };
}
