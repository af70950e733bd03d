"""Joint incidents: the time until a call's full required set of units is on scene, and each
agency's first unit on scene ([coordination] #19).

A call type may need several units (``requires``: a traffic crash with injuries needs a
police car and an ambulance; a fire with casualties two engines and an ambulance). The
response time KPIs count the *first* unit on scene; a joint incident is only handled once
*every* unit it needs is there, and each agency's part starts when its first unit arrives.
With ``[[agencies]]`` owning unit kinds (:attr:`twin.emergency.DispatchSpec.agency_of_unit`),
a unit's agency is its kind's owner in its station's district, in either coordination mode;
a unit sent to a call where another agency owns its kind crosses a border (mutual aid in
siloed mode, any nearest unit in unified mode).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["joint_response"]


def _p90(x):
    return float(np.percentile(x, 90)) if len(x) else math.nan


def _mean(x):
    return float(np.mean(x)) if len(x) else math.nan


def joint_response(model, warmup_s, until_s) -> tuple:
    """``(kpis, per-agency table)`` over the calls arriving in ``[warmup_s, until_s)`` (not
    scripted incidents' patients nor inter-hospital transfers).

    KPIs: ``full_set_calls`` (calls needing more than one unit), ``full_set_mean_s`` and
    ``full_set_p90_s`` (call to the last of their units on scene, s, over those whose full
    set got there), ``full_set_unreached`` (the rest: lost, or units still missing at the
    end); ``cross_border_units`` and ``cross_border_share`` (units sent to calls in another
    agency's jurisdiction for their kind, and their share of the units sent); with mutual aid
    ``mutual_aid_requests`` and ``mutual_aid_units`` (sent by partners when asked; later ones
    are in the cross-border count); and per agency ``agency_<name>_on_scene_mean_s`` (call to
    the first unit on scene of the kinds the agency owns where the call is, whoever's unit it
    is: a mutual-aid unit counts). The table has one row per agency owning unit kinds:
    ``agency``, ``unit_kinds`` (``;``-joined), ``calls`` (calls needing its kinds where it
    owns them),
    ``reached`` (those a unit of its kinds reached), ``on_scene_mean_s``, ``on_scene_p90_s``.
    """
    import pandas as pd

    from twin.emergency import UNIT_KINDS

    calls, spec = model.calls, model.spec
    n_types = model.n_call_types
    keep = ((calls.time_s >= warmup_s) & (calls.time_s < until_s) & (calls.zone_idx >= 0)
            & (calls.type_idx < n_types))
    a = np.array([r[:5] for r in model.assignments], dtype=np.float64).reshape(-1, 5)
    a = a[keep[a[:, 0].astype(np.int64)]] if len(a) else a
    call = a[:, 0].astype(np.int64)
    kind = np.array([u.kind for u in model.units], dtype=np.int64)[a[:, 1].astype(np.int64)]
    arrive = a[:, 4] - calls.time_s[call]                       # call to this unit on scene, s (NaN: never)
    # the full set: every required unit on scene
    several = keep & (calls.n_slots > 1)
    reached = np.zeros(len(calls), dtype=np.int64)
    np.add.at(reached, call[np.isfinite(arrive)], 1)
    last = np.full(len(calls), -np.inf)
    np.maximum.at(last, call[np.isfinite(arrive)], arrive[np.isfinite(arrive)])
    full = several & (reached >= calls.n_slots)
    kpis = {"full_set_calls": int(several.sum()), "full_set_mean_s": _mean(last[full]),
            "full_set_p90_s": _p90(last[full]), "full_set_unreached": int((several & ~full).sum())}
    # each agency's first unit on scene, and units sent across a border
    d, rows = spec.dispatch, []
    if d.agencies and d.agency_of_unit:
        from twin.ems_centres import per_zone

        a_kind = per_zone(d.agency_of_kind, len(spec.zones))               # (kinds, zones)
        unit_agency = np.asarray(d.agency_of_unit, dtype=np.int64)[a[:, 1].astype(np.int64)]
        home = a_kind[kind, calls.zone_idx[call]] if len(call) else np.empty(0, np.int64)
        cross = (unit_agency >= 0) & (home >= 0) & (unit_agency != home)
        kpis.update(cross_border_units=int(cross.sum()), cross_border_share=float(cross.mean()) if len(cross)
                    else math.nan)
        has = np.zeros((n_types, len(UNIT_KINDS)), dtype=bool)
        for t, ts in enumerate(model.type_slots[:n_types]):
            has[t, [k for k, _ in ts]] = True
        idx = np.flatnonzero(keep)
        t_idx, z_idx = calls.type_idx[idx].astype(np.int64), calls.zone_idx[idx].astype(np.int64)
        for i, name in enumerate(d.agencies):
            codes = [k for k in range(len(UNIT_KINDS)) if (a_kind[k] == i).any()]
            if not codes:
                continue
            needs = np.zeros(len(idx), dtype=bool)
            for k in codes:
                needs |= has[t_idx, k] & (a_kind[k, z_idx] == i)
            mine = (home == i) & np.isfinite(arrive)          # its part of the call, whoever's unit
            first = pd.Series(arrive[mine]).groupby(call[mine]).min().to_numpy()
            rows.append((name, ";".join(UNIT_KINDS[k] for k in codes), int(needs.sum()), len(first), _mean(first),
                         _p90(first)))
            kpis[f"agency_{name}_on_scene_mean_s"] = _mean(first)
    aid = [r for r in model.dispatch.aid_log if keep[r[0]]]
    if d.mutual_aid:
        kpis.update(mutual_aid_requests=len(aid), mutual_aid_units=int(sum(r[3] for r in aid)))
    table = pd.DataFrame(rows, columns=["agency", "unit_kinds", "calls", "reached", "on_scene_mean_s",
                                        "on_scene_p90_s"])
    return kpis, table
