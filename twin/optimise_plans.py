"""Candidate plans of a study (:mod:`twin.optimise`): a scenario's siting inputs, and each
decision's model optimum with its best neighbours under the model.

Decisions and models:

``stations``
    Where ``sites`` stations stand among candidate nodes, by the p-median (least demand-weighted
    travel time; the default), the p-center (least worst travel time), the LSCP (fewest sites
    covering every zone within the standard) or the MCLP (most demand within the standard);
    the scenario's fleet is split between the sites by the demand each serves (largest
    remainder, at least one vehicle a site). With the MEXCLP, the vehicles are placed freely
    (several a site allowed), each busy with probability ``q``.
``fleet``
    How the fleet is spread over the scenario's existing stations: the MEXCLP on those sites.
``beds``
    How the beds of one pool — the EDs (``pool="ed"``), the wards or the ICUs — are split
    between the hospitals that have it: marginal analysis on Erlang B
    (:func:`twin.allocation.allocate_beds`) with each hospital's arrival rate measured in the
    current plan's replications (ED arrivals; patients leaving each ED for the pool) and the
    pool's mean stay. Exact for loss pools; a proxy where beds interact (queueing EDs,
    boarding, diversion, transfers), which is why the plans are then simulated.
``stock``
    How much of an item to stock at each hospital (:class:`StockItem`: its use per ED arrival
    and its costs), by the two-stage program of :func:`twin.allocation.preposition` over
    demand scenarios that are simulated runs; stock may be moved between hospitals at a cost
    per unit and hour of driving. Compared with two textbook rules: each hospital stocking its
    own newsvendor quantile (no pooling), and stocking the mean demand (the expected-value
    solution; the gap is the value of the stochastic solution, Birge 1982).

Demand points are the EMS zones, weighted by their calls per hour (:func:`zone_weights`: the
day's mean, or the hour from ``at_s`` with congested costs), or the nodes where a finished run's
calls arose, weighted by their count (:func:`demand_from_run`, ``demand_from``). Costs are travel times
(s) from each candidate to each zone's location on the city graph, divided by ``[service]
emergency_speed_factor``: on free-flow link times (``costs="free-flow"``) or on the link times
of one simulated run of the scenario, averaged (weighted by vehicles leaving) over the hour
from ``at_s`` (``costs="congested"``; the run uses the study's first replication seed, and
the times are what a vehicle in the queues sees, before any emergency priority).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.errors import InfeasibleError, OptimisationError

__all__ = ["DECISIONS", "MODELS", "COSTS", "POOLS", "pool_hospitals", "Plan", "StockItem", "SitingInputs", "siting_inputs",
           "zone_weights", "demand_from_run",
           "congested_link_costs", "propose_plans", "stock_demand", "plan_scenario_data", "current_plan"]

DECISIONS = ("stations", "fleet", "beds", "stock", "care")
MODELS = ("p-median", "p-center", "lscp", "mclp", "mexclp")
COSTS = ("free-flow", "congested")
#: What a plan's ``model_objective`` is, per model (``_s``: seconds; shares of the calls per hour).
_LABELS = {"p-median": "mean travel_s", "p-center": "worst travel_s", "lscp": "uncovered share",
           "mclp": "covered share", "mexclp": "expected covered share"}
_UNIT_KINDS = ("als", "bls", "fire", "police")


@dataclass(frozen=True)
class Plan:
    """One candidate plan.

    Attributes
    ----------
    name : str
        ``"current"``, ``"optimum"``, ``"neighbour-<k>"``, or for stock ``"per-site"`` and
        ``"mean-value"``.
    stations : tuple of (node id, vehicles), or None
        The plan's stations (``stations`` and ``fleet`` decisions).
    beds : tuple of (hospital name, beds), or None
        The plan's beds of ``pool`` (``beds`` decision).
    stock : tuple of (hospital name, item name, units), or None
        The plan's stock (``stock`` decision).
    model_objective : float
        The model's objective at the plan (NaN where the model does not price it).
    note : str
        E.g. ``"= optimum"`` when the current plan is the model's optimum.
    pool : str
        ``"ed"``, ``"ward"`` or ``"icu"``: the beds a ``beds`` plan splits.
    centres : tuple of (node id, places), or None
        Elderly-care centres the plan adds (``care`` decision; ``()``: none).
    """

    name: str
    stations: tuple | None = None
    beds: tuple | None = None
    stock: tuple | None = None
    model_objective: float = math.nan
    note: str = ""
    pool: str = "ed"
    centres: tuple | None = None

    def key(self) -> tuple:
        """What the plan decides, in a canonical order: two plans with equal keys are the same plan."""
        return tuple(None if v is None else tuple(sorted(v)) for v in (self.stations, self.beds, self.stock,
                                                                         self.centres))

    def describe(self) -> str:
        """The plan in one line: ``node x vehicles``, ``hospital:beds``, ``hospital/item:units`` or
        ``+node:places`` (new care centres)."""
        if self.centres is not None:
            return " ".join(f"+{node}:{k}" for node, k in self.centres) or "no new centre"
        if self.stations is not None:
            return " ".join(f"{node}x{k}" for node, k in self.stations)
        if self.beds is not None:
            return " ".join(f"{h}:{b}" for h, b in self.beds)
        return " ".join(f"{h}/{item}:{u:g}" for h, item, u in (self.stock or ()))


@dataclass(frozen=True)
class StockItem:
    """An item to pre-position at the hospitals (``stock`` decision).

    Attributes
    ----------
    name : str
    use_per_arrival : float
        Units used per patient arriving at an ED (the demand is the simulated arrivals times this).
    unit_cost, overage_cost, shortage_cost : float
        Per unit: bought, left over at the end of the horizon, and short (demand not met from
        stock, e.g. an emergency resupply). Relative money units; the defaults (0, 1, 9) make
        the newsvendor's critical ratio 0.9 — an assumption, not a published figure.
    ship_cost_per_h : float
        Per unit and hour of driving, to move stock from one hospital to another (``inf``:
        no moves between hospitals).
    """

    name: str = "kit"
    use_per_arrival: float = 1.0
    unit_cost: float = 0.0
    overage_cost: float = 1.0
    shortage_cost: float = 9.0
    ship_cost_per_h: float = 2.0

    def __post_init__(self):
        for f in ("use_per_arrival", "unit_cost", "overage_cost", "shortage_cost"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
                raise OptimisationError(f"stock item '{self.name}': {f} = {v!r}; expected a finite number >= 0")
        if self.overage_cost + self.shortage_cost <= 0:
            raise OptimisationError(f"stock item '{self.name}': overage_cost + shortage_cost = 0; one of them must "
                                    f"be > 0 (else any stock is as good as any other)")
        v = self.ship_cost_per_h
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
            raise OptimisationError(f"stock item '{self.name}': ship_cost_per_h = {v!r}; expected a number >= 0 "
                                    f"(inf: no moves between hospitals)")


@dataclass(frozen=True)
class SitingInputs:
    """What the siting models see of a scenario.

    Attributes
    ----------
    cost_s : ndarray, shape (n_zones, n_candidates)
        Emergency travel time (s) from candidate ``j`` to zone ``i``'s location.
    weights : ndarray, shape (n_zones,)
        Each zone's calls per hour.
    candidate_ids : ndarray, shape (n_candidates,)
        Candidate node ids (the current stations' nodes are always candidates).
    current : tuple of (node id, vehicles)
        The scenario's stations.
    costs : str
        ``"free-flow"`` or ``"congested"``.
    """

    cost_s: np.ndarray
    weights: np.ndarray
    candidate_ids: np.ndarray
    current: tuple
    costs: str = "free-flow"


# ---- inputs ------------------------------------------------------------------------------------

def congested_link_costs(scenario, at_s, seed, *, window_s=3600.0):
    """Link travel times (s) over ``[at_s, at_s + window_s)`` in one run of ``scenario`` with ``seed``.

    The mean over the link-series intervals in the window of the travel time of vehicles
    leaving each link, weighted by how many left; free-flow where none left, and never below
    free-flow.
    """
    from twin.runner import run

    res = run(scenario, seed=int(seed))
    if res.traffic is None:
        raise OptimisationError("costs = 'congested' needs traffic in the scenario ([traffic] or the population's "
                                "car legs); this one has none: use costs = 'free-flow'")
    links = res.traffic.links
    t = np.asarray(links["time_s"])
    sel = (t >= at_s) & (t < at_s + window_s)
    if not sel.any():
        raise OptimisationError(f"at = {at_s:g} s: no link-series interval starts in [{at_s:g}, {at_s + window_s:g}) s; "
                                f"the run's series covers {t[0]:g} to {t[-1]:g} s")
    out = np.asarray(links["outflow_veh"], dtype=np.float64)[sel]
    tt = np.asarray(links["mean_travel_time_s"], dtype=np.float64)[sel]
    ok = np.isfinite(tt) & (out > 0)
    n = (out * ok).sum(axis=0)
    mean = np.divide((np.where(ok, tt, 0.0) * out).sum(axis=0), n, out=np.full(n.shape, np.nan), where=n > 0)
    ff = scenario.city.free_flow_time_s
    return np.where(np.isfinite(mean), np.maximum(mean, ff), ff)


def zone_weights(spec, hour=None):
    """Each zone's calls per hour: the day's mean, or in hour ``hour`` (0-23 from the run's start).

    From the scenario's rate table when it has one (per-district profiles, calls from the
    population present), else ``arrival_rate_per_h × hourly_profile``.
    """
    if spec.rate_table_per_h is not None:
        table = np.asarray(spec.rate_table_per_h, dtype=np.float64).sum(axis=2)      # (24, zones)
        return table.mean(axis=0) if hour is None else table[int(hour) % 24].copy()
    rates = np.array([z.arrival_rate_per_h for z in spec.zones], dtype=np.float64)
    prof = np.asarray(spec.hourly_profile, dtype=np.float64)
    return rates * (prof.mean() if hour is None else prof[int(hour) % 24])


def demand_from_run(path, city, hour=None):
    """Observed demand: ``(node ids, calls per hour)`` at every node where a run's calls arose.

    ``path`` is a results file of ``twin run`` on the same city; its ``/events/ems_calls`` rows
    with a zone (the ordinary calls: not transfers or scripted incidents) are counted per node
    over the run's ``[0, until_s)``, or only in hour ``hour`` of each day (0-23), and divided by
    the hours counted.
    """
    from twin.results import open_results

    try:
        res = open_results(path)
    except (OSError, ValueError) as exc:
        raise OptimisationError(f"demand from {path}: cannot read it as a results file ({exc})") from None
    with res:
        nodes = res.table("/network/nodes")["node_id"].to_numpy()
        if len(nodes) != city.n_nodes or not np.array_equal(nodes, np.asarray(city.node_ids)):
            raise OptimisationError(f"demand from {path}: the run is on another city ({len(nodes)} nodes; "
                                    f"'{city.name}' has {city.n_nodes}); give a run of this scenario's city")
        try:
            calls = res.table("/events/ems_calls")
        except ValueError:
            raise OptimisationError(f"demand from {path}: no /events/ems_calls (a run with emergency calls)") from None
        until_s = float(res.meta.get("until_s", 0.0))
    c = calls[(calls["zone_idx"] >= 0) & (calls["call_s"] < until_s)]
    t = c["call_s"].to_numpy(np.float64)
    if hour is None:
        hours = until_s / 3600.0
    else:
        c = c[(np.floor(t / 3600.0) % 24) == int(hour) % 24]
        hours = float(sum(1 for h in range(int(np.ceil(until_s / 3600.0))) if h % 24 == int(hour) % 24))
    if len(c) == 0 or hours <= 0:
        raise OptimisationError(f"demand from {path}: no calls{'' if hour is None else f' in hour {hour}'}; "
                                f"nothing to weigh")
    idx, n = np.unique(c["node_idx"].to_numpy(np.int64), return_counts=True)
    return np.asarray(city.node_ids)[idx], n / hours


def siting_inputs(scenario, candidates=None, *, link_cost_s=None, costs="free-flow", hour=None,
                  demand=None) -> SitingInputs:
    """Demand weights, candidate nodes and the cost matrix of a loaded scenario.

    ``candidates``: node ids (default: every node of the city); ``link_cost_s``: per-link
    costs (default free-flow), e.g. from :func:`congested_link_costs`; ``hour``: weigh the zones
    by their calls in that hour of the run's day (default: the day's mean, :func:`zone_weights`);
    ``demand``: ``(node ids, calls per hour)`` instead of the zones, e.g. from
    :func:`demand_from_run`.
    """
    city, spec, layout = scenario.city, scenario.ems, scenario.layout
    stations = current_stations(scenario)
    ids = np.asarray(city.node_ids)
    known = set(ids.tolist())
    if candidates is None:
        cand = ids
    else:
        cand = np.asarray(list(candidates))
        if cand.size == 0:
            raise OptimisationError("candidates: an empty list; give candidate node ids or leave it out (every node)")
        bad = [c for c in cand.tolist() if c not in known]
        if bad:
            raise OptimisationError(f"candidate site {bad[0]!r}: not a node of city '{city.name}'")
        cand = np.asarray(list(dict.fromkeys(cand.tolist())))
    have = set(cand.tolist())
    extra = [node for node, _ in stations if node not in have]
    if extra:
        cand = np.concatenate([cand, np.asarray(extra, dtype=cand.dtype)])
    if demand is None:
        zone_nodes = ids[layout.location_node_idx[[z.location_idx for z in spec.zones]]]
        weights = zone_weights(spec, hour)
    else:
        zone_nodes, weights = np.asarray(demand[0]), np.asarray(demand[1], dtype=np.float64)
    speed = scenario.groups["service"].emergency_speed_factor
    cost = city.travel_times(cand, zone_nodes, link_cost_s=link_cost_s).T / speed
    return SitingInputs(cost, weights, cand, tuple(stations), costs)


def current_stations(scenario):
    """The scenario's stations as ``[(node id, ambulances)]``; only plain ambulances can be placed."""
    out = []
    for i, st in enumerate(scenario.data.get("stations", [])):
        typed = [k for k in _UNIT_KINDS if st.get(k, 0)]
        if typed:
            raise OptimisationError(f"[stations.{i}] ('{st.get('name')}') has {typed[0]} units; decide = stations "
                                    f"and fleet place plain ambulances only (set {typed[0]} = 0 or decide beds)")
        out.append((st["node"], int(st.get("ambulances", 0))))
    if not out:
        raise OptimisationError("the scenario has no [[stations]]; nothing to place")
    return out


def stock_demand(runs, hospitals, items):
    """Demand scenarios ``(n_runs, n_hospitals, n_items)`` from runs' ``hospital_<name>_arrivals`` KPIs."""
    cols = [f"hospital_{h}_arrivals" for h in hospitals]
    missing = [c for c in cols if c not in runs]
    if missing:
        raise OptimisationError(f"the runs carry no KPI {missing[0]!r}; decide = stock needs each hospital's arrivals")
    arrivals = np.column_stack([runs[c].to_numpy(np.float64) for c in cols])
    use = np.array([it.use_per_arrival for it in items])
    return arrivals[:, :, None] * use[None, None, :]


# ---- proposals ---------------------------------------------------------------------------------

def _median_value(cost, w, units):
    return float(np.sum(w * cost[:, units > 0].min(axis=1)))


def _center_value(cost, w, units):
    near = cost[:, units > 0].min(axis=1)
    return float(near[w > 0].max()) if (w > 0).any() else 0.0


def _uncovered_value(cost, w, units, standard):
    return float(np.sum(w * ~(cost[:, units > 0] <= standard).any(axis=1)))


def _expected_value(cost, w, units, standard, q):
    k = (cost <= standard).astype(np.int64) @ units
    return float(np.sum(w * (1.0 - q ** k)))


def _neighbours(units, value, n_best, *, move_units, keep=()):
    """The best ``n_best`` distinct plans one move from ``units``: a site swapped (0/1 plans) or
    one vehicle moved (``move_units``), never emptying a site in ``keep``; ``value(units)`` is
    minimised, ties by the order of the moves."""
    seen, out = {tuple(units)}, []
    keep = set(int(k) for k in keep)
    for a in np.flatnonzero(units > 0):
        if a in keep and (not move_units or units[a] == 1):
            continue
        for b in range(len(units)):
            if b == a or (not move_units and units[b] > 0):
                continue
            u = units.copy()
            u[a] -= 1
            u[b] += 1
            key = tuple(u)
            if key not in seen:
                seen.add(key)
                out.append((value(u), len(out), key))
    out.sort()
    return [np.array(k) for _, _, k in out[:n_best]]


def _split(total, shares, sites):
    """``total`` vehicles over ``sites`` in proportion to ``shares`` (Hamilton's largest remainder),
    at least one each: quotas ``total * share`` rounded down (one at least), the rest to the
    largest remainders, or taken back from the smallest where the minimum overshoots."""
    k = len(sites)
    if total < k:
        raise OptimisationError(f"{total} vehicles cannot staff {k} sites (at least one each); "
                                f"ask for fewer sites or add ambulances")
    s = np.asarray(shares, dtype=np.float64)
    s = np.ones(k) / k if s.sum() <= 0 else s / s.sum()
    quota = total * s
    base = np.maximum(np.floor(quota).astype(int), 1)
    rest = int(total - base.sum())
    remainder = quota - base
    if rest > 0:
        base[np.argsort(-remainder, kind="stable")[:rest]] += 1
    while rest < 0:                         # the minimum of one took too many: back from the smallest
        spare = np.flatnonzero(base > 1)
        base[spare[np.argmin(remainder[spare])]] -= 1
        remainder = quota - base
        rest += 1
    return base


def _solve_stations(model, inp, p, fleet, standard_s, q, fixed):
    """The model's optimum and ``value(units)`` (minimised) with the objective's sign."""
    from twin.siting import lscp, mclp, mexclp, p_center, p_median

    cost, w = inp.cost_s, inp.weights
    if model == "p-median":
        return p_median(cost, p, weights=w, fixed=fixed), (lambda u: _median_value(cost, w, u)), 1.0
    if model == "p-center":
        return p_center(cost, p, weights=w, fixed=fixed), (lambda u: _center_value(cost, w, u)), 1.0
    if model == "lscp":
        res = lscp(cost, standard_s, weights=w, fixed=fixed)
        return res, (lambda u: _uncovered_value(cost, w, u, standard_s)), 1.0
    if model == "mclp":
        return (mclp(cost, p, standard_s, weights=w, fixed=fixed),
                (lambda u: -(w.sum() - _uncovered_value(cost, w, u, standard_s))), -1.0)
    return (mexclp(cost, fleet, standard_s, q, weights=w, fixed=fixed),
            (lambda u: -_expected_value(cost, w, u, standard_s, q)), -1.0)


def _station_plans(scenario, model, n_plans, *, inputs, sites, standard_s, q, keep):
    """Optimum and neighbours of the ``stations`` decision (and ``fleet``: MEXCLP on current sites)."""
    inp = inputs
    cand, cost, w = inp.candidate_ids, inp.cost_s, inp.weights
    fleet = sum(k for _, k in inp.current)
    index = {_py(c): j for j, c in enumerate(cand)}
    fixed = [index[k] for k in keep]
    p = len(inp.current) if sites is None else sites
    if model in ("p-median", "p-center", "mclp") and len(fixed) > p:
        raise OptimisationError(f"sites = {p}: fewer than the {len(fixed)} kept sites (--keep); "
                                f"ask for at least {len(fixed)} sites")
    if model in ("p-median", "p-center", "mclp") and p > fleet:
        raise OptimisationError(f"sites = {p}: more sites than the {fleet} ambulances can staff (one each at least)")
    res, value, sign = _solve_stations(model, inp, p, fleet, standard_s, q, fixed)
    if len(res.sites) > fleet:
        raise InfeasibleError(f"{model}: covering every zone within {standard_s:g} s takes {len(res.sites)} sites; "
                              f"the {fleet} ambulances cannot staff them (one each at least)")
    move = model == "mexclp"
    # plans are priced per call (weights sum to 1): a mean or worst travel time, or a share of demand
    scale = 1.0 if model == "p-center" else 1.0 / max(float(w.sum()), 1e-300)
    info = {"model": model, "costs": inp.costs, "candidates": len(cand), "demand_points": len(w), "fleet": fleet,
            "calls_per_h": float(w.sum()), "sites": len(res.sites), "objective": res.objective, "gap": res.gap,
            "status": res.status, "solve_time_s": res.solve_time_s, "standard_s": standard_s, "q": q,
            "objective_label": _LABELS[model]}
    options = [np.rint(res.units).astype(int)]
    options += _neighbours(options[0], value, n_plans - 1, move_units=move, keep=fixed)
    plans = []
    for k, u in enumerate(options):
        chosen = np.flatnonzero(u > 0)
        if move:
            counts = u[chosen]
        else:
            served = np.argmin(cost[:, chosen], axis=1)
            counts = _split(fleet, np.bincount(served, weights=w, minlength=len(chosen)), chosen)
        stations = tuple((_py(cand[j]), int(c)) for j, c in zip(chosen, counts))
        plans.append(Plan("optimum" if k == 0 else f"neighbour-{k}", stations=stations,
                          model_objective=sign * scale * value(u)))

    def price(plan):
        u = np.zeros(len(cand), dtype=int)
        for node, k in plan.stations:
            u[index[node]] += k if move else 1
        return sign * scale * value(u)

    return plans, info, price


#: Bed pools a ``beds`` study can allocate: scenario key, mean-stay attribute of the hospital spec.
POOLS = {"ed": ("beds", "length_of_stay"), "ward": ("ward_beds", "ward_los"), "icu": ("icu_beds", "icu_los")}


def pool_hospitals(scenario, pool):
    """``[(index, name)]`` of the hospitals that have ``pool`` (every hospital has an ED)."""
    if pool not in POOLS:
        raise OptimisationError(f"pool = {pool!r}; expected one of {', '.join(POOLS)}")
    key = POOLS[pool][0]
    hosp = scenario.data.get("hospitals", [])
    if not hosp:
        raise OptimisationError("the scenario has no [[hospitals]]; no beds to allocate")
    out = [(i, h["name"]) for i, h in enumerate(hosp) if h.get(key) is not None]
    if not out:
        raise OptimisationError(f"pool = {pool!r}: no hospital has {key}; give some hospitals {key} or decide "
                                f"another pool")
    return out


def _bed_plans(scenario, n_plans, rates_per_h, pool="ed"):
    from twin.allocation import allocate_beds, erlang_b_curve

    key, los = POOLS[pool]
    which = pool_hospitals(scenario, pool)
    names = [n for _, n in which]
    total = sum(int(scenario.data["hospitals"][i][key]) for i, _ in which)
    stay_h = np.array([getattr(scenario.ems.hospitals[i], los).mean_s / 3600.0 for i, _ in which])
    if total < len(names):
        raise OptimisationError(f"{total} {key} cannot give each of the {len(names)} hospitals one")
    plan = allocate_beds(rates_per_h, stay_h, total, minimum=1)
    lam = np.asarray(rates_per_h, dtype=np.float64)

    def value(beds):
        return float(sum(lam[h] * erlang_b_curve(lam[h] * stay_h[h], int(beds[h]))[-1] for h in range(len(beds))))

    near = [u for u in _neighbours(plan.beds, value, len(names) * len(names), move_units=True) if u.min() >= 1]
    options = [plan.beds] + near[:n_plans - 1]
    plans = [Plan("optimum" if k == 0 else f"neighbour-{k}", beds=tuple(zip(names, (int(b) for b in u))),
                  model_objective=value(u), pool=pool) for k, u in enumerate(options)]
    info = {"model": "erlang-b marginal analysis", "pool": pool, "total_beds": total,
            "arrivals_per_h": dict(zip(names, (round(float(r), 4) for r in lam))),
            "mean_stay_h": dict(zip(names, (round(float(s), 3) for s in stay_h))), "objective": plan.objective,
            "objective_label": "turned away per h"}
    return plans, info, lambda p: value(np.array([b for _, b in p.beds]))


def _ship_costs(scenario, items):
    """Per unit moved between hospitals, per item: ``(n_items, n_hospitals, n_hospitals)``."""
    city = scenario.city
    nodes = [h["node"] for h in scenario.data["hospitals"]]
    hours = city.travel_times(nodes, nodes) / 3600.0
    out = []
    for it in items:
        with np.errstate(invalid="ignore"):                 # 0 h x inf: staying put costs nothing
            cost = np.where(np.isfinite(hours), hours * it.ship_cost_per_h, np.inf)
        out.append(np.where(hours == 0.0, 0.0, cost))
    return np.stack(out)


def stock_plan_costs(stock, demand, items, ship):
    """Cost of a fixed ``stock`` (hospitals, items) in each demand scenario: buying, moving, shortage
    and overage, the moves between hospitals chosen optimally per scenario (one LP each)."""
    from twin.allocation import preposition

    S = demand.shape[0]
    out = np.zeros(S)
    for k, it in enumerate(items):
        for s in range(S):
            r = preposition(demand[s:s + 1, :, k], overage_cost=it.overage_cost, shortage_cost=it.shortage_cost,
                            unit_cost=it.unit_cost, ship_cost=ship[k], fixed_stock=stock[:, k:k + 1])
            out[s] += r.expected_cost
    return out


def _stock_plans(scenario, items, demand_in):
    """SAA optimum, the per-site newsvendor and the mean-value plan on the in-sample demand."""
    from twin.allocation import preposition

    names = [h["name"] for h in scenario.data.get("hospitals", [])]
    if not names:
        raise OptimisationError("the scenario has no [[hospitals]]; no depots to stock")
    ship = _ship_costs(scenario, items)
    S, H, K = demand_in.shape
    opt, per_site, mean = (np.zeros((H, K)) for _ in range(3))
    solve_s = 0.0
    for k, it in enumerate(items):
        r = preposition(demand_in[:, :, k], overage_cost=it.overage_cost, shortage_cost=it.shortage_cost,
                        unit_cost=it.unit_cost, ship_cost=ship[k], integer=True)
        opt[:, k], solve_s = np.rint(r.stock[:, 0]), solve_s + r.solve_time_s
        ratio = max(it.shortage_cost - it.unit_cost, 0.0) / (it.shortage_cost + it.overage_cost)
        # the newsvendor: the smallest stock whose empirical CDF reaches the critical ratio, in
        # whole units (none when buying costs more than running short)
        q = np.quantile(demand_in[:, :, k], ratio, axis=0, method="inverted_cdf") if ratio > 0 else 0.0
        per_site[:, k] = np.ceil(q)
        mean[:, k] = np.rint(demand_in[:, :, k].mean(axis=0))
    plans = []
    for name, x in (("optimum", opt), ("per-site", per_site), ("mean-value", mean)):
        cost = float(stock_plan_costs(x, demand_in, items, ship).mean())
        stock = tuple((h, it.name, float(x[i, k])) for i, h in enumerate(names) for k, it in enumerate(items))
        plans.append(Plan(name, stock=stock, model_objective=cost))
    info = {"model": "two-stage SAA (moves between hospitals)", "scenarios_in_sample": S, "hospitals": H,
            "items": [it.name for it in items], "solve_time_s": solve_s, "objective": plans[0].model_objective,
            "objective_label": "expected cost"}
    return plans, info, ship


def propose_plans(scenario, decide, *, model="p-median", n_plans=4, sites=None, standard_s=None, q=0.5,
                  candidates=None, keep=(), bed_rates_per_h=None, link_cost_s=None, costs="free-flow", hour=None,
                  pool="ed", demand=None):
    """The optimum of ``decide`` under ``model`` and its ``n_plans - 1`` best neighbours.

    Returns ``(plans, info, price)``: ``info`` says what the model assumed, ``price(plan)`` is the
    model's objective at any plan of this decision (e.g. the current one). ``stock`` plans come
    from :func:`twin.optimise.optimise`, which has the demand scenarios.
    """
    if decide not in DECISIONS or decide in ("stock", "care"):
        raise OptimisationError(f"decide = {decide!r}; expected one of stations, fleet, beds here "
                                f"(stock: twin.optimise.optimise; care: twin.optimise_care.care_plans)")
    if model not in MODELS:
        raise OptimisationError(f"model = {model!r}; expected one of {', '.join(MODELS)}")
    if isinstance(n_plans, bool) or not isinstance(n_plans, int) or n_plans < 1:
        raise OptimisationError(f"plans = {n_plans!r}; expected an integer >= 1 (the optimum and its neighbours)")
    if decide == "beds":
        return _bed_plans(scenario, n_plans, bed_rates_per_h, pool)
    if standard_s is None:
        standard_s = default_standard_s(scenario)
    if decide == "fleet":
        model, sites = "mexclp", None
        candidates = [n for n, _ in current_stations(scenario)]
    inputs = siting_inputs(scenario, candidates, link_cost_s=link_cost_s, costs=costs, hour=hour, demand=demand)
    known = set(inputs.candidate_ids.tolist())
    for node in keep:
        if node not in known:
            raise OptimisationError(f"kept site {node!r}: not a candidate node of city '{scenario.city.name}'")
    plans, info, price = _station_plans(scenario, model, n_plans, inputs=inputs, sites=sites, standard_s=standard_s,
                                        q=q, keep=list(keep))
    info["demand"] = "zones" if demand is None else "run"
    return plans, info, price


def default_standard_s(scenario):
    """The P1 response target less the mean turnout: the travel time a vehicle may take."""
    target = scenario.groups["kpi"].response_target_s
    t1 = float(target[0]) if len(target) else 480.0
    return max(t1 - scenario.ems.service.turnout.mean_s, 0.0)


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


# ---- plans as scenarios ----------------------------------------------------------------------

def plan_scenario_data(data, plan):
    """A copy of the scenario ``data`` with the plan's stations or beds in place (stock has no
    scenario table yet: the data come back unchanged)."""
    import copy

    out = copy.deepcopy(data)
    if plan.stations is not None:
        first = (data.get("stations") or [{}])[0]
        template = {k: v for k, v in first.items() if k not in ("name", "node", "ambulances") + _UNIT_KINDS}
        out["stations"] = [dict(template, name=f"site-{node}", node=node, ambulances=int(k)) for node, k in plan.stations]
    if plan.centres:
        first = (data.get("care_centres") or [{}])[0]
        template = {k: v for k, v in first.items() if k not in ("name", "node", "places", "home_staff")}
        out["care_centres"] = list(out.get("care_centres") or []) + [
            dict(template, name=f"new-{node}", node=node, places=int(k), home_staff=0) for node, k in plan.centres]
    if plan.beds is not None:
        beds, key = dict(plan.beds), POOLS[plan.pool][0]
        for h in out["hospitals"]:
            if h["name"] in beds:
                h[key] = int(beds[h["name"]])
    return out


def current_plan(scenario, decide, items=(), pool="ed"):
    """The scenario's own plan of ``decide`` (stock: none held)."""
    if decide == "beds":
        key = POOLS[pool][0]
        hosp = scenario.data["hospitals"]
        return Plan("current", beds=tuple((n, int(hosp[i][key])) for i, n in pool_hospitals(scenario, pool)),
                    pool=pool)
    if decide == "stock":
        return Plan("current", stock=tuple((h, it.name, 0.0) for _, h in pool_hospitals(scenario, "ed")
                                           for it in items), note="no stock")
    if decide == "care":
        return Plan("current", centres=())
    return Plan("current", stations=tuple((n, k) for n, k in current_stations(scenario)))
