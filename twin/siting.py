"""Facility siting on a cost matrix: median, center, covering and expected-covering models, by MILP.

Every model takes a cost matrix ``cost_s[i, j]`` — the time in seconds from candidate site
``j`` to demand point ``i`` (``inf`` where unreachable; e.g. ``City.travel_times`` on
free-flow or congested link costs, transposed) — with demand weights ``weights[i]`` (calls
per hour by zone, persons, ...; default 1 each), and is solved exactly by
:func:`scipy.optimize.milp` (HiGHS branch and cut). The models:

======================  =====================================================================
:func:`p_median`        ``p`` sites minimising the weighted total cost to the nearest site
                        (Hakimi 1964; ReVelle & Swain 1970); capacitated with ``capacity``.
:func:`p_center`        ``p`` sites minimising the largest cost to the nearest site (Hakimi
                        1965); ties broken by the least weighted total cost.
:func:`lscp`            the fewest (or cheapest) sites covering every demand point within
                        ``standard_s`` (Toregas et al. 1971).
:func:`mclp`            ``p`` sites covering the most demand within ``standard_s`` (Church &
                        ReVelle 1974).
:func:`mexclp`          ``units`` vehicles on sites maximising expected covered demand when
                        each vehicle is busy with probability ``q`` (Daskin 1983).
:func:`double_standard` ``units`` vehicles covering all demand within ``r2_s``, a share
                        ``alpha`` within ``r1_s``, and the most demand *twice* within ``r1_s``
                        (Gendreau, Laporte & Semet 1997: backup coverage).
======================  =====================================================================

``fixed`` lists existing sites that must stay open (each holds at least one vehicle in the
vehicle models). A result (:class:`SitingResult`) gives the chosen sites, vehicles per site,
the objective, the solver's best bound and relative gap, the solve time, and each demand
point's nearest open site. Bad input raises :class:`~twin.errors.OptimisationError` naming the
item; a well-formed problem with no feasible plan raises :class:`~twin.errors.InfeasibleError`
(never a wrong plan).

Examples
--------
>>> import numpy as np
>>> cost = np.array([[0., 5., 9.], [5., 0., 4.], [9., 4., 0.]])   # 3 points, each a candidate
>>> r = p_median(cost, 1)
>>> r.sites.tolist(), r.objective
([1], 9.0)
>>> p_center(cost, 1).objective, lscp(cost, 5.0).sites.tolist()
(5.0, [1])
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from twin.errors import InfeasibleError, OptimisationError

__all__ = ["SitingResult", "p_median", "p_center", "lscp", "mclp", "mexclp", "double_standard", "check_costs"]

_STATUS = {0: "optimal", 1: "time limit"}


@dataclass(frozen=True)
class SitingResult:
    """A siting plan and how good it is.

    Attributes
    ----------
    model : str
        ``"p-median"``, ``"p-center"``, ``"lscp"``, ``"mclp"``, ``"mexclp"`` or ``"double-standard"``.
    sites : ndarray of int
        Chosen candidate indices, ascending.
    units : ndarray of int, shape (n_candidates,)
        Vehicles (or 0/1 open flags) per candidate.
    objective : float
        The model's objective at the plan: weighted cost in the cost's units (p-median), the
        largest cost (p-center), sites or site cost (LSCP), covered weight (MCLP, double
        standard: twice-covered weight) or expected covered weight (MEXCLP).
    bound : float
        The solver's best bound on the objective (equal to it when optimal).
    gap : float
        Relative MILP gap ``|objective - bound| / max(|objective|, 1e-9)`` (0 when optimal).
    solve_time_s : float
        Wall time of the solver calls, seconds.
    status : str
        ``"optimal"`` or ``"time limit"`` (a feasible plan, with its gap).
    assignment : ndarray of int, shape (n_demand,)
        Each demand point's nearest open site (candidate index; -1 where none is reachable);
        for a capacitated p-median, the site serving most of its demand.
    """

    model: str
    sites: np.ndarray
    units: np.ndarray
    objective: float
    bound: float
    gap: float
    solve_time_s: float
    status: str
    assignment: np.ndarray

    def nearest_cost(self, cost_s) -> np.ndarray:
        """Each demand point's cost to its nearest open site (``inf`` where none is reachable)."""
        c = np.asarray(cost_s, dtype=np.float64)[:, self.sites]
        return c.min(axis=1) if c.shape[1] else np.full(c.shape[0], math.inf)


# ---- input checks ---------------------------------------------------------------------------

def check_costs(cost_s, where="cost_s") -> np.ndarray:
    """``cost_s`` as a float64 matrix (demand x candidates), checked: no NaN, none negative."""
    try:
        c = np.asarray(cost_s, dtype=np.float64)
    except (TypeError, ValueError):
        raise OptimisationError(f"{where}: expected a numeric matrix (demand points x candidate sites)") from None
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        raise OptimisationError(f"{where}: shape {c.shape}; expected a 2-D matrix (demand points x candidate sites)")
    bad = np.argwhere(np.isnan(c) | (c < 0))
    if len(bad):
        i, j = (int(v) for v in bad[0])
        raise OptimisationError(f"{where}[{i}, {j}] = {float(c[i, j])!r}; expected a cost >= 0 (inf: unreachable)")
    return c


def _weights(weights, n) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise OptimisationError(f"weights: shape {w.shape}; expected ({n},), one per demand point (row of cost_s)")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if len(bad):
        raise OptimisationError(f"weights[{int(bad[0])}] = {float(w[bad[0]])!r}; expected a finite weight >= 0")
    return w


def _count(name, value, lo, hi=None, hint="") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise OptimisationError(f"{name} = {value!r}; expected an integer {rng}{hint}")
    return int(value)


def _fixed(fixed, m) -> np.ndarray:
    raw = np.asarray(() if fixed is None else fixed).ravel()
    if raw.size and not (np.issubdtype(raw.dtype, np.integer) or (np.issubdtype(raw.dtype, np.floating)
                                                                 and np.all(raw == np.round(raw)))):
        raise OptimisationError(f"fixed = {list(raw)!r}; expected candidate indices (integers, columns of cost_s)")
    f = np.unique(raw.astype(np.int64))
    bad = f[(f < 0) | (f >= m)]
    if len(bad):
        raise OptimisationError(f"fixed site {int(bad[0])}: not a candidate; candidates are 0..{m - 1} "
                                f"(columns of cost_s)")
    return f


def _reachable(c, w, where="demand"):
    """Raise when a weighted demand point reaches no candidate at all."""
    dead = np.flatnonzero((w > 0) & ~np.isfinite(c).any(axis=1))
    if len(dead):
        raise OptimisationError(f"{where} point {int(dead[0])} (weight {w[dead[0]]:g}) reaches no candidate site "
                                f"(every cost is inf); drop it or give it a weight of 0")


def _standard(name, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not (math.isfinite(value) and value >= 0):
        raise OptimisationError(f"{name} = {value!r}; expected a finite cost >= 0 (same units as cost_s)")
    return float(value)


# ---- the solver call -----------------------------------------------------------------------

def _solve(model, c, integrality, lb, ub, rows, time_limit_s, maximise=False):
    """Solve ``min c.x`` (or max) under ``rows`` = [(A, lo, hi)]; return (x, objective, bound, gap, status, s)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import vstack

    cons = []
    if rows:
        a = vstack([r[0] for r in rows]).tocsr()
        cons = [LinearConstraint(a, np.concatenate([r[1] for r in rows]), np.concatenate([r[2] for r in rows]))]
    opts = {"disp": False}
    if time_limit_s is not None:
        opts["time_limit"] = float(time_limit_s)
    t0 = time.perf_counter()
    res = milp(-c if maximise else c, integrality=integrality, bounds=Bounds(lb, ub), constraints=cons, options=opts)
    dt = time.perf_counter() - t0
    if res.status == 2:
        raise InfeasibleError(f"{model}: no feasible plan (the MILP is infeasible): {res.message}")
    if res.x is None:
        raise OptimisationError(f"{model}: the solver found no plan ({res.message}; status {res.status})")
    sign = -1.0 if maximise else 1.0
    obj = sign * float(res.fun)
    bound = sign * float(getattr(res, "mip_dual_bound", res.fun) if res.status != 0 else res.fun)
    gap = abs(obj - bound) / max(abs(obj), 1e-9) if res.status != 0 else 0.0
    return res.x, obj, bound, gap, _STATUS.get(res.status, f"status {res.status}"), dt


def _coo(data, row, col, shape):
    from scipy.sparse import coo_array

    return coo_array((np.asarray(data, dtype=np.float64), (np.asarray(row), np.asarray(col))), shape=shape)


def _nearest(c, units):
    open_ = np.flatnonzero(units > 0)
    if not len(open_):
        return np.full(c.shape[0], -1, dtype=np.int64)
    sub = c[:, open_]
    best = open_[np.argmin(sub, axis=1)]
    return np.where(np.isfinite(sub.min(axis=1)), best, -1).astype(np.int64)


def _result(model, units, obj, bound, gap, status, dt, assignment):
    units = np.rint(units).astype(np.int64)
    return SitingResult(model, np.flatnonzero(units > 0), units, float(obj), float(bound), float(gap), float(dt),
                        status, assignment)


# ---- median and center -----------------------------------------------------------------------

def p_median(cost_s, p, *, weights=None, fixed=(), capacity=None, single_source=False, time_limit_s=None,
             max_cost_s=None) -> SitingResult:
    """``p`` sites minimising ``sum_i weights[i] * cost_s[i, site(i)]``.

    Parameters
    ----------
    cost_s : array (n_demand, n_candidates)
    p : int
        Sites to open (``len(fixed) <= p <= n_candidates``).
    weights : array (n_demand,), optional
        Demand per point (default 1).
    fixed : sequence of int
        Candidates that must be open.
    capacity : array (n_candidates,), optional
        Most demand (in weight units) a site may serve: the capacitated p-median. Demand is
        split between sites unless ``single_source``.
    max_cost_s : float, optional
        Only pairs with cost ``<= max_cost_s`` may be assigned (used by :func:`p_center`).

    The strong formulation (``x[i, j] <= y[j]``) on reachable pairs only. Uncapacitated, each
    point is served by its nearest open site.
    """
    c = check_costs(cost_s)
    n, m = c.shape
    w = _weights(weights, n)
    f = _fixed(fixed, m)
    p = _count("p", p, max(1, len(f)), m, f" (candidates: {m}, fixed sites: {len(f)})")
    mask = np.isfinite(c) & (w[:, None] > 0)
    if max_cost_s is not None:
        mask &= c <= max_cost_s
    dem = np.flatnonzero(w > 0)
    _reachable(np.where(mask, c, math.inf), w)
    ii, jj = np.nonzero(mask)
    k = len(ii)
    cap = None
    if capacity is not None:
        cap = np.asarray(capacity, dtype=np.float64)
        if cap.shape != (m,) or not np.all(np.isfinite(cap) & (cap >= 0)):
            raise OptimisationError(f"capacity: expected {m} finite values >= 0, one per candidate site")
    obj = np.concatenate([w[ii] * c[ii, jj], np.zeros(m)])
    rows = [(_coo(np.ones(k), np.searchsorted(dem, ii), np.arange(k), (len(dem), k + m)), np.ones(len(dem)),
             np.ones(len(dem))),
            (_coo(np.concatenate([np.ones(k), -np.ones(k)]), np.tile(np.arange(k), 2),
                  np.concatenate([np.arange(k), k + jj]), (k, k + m)), np.full(k, -np.inf), np.zeros(k)),
            (_coo(np.ones(m), np.zeros(m, int), k + np.arange(m), (1, k + m)), [p], [p])]
    if cap is not None:
        rows.append((_coo(np.concatenate([w[ii], -cap]), np.concatenate([jj, np.arange(m)]),
                          np.concatenate([np.arange(k), k + np.arange(m)]), (m, k + m)), np.full(m, -np.inf),
                     np.zeros(m)))
    lb = np.zeros(k + m)
    lb[k + f] = 1.0
    integ = np.concatenate([np.full(k, 1 if (cap is not None and single_source) else 0), np.ones(m)])
    x, val, bound, gap, status, dt = _solve("p-median", obj, integ, lb, np.ones(k + m), rows, time_limit_s)
    units = x[k:]
    if cap is None:
        assign = _nearest(np.where(mask | (w[:, None] == 0), c, math.inf), np.rint(units))
        served = assign >= 0
        val = float(np.sum(w[served] * c[served, assign[served]]))     # exact, free of solver round-off
    else:
        share = np.zeros((n, m))
        share[ii, jj] = x[:k]
        assign = np.where(share.max(axis=1) > 0, share.argmax(axis=1), -1)
    return _result("p-median", units, val, bound, gap, status, dt, assign)


def p_center(cost_s, p, *, weights=None, fixed=(), time_limit_s=None) -> SitingResult:
    """``p`` sites minimising the largest cost from a demand point (weight > 0) to its nearest site.

    Solved exactly as the smallest radius ``r`` among the matrix's distinct costs whose
    covering problem (every point within ``r`` of a site, the fixed sites open) needs at
    most ``p`` sites — bisection over the sorted costs, each step an :func:`lscp` MILP —
    then, among plans of radius ``r``, the one of least weighted total cost (a p-median
    restricted to pairs within ``r``), so exactly ``p`` sites are returned.
    ``solve_time_s`` sums every MILP; ``bound`` is the radius (exact).
    """
    c = check_costs(cost_s)
    n, m = c.shape
    w = _weights(weights, n)
    f = _fixed(fixed, m)
    p = _count("p", p, max(1, len(f)), m, f" (candidates: {m}, fixed sites: {len(f)})")
    _reachable(c, w)
    rows = w > 0
    values = np.unique(c[rows][np.isfinite(c[rows])])
    lo_r = c[rows].min(axis=1).max()                 # every point must reach some site
    values = values[values >= lo_r]
    spent = 0.0

    def feasible(r):
        nonlocal spent
        try:
            res = lscp(c, r, weights=w, fixed=f, time_limit_s=time_limit_s)
        except InfeasibleError:
            return False
        spent += res.solve_time_s
        return len(res.sites) <= p

    lo, hi = 0, len(values) - 1
    if not feasible(values[hi]):
        raise InfeasibleError(f"p-center: {p} sites cannot reach every demand point (with the fixed sites)")
    while lo < hi:
        mid = (lo + hi) // 2
        if feasible(values[mid]):
            hi = mid
        else:
            lo = mid + 1
    r = float(values[lo])
    med = p_median(c, p, weights=np.where(w > 0, w, 0.0), fixed=f, max_cost_s=r, time_limit_s=time_limit_s)
    units = med.units
    return SitingResult("p-center", med.sites, units, r, r, 0.0, spent + med.solve_time_s, med.status,
                        _nearest(c, units))


# ---- covering --------------------------------------------------------------------------------

def _cover_rows(c, standard, dem, m, offset, ncols):
    """Rows ``sum_{j: c[i, j] <= standard} x[offset + j]`` for demand points ``dem``."""
    ii, jj = np.nonzero(c[dem] <= standard)
    return _coo(np.ones(len(ii)), ii, offset + jj, (len(dem), ncols))


def lscp(cost_s, standard_s, *, weights=None, fixed=(), site_cost=None, time_limit_s=None) -> SitingResult:
    """The fewest sites (or least ``sum site_cost``) such that every demand point with weight > 0
    has a site within ``standard_s``. A point no candidate reaches within the standard makes
    the problem infeasible (:class:`~twin.errors.InfeasibleError` names it)."""
    c = check_costs(cost_s)
    n, m = c.shape
    w = _weights(weights, n)
    s = _standard("standard_s", standard_s)
    f = _fixed(fixed, m)
    dem = np.flatnonzero(w > 0)
    cov = c[dem] <= s
    lonely = np.flatnonzero(~cov.any(axis=1))
    if len(lonely):
        i = int(dem[lonely[0]])
        raise InfeasibleError(f"lscp: demand point {i} has no candidate within standard_s = {s:g} "
                              f"(nearest: {c[i].min():g}); no plan covers every point")
    sc = np.ones(m) if site_cost is None else np.asarray(site_cost, dtype=np.float64)
    if sc.shape != (m,) or not np.all(np.isfinite(sc) & (sc >= 0)):
        raise OptimisationError(f"site_cost: expected {m} finite values >= 0, one per candidate site")
    lb = np.zeros(m)
    lb[f] = 1.0
    rows = [(_cover_rows(c, s, dem, m, 0, m), np.ones(len(dem)), np.full(len(dem), np.inf))]
    x, val, bound, gap, status, dt = _solve("lscp", sc, np.ones(m), lb, np.ones(m), rows, time_limit_s)
    return _result("lscp", x, val, bound, gap, status, dt, _nearest(c, np.rint(x)))


def mclp(cost_s, p, standard_s, *, weights=None, fixed=(), time_limit_s=None) -> SitingResult:
    """``p`` sites maximising the weight of demand with a site within ``standard_s``."""
    c = check_costs(cost_s)
    n, m = c.shape
    w = _weights(weights, n)
    s = _standard("standard_s", standard_s)
    f = _fixed(fixed, m)
    p = _count("p", p, max(1, len(f)), m, f" (candidates: {m}, fixed sites: {len(f)})")
    dem = np.flatnonzero(w > 0)
    nd = len(dem)
    ncol = m + nd
    cover = _cover_rows(c, s, dem, m, 0, ncol)
    z = _coo(-np.ones(nd), np.arange(nd), m + np.arange(nd), (nd, ncol))
    rows = [((cover + z).tocoo(), np.zeros(nd), np.full(nd, np.inf)),
            (_coo(np.ones(m), np.zeros(m, int), np.arange(m), (1, ncol)), [p], [p])]
    lb = np.zeros(ncol)
    lb[f] = 1.0
    obj = np.concatenate([np.zeros(m), w[dem]])
    integ = np.concatenate([np.ones(m), np.zeros(nd)])
    x, val, bound, gap, status, dt = _solve("mclp", obj, integ, lb, np.ones(ncol), rows, time_limit_s, maximise=True)
    return _result("mclp", x[:m], val, bound, gap, status, dt, _nearest(c, np.rint(x[:m])))


def _vehicles(units, m, fixed, max_per_site):
    units = _count("units", units, max(1, len(fixed)))
    cap = units if max_per_site is None else _count("max_per_site", max_per_site, 1)
    if cap * m < units:
        raise InfeasibleError(f"{units} units do not fit on {m} sites of at most {cap} each")
    lb = np.zeros(m)
    lb[fixed] = 1.0
    return units, cap, lb


def mexclp(cost_s, units, standard_s, q, *, weights=None, fixed=(), max_per_site=None,
           time_limit_s=None) -> SitingResult:
    """Daskin's maximum expected covering location problem.

    ``units`` vehicles, each busy independently with probability ``q`` (0 <= q < 1), are placed
    on candidate sites (several per site allowed, up to ``max_per_site``). A point covered by
    ``k`` vehicles within ``standard_s`` is served with probability ``1 - q**k``; the plan
    maximises ``sum_i weights[i] * (1 - q**k_i)``, written as
    ``sum_i sum_k weights[i] (1 - q) q**(k-1) y[i, k]`` with ``sum_k y[i, k] <= k_i``.
    """
    c = check_costs(cost_s)
    n, m = c.shape
    w = _weights(weights, n)
    s = _standard("standard_s", standard_s)
    if isinstance(q, bool) or not isinstance(q, (int, float, np.integer, np.floating)) or not (0 <= q < 1):
        raise OptimisationError(f"q = {q!r}; expected a busy probability 0 <= q < 1")
    f = _fixed(fixed, m)
    units, cap, lb_x = _vehicles(units, m, f, max_per_site)
    dem = np.flatnonzero((w > 0) & (c <= s).any(axis=1))
    nd = len(dem)
    ny = nd * units
    ncol = m + ny
    cover = _cover_rows(c, s, dem, m, 0, ncol)
    yk = _coo(np.ones(ny), np.repeat(np.arange(nd), units), m + np.arange(ny), (nd, ncol))
    rows = [((yk - cover).tocoo(), np.full(nd, -np.inf), np.zeros(nd)),
            (_coo(np.ones(m), np.zeros(m, int), np.arange(m), (1, ncol)), [units], [units])]
    gain = (1.0 - q) * float(q) ** np.arange(units)
    obj = np.concatenate([np.zeros(m), np.repeat(w[dem], units) * np.tile(gain, nd)])
    lb = np.concatenate([lb_x, np.zeros(ny)])
    ub = np.concatenate([np.full(m, cap), np.ones(ny)])
    integ = np.concatenate([np.ones(m), np.zeros(ny)])
    x, val, bound, gap, status, dt = _solve("mexclp", obj, integ, lb, ub, rows, time_limit_s, maximise=True)
    return _result("mexclp", x[:m], val, bound, gap, status, dt, _nearest(c, np.rint(x[:m])))


def double_standard(cost_s, units, r1_s, r2_s, alpha, *, weights=None, fixed=(), max_per_site=2,
                    time_limit_s=None) -> SitingResult:
    """Gendreau, Laporte & Semet's double-standard model (DSM): backup coverage.

    ``units`` vehicles on sites (at most ``max_per_site`` each) such that every demand point
    (weight > 0) has a vehicle within ``r2_s``, a share ``alpha`` of the demand weight has one
    within ``r1_s`` (``r1_s <= r2_s``), maximising the weight covered *twice* within ``r1_s``.
    """
    c = check_costs(cost_s)
    n, m = c.shape
    w = _weights(weights, n)
    r1, r2 = _standard("r1_s", r1_s), _standard("r2_s", r2_s)
    if r1 > r2:
        raise OptimisationError(f"r1_s = {r1:g} > r2_s = {r2:g}; expected the tight standard r1_s <= r2_s")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) or not 0 <= alpha <= 1:
        raise OptimisationError(f"alpha = {alpha!r}; expected a share 0 <= alpha <= 1")
    f = _fixed(fixed, m)
    units, cap, lb_x = _vehicles(units, m, f, max_per_site)
    dem = np.flatnonzero(w > 0)
    nd = len(dem)
    lonely = np.flatnonzero(~(c[dem] <= r2).any(axis=1))
    if len(lonely):
        i = int(dem[lonely[0]])
        raise InfeasibleError(f"double_standard: demand point {i} has no candidate within r2_s = {r2:g} "
                              f"(nearest: {c[i].min():g})")
    ncol = m + 2 * nd
    y1 = _coo(np.ones(nd), np.arange(nd), m + np.arange(nd), (nd, ncol))
    y2 = _coo(np.ones(nd), np.arange(nd), m + nd + np.arange(nd), (nd, ncol))
    wd = w[dem]
    rows = [(_cover_rows(c, r2, dem, m, 0, ncol), np.ones(nd), np.full(nd, np.inf)),
            (_coo(wd, np.zeros(nd, int), m + np.arange(nd), (1, ncol)), [alpha * wd.sum() * (1 - 1e-12)], [np.inf]),
            ((_cover_rows(c, r1, dem, m, 0, ncol) - y1 - y2).tocoo(), np.zeros(nd), np.full(nd, np.inf)),
            ((y2 - y1).tocoo(), np.full(nd, -np.inf), np.zeros(nd)),
            (_coo(np.ones(m), np.zeros(m, int), np.arange(m), (1, ncol)), [units], [units])]
    obj = np.concatenate([np.zeros(m + nd), wd])
    lb = np.concatenate([lb_x, np.zeros(2 * nd)])
    ub = np.concatenate([np.full(m, cap), np.ones(2 * nd)])
    x, val, bound, gap, status, dt = _solve("double-standard", obj, np.ones(ncol), lb, ub, rows, time_limit_s,
                                            maximise=True)
    return _result("double-standard", x[:m], val, bound, gap, status, dt, _nearest(c, np.rint(x[:m])))
