"""Where new elderly-care centres raise the 15-minute coverage of the 80+ most (``twin optimise
--decide care``).

The model is a maximal covering location problem (MCLP, Church & ReVelle 1974) on walking
times. Demand points are the nodes where residents aged 80+ live. Each is weighted by those
residents, times ``peripheral_weight`` outside the central district, so that reaching the
periphery counts more. A node is covered when a centre is within the scenario's
``[eldercare] walk_limit_s`` on foot. The existing centres stay open (fixed), and ``sites`` new
ones are chosen among the candidate nodes. The optimum and its best one-swap neighbours become
plans: each adds its centres with ``places`` day-care places (template: the first existing
centre's hours, mode and visit lengths, no carers). :func:`twin.optimise.optimise` then
simulates every plan on common random numbers and ranks them, by default by
``eldercare_within_walk_share_80`` (higher is better).
"""

from __future__ import annotations

import numpy as np

from twin.errors import OptimisationError

__all__ = ["care_plans"]


def care_plans(scenario, n_plans, *, sites=None, places=None, peripheral_weight=2.0, candidates=None):
    """``(plans, info, price)`` of the ``care`` decision (see the module docstring)."""
    from twin.optimise_plans import Plan, _neighbours, _py, _uncovered_value
    from twin.siting import mclp

    plan = scenario.plans.get("eldercare")
    if plan is None:
        raise OptimisationError("decide = care: the scenario has no [eldercare] with [[care_centres]]")
    if not peripheral_weight >= 0:
        raise OptimisationError(f"peripheral_weight = {peripheral_weight!r}; expected a weight >= 0")
    city = scenario.city
    ids = np.asarray(city.node_ids)
    k = 1 if sites is None else int(sites)
    if k < 1:
        raise OptimisationError(f"sites = {sites!r}; expected at least one new centre")
    places = int(round(np.mean([c.places for c in plan.centres]))) if places is None else int(places)
    if places < 1:
        raise OptimisationError(f"places = {places!r}; expected at least one place per new centre")
    cand = np.arange(city.n_nodes) if candidates is None else np.asarray(city.node_index(candidates), dtype=np.int64)
    existing = [int(n) for n in plan.centre_node]
    cand = np.unique(np.concatenate([cand, existing]))
    old80 = np.bincount(plan.home[plan.band == 1], minlength=city.n_nodes).astype(np.float64)
    central = np.asarray(city.zone_of_node) == plan.access["_central_zone"]
    weight = old80 * np.where(central, 1.0, float(peripheral_weight))
    demand = np.flatnonzero(weight > 0)
    if not len(demand):
        raise OptimisationError("decide = care: no resident aged 80+ to cover")
    g = plan.group
    walk = np.asarray(city.length_m, dtype=np.float64) / g.walk_speed_mps
    cost = city.travel_times(ids[demand], ids[cand], link_cost_s=walk)
    w = weight[demand]
    index = {int(c): j for j, c in enumerate(cand)}
    fixed = sorted({index[n] for n in existing})
    p = len(fixed) + k
    if p > len(cand):
        raise OptimisationError(f"sites = {k}: more new centres than the {len(cand) - len(fixed)} free candidates")
    res = mclp(cost, p, g.walk_limit_s, weights=w, fixed=fixed)

    def value(u):                                   # minimised: minus the covered weight
        return -(w.sum() - _uncovered_value(cost, w, u, g.walk_limit_s))

    options = [np.rint(res.units).astype(int)]
    options += _neighbours(options[0], value, n_plans - 1, move_units=False, keep=fixed)
    plans = []
    for n, u in enumerate(options):
        new = [j for j in np.flatnonzero(u > 0) if j not in fixed]
        plans.append(Plan("optimum" if n == 0 else f"neighbour-{n}",
                          centres=tuple((_py(ids[cand[j]]), places) for j in new),
                          model_objective=-value(u) / w.sum()))

    def price(pl):
        u = np.zeros(len(cand), dtype=int)
        u[fixed] = 1
        for node, _ in pl.centres or ():
            u[index[int(city.node_index([node])[0])]] = 1
        return -value(u) / w.sum()

    info = {"model": "mclp", "costs": "walking", "candidates": len(cand), "demand_points": len(demand),
            "sites": k, "existing": len(fixed), "places": places, "peripheral_weight": float(peripheral_weight),
            "standard_s": g.walk_limit_s, "objective": res.objective, "gap": res.gap, "status": res.status,
            "solve_time_s": res.solve_time_s, "objective_label": "covered share (weighted 80+)"}
    return plans, info, price
