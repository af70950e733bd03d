"""``--decide care``: new elderly-care centres by maximal covering, verified by simulation."""

import numpy as np
import pytest
from twin_small import SMALL

from twin.errors import OptimisationError
from twin.optimise import optimise
from twin.optimise_care import care_plans
from twin.runner import load_scenario

CARE = SMALL.replace("until_s = 3600.0", "until_s = 43200.0") + """
[population]
persons = 3000
calls_from_presence = false
traffic_from_cars = false

[eldercare]
walk_limit_s = 600.0

[[care_centres]]
name = "old"
node = 1
places = 10
"""


def test_the_optimum_covers_the_most_weighted_80_plus_of_any_single_new_site():
    sc = load_scenario(CARE)
    plans, info, price = care_plans(sc, 3, sites=1, peripheral_weight=3.0)
    plan, city = sc.plans["eldercare"], sc.city
    w = np.bincount(plan.home[plan.band == 1], minlength=city.n_nodes).astype(float)
    central = np.asarray(city.zone_of_node) == plan.access["_central_zone"]
    w *= np.where(central, 1.0, 3.0)
    walk = city.travel_times(city.node_ids, city.node_ids, link_cost_s=np.asarray(city.length_m) / 1.0)
    old = int(city.node_index([1])[0])
    best = max(float(w[(walk[:, old] <= 600.0) | (walk[:, j] <= 600.0)].sum()) for j in range(city.n_nodes))
    assert plans[0].model_objective == pytest.approx(best / w.sum())
    assert info["status"] == "optimal" and len(plans[0].centres) == 1 and plans[0].centres[0][1] == 10
    assert price(plans[0]) == pytest.approx(plans[0].model_objective)
    assert all(p.model_objective <= plans[0].model_objective + 1e-12 for p in plans)
    from twin.optimise_plans import Plan

    assert price(Plan("current", centres=())) == pytest.approx(float(w[walk[:, old] <= 600.0].sum()) / w.sum())


def test_a_care_study_adds_the_chosen_centres_and_ranks_them_by_coverage(tmp_path):
    res = optimise(CARE, "care", replications=2, plans=2, sites=1, care_places=12)
    assert res.kpi == "eldercare_within_walk_share_80" and res.maximise
    assert "current" in res.ranking.index and res.ranking.loc["current", "plan_detail"] == "no new centre"
    best = res.ranking.index[0]
    assert best != "current" and res.ranking.loc[best, "mean"] > res.ranking.loc["current", "mean"]
    chosen = load_scenario(res.chosen_toml)
    names = [c.name for c in chosen.groups["care_centres"]]
    assert names[0] == "old" and len(names) == 2 and chosen.groups["care_centres"][1].places == 12


def test_care_needs_an_eldercare_scenario():
    with pytest.raises(OptimisationError, match=r"decide = care: the scenario has no \[eldercare\]"):
        care_plans(load_scenario(SMALL), 2)
