"""KPIs, report lines and the results-file section of a finished epidemic (the epidemic flow's finish)."""

from __future__ import annotations

import math

import numpy as np

from twin.flows import FlowResult
from twin.units import fmt_pct

__all__ = ["epidemic_result", "epidemic_kpis"]

DAY_S = 86400.0
_INFECTIOUS = ("presymptomatic", "symptomatic", "asymptomatic")


def epidemic_kpis(res, n_calls=0, r0=math.nan) -> dict:
    """The ``epidemic_*`` KPIs of an :class:`~twin.agents.epidemic.EpidemicResult`."""
    d = res.daily
    n = res.n_persons
    infected = int(np.count_nonzero(~np.isnan(res.t_inf_d)))
    infectious = d[list(_INFECTIOUS)].sum(axis=1).to_numpy() if len(d) else np.zeros(0)
    k = {"epidemic_persons": float(n), "epidemic_r0": float(r0), "epidemic_infected": float(infected),
         "epidemic_attack_rate": infected / max(n, 1),
         "epidemic_peak_infectious": float(infectious.max()) if len(infectious) else 0.0,
         "epidemic_peak_day": float(np.argmax(infectious)) if len(infectious) else math.nan,
         "epidemic_deaths": float(d["deaths"].sum()) if len(d) else 0.0}
    k["epidemic_severe"] = float((d["ward_admissions"] + d["ward_refused"]).sum()) if len(d) else 0.0
    k["epidemic_critical"] = float((d["icu_admissions"] + d["icu_refused"]).sum()) if len(d) else 0.0
    for pool in ("ward", "icu"):
        k[f"epidemic_{pool}_refused"] = float(d[f"{pool}_refused"].sum()) if len(d) else 0.0
        k[f"epidemic_{pool}_peak_beds"] = float(d[f"{pool}_occupied"].max()) if len(d) else 0.0
    k["epidemic_icu_overflow_days"] = float(np.count_nonzero(d["icu_refused"] > 0)) if len(d) else 0.0
    seeded = int(np.count_nonzero((~np.isnan(res.t_inf_d)) & (res.infector < 0)))
    by_layer = np.bincount(res.inf_layer[res.inf_layer >= 0], minlength=len(res.layer_names))
    for code, name in enumerate(res.layer_names):
        k[f"epidemic_{name}_share"] = float(by_layer[code]) / max(infected - seeded, 1)
    k["epidemic_calls"] = float(n_calls)
    return k


def _lines(k, res, plan):
    n_days = len(res.daily)
    layers = ", ".join(f"{name} {fmt_pct(k[f'epidemic_{name}_share'])}" for name in res.layer_names)

    def beds(pool, cap):
        return "unlimited" if cap is None else f"{cap:,}"

    lines = [f"{'epidemic':<34} {int(k['epidemic_persons']):,} persons, {fmt_pct(k['epidemic_attack_rate'])} "
             f"infected ({int(k['epidemic_infected']):,}) in {n_days} days, R0 {k['epidemic_r0']:.2f}; peak {int(k['epidemic_peak_infectious']):,} "
             f"infectious on day {int(k['epidemic_peak_day']) if k['epidemic_peak_day'] == k['epidemic_peak_day'] else '-'}",
             f"{'  where infected':<34} {layers}",
             f"{'  hospital':<34} {int(k['epidemic_severe']):,} severe (ward beds {beds('ward', plan.ward_beds)}, peak "
             f"{int(k['epidemic_ward_peak_beds']):,}, {int(k['epidemic_ward_refused']):,} refused); "
             f"{int(k['epidemic_critical']):,} critical (ICU beds {beds('icu', plan.icu_beds)}, peak "
             f"{int(k['epidemic_icu_peak_beds']):,}, {int(k['epidemic_icu_refused']):,} refused on "
             f"{int(k['epidemic_icu_overflow_days'])} days); {int(k['epidemic_deaths']):,} deaths"]
    if plan.interventions:
        kinds = ", ".join(sorted({it.name or it.kind for it in plan.interventions}))
        lines.append(f"{'  control (' + kinds + ')':<34} {int(k['epidemic_restricted_person_days']):,} person-days "
                     f"restricted (isolated {int(k['epidemic_isolated_person_days']):,}, quarantined "
                     f"{int(k['epidemic_quarantined_person_days']):,}, locked down "
                     f"{int(k['epidemic_locked_down_person_days']):,}); {int(k['epidemic_tests']):,} tested, "
                     f"{int(k['epidemic_positives']):,} positive, {int(k['epidemic_traced']):,} contacts traced")
    if "epidemic_car_trips_min" in k and len(res.daily):
        first = int(res.daily["car_trips"].iloc[0])
        lines.append(f"{'  car trips a day':<34} {first:,} on day 0, fewest {int(k['epidemic_car_trips_min']):,} "
                     f"(persons at home: in hospital, dead or restricted)")
    if k["epidemic_calls"]:
        lines.append(f"{'  calls to 120 (severe cases)':<34} {int(k['epidemic_calls']):,}")
    return lines


def _kpi_unit(name):
    if name.endswith(("_rate", "_share", "_r0")):
        return "1"
    if name.endswith("_person_days"):
        return "person*d"
    if name.endswith("_day") or name.endswith("_days"):
        return "d"
    if "_car_trips" in name:
        return "trips/day"
    if name.endswith("_conflicts"):
        return "persons"
    if name.endswith("_calls"):
        return "calls"
    if name.endswith("_tests"):
        return "tests"
    return "beds" if name.endswith("_beds") else "persons"


def _write(writer, res, city, plan, k):
    for name, value in k.items():
        writer.write_summary(name, value, units=_kpi_unit(name))
    d = res.daily
    t = d["day"].to_numpy(dtype=np.float64) * DAY_S
    g = "/timeseries/epidemic"
    writer.write_array(f"{g}/time_s", t, units="s")
    for col in d.columns:
        if col == "day":
            continue
        unit = "persons" if not col.startswith(("new_", "symptom", "ward_a", "ward_r", "icu_a", "icu_r",
                                                 "recoveries", "deaths")) else "persons/day"
        if col.endswith("_occupied"):
            unit = "beds"
        if col == "car_trips":
            unit = "trips/day"
        writer.write_array(f"{g}/{col}", d[col].to_numpy(dtype=np.int64), units=unit,
                           attrs={"time_path": f"{g}/time_s"})
    writer.write_array(f"{g}/new_by_zone", res.zone_new, units="persons/day",
                       attrs={"time_path": f"{g}/time_s", "zone_ids": [str(z) for z in city.zone_ids]})
    nz = len(city.zone_ids)
    residents = np.bincount(plan.home_zone, minlength=nz)
    infected = np.bincount(plan.home_zone[~np.isnan(res.t_inf_d)], minlength=nz)
    writer.write_table("/network/epidemic_districts",
                       {"zone_id": np.array([str(z) for z in city.zone_ids]), "zone_idx": np.arange(nz),
                        "residents": residents.astype(np.int64), "infected": infected.astype(np.int64),
                        "attack_rate": infected / np.maximum(residents, 1)},
                       units={"zone_id": "", "zone_idx": "", "residents": "persons", "infected": "persons",
                              "attack_rate": "1"})
    who = np.flatnonzero(~np.isnan(res.t_inf_d))
    who = who[np.argsort(res.t_inf_d[who], kind="stable")]
    layer = np.array(["seeded", *res.layer_names])[res.inf_layer[who].astype(np.int64) + 1]
    writer.write_table("/events/epidemic_infections",
                       {"person": who.astype(np.int64), "time_s": res.t_inf_d[who] * DAY_S,
                        "infector": res.infector[who].astype(np.int64), "layer": layer.astype(str)},
                       units={"person": "", "time_s": "s", "infector": "", "layer": ""})


def _controls(res, controls, k):
    """Add the controls' daily restricted persons to ``res.daily`` and their KPIs to ``k``."""
    import pandas as pd

    rows = pd.DataFrame(controls.restricted()) if controls is not None else None
    for col in ("isolated", "quarantined", "locked_down"):
        res.daily[col] = rows[col].to_numpy() if rows is not None and len(rows) == len(res.daily) else 0
        k[f"epidemic_{col}_person_days"] = float(res.daily[col].sum())
    k["epidemic_restricted_person_days"] = float(res.daily[["isolated", "quarantined", "locked_down"]].sum().sum())
    if "car_trips" in res.daily and len(res.daily):
        k["epidemic_car_trips_min"] = float(res.daily["car_trips"].min())
        k["epidemic_car_trips_mean"] = float(res.daily["car_trips"].mean())
    counts = controls.counts if controls is not None else {"tests": 0, "positives": 0, "traced": 0}
    k.update({f"epidemic_{key}": float(v) for key, v in counts.items()})


def epidemic_result(res, city, plan, n_calls, r0, name, controls=None) -> FlowResult:
    """The epidemic flow's FlowResult."""
    k = epidemic_kpis(res, n_calls, r0)
    _controls(res, controls, k)
    for pool, cap in (("ward", plan.ward_beds), ("icu", plan.icu_beds)):
        k[f"epidemic_{pool}_beds"] = math.nan if cap is None else float(cap)
    return FlowResult(name, kpis=k, values={"epidemic": res}, lines=_lines(k, res, plan),
                      write=lambda w: _write(w, res, city, plan, k))
