// Graph: the DAG laid out left to right by dagre (vendored from npm, see
// services/ui/build-assets.sh), nodes coloured by the selected run's states. Live events
// recolour the nodes without laying the graph out again.
import { el, svg, STATE_ICONS, stateLabel, stateOf, fill } from "./core.js";
import { combinedState } from "./grid.js";

const NODE_H = 30;
const CHAR_W = 7.2;

export function renderGraph(container, model) {
  const wrap = el("div", { class: "graph-wrap card", id: "graph" });
  const toolbar = el("div", { class: "graph-toolbar" });
  container.append(toolbar, wrap);
  if (!window.dagre) {
    wrap.append(el("p", { class: "pad", role: "note", text: "The graph layout library (dagre) is missing from this installation: run `make ui-assets`." }));
    return {};
  }
  let scale = 1;
  let laidOut = null;
  const nodes = new Map();

  function layout() {
    const g = new window.dagre.graphlib.Graph();
    g.setGraph({ rankdir: "LR", nodesep: 12, ranksep: 48, edgesep: 8, marginx: 12, marginy: 12 });
    g.setDefaultEdgeLabel(() => ({}));
    const ids = new Set(model.tasks.map((t) => t.task_id));
    for (const t of model.tasks) g.setNode(t.task_id, { width: Math.max(90, t.task_id.length * CHAR_W + 44), height: NODE_H, task: t });
    for (const t of model.tasks) for (const d of t.downstream_task_ids || []) if (ids.has(d)) g.setEdge(t.task_id, d);
    window.dagre.layout(g);
    return g;
  }

  function draw() {
    nodes.clear();
    if (!model.tasks.length) { fill(wrap, el("p", { class: "muted pad", text: "This DAG has no tasks." })); return; }
    laidOut = layout();
    const { width, height } = laidOut.graph();
    const edges = laidOut.edges().map((e) => {
      const pts = laidOut.edge(e).points;
      const d = pts.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
      return svg("path", { d, class: "edge", "marker-end": "url(#arrow)" });
    });
    const groups = laidOut.nodes().map((id) => {
      const n = laidOut.node(id);
      const label = svg("text", { x: 26, y: NODE_H / 2 + 4, class: "node-label" });
      label.textContent = id + (n.task.is_mapped ? " [ ]" : "");
      const icon = svg("text", { x: 10, y: NODE_H / 2 + 4, class: "node-icon", "aria-hidden": "true" });
      const rect = svg("rect", { width: n.width, height: NODE_H, rx: 6, class: "node-box" });
      const g = svg("g", { class: "node", transform: `translate(${n.x - n.width / 2},${n.y - NODE_H / 2})`, tabindex: 0, role: "button", "data-task-id": id },
        rect, icon, label, svg("title", {}));
      g.addEventListener("click", () => model.selectTask(id, -1));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); model.selectTask(id, -1); } });
      nodes.set(id, { g, icon });
      return g;
    });
    const defs = svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" })));
    const root = svg("svg", { class: "graph", viewBox: `0 0 ${width} ${height}`, width: width * scale, height: height * scale, role: "group", "aria-label": `Graph of ${model.dagId}` },
      defs, svg("g", {}, edges), svg("g", {}, groups));
    fill(wrap, root);
    colour();
  }

  function colour() {
    const run = model.currentRun;
    for (const [id, { g, icon }] of nodes) {
      const tis = run ? model.tisOf(run.dag_run_id, id) : [];
      const expanded = tis.filter((t) => t.map_index >= 0);
      const state = tis.length ? combinedState((expanded.length ? expanded : tis).map((t) => t.state)) : null;
      const s = stateOf(state);
      g.setAttribute("class", `node state-node-${s}`);
      g.dataset.state = s;
      icon.textContent = STATE_ICONS[s] || "";
      const text = `${id}: ${stateLabel(state)}${expanded.length ? ` (${expanded.length} mapped)` : ""}`;
      g.setAttribute("aria-label", text);
      g.querySelector("title").textContent = text;
    }
  }

  const zoom = (f) => {
    scale = f === 0 ? Math.min(1, (wrap.clientWidth - 16) / laidOut.graph().width) : Math.max(0.2, Math.min(3, scale * f));
    const root = wrap.querySelector("svg");
    if (root) { root.setAttribute("width", laidOut.graph().width * scale); root.setAttribute("height", laidOut.graph().height * scale); }
  };
  toolbar.append(
    el("button", { type: "button", class: "button button-small", text: "−", "aria-label": "Zoom out", onclick: () => zoom(1 / 1.25) }),
    el("button", { type: "button", class: "button button-small", text: "+", "aria-label": "Zoom in", onclick: () => zoom(1.25) }),
    el("button", { type: "button", class: "button button-small", text: "Fit", "aria-label": "Fit to width", onclick: () => zoom(0) }),
    el("span", { class: "muted small", text: `${model.tasks.length} tasks · states of the selected run` }));

  let taskCount = model.tasks.length;
  draw();
  return {
    update: () => {
      if (model.tasks.length !== taskCount) { taskCount = model.tasks.length; draw(); } else colour();
    },
  };
}
