"""12345 requests (the requests flow): departments' field teams against closed forms.

- Queueing: every request of a district at its centroid node, the department's base there, so
  the drives take no time and a department with c teams is an M/M/c queue (Poisson calls,
  exponential work). Its mean wait for a team is Erlang C's ``C(c, a) / (cμ - λ)``, its
  utilisation ``a / c``, and the share closed within the SLA ``t`` is ``1 - P(T > t)`` for the
  sojourn ``T = W_q + S``: ``P(T > t) = (1 - C) e^{-μt} + C (θ e^{-μt} - μ e^{-θt}) / (θ - μ)``,
  ``θ = cμ - λ`` (W_q is 0 with probability 1 - C, else exponential with rate θ). Tolerance:
  four standard errors from 20 batch means of the run (the batches are long against the
  queue's relaxation time, ~1 / (μ(1 - √ρ)²) ≈ 16 h here, so they are near independent).
- A timeline with travel: a request closes at its work order + the free-flow drive + the
  work, and the team is back at the base a free-flow drive later; with the traffic on empty
  roads, the same to within a tick per link.
- Shifts: teams start jobs only within their hours; a night call waits for the morning.
- Policies, the SLA's three outcomes, the backlog series, checkpoints, and bad input.
- Forecast members: the requests called before the fork stay as they were, those after are
  drawn again on the member's dice at its call rate (the control goes on as the run).
"""

import math

import numpy as np
import pytest
from twin_small import SMALL

from twin.errors import ScenarioError
from twin.queueing import erlang_c
from twin.results import open_results
from twin.runner import from_snapshot, load_scenario, run

REQ = """
[requests]
population = { "1" = 28800 }
locations = "centroid"

[[request_types]]
name = "leak"
department = "water"
rate_per_1000_per_day = 1.0                      # 28.8 a day: 1.2 an hour
on_site = { kind = "exponential", mean_s = 3600.0 }
sla_s = 7200.0

[[departments]]
name = "water"
node = 8                                         # district 1's centroid node on the 6x6 grid
teams = 2
"""


def _scenario(until_s, extra=REQ):
    return SMALL.replace("until_s = 3600.0", f"until_s = {until_s}") + extra


def _sojourn_exceeds(c, lam, mu, t):
    a = lam / mu
    C, theta = erlang_c(c, a), c * mu - lam
    return (1 - C) * math.exp(-mu * t) + C * (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)


def _batch(values, t, n=20):
    edges = np.linspace(t.min(), t.max() + 1e-9, n + 1)
    means = np.array([values[(t >= a) & (t < b)].mean() for a, b in zip(edges[:-1], edges[1:])])
    return values.mean(), means.std(ddof=1) / math.sqrt(n)


def test_a_department_at_its_sites_is_an_m_m_c_queue():
    res = run(_scenario(800 * 86400.0), seed=11)
    op, k = res.requests, res.kpis
    assert op.plan.district_nodes[0].tolist() == [7] and set(op.site_node) == {7}      # node id 8
    assert np.all(op.arrive_s == op.dispatch_s)                                          # no drive
    lam, mu, c = 1.2, 1.0, 2                                                             # per hour
    assert abs(len(op.t_s) - 800 * 28.8) < 4 * math.sqrt(800 * 28.8)
    wait_h = (op.dispatch_s - op.order_s) / 3600.0
    mean, se = _batch(wait_h, op.t_s)
    exact = erlang_c(c, lam / mu) / (c * mu - lam)                                       # 0.5625 h
    assert abs(mean - exact) < 4 * se and se < 0.06 * exact        # 4 SE: within 24 %
    within = ((op.closed_s - op.t_s) <= 7200.0).astype(float)
    mean, se = _batch(within, op.t_s)
    exact = 1.0 - _sojourn_exceeds(c, lam, mu, 2.0)
    assert abs(mean - exact) < 4 * se
    assert k["requests_within_sla_share"] == pytest.approx(within.mean())
    assert abs(k["requests_water_team_utilisation"] - lam / mu / c) < 0.01              # a / c = 0.6


def _travel(extra, until_s=86400.0, **kw):
    res = run(_scenario(until_s, extra), seed=5, **kw)
    return res, res.requests


TIMED = REQ.replace('locations = "centroid"', 'locations = "centroid"\nforward = 600.0').replace(
    'on_site = { kind = "exponential", mean_s = 3600.0 }', "on_site = 900.0").replace(
    "node = 8 ", "node = 36").replace("teams = 2", "teams = 1").replace("rate_per_1000_per_day = 1.0",
                                                                       "rate_per_1000_per_day = 0.1")


def test_a_request_closes_after_the_forward_the_drive_and_the_work():
    res, op = _travel(TIMED)
    city = load_scenario(_scenario(86400.0, TIMED)).city
    there, back = city.travel_times([36], [8])[0, 0], city.travel_times([8], [36])[0, 0]
    assert len(op.t_s) >= 1 and there > 0
    free = op.dispatch_s == op.order_s               # the team was at its base when the order came
    assert free[0] and np.allclose(op.order_s - op.t_s, 600.0)
    assert np.allclose(op.arrive_s[free] - op.dispatch_s[free], there)
    assert np.allclose(op.closed_s - op.arrive_s, 900.0)
    # a queued order is taken at the site just closed (no drive) or once the team is back at the base
    for r in np.flatnonzero(~free):
        prev = np.flatnonzero(op.closed_s < op.dispatch_s[r] + 1e-9)[-1]
        assert op.dispatch_s[r] == pytest.approx(op.closed_s[prev]) or \
            op.dispatch_s[r] == pytest.approx(op.closed_s[prev] + back)


def test_with_traffic_the_teams_drive_as_vehicles():
    res, op = _travel(TIMED + "\n[traffic]\nrandom_trips = 1\n")
    city = load_scenario(_scenario(86400.0, TIMED)).city
    there = city.travel_times([36], [8])[0, 0]
    free = op.dispatch_s == op.order_s
    drive = op.arrive_s[free] - op.dispatch_s[free]
    assert len(drive) and np.all(np.abs(drive - there) <= 10.0)        # a tick (1 s) per link at most
    legs = op.fleet.legs_table()
    assert set(legs["leg"]) <= {"to_site", "return"} and (legs["leg"] == "to_site").sum() == len(op.t_s)
    near = TIMED.replace('locations = "centroid"\n', 'policy = "nearest"\n').replace(
        "rate_per_1000_per_day = 0.1", "rate_per_1000_per_day = 1.0")
    res, op = _travel(near + "\n[traffic]\nrandom_trips = 1\n")
    assert (op.dispatch_s > op.order_s).sum() > 5 and np.isfinite(op.closed_s).sum() > 10


def test_teams_start_work_only_in_their_hours():
    text = REQ.replace("teams = 2", "teams = 2\nhours = [8, 18]")
    res = run(_scenario(3 * 86400.0, text), seed=2)
    op = res.requests
    hod = (op.dispatch_s % 86400.0) / 3600.0
    assert np.all((hod >= 8.0) & (hod < 18.0))
    night = ((op.t_s % 86400.0) < 6 * 3600.0)
    assert night.any() and np.all(op.dispatch_s[night] >= (op.t_s[night] // 86400.0) * 86400.0 + 8 * 3600.0)
    assert res.kpis["requests_within_sla_share"] < run(_scenario(3 * 86400.0), seed=2).kpis[
        "requests_within_sla_share"]


def test_the_deadline_policy_takes_the_earliest_deadline():
    two = REQ.replace("teams = 2", "teams = 1") + """
[[request_types]]
name = "outage"
department = "water"
rate_per_1000_per_day = 0.5
on_site = { kind = "exponential", mean_s = 3600.0 }
sla_s = 1800.0
"""
    fifo = run(_scenario(20 * 86400.0, two), seed=4)
    edf = run(_scenario(20 * 86400.0, two.replace('locations = "centroid"', 'locations = "centroid"\npolicy = "deadline"')),
              seed=4)
    op = edf.requests
    assert np.array_equal(op.t_s, fifo.requests.t_s)                # common random numbers
    # whenever a team took an order, no order waiting then had an earlier deadline
    for r in range(len(op.t_s)):
        waiting = (op.order_s <= op.dispatch_s[r]) & (op.dispatch_s > op.dispatch_s[r])
        assert not waiting.any() or op.deadline_s[waiting].min() >= op.deadline_s[r]
    fo = fifo.requests
    assert np.all(np.diff(fo.dispatch_s[np.argsort(fo.order_s, kind="stable")]) >= 0)   # fifo: in order


def test_outcomes_backlog_and_results_file(tmp_path):
    out = tmp_path / "r.h5"
    res = run(_scenario(86400.0, REQ.replace("teams = 2", "teams = 1")), seed=3, out=out,
              overrides=["run.drain=false"])
    op, k = res.requests, res.kpis
    closed = np.isfinite(op.closed_s)
    with open_results(out) as f:
        ev = f.table("/events/requests")
        t = f.array("/timeseries/requests/time_s")
        backlog = f.array("/timeseries/requests/backlog")
        dist = f.table("/summary/requests_districts")
    assert len(ev) == len(op.t_s) and set(ev["within_sla"]) <= {-1, 0, 1}
    late_open = ~closed & (op.deadline_s <= 86400.0)
    assert (ev["within_sla"] == 0).sum() == ((op.closed_s - op.t_s > 7200.0) & closed).sum() + late_open.sum()
    assert (ev["within_sla"] == -1).sum() == (~closed & (op.deadline_s > 86400.0)).sum()
    assert t[-1] == 86400.0 and backlog[-1, 0] == k["requests_open_end"] == (~closed).sum()
    for i in (0, len(t) // 2, len(t) - 1):
        assert backlog[i, 0] == (op.t_s <= t[i]).sum() - (op.closed_s <= t[i]).sum()
    assert dist["received"].tolist() == [len(op.t_s)] and dist["district"].tolist() == ["1"]


def test_a_snapshot_resumes_the_requests_exactly(tmp_path):
    text = _scenario(2 * 86400.0, TIMED.replace("teams = 1", "teams = 1\nhours = [8, 18]").replace(
        "rate_per_1000_per_day = 0.1", "rate_per_1000_per_day = 1.0") + "\n[traffic]\nrandom_trips = 200\n")
    out = tmp_path / "s.h5"
    plain = run(text, out=out, snapshot_at_s=[36000.0, 72000.0], seed=8)
    for at in ("10:00", "20:00"):
        again = from_snapshot(f"{out}@{at}")
        assert again.kpis == plain.kpis
        for a in ("dispatch_s", "arrive_s", "closed_s", "team"):
            assert np.array_equal(getattr(again.requests, a), getattr(plain.requests, a), equal_nan=True)


def test_the_same_seed_gives_the_same_requests_and_another_differs():
    a, b, c = (run(_scenario(86400.0), seed=s).requests for s in (1, 1, 2))
    assert np.array_equal(a.t_s, b.t_s) and np.array_equal(a.closed_s, b.closed_s, equal_nan=True)
    assert not np.array_equal(a.t_s, c.t_s)


@pytest.mark.parametrize("old,new,match", [
    ('department = "water"', 'department = "roads"', "department = 'roads': no such"),
    ("teams = 2", "teams = 2\nhours = [18, 8]", r"hours = \[18, 8\]"),
    ('population = { "1" = 28800 }', 'population = { "12" = 28800 }', "no district '12'"),
    ('population = { "1" = 28800 }', "", "add \\[population\\]"),
    ("[[departments]]", "[[other]]", None),
    ('rate_per_1000_per_day = 1.0', 'rate_per_1000_per_day = 1e6', "more than the 5,000,000"),
])
def test_bad_request_tables_are_clear_errors(old, new, match):
    text = _scenario(86400.0 * 30, REQ.replace(old, new))
    with pytest.raises(ScenarioError, match=match or "no \\[\\[departments\\]\\]|other"):
        run(text, seed=1)


def test_rates_follow_the_persons_present_of_a_population():
    from importlib import resources

    text = resources.files("twin.scenarios").joinpath("hefei_people.toml").read_text(encoding="utf-8")
    extra = REQ.replace('population = { "1" = 28800 }\n', "").replace("node = 8 ", "node = 8131109677 ")
    sc = load_scenario(text + extra)
    plan = sc.plans["requests"]
    present = sc.plans["population"].population.present_by_zone().to_numpy(dtype=float)
    rate = plan.rate_per_h[:, :, 0]
    assert rate.shape == (24, 9) and rate.sum() > 0
    assert np.allclose(rate, present / 1000.0 / 24.0)
    # the share of each district shifts within the day (persons at work by day, at home at night)
    share = rate / rate.sum(axis=1, keepdims=True)
    assert np.abs(share[3] - share[11]).max() > 0.01
    res = run(text + extra, seed=1)
    expected = rate.sum()
    assert abs(res.kpis["requests_received"] - expected) < 4 * math.sqrt(expected)
    with pytest.raises(ScenarioError, match="conflicts with the scenario's \\[population\\]"):
        load_scenario(text + REQ.replace("node = 8 ", "node = 8131109677 "))


def test_the_nearest_policy_drives_less_than_fifo():
    busy = REQ.replace('locations = "centroid"\n', "").replace("teams = 2", "teams = 1").replace(
        "rate_per_1000_per_day = 1.0", "rate_per_1000_per_day = 0.27").replace(
        'population = { "1" = 28800 }', 'population = { "1" = 20000, "2" = 20000, "3" = 20000, "4" = 20000 }')
    fifo = run(_scenario(20 * 86400.0, busy), seed=6).requests
    near = run(_scenario(20 * 86400.0, busy.replace("[requests]", '[requests]\npolicy = "nearest"')), seed=6).requests
    assert np.array_equal(fifo.site_node, near.site_node) and len(fifo.t_s) > 100
    drive = [np.nanmean(op.arrive_s - op.dispatch_s) for op in (fifo, near)]
    assert drive[1] < 0.9 * drive[0]
    # each order taken was, among those waiting then, the nearest to where the team was
    for r in np.flatnonzero(near.dispatch_s > near.order_s)[:50]:
        waiting = (near.order_s <= near.dispatch_s[r]) & (near.dispatch_s > near.dispatch_s[r])
        prev = np.flatnonzero(near.closed_s == near.dispatch_s[r])
        at = int(near.loc[prev[0]]) if len(prev) else 0
        t = near.fleet.time_s(at, near.loc[np.flatnonzero(waiting)]) if waiting.any() else np.array([np.inf])
        assert near.fleet.time_s(at, int(near.loc[r])) <= t.min() + 1e-9


def test_forecast_members_draw_the_requests_ahead_again(tmp_path):
    from twin.checkpoint import read_checkpoint
    from twin.flows import Simulation

    text = _scenario(2 * 86400.0)
    out = tmp_path / "f.h5"
    plain = run(text, out=out, snapshot_at_s=[43200.0], seed=4).requests
    meta, t0, states = read_checkpoint(f"{out}@12:00")

    def member(m, f=1.0):
        sc = load_scenario(text).replanned(4)
        sim = Simulation(sc, seed=4, until_s=2 * 86400.0, start_s=t0)
        fork = None if m == 0 else {"call_rate": f, "seed": 9, "member": m}
        return sim.run(state=states, fork=fork)["requests"].values["requests"]

    ctl, a, a2, b = member(0), member(1), member(1), member(2)
    assert np.array_equal(ctl.t_s, plain.t_s) and np.array_equal(ctl.closed_s, plain.closed_s, equal_nan=True)
    before = plain.t_s <= t0
    n0 = int(before.sum())
    for r in (a, b):
        assert np.array_equal(r.t_s[:n0], plain.t_s[:n0]) and np.all(r.t_s[n0:] > t0)
        assert np.array_equal(r.closed_s[:n0][np.isfinite(plain.closed_s[:n0]) & (plain.closed_s[:n0] <= t0)],
                              plain.closed_s[:n0][np.isfinite(plain.closed_s[:n0]) & (plain.closed_s[:n0] <= t0)])
        assert np.isfinite(r.closed_s[n0:]).mean() > 0.8               # the new ones are worked too
    assert np.array_equal(a.t_s, a2.t_s) and not np.array_equal(a.t_s, b.t_s)
    assert not np.array_equal(a.t_s[n0:], plain.t_s[n0:])
    # the call rate: a Poisson count ahead (1.2 an hour for 36 h: mean 43.2) at twice the rate
    ahead = np.mean([len(member(m, 2.0).t_s) - n0 for m in range(1, 9)])
    assert abs(ahead - 2 * 43.2) < 4 * math.sqrt(2 * 43.2 / 8)
