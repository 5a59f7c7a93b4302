"""A screenshot of a run's trace as Jaeger holds it, for docs/observability.md.

Jaeger's UI when the Jaeger serving the query API has one: the release images embed it,
and deploy/local/jaeger.sh serves it when started with ``JAEGER_UI_ASSETS`` (see
deploy/local/jaeger-ui.sh). A Jaeger built with ``go install`` and no assets serves a
placeholder page; then the trace JSON from Jaeger's query API (``/api/traces/<id>``) is
drawn as a waterfall in the same layout (one row per span, indented under its parent,
bars on the trace's time axis, failed spans in red) and that page is shot.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
_COLORS = {
    "ledgerflow-scheduler": "#4e79a7",
    "ledgerflow-executor": "#59a14f",
    "ledgerflow-task": "#b07aa1",
}


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def _ordered(spans: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Depth-first, children by start time: (depth, span)."""
    ids = {s["spanID"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        refs = [r["spanID"] for r in s.get("references", []) if r["refType"] == "CHILD_OF"]
        parent = refs[0] if refs and refs[0] in ids else None
        children.setdefault(parent, []).append(s)
    out: list[tuple[int, dict[str, Any]]] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: x["startTime"]):
            out.append((depth, s))
            walk(s["spanID"], depth + 1)

    walk(None, 0)
    return out


def waterfall_html(trace: dict[str, Any]) -> str:
    spans = trace["spans"]
    t0 = min(s["startTime"] for s in spans)
    t1 = max(s["startTime"] + s["duration"] for s in spans)
    total = max(1, t1 - t0)
    services = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    rows = []
    for depth, s in _ordered(spans):
        tags = _tags(s)
        service = services.get(s["processID"], "?")
        color = "#e15759" if tags.get("error") else _COLORS.get(service, "#76b7b2")
        left = 100 * (s["startTime"] - t0) / total
        width = max(0.3, 100 * s["duration"] / total)
        detail = ", ".join(f"{k}={tags[k]}" for k in ("try_number", "state", "queue") if k in tags)
        duration = f"{s['duration'] / 1000:.1f} ms"
        if width > 85:  # the bar fills the lane: the label goes inside it
            where = f"left:{left:.3f}%;margin-left:6px;color:#fff"
        elif left + width > 85:  # no room right of the bar: put the label on its left
            where = f"right:{100 - left:.3f}%;margin-right:6px"
        else:
            where = f"left:{left + width:.3f}%;margin-left:6px"
        label = f'<span class="dur" style="{where}">{duration}</span>'
        rows.append(
            f'<div class="row"><div class="name" style="padding-left:{8 + depth * 16}px">'
            f'<span class="svc" style="background:{color}"></span>'
            f"<b>{html.escape(service.removeprefix('ledgerflow-'))}</b> "
            f"{html.escape(s['operationName'])}"
            f'<span class="detail">{html.escape(detail)}</span></div>'
            f'<div class="lane"><div class="bar" style="left:{left:.3f}%;width:{width:.3f}%;'
            f'background:{color}"></div>{label}</div></div>'
        )
    root = _ordered(spans)[0][1]
    ticks = "".join(
        f'<span class="tick" style="left:{p}%">{total * p / 100 / 1e6:.2f} s</span>'
        for p in (0, 25, 50, 75)
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font: 13px system-ui, sans-serif; margin: 0; color: #222; background: #fff; }}
header {{ background: #1b1f24; color: #eee; padding: 10px 16px; }}
header h1 {{ font-size: 16px; margin: 0 0 4px; }}
header small {{ color: #aab; }}
.axis, .row {{ display: flex; border-bottom: 1px solid #eee; }}
.axis {{ background: #f6f7f9; height: 22px; }}
* {{ box-sizing: border-box; }}
.name {{ width: 520px; flex: none; white-space: nowrap; overflow: hidden; padding: 4px 0;
  text-overflow: ellipsis; border-right: 1px solid #ddd; }}
.lane {{ position: relative; flex: 1; }}
.bar {{ position: absolute; top: 6px; height: 12px; border-radius: 2px; }}
.dur {{ position: absolute; top: 4px; color: #666; font-size: 11px; }}
.tick {{ position: absolute; top: 4px; color: #666; font-size: 11px; margin-left: 4px; }}
.svc {{ display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 6px; }}
.detail {{ color: #777; margin-left: 8px; font-size: 12px; }}
</style></head><body>
<header><h1>{html.escape(root["operationName"])}: trace {trace["traceID"]}</h1>
<small>{len(spans)} spans, {len(set(services.values()))} services, {total / 1e6:.2f} s;
read from Jaeger v2's query API (/api/traces/{trace["traceID"]})</small></header>
<div class="axis"><div class="name" style="padding-left:8px">service / operation</div>
<div class="lane">{ticks}</div></div>
{"".join(rows)}
</body></html>"""


def _first_failed_attempt(trace: dict[str, Any]) -> tuple[str, int] | None:
    """(operation name, index among the spans of that name by start) of the earliest
    failed attempt span (``task <task_id>``), as Jaeger's UI lists its rows."""
    failed = sorted(
        (
            s
            for s in trace["spans"]
            if s["operationName"].startswith("task ") and _tags(s).get("error")
        ),
        key=lambda s: s["startTime"],
    )
    if not failed:
        return None
    name = failed[0]["operationName"]
    same = sorted(
        (s for s in trace["spans"] if s["operationName"] == name), key=lambda s: s["startTime"]
    )
    return name, same.index(failed[0])


def screenshot(query_url: str, trace: dict[str, Any], out: Path, require_ui: bool = False) -> str:
    """Shoot Jaeger's UI page of ``trace`` (or the waterfall when it has no UI) into
    ``out``; returns which was shot. ``require_ui``: fail instead of drawing the
    waterfall."""
    from playwright import sync_api

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            # Jaeger's trace page scrolls its span list inside the page: make the window
            # tall enough for every row (header and minimap, ~28 px a span, the details
            # of the span opened below).
            height = max(700, 420 + 28 * len(trace["spans"]))
            page = browser.new_page(viewport={"width": 1600, "height": height})
            page.goto(f"{query_url}/trace/{trace['traceID']}", wait_until="networkidle")
            if "not compiled with the UI assets" in page.content():  # Jaeger's placeholder
                if require_ui:
                    raise AssertionError(f"{query_url} serves Jaeger's placeholder page, no UI")
                page.set_viewport_size({"width": 1400, "height": 300})  # grows to fit
                page.set_content(waterfall_html(trace))
                shot = "waterfall"
            else:
                # Every span row of the (expanded) tree rendered, then the fonts settle.
                page.wait_for_selector(".TracePageHeader", timeout=30_000)
                page.wait_for_function(
                    "n => document.querySelectorAll('.span-name-wrapper').length >= n",
                    arg=len(trace["spans"]),
                    timeout=30_000,
                )
                if failed := _first_failed_attempt(trace):  # open its details (tags)
                    name, nth = failed
                    rows = page.locator(
                        ".span-name-wrapper", has_text=re.compile(f"{re.escape(name)}$")
                    )
                    rows.nth(nth).locator(".span-name").click()
                page.wait_for_timeout(800)
                shot = "jaeger-ui"
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()
    return shot
