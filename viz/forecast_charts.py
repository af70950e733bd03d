"""Charts of a forecast file (``twin forecast --out``): KPI fans over lead time, district risk maps.

``twin plot forecast.h5 forecast-fan``: one panel per KPI, the P10-P90 band and the P50 line of
the members over the horizons (``/forecast/fans``). ``twin plot forecast.h5 forecast-risk``: one
map per horizon, each call zone's place coloured by its district's risk class (five colours,
``/forecast/risk/p1_late_level``; the probability per district in the legend's order).
"""

from __future__ import annotations

import json

from twin.errors import ResultsError
from twin.viz.chart_kinds import register_chart
from twin.viz.layers import clock_text

__all__ = []


def _meta_list(res, key):
    v = res.meta.get(key)
    if v is None:
        raise ResultsError(f"{str(res.path)!r} is not a forecast file (no {key} in /meta); write one with "
                           f"twin forecast --out")
    return json.loads(v) if isinstance(v, str) else list(v)


_TITLES = {"n_calls": "calls", "response_p1_mean_min": "P1 response, mean", "p1_late_share": "P1 calls beyond target"}


def _hours_label(h_s):
    return [f"+{h / 3600:g} h" for h in h_s]


@register_chart("forecast-fan", "forecast: P10-P90 band and P50 of each KPI over lead time (twin forecast --out)")
def _fan(res, fig, prefix):
    kpis = _meta_list(res, "forecast_kpis")
    h = res.array("/forecast/horizons_s") / 3600.0
    axes = fig.subplots(1, len(kpis), squeeze=False)[0]
    for ax, k in zip(axes, kpis):
        f = res.array(f"/forecast/fans/{k}")
        scale, unit = (100.0, "%") if k.endswith("_share") else (1.0, res.units(f"/forecast/fans/{k}"))
        ax.fill_between(h, f[0] * scale, f[2] * scale, color="#90caf9", label="P10-P90")
        ax.plot(h, f[1] * scale, "o-", color="#0d47a1", label="P50")
        ax.set_xlabel("lead time (h)")
        ax.set_title(_TITLES.get(k, k.replace("_", " ")) + ("" if unit in ("1", "") else f" ({unit})"), fontsize=10)
        ax.set_xlim(0, max(h) * 1.05)
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    t0 = float(res.meta.get("forecast_t0_s", 0.0))
    fig.suptitle(f"forecast from {clock_text(t0)}, "
                 f"{int(res.meta.get('forecast_members', 0))} members")


@register_chart("forecast-risk", "forecast: districts by risk class of each harm (P1 beyond target, hospital full, "
                                 "roads cut off ...) per horizon (twin forecast --out)")
def _risk(res, fig, prefix):
    from matplotlib.patches import Patch

    classes = _meta_list(res, "forecast_risk_classes")
    colours = _meta_list(res, "forecast_risk_colours")
    if "/forecast/map/zone_x_m" not in res.keys("/forecast"):
        raise ResultsError(f"{str(res.path)!r} has no /forecast/map (the city had no coordinates)")
    x, y = res.array("/forecast/map/zone_x_m") / 1000.0, res.array("/forecast/map/zone_y_m") / 1000.0
    d = res.array("/forecast/map/zone_district_idx")
    h = res.array("/forecast/horizons_s")
    names = _meta_list(res, "forecast_districts")
    harms = _meta_list(res, "forecast_harms") if "forecast_harms" in res.meta else ["p1_late"]
    titles = _meta_list(res, "forecast_harm_titles") if "forecast_harm_titles" in res.meta else ["P1 beyond target"]
    levels = {k: res.array(f"/forecast/risk/{k}_level") for k in harms}
    rows = [k for k in harms if k == "p1_late" or levels[k].max() > 0]       # harms that struck somewhere
    w, _ = fig.get_size_inches()
    span = (float(y.max() - y.min()) + 0.5) / (float(x.max() - x.min()) + 0.5)
    fig.set_figheight(min(max(len(rows) * (w / len(h) * span * 0.8 + 0.3) + 1.3, 3.0), 16.0))
    axes = fig.subplots(len(rows), len(h), squeeze=False, sharex=True, sharey=True)
    for r, harm in enumerate(rows):
        for i, (ax, label) in enumerate(zip(axes[r], _hours_label(h))):
            ax.scatter(x, y, c=[colours[int(levels[harm][i, k])] for k in d], s=14, linewidths=0)
            for j, name in enumerate(names):
                if (d == j).any():
                    ax.annotate(str(name), (float(x[d == j].mean()), float(y[d == j].mean())), fontsize=7,
                                xytext=(0, 7), textcoords="offset points", color="#212121", ha="center",
                                va="center", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                                   "alpha": 0.7})
            ax.set_aspect("equal")
            ax.set_title(f"{titles[harms.index(harm)]}, {label}" if i == 0 else label, fontsize=9,
                         loc="left" if i == 0 else "center")
        axes[r, 0].set_ylabel("y (km)")
    for ax in axes[-1]:
        ax.set_xlabel("x (km)")
    fig.legend(handles=[Patch(color=c, label=n) for c, n in zip(colours, classes)], loc="outside lower center",
               ncol=len(classes), fontsize=8, title="risk: share of members in which the harm strikes the district")
    t0 = float(res.meta.get("forecast_t0_s", 0.0))
    fig.suptitle(f"forecast from {clock_text(t0)}: district risk by lead time")
