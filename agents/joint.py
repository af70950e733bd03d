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

__all__ = ["joint_response", "idle_while_waiting"]

#: Unit lifecycle codes in which a unit may be sent (twin.emergency.UNIT_EVENTS names).
IDLE_EVENTS = ("available", "returning", "at_station", "relocating")


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
    kpis.update(idle_while_waiting(model, keep, until_s))
    aid = [r for r in model.dispatch.aid_log if keep[r[0]]]
    if d.mutual_aid:
        kpis.update(mutual_aid_requests=len(aid), mutual_aid_units=int(sum(r[3] for r in aid)))
    table = pd.DataFrame(rows, columns=["agency", "unit_kinds", "calls", "reached", "on_scene_mean_s",
                                        "on_scene_p90_s"])
    return kpis, table


def _idle_steps(model, kinds):
    """Units of ``kinds`` free for dispatch over time: ``(times_s, count from each time on)``
    (every unit free at 0; a unit is free from an available / returning / at-station /
    relocating event to its next dispatch)."""
    from twin.emergency import UNIT_EVENTS

    units = [u.unit_idx for u in model.units if u.kind in kinds]
    ev = np.array(model.unit_events, dtype=np.float64).reshape(-1, 4)
    ev = ev[np.isin(ev[:, 1].astype(np.int64), units)]
    free = np.isin(ev[:, 3].astype(np.int64), [UNIT_EVENTS.index(n) for n in IDLE_EVENTS])
    unit = ev[:, 1].astype(np.int64)
    order = np.argsort(unit, kind="stable")                 # each unit's events in time order
    unit, free, t = unit[order], free[order], ev[order, 0]
    first = np.r_[True, unit[1:] != unit[:-1]] if len(unit) else np.zeros(0, dtype=bool)
    before = np.where(first, True, np.r_[True, free[:-1]] if len(free) else free)
    delta = free.astype(np.int64) - before.astype(np.int64)
    t, delta = t[delta != 0], delta[delta != 0]
    posts = [(a, b) for u, _, a, b in model.posted_log if model.units[u].kind in kinds]   # free, not dispatchable
    if posts:
        a, b = np.array(posts, dtype=np.float64).T
        t = np.r_[t, a, np.where(np.isnan(b), np.inf, b)]
        delta = np.r_[delta, -np.ones(len(a), np.int64), np.ones(len(a), np.int64)]
    o = np.argsort(t, kind="stable")
    times = np.r_[0.0, t[o]]
    return times, len(units) + np.r_[0, np.cumsum(delta[o])]


def idle_while_waiting(model, keep, end_s) -> dict:
    """Slots of the calls in ``keep`` that waited for a unit while one that could fill them
    (of the slot's kind or its fallback) was free for dispatch somewhere: in siloed mode a
    unit of another centre or across a hard border; in unified mode never (a slot waits only
    while no such unit is free). A slot waits from the call being ready at its first centre to
    its unit's dispatch (still open at ``end_s``: to then; lost calls do not wait).

    KPIs: ``slots_waited_with_idle_units`` (slots whose wait overlapped such a free unit by more
    than 1 s) and ``wait_with_idle_units_h`` (slot-hours waited while one was free).
    """
    from twin.emergency import OUTCOMES

    calls = model.calls
    a = np.array([r[:4] for r in model.assignments], dtype=np.float64).reshape(-1, 4)
    sent = {}
    for c, _, s, t in a:
        sent.setdefault((int(c), int(s)), t)
    lost = OUTCOMES.index("lost")
    waits = {}                                   # (kind, fallback) -> [(start_s, end_s)]
    for c in np.flatnonzero(keep & (calls.outcome != lost) & np.isfinite(calls.ready_s)):
        for s, kf in enumerate(model.type_slots[calls.type_idx[c]]):
            b = sent.get((int(c), s), end_s)
            if b > calls.ready_s[c]:
                waits.setdefault(kf, []).append((calls.ready_s[c], b))
    n, total = 0, 0.0
    for (k, f), spans in sorted(waits.items()):
        times, count = _idle_steps(model, {k, f} - {-1})
        on = (count > 0).astype(np.float64)
        cum = np.r_[0.0, np.cumsum(on[:-1] * np.diff(times))]     # free-time integral at each step time

        def integral(x):
            j = np.searchsorted(times, x, side="right") - 1
            return cum[j] + on[j] * (x - times[j])

        lo, hi = np.array(spans).T
        overlap = integral(hi) - integral(lo)
        n += int((overlap > 1.0).sum())
        total += float(overlap.sum())
    return {"slots_waited_with_idle_units": n, "wait_with_idle_units_h": total / 3600.0}
