"""Quick matplotlib charts from results files.

:func:`plot_chart` draws one chart kind from :data:`CHARTS` into a new
:class:`matplotlib.figure.Figure` (object API only, so no GUI backend or display is
needed) and optionally saves it. Each kind is a function ``draw(res, fig)`` registered with
:func:`register_chart`; the emergency-response layer adds its kinds the same way.

Kinds
-----
``travel-times``
    Histogram of the travel times of arrived trips (``/events/<prefix>_trips``), with their
    free-flow times as an outline, mean and 90th percentile marked.
``network``
    Vehicles in the network per tick (``/timeseries/<prefix>_counts``) and vehicle-hours
    travelled per interval (sum of ``occupancy_veh`` over links × interval length).
``response-times``
    Histogram of the ``response_time_s`` column of the first ``/events`` table that has one
    (emergency calls), split by its ``priority`` column when present.
``hospital-occupancy``
    Lines of every ``occupancy*`` variable of a ``/timeseries`` group whose name contains
    ``hospital``, one line per hospital (column), with the ``hospital`` names from a
    ``/network/hospitals`` table's ``name`` column when present.
``eldercare`` / ``epidemic``
    Maps and curves of those flows' runs (districts by coverage or by share infected; the
    epidemic curve and ward/ICU beds in use against the beds).
``compare``
    Grouped bars of the key KPIs (:data:`COMPARE_KPIS`: EMS response mean and p90, P1
    within target, unit utilisation, blocking; traffic mean travel time, congestion index,
    VHT) of two runs, ``plot_chart(a, "compare", out, other=b)``, one panel per display unit
    (minutes, %; :mod:`twin.kpi_display`).
"""

from __future__ import annotations

import contextlib
import logging
import os

import numpy as np

from twin.errors import ResultsError
from twin.kpi_display import format_value, kpi_display
from twin.viz.chart_kinds import CHARTS, register_chart

__all__ = ["CHARTS", "COMPARE_KPIS", "compare_values", "plot_chart", "register_chart", "run_label"]

logger = logging.getLogger(__name__)

def _hours(t_s):
    return np.asarray(t_s, dtype=np.float64) / 3600.0


def _need(res, path, what):
    if path not in res.keys():
        raise ResultsError(f"{str(res.path)!r} has no {path}; the {what} chart needs it (write a traffic run with "
                           "TrafficResult.write)")


@register_chart("travel-times", "histogram of trip travel times (arrived trips)")
def _travel_times(res, fig, prefix):
    path = f"/events/{prefix}_trips"
    _need(res, path, "travel-times")
    trips = res.table(path)
    done = trips[trips["status"] == "arrived"] if "status" in trips else trips.dropna(subset=["travel_time_s"])
    ax = fig.add_subplot()
    if not len(done):
        ax.text(0.5, 0.5, "no trip arrived", ha="center", va="center", transform=ax.transAxes)
    else:
        tt_min = done["travel_time_s"].to_numpy() / 60.0
        ff_min = done["free_flow_time_s"].to_numpy() / 60.0
        bins = np.histogram_bin_edges(np.concatenate([tt_min, ff_min]), bins=40)
        ax.hist(tt_min, bins=bins, color="tab:blue", alpha=0.8, label=f"travel time ({len(tt_min):,} trips)")
        ax.hist(ff_min, bins=bins, histtype="step", color="black", label="free-flow time of the same routes")
        mean, p90 = float(np.mean(tt_min)), float(np.percentile(tt_min, 90))
        ax.axvline(mean, color="tab:red", ls="--", label=f"mean {mean:.1f} min")
        ax.axvline(p90, color="tab:orange", ls=":", label=f"90th percentile {p90:.1f} min")
        ax.legend()
    ax.set_xlabel("travel time (min)")
    ax.set_ylabel("trips (1)")
    ax.set_title(f"{_city(res)}trip travel times")


@register_chart("network", "vehicles in the network and vehicle-hours travelled over time")
def _network(res, fig, prefix):
    counts_path = f"/timeseries/{prefix}_counts"
    occ_path = f"/timeseries/{prefix}_links/occupancy_veh"
    _need(res, occ_path, "network")
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    if counts_path in res.keys():
        counts = np.asarray(res.array(counts_path))
        dt_s = float(res.meta.get("dt_s", 1.0))
        t_h = _hours((np.arange(len(counts)) + 1) * dt_s)
        ax1.plot(t_h, counts[:, 1], color="tab:blue", label="in network")
        ax1.plot(t_h, counts[:, 0] - counts[:, 1] - counts[:, 2], color="tab:gray", label="waiting to enter")
        ax1.legend()
    else:
        t_s, occ = res.series(occ_path)
        ax1.step(_hours(t_s), np.nansum(occ, axis=1), where="post", color="tab:blue", label="in network (mean)")
    ax1.set_ylabel("vehicles (veh)")
    ax1.set_title(f"{_city(res)}vehicles in the network")
    t_s, occ = res.series(occ_path)
    interval_s = float(res.meta.get("interval_s", np.median(np.diff(t_s)) if len(t_s) > 1 else 3600.0))
    vht = np.nansum(occ, axis=1) * interval_s / 3600.0
    ax2.bar(_hours(t_s), vht, width=interval_s / 3600.0, align="edge", color="tab:green")
    ax2.set_ylabel("vehicle-hours per interval (veh*h)")
    ax2.set_xlabel("time from scenario start (h)")


@register_chart("response-times", "histogram of emergency response times (needs an /events table with response_time_s)")
def _response_times(res, fig, prefix):
    for path in res.keys("/events"):
        try:
            table = res.table(path)
        except ResultsError:
            continue
        if "response_time_s" in table.columns:
            break
    else:
        raise ResultsError(f"{str(res.path)!r} has no /events table with a response_time_s column; the "
                           "response-times chart needs one (emergency calls)")
    ax = fig.add_subplot()
    rt = table["response_time_s"].to_numpy(np.float64) / 60.0
    groups = [("all", np.isfinite(rt))]
    if "priority" in table.columns:
        groups = [(f"priority {p}", (table["priority"] == p).to_numpy() & np.isfinite(rt))
                  for p in sorted(table["priority"].unique())]
    bins = np.histogram_bin_edges(rt[np.isfinite(rt)], bins=30) if np.isfinite(rt).any() else 10
    for label, sel in groups:
        ax.hist(rt[sel], bins=bins, histtype="step", lw=2, label=f"{label} ({int(sel.sum()):,} calls)")
    summary = set(res.keys("/summary"))
    for p, style in ((1, "--"), (2, ":"), (3, "-.")):          # the response targets of the run
        key = f"/summary/ems_response_p{p}_target_s"
        if key in summary:
            target = float(res.array(key))
            if np.isfinite(target):
                ax.axvline(target / 60.0, color="black", ls=style, lw=1.2, label=f"P{p} target {target / 60:g} min")
    ax.legend()
    ax.set_xlabel("response time (min)")
    ax.set_ylabel("calls")
    ax.set_title(f"{_city(res)}emergency response times")


@register_chart("hospital-occupancy", "hospital occupancy over time (needs a /timeseries/*hospital* group)")
def _hospital_occupancy(res, fig, prefix):
    found = [k for k in res.keys("/timeseries")
             if "hospital" in k.rsplit("/", 2)[-2] and k.rsplit("/", 1)[1].startswith("occupancy")]
    if not found:
        raise ResultsError(f"{str(res.path)!r} has no /timeseries/<group with 'hospital'>/occupancy* series; the "
                           "hospital-occupancy chart needs one (time x hospital)")
    names = None
    if "/network/hospitals" in res.keys() and "name" in res.table("/network/hospitals").columns:
        names = res.table("/network/hospitals")["name"].astype(str).tolist()
    axes = np.atleast_1d(fig.subplots(len(found), 1, sharex=True, squeeze=False)[:, 0])
    for ax, path in zip(axes, found):
        t_s, occ = res.series(path)
        occ = np.atleast_2d(np.asarray(occ).T).T
        beds = None
        if "/network/hospitals" in res.keys() and "beds" in res.table("/network/hospitals").columns:
            beds = res.table("/network/hospitals")["beds"].to_numpy()
        for j in range(occ.shape[1]):
            line, = ax.step(_hours(t_s), occ[:, j], where="post",
                            label=names[j] if names and j < len(names) else f"#{j}")
            if beds is not None and j < len(beds) and path.endswith("occupancy_beds"):
                ax.axhline(beds[j], color=line.get_color(), ls="--", lw=1, label=f"{line.get_label()} beds")
        until = res.meta.get("until_s")
        if until is not None and len(t_s) and float(t_s[-1]) > float(until):       # the drain: no new calls
            ax.axvspan(float(until) / 3600.0, float(t_s[-1]) / 3600.0, color="grey", alpha=0.15,
                       label="drain (after the run's horizon)")
        ax.set_ylabel(f"{path.rsplit('/', 1)[1]} ({res.units(path)})")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))   # beside, off the lines
    axes[0].set_title(f"{_city(res)}hospital occupancy")
    axes[-1].set_xlabel("time from scenario start (h)")


@register_chart("eldercare", "map: districts by 15-minute walking coverage of the 80+, care centres by use "
                             "(needs an [eldercare] run)")
def _eldercare(res, fig, prefix):
    _need(res, "/network/eldercare_districts", "the eldercare chart (a run with [eldercare])")
    from matplotlib import colormaps

    nodes, links = res.table("/network/nodes"), res.table("/network/links")
    dist, cen = res.table("/network/eldercare_districts"), res.table("/network/care_centres")
    visits = res.table("/events/eldercare_visits")
    x, y = nodes["x_m"].to_numpy() / 1000.0, nodes["y_m"].to_numpy() / 1000.0
    ax = fig.subplots()
    fx, tx = x[links["from_idx"].to_numpy()], x[links["to_idx"].to_numpy()]
    fy, ty = y[links["from_idx"].to_numpy()], y[links["to_idx"].to_numpy()]
    for a, b, c, d in zip(fx, tx, fy, ty):
        ax.plot([a, b], [c, d], color="#c8c8c8", linewidth=0.6, zorder=1)
    share = dict(zip(dist["zone_idx"].astype(int), dist["within_walk_share_80"]))
    value = np.array([share.get(int(z), np.nan) for z in nodes["zone_idx"].to_numpy()])
    cmap = colormaps["RdYlGn"]
    pts = ax.scatter(x, y, c=value, cmap=cmap, vmin=0.0, vmax=1.0, s=22, zorder=2, edgecolors="none")
    fig.colorbar(pts, ax=ax, label="80+ within the walking circle (share of the district)", shrink=0.8)
    end = float(res.array("/timeseries/eldercare_centres/time_s")[-1])
    used = np.zeros(len(cen))
    ok = visits["start_s"].notna()
    for c, a, b in zip(visits["centre"][ok], visits["start_s"][ok], visits["end_s"][ok].fillna(end)):
        used[int(c)] += min(b, end) - a
    days = np.ceil(end / 86400.0)
    open_h = (cen["close_s"] - cen["open_s"]).to_numpy() * days
    util = used / np.maximum(cen["places"].to_numpy() * open_h, 1.0)
    cx, cy = x[cen["node_idx"].to_numpy()], y[cen["node_idx"].to_numpy()]
    ax.scatter(cx, cy, s=60 + 900 * util, facecolors="none", edgecolors="#1f3f8f", linewidths=2, zorder=3)
    for name, a, b, u in zip(cen["name"], cx, cy, util):
        ax.annotate(f"{name} {100 * u:.0f} %", (a, b), xytext=(6, 6), textcoords="offset points", fontsize=8,
                    color="#1f3f8f")
    ax.set_aspect("equal")
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    ax.set_title(f"{_city(res)}elderly care: coverage of the 80+ and day-care places used (circles)")


@register_chart("epidemic", "map: districts by the day 1 % of residents were infected, and share infected; "
                            "epidemic curve; ward and ICU beds in use against the beds (needs an [epidemic] run)")
def _epidemic(res, fig, prefix):
    _need(res, "/network/epidemic_districts", "the epidemic chart (a run with [epidemic])")
    from matplotlib import colormaps

    nodes, links = res.table("/network/nodes"), res.table("/network/links")
    dist = res.table("/network/epidemic_districts")
    g = "/timeseries/epidemic"
    days = res.array(f"{g}/time_s") / 86400.0
    summary = res.summary()
    kpi = dict(zip(summary["name"], summary["value"]))
    infectious = sum(res.array(f"{g}/{s}") for s in ("presymptomatic", "symptomatic", "asymptomatic"))
    peak = int(np.argmax(infectious))
    grid = fig.add_gridspec(3, 2, width_ratios=(1.2, 1.0))
    ax = fig.add_subplot(grid[:, 0])
    x, y = nodes["x_m"].to_numpy() / 1000.0, nodes["y_m"].to_numpy() / 1000.0
    fi, ti = links["from_idx"].to_numpy(), links["to_idx"].to_numpy()
    for a, b, c, d in zip(x[fi], x[ti], y[fi], y[ti]):
        ax.plot([a, b], [c, d], color="#c8c8c8", linewidth=0.6, zorder=1)
    cum = np.cumsum(res.array(f"{g}/new_by_zone"), axis=0)[:, dist["zone_idx"].to_numpy()]
    reached = cum >= 0.01 * np.maximum(dist["residents"].to_numpy(), 1)
    day_1pc = np.where(reached.any(axis=0), np.argmax(reached, axis=0), np.nan)
    when = dict(zip(dist["zone_idx"].astype(int), day_1pc))
    value = np.array([when.get(int(z), np.nan) for z in nodes["zone_idx"].to_numpy()])
    lo, hi = (np.nanmin(value), np.nanmax(value)) if np.isfinite(value).any() else (0.0, 1.0)
    pts = ax.scatter(x, y, c=value, cmap=colormaps["OrRd_r"], vmin=lo, vmax=max(hi, lo + 1.0), s=26,
                     zorder=2, edgecolors="#7f7f7f", linewidths=0.3)
    fig.colorbar(pts, ax=ax, label="day the district's residents reached 1 % infected", shrink=0.8,
                 location="bottom")
    for z, zid in zip(dist["zone_idx"].astype(int), dist["zone_id"]):
        m = nodes["zone_idx"].to_numpy() == z
        if m.any():
            ax.annotate(f"{zid}: {100 * float(dist['attack_rate'][dist['zone_idx'] == z].iloc[0]):.0f} %",
                        (x[m].mean(), y[m].mean()), fontsize=8, ha="center", color="#333333",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
    ax.set_aspect("equal")
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    ax.set_title("districts (label: share of residents infected by the end)", fontsize="medium")
    curve = fig.add_subplot(grid[0, 1])
    curve.plot(days, infectious / 1000.0, color="#b2182b", label="infectious")
    curve.plot(days, res.array(f"{g}/new_infections") / 1000.0, color="#ef8a62", label="infected that day")
    curve.axvline(peak, color="#7f7f7f", linestyle=":", linewidth=1)
    curve.set_ylabel("thousands")
    curve.legend(fontsize="x-small", loc="upper left")
    for row, (pool, need, label, colour) in enumerate((("ward", "severe", "ward", "#2166ac"),
                                                        ("icu", "critical", "ICU", "#762a83")), start=1):
        axb = fig.add_subplot(grid[row, 1], sharex=curve)
        axb.fill_between(days, res.array(f"{g}/{need}"), color=colour, alpha=0.18, linewidth=0,
                         label=f"{need} patients")
        axb.plot(days, res.array(f"{g}/{pool}_occupied"), color=colour, label=f"{label} beds in use")
        cap = kpi.get(f"epidemic_{pool}_beds", np.nan)
        if np.isfinite(cap):
            axb.axhline(cap, color="black", linestyle="--", linewidth=0.8, label=f"{int(cap)} {label} beds")
        axb.set_ylabel("persons")
        axb.legend(fontsize="x-small", loc="upper left")
    axb.set_xlabel("day")
    fig.suptitle(f"{_city(res)}epidemic: {100 * kpi.get('epidemic_attack_rate', np.nan):.0f} % infected, "
                 f"{int(kpi.get('epidemic_deaths', 0)):,} deaths, R0 {kpi.get('epidemic_r0', np.nan):.1f}; "
                 f"patients above the dashed line find no bed")


#: KPIs of the ``compare`` chart: (summary name, label, panel). Panels group KPIs of one unit.
COMPARE_KPIS = (
    ("ems_response_mean_s", "EMS response mean", "time (min)"),
    ("ems_response_p90_s", "EMS response p90", "time (min)"),
    ("traffic_mean_travel_time_s", "trip travel time mean", "time (min)"),
    ("ems_response_p1_within_target", "P1 within target", "share (%)"),
    ("ems_unit_utilisation_mean", "unit utilisation", "share (%)"),
    ("ems_blocking", "hospital blocking", "share (%)"),
    ("traffic_congestion_index", "congestion index", "index (1 = free flow)"),
    ("traffic_vht_veh_h", "vehicle-hours travelled", "vehicle-hours (h)"),
)


def run_label(res):
    """A run's name for legends: its ``/meta`` scenario name (with the seed), else the file name."""
    meta = res.meta
    name = meta.get("scenario_name") or meta.get("scenario_source")
    if name and "\n" not in str(name):
        return f"{name} (seed {meta['seed']})" if "seed" in meta else str(name)
    return os.path.basename(str(res.path))


def compare_values(res):
    """The :data:`COMPARE_KPIS` a results file has: ``{summary name: value}`` (float)."""
    summary = res.summary() if "/summary" in {k[:8] for k in res.keys()} else None
    if summary is None or not len(summary):
        return {}
    values = dict(zip(summary["name"], summary["value"]))
    out = {}
    for name, _, _ in COMPARE_KPIS:
        try:
            out[name] = float(values[name])
        except (KeyError, TypeError, ValueError):
            continue
    return out


@register_chart("compare", "grouped bars of key KPIs of two runs (needs other=, CLI --other)")
def _compare(res, fig, prefix, other=None):
    if other is None:
        raise ValueError("the compare chart needs a second run: plot_chart(a, 'compare', out, other=b) "
                         "(CLI: twin plot A.h5 compare --other B.h5)")
    runs = [(run_label(res), compare_values(res)), (run_label(other), compare_values(other))]
    if runs[0][0] == runs[1][0]:
        runs = [(f"A: {os.path.basename(str(res.path))}", runs[0][1]), (f"B: {os.path.basename(str(other.path))}",
                                                                         runs[1][1])]
    kpis = [k for k in COMPARE_KPIS if any(k[0] in v for _, v in runs)]
    if not kpis:
        raise ResultsError(f"neither {str(res.path)!r} nor {str(other.path)!r} has any of the compared KPIs "
                           f"({', '.join(k[0] for k in COMPARE_KPIS)}) under /summary")
    panels = list(dict.fromkeys(p for _, _, p in kpis))
    widths = [sum(1 for k in kpis if k[2] == p) for p in panels]
    axes = fig.subplots(1, len(panels), squeeze=False, gridspec_kw=dict(width_ratios=widths))[0]
    colors = ("tab:blue", "tab:orange")
    for ax, panel in zip(axes, panels):
        rows = [k for k in kpis if k[2] == panel]
        xs = np.arange(len(rows))
        for j, (label, values) in enumerate(runs):
            heights = [values.get(name, np.nan) * kpi_display(name)[2] for name, _, _ in rows]   # display units
            bars = ax.bar(xs + (j - 0.5) * 0.4, np.nan_to_num(heights, nan=0.0), width=0.4, color=colors[j],
                          label=label)
            for bar, (name, _, _), h in zip(bars, rows, heights):
                bar.set_gid(name)
                bar.set_height(h)
            ax.bar_label(bars, labels=["n/a" if not np.isfinite(h) else format_value(h, kpi_display(name)[1])
                                       for (name, _, _), h in zip(rows, heights)],
                         fontsize="x-small", padding=1)
        ax.set_xticks(xs, [lab for _, lab, _ in rows], rotation=30, ha="right", fontsize="small")
        ax.set_ylabel(panel)
        ax.margins(y=0.12)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize="small")
    fig.suptitle(f"{runs[0][0]}  vs  {runs[1][0]}", fontsize="medium")


def _city(res):
    city = res.meta.get("city")
    return f"{city}: " if city else ""


def plot_chart(results, kind, out=None, *, prefix="traffic", figsize=(8.0, 5.0), dpi=100, other=None):
    """Draw one chart of a results file with matplotlib.

    Parameters
    ----------
    results : twin.results.Results, str or os.PathLike
        An open results file or its path.
    kind : str
        A key of :data:`CHARTS`: ``"travel-times"``, ``"network"``, ``"response-times"``,
        ``"hospital-occupancy"``.
    out : str or os.PathLike, optional
        Save the figure here (format from the suffix: ``.png``, ``.svg``, ``.pdf`` ...).
    prefix : str, default "traffic"
        Prefix of the traffic datasets (``/events/<prefix>_trips`` ...).
    figsize : (float, float), default (8, 5)
        Inches.
    dpi : int, default 100
    other : twin.results.Results, str or os.PathLike, optional
        The second run of the ``"compare"`` chart (grouped bars of :data:`COMPARE_KPIS`
        from both files' ``/summary``, labelled by :func:`run_label`); required there,
        rejected by the other kinds.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        Unknown ``kind``; the message lists the accepted kinds.
    ResultsError
        The file lacks the datasets the chart needs.
    """
    from matplotlib.figure import Figure

    from twin.results import Results, open_results

    if kind not in CHARTS:
        raise ValueError(f"unknown chart kind {kind!r}; accepted: {', '.join(CHARTS)}")
    draw, _ = CHARTS[kind]
    if other is not None and kind != "compare":
        raise ValueError(f"other= is for the compare chart only; the {kind!r} chart draws one run")
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")

    def opened(obj):
        if isinstance(obj, Results):
            return contextlib.nullcontext(obj)
        if isinstance(obj, (str, os.PathLike)):
            return open_results(obj)
        raise TypeError(f"expected a results file (twin.open_results) or its path; got {type(obj).__name__}")

    with opened(results) as res:
        if kind == "compare":
            if other is None:
                draw(res, fig, prefix)                      # raises, saying what is missing
            with opened(other) as res_b:
                draw(res, fig, prefix, other=res_b)
        else:
            draw(res, fig, prefix)
    if out is not None:
        fig.savefig(os.fspath(out))
        logger.info("wrote %s", out)
    return fig


from twin.viz import forecast_charts  # noqa: E402,F401  (registers the forecast-fan and forecast-risk charts)
