// Admin pages: variables, connections (secrets never shown), pools and the audit log
// (assets have their own page, assets.js). Writes are offered to the roles that may make them.
import { api, confirmAction, el, enc, errorText, fmtTime, isMissing, openDialog, session, toast, unavailable, debounce, fill } from "./core.js";
import { subscribe } from "./nav.js";

const PAGE = 50;

function table(id, headers, rows) {
  return el("div", { class: "card table-card" }, el("table", { class: "table", id },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))), el("tbody", {}, rows)));
}

function formDialog(title, fields, onSubmit) {
  const inputs = fields.map((f) => ({ ...f, input: f.multiline
    ? el("textarea", { id: `f-${f.name}`, rows: 4, value: f.value ?? "" })
    : el("input", { id: `f-${f.name}`, type: f.type || "text", value: f.value ?? "", disabled: f.disabled, autocomplete: "off" }) }));
  const error = el("p", { class: "form-error", role: "alert", hidden: true });
  openDialog(title, el("form", { class: "form" }, inputs.map((f) => el("div", { class: "field" }, el("label", { for: `f-${f.name}`, text: f.label }), f.input,
    f.hint ? el("span", { class: "hint", text: f.hint }) : null)), error), [
    { label: "Cancel" },
    { label: "Save", kind: "primary", id: "save", onClick: async (close) => {
      const values = Object.fromEntries(inputs.map((f) => [f.name, f.input.value]));
      try { await onSubmit(values); close(); } catch (err) { error.textContent = errorText(err); error.hidden = false; }
    } },
  ]);
}

function page(container, title, ...children) {
  container.append(el("div", { class: "page-head" }, el("h1", { text: title })), ...children);
}

// ---------------------------------------------------------------- variables
function variables(container) {
  const body = el("div");
  const canWrite = session.can("op");
  const edit = (v) => formDialog(v ? `Edit ${v.key}` : "New variable", [
    { name: "key", label: "Key", value: v?.key, disabled: Boolean(v) },
    { name: "value", label: "Value", value: v && v.value !== "***" ? v.value : "", multiline: true, hint: v?.value === "***" ? "The value is secret: enter a new one to replace it." : "" },
    { name: "description", label: "Description", value: v?.description || "" },
  ], async (f) => {
    const payload = { key: v?.key || f.key, value: f.value, description: f.description || null };
    if (v) await api(`/api/v2/variables/${enc(v.key)}`, { method: "PATCH", body: payload });
    else await api("/api/v2/variables", { method: "POST", body: payload });
    toast(`Saved variable ${payload.key}`); load();
  });
  async function load() {
    try {
      const { variables: vars = [] } = await api("/api/v2/variables", { query: { limit: 1000 } });
      fill(body, table("variables-table", ["Key", "Value", "Description", ""], vars.map((v) => el("tr", { "data-key": v.key },
        el("td", {}, el("code", { text: v.key })), el("td", { class: v.value === "***" ? "muted" : "", text: v.value === "***" ? "*** (secret)" : v.value }),
        el("td", { text: v.description || "" }),
        el("td", { class: "col-actions" }, canWrite ? el("div", { class: "button-row" },
          el("button", { type: "button", class: "button button-small", text: "Edit", onclick: () => edit(v) }),
          el("button", { type: "button", class: "button button-small button-danger", text: "Delete", onclick: async () => {
            if (!(await confirmAction(`Delete variable ${v.key}?`, "Tasks that read it will fail.", { confirmLabel: "Delete", danger: true }))) return;
            try { await api(`/api/v2/variables/${enc(v.key)}`, { method: "DELETE" }); toast(`Deleted ${v.key}`); load(); } catch (err) { toast(errorText(err), true); }
          } })) : null)))));
      if (!vars.length) body.append(el("p", { class: "muted pad", text: "No variables." }));
    } catch (err) { fill(body, el("p", { class: "form-error", text: errorText(err) })); }
  }
  page(container, "Variables", canWrite ? el("div", { class: "toolbar" }, el("button", { type: "button", class: "button button-primary", text: "New variable", onclick: () => edit(null) })) : null, body);
  load();
  return subscribe((e) => { if (/^Variable/.test(e.type)) load(); });
}

// ---------------------------------------------------------------- connections
function connections(container) {
  const body = el("div");
  const canWrite = session.can("op");
  const edit = (c) => formDialog(c ? `Edit ${c.connection_id}` : "New connection", [
    { name: "connection_id", label: "Connection id", value: c?.connection_id, disabled: Boolean(c) },
    { name: "conn_type", label: "Type", value: c?.conn_type || "" },
    { name: "host", label: "Host", value: c?.host || "" },
    { name: "port", label: "Port", value: c?.port ?? "", type: "number" },
    { name: "login", label: "Login", value: c?.login || "" },
    { name: "password", label: "Password", type: "password", hint: c ? "Leave empty to keep the current password." : "" },
    { name: "schema", label: "Schema", value: c?.schema || "" },
  ], async (f) => {
    const payload = { connection_id: c?.connection_id || f.connection_id, conn_type: f.conn_type, host: f.host || null,
      port: f.port ? Number(f.port) : null, login: f.login || null, schema: f.schema || null };
    if (f.password) payload.password = f.password;
    if (c) await api(`/api/v2/connections/${enc(c.connection_id)}`, { method: "PATCH", body: payload, query: f.password ? undefined : { update_mask: ["conn_type", "host", "port", "login", "schema"] } });
    else await api("/api/v2/connections", { method: "POST", body: payload });
    toast(`Saved connection ${payload.connection_id}`); load();
  });
  async function load() {
    try {
      const { connections: conns = [] } = await api("/api/v2/connections", { query: { limit: 1000 } });
      fill(body, table("connections-table", ["Id", "Type", "Host", "Login", "Password", ""], conns.map((c) => el("tr", { "data-conn-id": c.connection_id },
        el("td", {}, el("code", { text: c.connection_id })), el("td", { text: c.conn_type || "" }),
        el("td", { text: [c.host, c.port].filter((x) => x !== null && x !== undefined && x !== "").join(":") }), el("td", { text: c.login || "" }),
        // Never shown: only whether one is set.
        el("td", { class: "muted", text: c.password ? "set (hidden)" : "—" }),
        el("td", { class: "col-actions" }, canWrite ? el("div", { class: "button-row" },
          el("button", { type: "button", class: "button button-small", text: "Edit", onclick: () => edit(c) }),
          el("button", { type: "button", class: "button button-small button-danger", text: "Delete", onclick: async () => {
            if (!(await confirmAction(`Delete connection ${c.connection_id}?`, "Tasks that use it will fail.", { confirmLabel: "Delete", danger: true }))) return;
            try { await api(`/api/v2/connections/${enc(c.connection_id)}`, { method: "DELETE" }); load(); } catch (err) { toast(errorText(err), true); }
          } })) : null)))));
      if (!conns.length) body.append(el("p", { class: "muted pad", text: "No connections." }));
    } catch (err) { fill(body, el("p", { class: "form-error", text: errorText(err) })); }
  }
  page(container, "Connections", canWrite ? el("div", { class: "toolbar" }, el("button", { type: "button", class: "button button-primary", text: "New connection", onclick: () => edit(null) })) : null, body);
  load();
  return subscribe((e) => { if (/^Connection/.test(e.type)) load(); });
}

// ---------------------------------------------------------------- pools
function pools(container) {
  const body = el("div");
  const canWrite = session.can("op");
  const edit = (p) => formDialog(p ? `Edit pool ${p.name}` : "New pool", [
    { name: "name", label: "Name", value: p?.name, disabled: Boolean(p) },
    { name: "slots", label: "Slots", value: p?.slots ?? 1, type: "number" },
    { name: "description", label: "Description", value: p?.description || "" },
  ], async (f) => {
    const payload = { name: p?.name || f.name, slots: Number(f.slots), description: f.description || null };
    if (p) await api(`/api/v2/pools/${enc(p.name)}`, { method: "PATCH", body: payload });
    else await api("/api/v2/pools", { method: "POST", body: payload });
    load();
  });
  async function load() {
    try {
      const { pools: list = [] } = await api("/api/v2/pools", { query: { limit: 1000 } });
      const n = (v) => (v === null || v === undefined ? "" : String(v));
      fill(body, table("pools-table", ["Pool", "Slots", "Running", "Queued", "Open", "Description", ""], list.map((p) => el("tr", { "data-pool": p.name },
        el("td", {}, el("code", { text: p.name })), el("td", { text: n(p.slots) }), el("td", { text: n(p.running_slots) }), el("td", { text: n(p.queued_slots) }),
        el("td", { text: n(p.open_slots) }), el("td", { text: p.description || "" }),
        el("td", { class: "col-actions" }, canWrite ? el("button", { type: "button", class: "button button-small", text: "Edit", onclick: () => edit(p) }) : null)))));
    } catch (err) {
      fill(body, isMissing(err) ? unavailable("Pools", "GET /api/v2/pools") : el("p", { class: "form-error", text: errorText(err) }));
    }
  }
  page(container, "Pools", canWrite ? el("div", { class: "toolbar" }, el("button", { type: "button", class: "button button-primary", text: "New pool", onclick: () => edit(null) })) : null, body);
  load();
  return subscribe((e) => { if (/^Pool/.test(e.type)) load(); });
}

// ---------------------------------------------------------------- audit log
function audit(container) {
  const dag = el("input", { type: "search", id: "audit-dag", placeholder: "DAG id", "aria-label": "Filter by DAG id" });
  const event = el("input", { type: "search", id: "audit-event", placeholder: "Event type", "aria-label": "Filter by event type" });
  const owner = el("input", { type: "search", id: "audit-owner", placeholder: "Who", "aria-label": "Filter by who" });
  const body = el("div");
  const pager = el("nav", { class: "pager", "aria-label": "Pages" });
  let offset = 0;
  async function load() {
    try {
      const data = await api("/api/v2/eventLogs", { query: { limit: PAGE, offset, order_by: "-when",
        dag_id_pattern: dag.value.trim() || undefined, event_pattern: event.value.trim() || undefined, owner_pattern: owner.value.trim() || undefined } });
      const logs = data.event_logs || [];
      fill(body, table("audit-table", ["When", "Event", "Who", "DAG", "Run", "Task", "Details"], logs.map((l) => el("tr", {},
        el("td", { text: fmtTime(l.when) }), el("td", { text: l.event }), el("td", { text: l.owner || "" }), el("td", { text: l.dag_id || "" }),
        el("td", { class: "small", text: l.run_id || "" }), el("td", { text: l.task_id ? `${l.task_id}${l.map_index >= 0 ? `[${l.map_index}]` : ""}` : "" }),
        el("td", {}, l.extra ? el("details", {}, el("summary", { text: "payload" }), el("pre", { class: "mono small", text: typeof l.extra === "string" ? l.extra : JSON.stringify(l.extra, null, 2) })) : null)))));
      const total = data.total_entries ?? logs.length;
      fill(pager, 
        el("button", { type: "button", class: "button button-small", text: "‹ Newer", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }),
        el("span", { class: "muted", text: `${total ? offset + 1 : 0}–${offset + logs.length} of ${total}` }),
        el("button", { type: "button", class: "button button-small", text: "Older ›", disabled: offset + PAGE >= total, onclick: () => { offset += PAGE; load(); } }));
    } catch (err) {
      fill(body, isMissing(err) ? unavailable("The audit log", "GET /api/v2/eventLogs") : el("p", { class: "form-error", text: errorText(err) }));
    }
  }
  const reload = debounce(() => { offset = 0; load(); }, 250);
  for (const i of [dag, event, owner]) i.addEventListener("input", reload);
  page(container, "Audit log", el("div", { class: "toolbar" }, dag, event, owner), body, pager);
  load();
  return () => {};
}

const PAGES = { variables, connections, pools, audit };

export function renderAdmin(container, view) {
  const render = PAGES[view];
  if (!render) {
    container.append(el("div", { class: "card empty" }, el("p", { text: "No such page." }), el("a", { href: "#/dags", text: "Back to the DAGs" })));
    return () => {};
  }
  return render(container);
}
