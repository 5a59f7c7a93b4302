// The task instance panel: state and attempts, rendered template fields, XComs, and the
// log of an attempt with live tail (lines appended as the executor's log chunks arrive
// on the event stream), search and download. Actions: clear, mark success, mark failed.
import { api, debounce, el, enc, errorText, fmtDuration, fmtTime, isMissing, secondsBetween, session, stateBadge, fill } from "./core.js";
import { LiveStream } from "./live.js";
import { openClearDialog, openMarkDialog } from "./actions.js";
import { setQuery } from "./nav.js";

const SECTIONS = [["log", "Log"], ["details", "Details"], ["rendered", "Rendered"], ["xcom", "XCom"]];

export class TaskPanel {
  constructor(model) {
    this.model = model;
    this.node = el("aside", { class: "task-panel card", id: "task-panel", hidden: true, "aria-label": "Task instance" });
    this.section = "log";
    this.tryNumber = null;
    this.tail = null;
    this.logLines = [];
    this.key = null;
  }

  get ti() {
    if (!this.key) return null;
    const { runId, taskId, mapIndex } = this.key;
    const tis = this.model.tisOf(runId, taskId);
    return tis.find((t) => t.map_index === mapIndex) || tis[0] || null;
  }

  get tiPath() {
    const { runId, taskId } = this.key;
    return `${this.model.base}/dagRuns/${enc(runId)}/taskInstances/${enc(taskId)}`;
  }

  open(runId, taskId, mapIndex = -1) {
    if (!runId) return;
    this.key = { runId, taskId, mapIndex };
    const ti = this.ti;
    if (ti && ti.map_index !== mapIndex) this.key.mapIndex = ti.map_index;
    this.tryNumber = null;
    this.node.hidden = false;
    document.body.classList.add("with-panel");
    this.render();
  }

  close() {
    this.stopTail();
    this.key = null;
    this.node.hidden = true;
    document.body.classList.remove("with-panel");
    setQuery({ task: "", map: "" });
  }

  update(what) {
    if (!this.key || this.node.hidden) return;
    if (what === "selection") {
      const run = this.model.currentRun;
      if (run && run.dag_run_id !== this.key.runId) { this.open(run.dag_run_id, this.key.taskId, this.key.mapIndex); }
      return;
    }
    if (what !== "all" && what !== this.key.runId) return;
    const ti = this.ti;
    // A new attempt (a retry, or a clear that ran it again): follow it.
    if (ti && this.tryNumber !== null && ti.try_number > this.shownTries) { this.tryNumber = null; this.render(); return; }
    this.renderHead();
    if (this.section === "details") this.renderSection();
  }

  render() {
    this.stopTail();
    const tabs = el("div", { class: "tabs tabs-small", role: "tablist", "aria-label": "Task instance views" },
      SECTIONS.map(([id, label]) => el("button", { type: "button", role: "tab", class: "tab", "data-section": id,
        "aria-selected": String(id === this.section), text: label,
        onclick: () => { this.section = id; this.render(); } })));
    this.head = el("div", { class: "panel-head" });
    this.body = el("div", { class: "panel-body" });
    fill(this.node, this.head, tabs, this.body);
    this.renderHead();
    this.renderSection();
  }

  renderHead() {
    const { runId, taskId, mapIndex } = this.key;
    const ti = this.ti;
    const tries = Math.max(1, ti?.try_number || 1);
    this.shownTries = tries;
    if (this.tryNumber === null || this.tryNumber > tries) this.tryNumber = tries;
    const mapped = this.model.tisOf(runId, taskId).filter((t) => t.map_index >= 0);
    const canAct = session.can("user") && ti;
    fill(this.head, 
      el("div", { class: "panel-title" },
        el("h2", { text: `${taskId}${mapIndex >= 0 ? ` [${mapIndex}]` : ""}` }),
        el("button", { type: "button", class: "icon-button", "aria-label": "Close task panel", text: "×", onclick: () => this.close() })),
      el("div", { class: "panel-meta" }, stateBadge(ti?.state), el("span", { class: "muted small", text: runId })),
      mapped.length ? el("label", { class: "inline" }, el("span", { text: "Map index " }), el("select", {
        id: "map-index-picker", "aria-label": "Map index",
        onchange: (e) => this.open(runId, taskId, Number(e.target.value)) },
      mapped.map((t) => el("option", { value: t.map_index, text: `${t.map_index} — ${t.state || "no status"}`, selected: t.map_index === mapIndex })))) : null,
      el("div", { class: "attempts", role: "group", "aria-label": "Attempts" }, el("span", { class: "muted small", text: "Attempt" }),
        Array.from({ length: tries }, (_, i) => i + 1).map((n) => el("button", {
          type: "button", class: `chip${n === this.tryNumber ? " chip-active" : ""}`, text: String(n), "aria-pressed": String(n === this.tryNumber),
          "data-try": n, onclick: () => { this.tryNumber = n; this.render(); } }))),
      canAct ? el("div", { class: "button-row", role: "group", "aria-label": "Task actions" },
        el("button", { type: "button", class: "button button-small", id: "ti-clear", text: "Clear…", onclick: () => openClearDialog(this.model, runId, taskId, mapIndex) }),
        el("button", { type: "button", class: "button button-small", id: "ti-mark-success", text: "Mark success…", onclick: () => openMarkDialog(this.model, runId, taskId, mapIndex, "success") }),
        el("button", { type: "button", class: "button button-small", id: "ti-mark-failed", text: "Mark failed…", onclick: () => openMarkDialog(this.model, runId, taskId, mapIndex, "failed") }))
        : null);
  }

  renderSection() {
    this.stopTail();
    const ti = this.ti;
    if (this.section === "details") fill(this.body, details(ti));
    else if (this.section === "rendered") fill(this.body, rendered(ti));
    else if (this.section === "xcom") this.renderXcom();
    else this.renderLog();
  }

  async renderXcom() {
    fill(this.body, el("p", { class: "muted", text: "Loading XComs…" }));
    const mapIndex = this.key.mapIndex;
    try {
      const { xcom_entries: entries = [] } = await api(`${this.tiPath}/xcomEntries`, { query: { map_index: mapIndex } });
      if (!entries.length) { fill(this.body, el("p", { class: "muted", text: "No XComs." })); return; }
      const values = await Promise.all(entries.map((x) => api(`${this.tiPath}/xcomEntries/${enc(x.key)}`, { query: { map_index: mapIndex } }).catch((e) => ({ value: `(${errorText(e)})` }))));
      fill(this.body, el("table", { class: "kv", id: "xcom-table" }, el("tbody", {}, entries.map((x, i) => el("tr", {},
        el("th", { scope: "row", text: x.key }), el("td", {}, el("pre", { class: "mono", text: JSON.stringify(values[i].value, null, 2) })))))));
    } catch (err) { fill(this.body, el("p", { class: "form-error", text: errorText(err) })); }
  }

  // ------------------------------------------------------------ log
  logUrl() {
    return `${this.tiPath}/logs/${this.tryNumber}`;
  }

  async fetchLog() {
    const data = await api(this.logUrl(), { query: { map_index: this.key.mapIndex } });
    return data.content || [];
  }

  renderLog() {
    const search = el("input", { type: "search", id: "log-search", placeholder: "Search the log", "aria-label": "Search the log" });
    const found = el("span", { class: "muted small", id: "log-search-count", "aria-live": "polite" });
    const status = el("span", { class: "live-badge", id: "log-tail-status", "data-live": "connecting", text: "connecting" });
    const download = el("button", { type: "button", class: "button button-small", id: "log-download", text: "Download" });
    const list = el("ol", { class: "log", id: "log-lines", "aria-label": "Log lines", tabindex: "0" });
    this.logList = list;
    this.logLines = [];
    fill(this.body, el("div", { class: "log-toolbar" }, search, found, status, download), list);

    const applySearch = () => {
      const q = search.value.trim().toLowerCase();
      let n = 0, first = null;
      for (const li of list.children) {
        const hit = q && li.dataset.text.includes(q);
        li.classList.toggle("log-hit", Boolean(hit));
        if (hit) { n += 1; first = first || li; }
      }
      found.textContent = q ? `${n} match${n === 1 ? "" : "es"}` : "";
      return first;
    };
    this.applySearch = applySearch;
    search.addEventListener("input", debounce(applySearch, 120));
    search.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      const hits = [...list.querySelectorAll(".log-hit")];
      if (!hits.length) return;
      const at = hits.findIndex((h) => h.classList.contains("log-current"));
      hits.forEach((h) => h.classList.remove("log-current"));
      const next = hits[(at + 1) % hits.length];
      next.classList.add("log-current");
      next.scrollIntoView({ block: "center" });
    });
    download.addEventListener("click", async () => {
      try {
        const text = await api(this.logUrl(), { query: { map_index: this.key.mapIndex }, accept: "text/plain" });
        const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/plain" })),
          download: `${this.model.dagId}__${this.key.runId}__${this.key.taskId}__${this.key.mapIndex}__${this.tryNumber}.log`.replace(/[^\w.-]+/g, "_") });
        document.body.append(a); a.click(); a.remove();
      } catch (err) { found.textContent = `Download failed: ${errorText(err)}`; }
    });

    const refresh = async () => {
      try { this.appendLines(await this.fetchLog()); }
      catch (err) { if (!isMissing(err)) found.textContent = errorText(err); }
    };
    const refreshSoon = debounce(refresh, 80);
    const key = this.key, tryNumber = this.tryNumber;
    // Tail through the event stream: a log chunk of this attempt fetches the new lines.
    this.tail = new LiveStream({ dag_id: this.model.dagId, run_id: key.runId, types: "TaskLogChunk" }, {
      onEvent: (evt) => {
        if (evt.type !== "TaskLogChunk" || evt.taskId !== key.taskId || (evt.mapIndex ?? -1) !== key.mapIndex) return;
        if (evt.tryNumber !== null && evt.tryNumber !== tryNumber) return;
        refreshSoon();
      },
      onStatus: (s) => {
        status.dataset.live = s;
        status.textContent = s === "live" ? "live tail" : s === "unavailable" ? "no live tail" : s;
        if (s === "live") refreshSoon(); // lines written while (re)connecting
      },
    }).start();
    refresh();
  }

  appendLines(lines) {
    const list = this.logList;
    if (!list) return;
    if (lines.length < this.logLines.length) { fill(list, ); this.logLines = []; }
    const fresh = lines.slice(this.logLines.length);
    if (!fresh.length) { if (!this.logLines.length && !list.children.length) list.append(el("li", { class: "muted log-empty", text: "No output yet." })); return; }
    list.querySelector(".log-empty")?.remove();
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    for (const line of fresh) {
      const text = line.event ?? String(line);
      list.append(el("li", { class: line.stream === "stderr" ? "stderr" : "", "data-text": text.toLowerCase() },
        line.timestamp ? el("time", { datetime: line.timestamp, text: fmtTime(line.timestamp, { withDate: false }) }) : null,
        el("span", { text })));
    }
    this.logLines = lines;
    if (atBottom) list.scrollTop = list.scrollHeight;
    if (this.applySearch) this.applySearch();
  }

  stopTail() {
    if (this.tail) this.tail.stop();
    this.tail = null;
  }
}

function details(ti) {
  if (!ti) return el("p", { class: "muted", text: "This task has no instance in this run yet." });
  const rows = [
    ["State", ti.state || "no status"], ["Attempt", `${ti.try_number}${ti.max_tries !== null && ti.max_tries !== undefined ? ` of ${ti.max_tries + 1}` : ""}`],
    ["Operator", ti.operator_name || ti.operator], ["Queued", fmtTime(ti.queued_when)], ["Started", fmtTime(ti.start_date)],
    ["Ended", fmtTime(ti.end_date)], ["Duration", fmtDuration(ti.duration ?? (ti.start_date ? secondsBetween(ti.start_date, ti.end_date) : null))],
    ["Host", ti.hostname], ["Queue", ti.queue], ["Pool", ti.pool], ["Priority weight", ti.priority_weight],
    ["DAG version", ti.dag_version_id],
  ];
  return el("table", { class: "kv", id: "ti-details" }, el("tbody", {}, rows.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { text: String(v) })))));
}

function rendered(ti) {
  const fields = ti?.rendered_fields || {};
  const names = Object.keys(fields);
  if (!names.length) return el("p", { class: "muted", text: "No rendered template fields (yet)." });
  return el("table", { class: "kv", id: "rendered-fields" }, el("tbody", {}, names.map((k) => el("tr", {},
    el("th", { scope: "row", text: k }), el("td", {}, el("pre", { class: "mono", text: typeof fields[k] === "string" ? fields[k] : JSON.stringify(fields[k], null, 2) }))))));
}
