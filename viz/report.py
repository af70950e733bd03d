"""A one-page run report: one self-contained HTML file a decision-maker opens in a browser.

:func:`write_report` reads a results file and writes ``report.html``:

- the scenario's name, description, city, seed and horizon (from ``/meta``);
- the KPI table in display units (:mod:`twin.kpi_display`; settings echoed back left out),
  grouped by part of the city (emergency response, traffic, epidemic ...);
- the congestion map at the busiest interval (with hospitals, stations and calls of an EMS
  run), when the run has link series and PyVista can render;
- every chart kind that the run has data for (response times, hospital occupancy, travel
  times, elderly care, epidemic);
- the scenario as run (the resolved TOML), folded.

Images are PNGs embedded as data URIs, so the page is one file with no outside requests.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path

import numpy as np

from twin.errors import ResultsError
from twin.kpi_display import format_value, is_constant, kpi_display

__all__ = ["write_report", "REPORT_CHARTS"]

logger = logging.getLogger(__name__)

#: Chart kinds tried for a report, in page order (kinds without data are left out).
REPORT_CHARTS = ("response-times", "hospital-occupancy", "travel-times", "eldercare", "epidemic")
_GROUPS = (("ems_", "emergency response"), ("traffic_", "traffic"), ("population_", "population"),
           ("epidemic_", "epidemic"), ("eldercare_", "elderly care"), ("evacuation_", "evacuation"),
           ("relief_", "relief"), ("hazard", "hazards"))
_STYLE = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.meta{color:#555} table{border-collapse:collapse;font-size:.92em} td,th{padding:2px 10px;text-align:left}
td.v{text-align:right;font-variant-numeric:tabular-nums} tr:nth-child(even){background:#f5f5f5}
img{max-width:100%;border:1px solid #eee;margin:.5em 0} pre{font-size:.8em;background:#f8f8f8;padding:1em}
"""


def _png(fig_or_bytes) -> str:
    if isinstance(fig_or_bytes, (bytes, bytearray)):
        data = bytes(fig_or_bytes)
    else:
        buf = io.BytesIO()
        fig_or_bytes.savefig(buf, format="png", dpi=100)
        data = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _group(name):
    for prefix, label in _GROUPS:
        if name.startswith(prefix):
            return label
    return "emergency response"            # the EMS's KPIs carry no prefix in /summary of older runs


def _kpi_rows(res):
    summary = res.summary()
    rows = {}
    for name, value in zip(summary["name"], summary["value"]):
        if is_constant(name) or name in ("n_nodes", "n_links", "total_length_m", "lane_length_m"):
            continue
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        label, unit, factor = kpi_display(name)
        rows.setdefault(_group(name), []).append((f"{label} ({unit})" if unit else label,
                                                  format_value(v * factor, unit)))
    return rows


def _map(res):
    """The congestion map of the busiest interval as PNG bytes, or None (no link series, no PyVista)."""
    if not any(k.startswith("/timeseries/traffic_links/") for k in res.keys()):
        return None
    try:
        from twin.viz.plot import plot_run
    except ImportError:
        return None
    try:
        pl = plot_run(res, layer="congestion", off_screen=True, window_size=(1024, 768))
    except (ResultsError, RuntimeError, ValueError) as exc:       # pragma: no cover - rendering unavailable
        logger.info("report: no map (%s)", exc)
        return None
    try:
        img = pl.screenshot(return_img=True)
    finally:
        pl.close()
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", np.asarray(img), extension=".png")


def write_report(results, out) -> Path:
    """Write the one-page HTML report of a results file to ``out``; returns its path.

    Charts the run has no data for are left out; the map needs link series (a traffic run)
    and the viz extra's PyVista (with a headless OpenGL where there is no display).
    """
    from twin.results import open_results
    from twin.viz.charts import plot_chart

    out = Path(out)
    if not out.parent.is_dir():
        raise ResultsError(f"cannot write {str(out)!r}: folder {str(out.parent)!r} does not exist")
    with open_results(results) as res:
        meta = res.meta
        name = meta.get("scenario_name") or Path(str(results)).stem
        desc = ""
        text = str(meta.get("scenario", ""))
        for line in text.splitlines():
            if line.strip().startswith("description"):
                desc = line.split("=", 1)[1].strip().strip('"')
        until_h = float(meta.get("until_s", np.nan)) / 3600.0
        rows = _kpi_rows(res)
        images = []
        m = _map(res)
        if m is not None:
            images.append(("congestion at the busiest interval", _png(m)))
        for kind in REPORT_CHARTS:
            try:
                fig = plot_chart(res, kind, figsize=(11, 6) if kind == "epidemic" else (9, 5))
            except (ResultsError, ValueError, KeyError) as exc:
                logger.info("report: no %s chart (%s)", kind, exc)
                continue
            images.append((kind.replace("-", " "), _png(fig)))
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(name)}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(str(name))}</h1>",
             f"<p class='meta'>{html.escape(desc)}</p>" if desc else "",
             f"<p class='meta'>city {html.escape(str(meta.get('city', '-')))}, seed {meta.get('seed', '-')}, "
             f"{until_h:g} h simulated</p>", "<h2>Key figures</h2>"]
    for group, items in rows.items():
        parts.append(f"<h3>{html.escape(group)}</h3><table>")
        parts += [f"<tr><td>{html.escape(k)}</td><td class='v'>{html.escape(v)}</td></tr>" for k, v in items]
        parts.append("</table>")
    if images:
        parts.append("<h2>Pictures</h2>")
        parts += [f"<figure><img alt='{html.escape(t)}' src='{src}'><figcaption>{html.escape(t)}</figcaption>"
                  f"</figure>" for t, src in images]
    parts.append(f"<h2>Scenario</h2><details><summary>the scenario as run (TOML)</summary>"
                 f"<pre>{html.escape(text)}</pre></details></body></html>")
    out.write_text("\n".join(p for p in parts if p), encoding="utf-8")
    return out
