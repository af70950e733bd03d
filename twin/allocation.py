"""Allocating capacity: beds to hospitals' wards by marginal analysis on Erlang B, and relief stock
to depots by a two-stage stochastic program (sample average approximation).

:func:`allocate_beds` splits a budget of ``B`` beds between loss pools (the ED, ward or ICU of
each hospital) to minimise the expected number of patients turned away per hour,
``sum_h weight_h * rate_h * ErlangB(c_h, a_h)`` with offered load ``a_h = rate_h * stay_h``.
Each term is convex and decreasing in ``c_h`` (Messerli 1972; Jagers & van Doorn 1986), so
giving each next bed to the pool where it saves the most (Fox 1966's marginal analysis) is
optimal; the tests check it against exhaustive search. Pools that interact (boarding,
transfers between hospitals) are beyond the formula: verify a plan by simulation.

:func:`preposition` decides how much of each relief item to stock at each depot before a
hazard, facing demand scenarios ``demand[s, zone, item]`` (each a simulated run or a sampled
demand, equally likely): first-stage stock ``x[depot, item]`` at ``unit_cost``; in each
scenario, stock shipped to zones at ``ship_cost[depot, zone]`` per unit, unmet demand at
``shortage_cost`` per unit and stock left over at ``overage_cost`` per unit. The sample
average approximation is one linear program (HiGHS); with one depot, one zone and one item it
is the newsvendor, whose optimum is the ``shortage / (shortage + overage)`` quantile of demand.

Examples
--------
>>> plan = allocate_beds([2.0, 1.0], [5.0, 5.0], 20)
>>> plan.beds.tolist()
[13, 7]
>>> import numpy as np
>>> d = np.random.default_rng(0).normal(100, 10, 2000)
>>> s = preposition(d, overage_cost=1.0, shortage_cost=1.0)
>>> bool(abs(s.stock.item() - np.median(d)) < 1.0)
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from twin.errors import InfeasibleError, OptimisationError

__all__ = ["BedPlan", "allocate_beds", "erlang_b_curve", "StockPlan", "preposition", "stock_cost"]


def erlang_b_curve(a, c_max) -> np.ndarray:
    """``B(c, a)`` for ``c = 0..c_max`` (Erlang's loss formula, by the stable recursion
    ``B(c) = a B(c-1) / (c + a B(c-1))``, ``B(0) = 1``)."""
    b = np.empty(int(c_max) + 1)
    b[0] = 1.0
    for c in range(1, int(c_max) + 1):
        b[c] = a * b[c - 1] / (c + a * b[c - 1])
    return b


@dataclass(frozen=True)
class BedPlan:
    """Beds per pool and what they are expected to turn away.

    Attributes
    ----------
    beds : ndarray of int
    blocking : ndarray of float
        Erlang-B blocking probability per pool at its beds.
    blocked_per_h : ndarray of float
        Expected patients turned away per hour per pool (``rate × blocking``).
    objective : float
        ``sum weight × blocked_per_h``, weighted patients turned away per hour.
    """

    beds: np.ndarray
    blocking: np.ndarray
    blocked_per_h: np.ndarray
    objective: float


def _vector(name, v, n=None, *, positive=False):
    try:
        a = np.atleast_1d(np.asarray(v, dtype=np.float64))
    except (TypeError, ValueError):
        raise OptimisationError(f"{name}: expected numbers, one per pool") from None
    if a.ndim != 1 or (n is not None and len(a) != n):
        raise OptimisationError(f"{name}: {len(a)} values; expected {n}, one per pool")
    bad = np.flatnonzero(~np.isfinite(a) | ((a <= 0) if positive else (a < 0)))
    if len(bad):
        raise OptimisationError(f"{name}[{int(bad[0])}] = {float(a[bad[0]])!r}; expected a finite number "
                                f"{'> 0' if positive else '>= 0'}")
    return a


def allocate_beds(arrival_rate_per_h, mean_stay_h, total_beds, *, minimum=0, weights=None) -> BedPlan:
    """Split ``total_beds`` between pools to minimise weighted expected blocked patients per hour.

    Parameters
    ----------
    arrival_rate_per_h : sequence of float
        Admissions offered to each pool per hour (``>= 0``).
    mean_stay_h : sequence of float
        Mean length of stay per pool, hours (``> 0``); Erlang B holds for any stay distribution
        (insensitivity), given Poisson arrivals and no queue.
    total_beds : int
    minimum : int or sequence of int
        Beds each pool keeps at least (existing beds that stay).
    weights : sequence of float, optional
        Cost of turning a patient away from each pool (default 1; e.g. higher for an ICU).

    Raises
    ------
    OptimisationError
        Bad input, named; :class:`~twin.errors.InfeasibleError` when ``total_beds`` is below
        the sum of the minimums.
    """
    lam = _vector("arrival_rate_per_h", arrival_rate_per_h)
    n = len(lam)
    stay = _vector("mean_stay_h", mean_stay_h, n, positive=True)
    w = np.ones(n) if weights is None else _vector("weights", weights, n)
    if isinstance(total_beds, bool) or not isinstance(total_beds, (int, np.integer)) or total_beds < 0:
        raise OptimisationError(f"total_beds = {total_beds!r}; expected an integer >= 0")
    lo = np.broadcast_to(np.asarray(minimum), (n,)).astype(np.float64)
    if np.any(lo < 0) or np.any(lo != np.round(lo)):
        raise OptimisationError(f"minimum = {minimum!r}; expected integers >= 0, one per pool or one for all")
    lo = lo.astype(np.int64)
    if lo.sum() > total_beds:
        raise InfeasibleError(f"total_beds = {total_beds} is below the pools' minimum beds, {int(lo.sum())} in all")
    a = lam * stay
    curves = [w[h] * lam[h] * erlang_b_curve(a[h], int(total_beds)) for h in range(n)]
    beds = lo.copy()
    for _ in range(int(total_beds - lo.sum())):
        saving = np.array([curves[h][beds[h]] - curves[h][beds[h] + 1] for h in range(n)])
        beds[int(np.argmax(saving))] += 1          # ties: the first pool
    blocking = np.array([erlang_b_curve(a[h], beds[h])[-1] for h in range(n)])
    blocked = lam * blocking
    return BedPlan(beds, blocking, blocked, float(np.sum(w * blocked)))


# ---- relief pre-positioning ------------------------------------------------------------------

@dataclass(frozen=True)
class StockPlan:
    """Stock per depot and item, and its expected cost over the scenarios it was fitted to.

    Attributes
    ----------
    stock : ndarray, shape (n_depots, n_items)
    expected_cost : float
        First-stage cost plus the mean second-stage cost over the scenarios.
    expected_shortage : ndarray, shape (n_items,)
        Mean unmet demand per item.
    solve_time_s : float
    """

    stock: np.ndarray
    expected_cost: float
    expected_shortage: np.ndarray
    solve_time_s: float


def _demand(demand):
    d = np.asarray(demand, dtype=np.float64)
    if d.ndim == 1:
        d = d[:, None, None]
    elif d.ndim == 2:
        d = d[:, :, None]
    if d.ndim != 3 or d.shape[0] < 1:
        raise OptimisationError(f"demand: shape {np.shape(demand)}; expected (scenarios,), (scenarios, zones) or "
                                f"(scenarios, zones, items)")
    bad = np.argwhere(~np.isfinite(d) | (d < 0))
    if len(bad):
        s, z, k = (int(v) for v in bad[0])
        raise OptimisationError(f"demand[{s}, {z}, {k}] = {float(d[s, z, k])!r}; expected a finite quantity >= 0")
    return np.maximum(d, 0.0)      # clipped normals etc. arrive as given; negatives were refused above


def _per_item(name, v, k):
    a = np.broadcast_to(np.asarray(v, dtype=np.float64), (k,)).copy()
    if not np.all(np.isfinite(a) & (a >= 0)):
        raise OptimisationError(f"{name} = {v!r}; expected finite costs >= 0, one per item or one for all")
    return a


def preposition(demand, *, overage_cost, shortage_cost, unit_cost=0.0, ship_cost=None, capacity=None,
                integer=False, fixed_stock=None, time_limit_s=None) -> StockPlan:
    """Stock to hold at each depot before a hazard, by sample average approximation.

    Parameters
    ----------
    demand : array (S,), (S, Z) or (S, Z, K)
        Demand per scenario, zone and item (equally likely scenarios).
    overage_cost, shortage_cost, unit_cost : float or array (K,)
        Per unit: stock left over after a scenario, demand unmet in it, and stock bought.
    ship_cost : array (D, Z), optional
        Cost per unit shipped from depot ``d`` to zone ``z`` (``inf``: no route); default one
        depot serving every zone at no cost.
    capacity : array (D,), optional
        Most units (all items together) a depot holds.
    integer : bool
        Whole units of stock (a MILP) instead of a continuous plan.
    fixed_stock : array (D, K), optional
        Evaluate this stock instead of choosing one: only the second stage (shipments) is
        optimised, and ``expected_cost`` is the plan's cost over these scenarios.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_array, vstack

    d = _demand(demand)
    S, Z, K = d.shape
    over, short, buy = (_per_item(n, v, K) for n, v in
                        (("overage_cost", overage_cost), ("shortage_cost", shortage_cost), ("unit_cost", unit_cost)))
    ship = np.zeros((1, Z)) if ship_cost is None else np.asarray(ship_cost, dtype=np.float64)
    if ship.ndim != 2 or ship.shape[1] != Z or np.any(np.isnan(ship) | (ship < 0)):
        raise OptimisationError(f"ship_cost: shape {ship.shape}; expected (depots, {Z}) of costs >= 0 (inf: no route)")
    D = ship.shape[0]
    arcs = np.argwhere(np.isfinite(ship))                 # (depot, zone) pairs that can ship
    na = len(arcs)
    nx, ny, nu = D * K, S * na * K, S * Z * K
    # variables: x[d, k] | y[s, arc, k] | u[s, z, k]
    s_i, a_i, k_i = (g.ravel() for g in np.meshgrid(np.arange(S), np.arange(na), np.arange(K), indexing="ij"))
    y_col = nx + np.arange(ny)
    obj = np.concatenate([np.tile(buy + over, D),
                          (ship[arcs[a_i, 0], arcs[a_i, 1]] - over[k_i]) / S,
                          np.tile(short, S * Z) / S])
    # demand rows (s, z, k): sum_d y + u = demand
    dem_row = (s_i * Z + arcs[a_i, 1]) * K + k_i
    a_dem = coo_array((np.ones(ny + nu), (np.concatenate([dem_row, np.arange(nu)]),
                                          np.concatenate([y_col, nx + ny + np.arange(nu)]))), shape=(nu, nx + ny + nu))
    # supply rows (s, d, k): sum_z y - x <= 0
    sup_row = (s_i * D + arcs[a_i, 0]) * K + k_i
    sr, sd, sk = (g.ravel() for g in np.meshgrid(np.arange(S), np.arange(D), np.arange(K), indexing="ij"))
    a_sup = coo_array((np.concatenate([np.ones(ny), -np.ones(S * D * K)]),
                       (np.concatenate([sup_row, np.arange(S * D * K)]), np.concatenate([y_col, sd * K + sk]))),
                      shape=(S * D * K, nx + ny + nu))
    rows = [(a_dem, d.ravel(), d.ravel()), (a_sup, np.full(S * D * K, -np.inf), np.zeros(S * D * K))]
    if capacity is not None:
        cap = np.asarray(capacity, dtype=np.float64)
        if cap.shape != (D,) or not np.all(cap >= 0):
            raise OptimisationError(f"capacity: expected {D} values >= 0, one per depot")
        a_cap = coo_array((np.ones(nx), (np.repeat(np.arange(D), K), np.arange(nx))), shape=(D, nx + ny + nu))
        rows.append((a_cap, np.full(D, -np.inf), cap))
    a = vstack([r[0] for r in rows]).tocsr()
    cons = LinearConstraint(a, np.concatenate([r[1] for r in rows]), np.concatenate([r[2] for r in rows]))
    integ = np.concatenate([np.full(nx, 1 if integer else 0), np.zeros(ny + nu)])
    lb, ub = np.zeros(nx + ny + nu), np.full(nx + ny + nu, np.inf)
    if fixed_stock is not None:
        fx = np.asarray(fixed_stock, dtype=np.float64)
        if fx.shape != (D, K) or not np.all(np.isfinite(fx) & (fx >= 0)):
            raise OptimisationError(f"fixed_stock: shape {fx.shape}; expected ({D}, {K}) finite quantities >= 0")
        lb[:nx] = ub[:nx] = fx.ravel()
        integ[:nx] = 0
    opts = {"disp": False} if time_limit_s is None else {"disp": False, "time_limit": float(time_limit_s)}
    t0 = time.perf_counter()
    res = milp(obj, integrality=integ, bounds=Bounds(lb, ub), constraints=[cons], options=opts)
    dt = time.perf_counter() - t0
    if res.status == 2:
        raise InfeasibleError(f"preposition: no feasible stock plan: {res.message}")
    if res.x is None:
        raise OptimisationError(f"preposition: the solver found no plan ({res.message})")
    stock = res.x[:nx].reshape(D, K)
    u = res.x[nx + ny:].reshape(S, Z, K)
    return StockPlan(stock, float(res.fun), u.sum(axis=1).mean(axis=0), dt)


def stock_cost(stock, demand, *, overage_cost, shortage_cost, unit_cost=0.0) -> np.ndarray:
    """Cost of a one-depot stock plan in each demand scenario (an out-of-sample check of a plan).

    ``stock`` (K,) or (1, K), ``demand`` as :func:`preposition` takes it (zones summed: one
    depot ships anywhere at no cost). Returns one cost per scenario; its mean estimates the
    plan's expected cost on a fresh sample.
    """
    d = _demand(demand).sum(axis=1)                       # (S, K)
    x = np.asarray(stock, dtype=np.float64).reshape(-1)
    if x.shape != (d.shape[1],) or not np.all(np.isfinite(x) & (x >= 0)):
        raise OptimisationError(f"stock: expected {d.shape[1]} quantities >= 0, one per item")
    k = d.shape[1]
    over, short, buy = (_per_item(n, v, k) for n, v in
                        (("overage_cost", overage_cost), ("shortage_cost", shortage_cost), ("unit_cost", unit_cost)))
    return (buy * x).sum() + (over * np.maximum(x - d, 0) + short * np.maximum(d - x, 0)).sum(axis=1)


