"""Joint incidents: the time until a call's full required set of units is on scene, and each
agency's first unit on scene ([coordination] #19).

A call type may need several units (``requires``: a traffic crash with injuries needs a
police car and an ambulance; a fire with casualties two engines and an ambulance). The
response time KPIs count the *first* unit on scene; a joint incident is only handled once
*every* unit it needs is there, and each agency's part starts when its first unit arrives.
With ``[[agencies]]`` owning unit kinds (:attr:`twin.emergency.DispatchSpec.unit_agencies`),
a unit's agency is its kind's owner, in either coordination mode.
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
    end); and per agency ``agency_<name>_on_scene_mean_s`` (call to the agency's first unit
    on scene, over the calls it sent units to). The table has one row per agency owning unit
    kinds: ``agency``, ``unit_kinds`` (``;``-joined), ``calls`` (calls needing its units),
    ``reached`` (calls its first unit reached), ``on_scene_mean_s``, ``on_scene_p90_s``.
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
    kind = np.array([model.units[int(u)].kind for u in a[:, 1]], dtype=np.int64)
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
    # each agency's first unit on scene
    owners = spec.dispatch.unit_agencies
    names = list(dict.fromkeys(n for n in owners if n))
    type_kinds = [{k for slot in ts for k in slot if k >= 0} for ts in model.type_slots[:n_types]]
    rows = []
    for name in names:
        codes = [i for i, o in enumerate(owners) if o == name]
        needs = np.array([bool(type_kinds[t] & set(codes)) for t in range(n_types)], dtype=bool)
        n_calls = int((keep & needs[np.minimum(calls.type_idx, n_types - 1)]).sum())
        mine = np.isin(kind, codes) & np.isfinite(arrive)
        first = pd.Series(arrive[mine]).groupby(call[mine]).min().to_numpy()
        rows.append((name, ";".join(UNIT_KINDS[i] for i in codes), n_calls, len(first), _mean(first), _p90(first)))
        kpis[f"agency_{name}_on_scene_mean_s"] = _mean(first)
    table = pd.DataFrame(rows, columns=["agency", "unit_kinds", "calls", "reached", "on_scene_mean_s",
                                        "on_scene_p90_s"])
    return kpis, table
