"""``--format table|csv|json`` of ``twin run``, ``replicate`` and ``compare``: KPIs for programs.

``table`` (the default) is the report people read, in display units. ``csv`` and ``json`` are
for programs and keep the results file's names and SI units (seconds, shares in [0, 1]):

- ``twin run``: CSV rows ``kpi,value`` (every KPI, then each district's row of the EMS
  district table as ``district_<name>_<column>``); JSON ``{"scenario", "seed", "kpis",
  "districts"}``.
- ``twin replicate``: CSV one row per KPI with ``mean, half_width, low, high, n`` (and the
  interval's ``method``); JSON ``{"scenario", "replications", "seed", "confidence", "kpis":
  {name: {...}}, "gridlocked_seeds"}``.
- ``twin compare``: CSV one row per KPI with ``A, B`` (the means) and the paired difference
  ``mean, half_width, low, high, significant``; JSON the same rows under ``"kpis"``.

Non-finite values are empty CSV cells and JSON ``null``. Nothing else goes to standard
output (progress and notes go to standard error).
"""

from __future__ import annotations

import csv
import json
import math
import sys

__all__ = ["FORMATS", "add_format_argument", "write_run", "write_summary"]

FORMATS = ("table", "csv", "json")


def add_format_argument(p) -> None:
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default, display units) or csv / json for programs (the results file's names and "
                        "SI units)")


def _plain(v):
    """A JSON/CSV value: Python numbers, None for NaN and infinities, text as is."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_run(res, fmt, out=None) -> None:
    """The KPIs (and EMS districts) of a :class:`twin.runner.RunResult` as CSV or JSON."""
    out = sys.stdout if out is None else out
    districts = []
    ems = res.flows.get("ems")
    table = None if ems is None else ems.values.get("districts")
    if table is not None:
        districts = [{k: _plain(v) for k, v in row.items()} for row in table.to_dict("records")]
    if fmt == "json":
        json.dump({"scenario": res.scenario.name, "seed": int(res.seed),
                   "kpis": {k: _plain(v) for k, v in res.kpis.items()}, "districts": districts}, out, indent=1)
        out.write("\n")
        return
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["kpi", "value"])
    for k, v in res.kpis.items():
        w.writerow([k, _cell(v)])
    for row in districts:
        for col, v in row.items():
            if col not in ("name", "district_idx"):
                w.writerow([f"district_{row['name']}_{col}", _cell(v)])


def _cell(v):
    v = _plain(v)
    return "" if v is None else v


def write_summary(table, fmt, meta, out=None) -> None:
    """A replicate / compare table (rows: KPIs) as CSV or JSON; ``meta`` goes to JSON's top level."""
    out = sys.stdout if out is None else out
    rows = {str(k): {c: _plain(v) for c, v in row.items()} for k, row in table.iterrows()}
    if fmt == "json":
        json.dump({**meta, "kpis": rows}, out, indent=1)
        out.write("\n")
        return
    w = csv.writer(out, lineterminator="\n")
    cols = list(table.columns)
    w.writerow(["kpi", *cols])
    for k, row in rows.items():
        w.writerow([k, *(_cell(row[c]) for c in cols)])
