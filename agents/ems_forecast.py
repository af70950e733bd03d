"""The EMS side of forecasts: a member's own future calls, and what a member's run tells.

:func:`fork_calls` gives a forecast member (a run restored from a snapshot, :mod:`twin.forecast`)
its own future: the calls drawn up front that have not reached dispatch yet are withdrawn
(their ``time_s`` becomes +inf, so no KPI window holds them) and the calls from now to the
run's end are drawn again from the member's scenario (its call rates, perhaps perturbed) with
the member's generator. Calls added during the run (crashes, flood casualties, transfers) come
from their flows' streams, which the fork moves on too. Walk-ins to the EDs stay as drawn.

:func:`horizon_products` reads a member's EMS result over the windows ``[t0, t0 + h)``:
KPIs per horizon and, per district, whether a life-threatening (P1) call waited beyond its
response target.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fork_calls", "withdraw_unreceived", "horizon_products", "expected_calls", "KPIS"]

#: The KPIs of a horizon window (units in the names).
KPIS = ("n_calls", "response_p1_mean_min", "p1_late_share")


def fork_calls(model, rng, rate_factor=1.0) -> int:
    """Withdraw the up-front calls still to come and draw the calls of ``[now, until)`` again
    from ``model.spec`` with ``rng``, every rate times ``rate_factor``; returns how many were
    drawn. A Poisson process at ``f`` times a rate is ``floor(f)`` independent copies of it
    plus one thinned to the fraction left (superposition and thinning), whatever form the
    spec's rates take."""
    from twin.agents.calls import generate_calls

    if not (rate_factor >= 0.0 and math.isfinite(rate_factor)):
        raise ValueError(f"fork_calls: rate factor {rate_factor}; expected a finite factor >= 0")
    now, calls = model.env.now, model.calls
    withdraw_unreceived(model, 0, int(model.first_calls))
    streams = {k: rng for k in ("calls", "dispatch", "service", "hospital")}
    parts, f = [], float(rate_factor)
    while f > 1e-12:
        table = generate_calls(model.spec, model.until_s, streams)
        keep = table.time_s >= now
        if f < 1.0:
            keep &= rng.random(len(keep)) < f
        parts.append(_rows(table, np.flatnonzero(keep)))
        f -= 1.0
    n = sum(len(p.time_s) for p in parts)
    if not n:
        return 0
    table = parts[0]
    for p in parts[1:]:
        table.append(p)
    table = _rows(table, np.argsort(table.time_s, kind="stable"))
    table.location_idx = model.zone_location[table.zone_idx].astype(np.int32)
    idx = calls.append(table)
    model._source(int(idx[0]), int(idx[-1]) + 1)
    return n


def withdraw_unreceived(model, first, stop) -> int:
    """The calls ``first .. stop - 1`` of one call source that have not reached dispatch never
    will: their ``time_s`` becomes +inf and the source stops before them (its process ends at
    its next step). Returns how many."""
    n = 0
    for rec in model.sources:
        if rec[2] == stop and first <= rec[1] < stop:
            model.calls.time_s[rec[1]:stop] = math.inf
            n += stop - rec[1]
            rec[2] = rec[1]
    return n


def expected_calls(spec, a_s, b_s, period_s=3600.0) -> np.ndarray:
    """The expected number of the scenario's own calls per zone in ``[a_s, b_s)`` (seconds):
    each zone's rate integrated over its hourly profile (or the rate table's periods,
    repeating). Calls that other flows add (crashes, flood casualties, transfers) and ED
    walk-ins are not in it."""
    a, b = float(a_s), float(b_s)
    if spec.rate_table_per_h is not None:
        rt = np.asarray(spec.rate_table_per_h, dtype=np.float64).sum(axis=2) / 3600.0      # (periods, zones)
        return _period_seconds(a, b, rt.shape[0], period_s) @ rt
    rates = np.array([z.arrival_rate_per_h for z in spec.zones], dtype=np.float64) / 3600.0
    prof = np.asarray(spec.hourly_profile, dtype=np.float64)
    return rates * float(_period_seconds(a, b, len(prof), period_s) @ prof)


def _period_seconds(a, b, n_periods, period_s):
    """Seconds of ``[a, b)`` in each of ``n_periods`` repeating periods of ``period_s``."""
    out = np.zeros(n_periods)
    k = int(math.floor(a / period_s)) if b > a else 0
    while b > a and k * period_s < b:
        out[k % n_periods] += min(b, (k + 1) * period_s) - max(a, k * period_s)
        k += 1
    return out


def _rows(table, idx):
    n = len(table.time_s)
    for k, v in list(vars(table).items()):
        if isinstance(v, np.ndarray) and len(v) == n:
            setattr(table, k, v[idx])
    return table


def horizon_products(ems, t0_s, horizons_s, target_p1_s, zone_district_idx, n_districts):
    """``(kpis, late, counts)``: ``kpis[h][name]`` over ``[t0, t0 + h)`` for each horizon;
    ``late[h]`` a bool per district (``zone_district_idx``: the district of each call zone): a
    P1 call there in the window was reached later than ``target_p1_s`` (or not at all by the
    window's end, that long after it); ``counts[h]`` the calls per district in the window."""
    district = np.asarray(zone_district_idx, dtype=np.int64)
    c = ems.calls
    t = c["time_s"].to_numpy()
    zone = c["zone_idx"].to_numpy()
    prio = c["priority"].to_numpy()
    resp = c["response_s"].to_numpy()
    kpis, late, counts = [], [], []
    for h in horizons_s:
        end = t0_s + h
        win = (t >= t0_s) & (t < end) & (zone >= 0)
        p1 = win & (prio == 1)
        reached = np.where(np.isnan(resp), np.inf, resp)
        known = p1 & ((reached <= end - t) | (end - t > target_p1_s))   # answered, or late already
        is_late = known & (np.minimum(reached, end - t) > target_p1_s)
        r1 = resp[p1 & ~np.isnan(resp)]
        kpis.append({"n_calls": float(win.sum()),
                     "response_p1_mean_min": float(r1.mean() / 60.0) if len(r1) else math.nan,
                     "p1_late_share": float(is_late.sum() / known.sum()) if known.any() else math.nan})
        hit = np.zeros(n_districts, dtype=bool)
        lz = zone[is_late]
        if len(lz):
            hit[district[np.unique(lz)]] = True
        late.append(hit)
        counts.append(np.bincount(district[zone[win]], minlength=n_districts))
    return kpis, np.array(late), np.array(counts, dtype=np.int64).reshape(len(late), n_districts)
