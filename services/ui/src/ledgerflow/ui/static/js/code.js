// Code: the DAG file of a version (the selected run's by default), with a version picker.
// Uses Airflow's GET /dagVersions and GET /dagSources/{dag_id}?version_number=.
import { api, el, enc, errorText, fmtTime, isMissing, unavailable, fill } from "./core.js";

export function renderCode(container, model) {
  const picker = el("select", { id: "version-picker", "aria-label": "DAG version" });
  const meta = el("span", { class: "muted small" });
  const code = el("pre", { class: "code card", id: "dag-code", tabindex: "0" });
  container.append(el("div", { class: "toolbar" }, el("label", { class: "inline", for: "version-picker", text: "Version " }), picker, meta), code);

  async function show(versionNumber) {
    code.textContent = "Loading…";
    try {
      const src = await api(`/api/v2/dagSources/${enc(model.dagId)}`, { query: { version_number: versionNumber } });
      fill(code, ...String(src.content ?? "").split("\n").map((line, i) => el("span", { class: "code-line", "data-line": i + 1, text: `${line}\n` })));
    } catch (err) {
      if (isMissing(err) && err.message.includes("dagSources")) code.replaceWith(unavailable("The DAG's code", "GET /api/v2/dagSources/{dag_id}"));
      else code.textContent = `Cannot load the code: ${errorText(err)}`;
    }
  }

  async function load() {
    let versions = [];
    try {
      ({ dag_versions: versions = [] } = await api(`/api/v2/dags/${enc(model.dagId)}/dagVersions`, { query: { order_by: "-version_number", limit: 100 } }));
    } catch (err) {
      if (!isMissing(err)) { meta.textContent = errorText(err); return; }
      // No version list: show the latest source, if any.
      fill(picker, el("option", { value: "", text: "latest" }));
      meta.textContent = "(this API has no GET /dagVersions yet: latest version only)";
      return showOrMissing("");
    }
    const run = model.currentRun;
    const runVersion = run?.dag_versions?.[0]?.version_number ?? versions.find((v) => v.id === run?.dag_version_id)?.version_number;
    const chosen = runVersion ?? versions[0]?.version_number ?? "";
    fill(picker, ...versions.map((v) => el("option", { value: v.version_number, selected: v.version_number === chosen,
      text: `v${v.version_number}${v.version_number === runVersion ? " (selected run)" : ""} · ${fmtTime(v.created_at)}` })));
    meta.textContent = versions.length ? `${versions.length} version${versions.length === 1 ? "" : "s"}` : "";
    return showOrMissing(chosen);
  }

  async function showOrMissing(n) {
    try { await api(`/api/v2/dagSources/${enc(model.dagId)}`, { query: { version_number: n || undefined } }); }
    catch (err) { if (isMissing(err)) { code.replaceWith(unavailable("The DAG's code", "GET /api/v2/dagSources/{dag_id}")); return; } }
    return show(n || undefined);
  }

  picker.addEventListener("change", () => show(picker.value || undefined));
  load();
  return {};
}
