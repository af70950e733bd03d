"""Siting and bed allocation against published optima and closed forms.

- OR-Library pmed1 (``../shared/data/opt/pmed1.txt``: 100 nodes, 200 edge lines, p = 5; Beasley
  1985, EJOR 21): the p-median optimum is 5819 and the p-center optimum 127, as published. The
  file lists two edges twice; the OR-Library rule (the last cost wins) is the one that gives
  the published value.
- A bed allocation found by marginal analysis on Erlang B, simulated by the EMS hospital model
  (M/G/c/c wards): the simulated patients turned away per hour agree with the formula within the
  replications' interval.
"""

import math

import numpy as np
import pytest
from scipy import stats

from twin.agents.ems import run_replications
from twin.allocation import allocate_beds
from twin.data.orlib import read_orlib_pmed
from twin.emergency import loss_ward_spec
from twin.siting import lscp, p_center, p_median


@pytest.fixture
def pmed1(shared_data):
    return read_orlib_pmed(shared_data / "opt" / "pmed1.txt")


def test_pmed1_p_median_is_the_published_5819(pmed1):
    cost, p = pmed1
    assert cost.shape == (100, 100) and p == 5
    r = p_median(cost, p)
    assert r.objective == 5819 and r.status == "optimal" and r.gap == 0.0
    assert float(r.nearest_cost(cost).sum()) == 5819


def test_pmed1_p_center_is_the_published_127(pmed1):
    cost, p = pmed1
    r = p_center(cost, p)
    assert r.objective == 127 and len(r.sites) == 5
    assert r.nearest_cost(cost).max() == 127
    # the covering view of the same optimum: radius 127 needs at most 5 sites, any smaller radius more
    assert lscp(cost, 127).objective <= 5 < lscp(cost, 126).objective


def test_pmed1_duplicate_edges_take_the_last_cost(shared_data, tmp_path):
    lines = (shared_data / "opt" / "pmed1.txt").read_text().split("\n")
    header, edges = lines[0], [ln for ln in lines[1:] if ln.strip()]
    firsts = {}
    for ln in edges:
        i, j, _ = ln.split()
        firsts.setdefault((min(int(i), int(j)), max(int(i), int(j))), ln)
    n_dup = len(edges) - len(firsts)
    assert n_dup == 2
    alt = tmp_path / "pmed1_first.txt"
    alt.write_text("\n".join([f"{header.split()[0]} {len(firsts)} {header.split()[2]}", *firsts.values()]) + "\n")
    cost_first, p = read_orlib_pmed(alt)
    cost_last, _ = read_orlib_pmed(shared_data / "opt" / "pmed1.txt")
    assert not np.array_equal(cost_first, cost_last)          # the rule changes the matrix ...
    assert p_median(cost_first, p).objective != 5819           # ... and the optimum (5718 with first-wins)


def test_bed_allocation_holds_in_simulation():
    """Two wards share 30 beds: 1.5 admissions/h staying 8 h (12 erlangs) and 0.5/h staying 12 h
    (6 erlangs), exponential stays. Marginal analysis picks the split; 20 replications of 120
    days (after 5 days' warm-up) of each ward at that split estimate patients turned away per
    hour, which must match the Erlang-B figure within a 99.9 % t interval."""
    lam, stay = np.array([1.5, 0.5]), np.array([8.0, 12.0])
    plan = allocate_beds(lam, stay, 30)
    assert plan.beds.sum() == 30
    days = 125.0
    blocked = np.zeros(20)
    for h in range(2):
        spec = loss_ward_spec(int(plan.beds[h]), lam[h], {"kind": "exponential", "mean_s": stay[h] * 3600.0},
                              warmup_s=5 * 86400.0)
        runs = run_replications(spec, seed=40 + h, n_replications=20, until_s=days * 86400.0)
        blocked += np.array([r.hospitals.iloc[0].blocking * lam[h] for r in runs])
    half = stats.t.ppf(1 - 0.001 / 2, 19) * blocked.std(ddof=1) / math.sqrt(20)
    assert abs(blocked.mean() - plan.objective) <= half, (blocked.mean(), plan.objective, half)
    assert half < 0.3 * plan.objective                        # the check has power
