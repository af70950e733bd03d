"""Validation of the synthetic population and its day (issue: synthetic population).

Checks against things we did not write: IPF fixed points with closed forms, the
marginals given as input, the multinomial-logit formula, gravity-model theory (a larger
deterrence beta gives shorter trips), and plan invariants that must hold exactly.
"""

import numpy as np
import pandas as pd
import pytest

import twin
from twin.agents.activities import ACTIVITIES, MODES, TRAVEL, ActivityParams, ModeParams, mode_probabilities
from twin.agents.population import AGE_COLUMNS, HOUSEHOLD_COLUMNS, ipf, synthesize_population


@pytest.fixture(scope="module")
def baohe():
    return twin.load_city("hefei-baohe")


@pytest.fixture(scope="module")
def pop(baohe):
    return synthesize_population(baohe, 100_000, seed=11)


def test_ipf_reproduces_closed_form_independence_table():
    """With a uniform seed IPF converges to the independence table r_i c_j / N (Deming-Stephan)."""
    rows = np.array([[30.0, 50.0, 20.0]])
    cols = np.array([[10.0, 60.0, 30.0]])
    table, it, err = ipf(np.ones((3, 3)), rows, cols)
    np.testing.assert_allclose(table[0], np.outer(rows[0], cols[0]) / 100.0, rtol=1e-12)
    assert err[0] < 1e-10


def test_ipf_keeps_structural_zeros_and_converges():
    seed = np.array([[0.0, 1.0], [1.0, 1.0]])
    table, it, err = ipf(seed, np.array([[4.0, 6.0]]), np.array([[3.0, 7.0]]))
    assert table[0, 0, 0] == 0.0
    np.testing.assert_allclose(table[0].sum(axis=1), [4, 6], rtol=1e-9)
    np.testing.assert_allclose(table[0].sum(axis=0), [3, 7], rtol=1e-9)


def test_marginals_reproduced_within_one_percent(pop):
    """IPF converged (max marginal error < 1e-10 of the zone total); after integerisation every
    age band, household size, worker and student count is within 1% of its target or within
    the rounding bound (6 persons / 6 households: one per household-size row)."""
    assert pop.meta["ipf_max_rel_error"] < 1e-10
    m = pop.marginals()
    assert set(m["marginal"]) == set(AGE_COLUMNS) | set(HOUSEHOLD_COLUMNS) | {"workers", "students"}
    ok = (m["abs_error"] <= 0.01 * m["target"]) | (m["abs_error"] <= 6.0)
    assert ok.all(), m[~ok]
    big = m[m["target"] > 2000]
    assert (big["abs_error"] / big["target"]).max() < 0.01
    # city-wide shares equal the 2020 census defaults to within 0.1 percentage point
    band = np.searchsorted([15, 60, 65, 80, 95], pop.age, side="right")
    shares = np.bincount(band, minlength=5) / pop.n_persons
    np.testing.assert_allclose(shares, [0.1795, 0.6335, 0.0520, 0.1096, 0.0254], atol=1e-3)
    assert pop.n_persons == 100_000
    assert pop.hh_size.astype(int).sum() == pop.n_persons


def test_households_have_an_adult_and_children_never_live_alone(pop):
    adult = np.bincount(pop.household_idx, weights=pop.age >= 15, minlength=pop.n_households)
    assert (adult >= 1).mean() > 0.999
    single = pop.hh_size[pop.household_idx] == 1
    assert (pop.age[single] >= 15).all()
    alone = (pop.health_flags & 2) > 0
    np.testing.assert_array_equal(alone, single & (pop.age >= 65))


def test_every_trip_starts_where_the_previous_activity_ended(pop):
    t = pop.trips(ids=False)
    k = pop._trip_slots()
    np.testing.assert_array_equal(t["origin_idx"].to_numpy(), pop.act_node_idx[k - 1])
    np.testing.assert_array_equal(t["depart_s"].to_numpy(), pop.act_end_s[k - 1])
    # consecutive trips of a person chain: next origin == previous destination
    same = t["person"].to_numpy()[1:] == t["person"].to_numpy()[:-1]
    np.testing.assert_array_equal(t["origin_idx"].to_numpy()[1:][same], t["destination_idx"].to_numpy()[:-1][same])
    # tours start and end at home
    first = pop.act_indptr[:-1]
    last = pop.act_indptr[1:] - 1
    np.testing.assert_array_equal(pop.act_node_idx[first], pop.home_node_idx)
    np.testing.assert_array_equal(pop.act_node_idx[last], pop.home_node_idx)


def test_schedules_are_time_consistent(pop):
    start, end = pop.act_start_s, pop.act_end_s
    assert (end >= start).all()
    k = pop._trip_slots()
    assert (start[k] >= end[k - 1]).all()
    moved = pop.act_node_idx[k] != pop.act_node_idx[k - 1]
    assert (start[k][moved] > end[k - 1][moved]).all(), "every trip between two nodes takes positive time"
    assert np.isinf(end[pop.act_indptr[1:] - 1]).all()
    assert (start[pop.act_indptr[:-1]] == 0).all()
    t = pop.trips()
    assert (t["arrive_s"] >= t["depart_s"]).all()


def test_everyone_is_somewhere_at_every_time(pop, baohe):
    for t_s in np.arange(0, 26 * 3600, 1800.0):
        loc = pop.location_at(t_s)
        assert (loc.node_idx >= 0).all() and (loc.node_idx < baohe.n_nodes).all()
        assert (loc.zone_idx >= 0).all()
        assert loc.n_travelling == int((loc.activity == TRAVEL).sum())
    present = pop.present_by_zone()
    assert (present.sum(axis=1) == pop.n_persons).all()
    at_night = pop.location_at(3 * 3600.0)
    assert (at_night.node_idx == pop.home_node_idx).all()
    morning = pop.location_at(10 * 3600.0)
    worker_at_work = (morning.activity == ACTIVITIES.index("work")).sum()
    assert worker_at_work > 0.5 * (pop.person_type == 0).sum()


def mean_trip_time(pop):
    t = pop.trips(ids=False)
    out = t[t["purpose"] == "shop"]
    rows = pop._row_of(out["origin_idx"].to_numpy()), pop._row_of(out["destination_idx"].to_numpy())
    return float(pop._car_time_s[rows].mean())


def test_higher_cost_sensitivity_gives_shorter_trips():
    """Gravity model: P(j|i) ~ W_j exp(-beta t_ij), so E[t] decreases in beta (its derivative is
    -Var[t] < 0). On a fixed 10x10 grid, three betas give strictly decreasing mean shop-trip times."""
    city = twin.load_city("grid:10x10")
    means = []
    for beta in (0.0, 0.2, 1.0):
        params = ActivityParams().replace(gravity_beta_per_min={"shop": beta})
        pop = synthesize_population(city, 20_000, seed=5, activities=params)
        means.append(mean_trip_time(pop))
    assert means[0] > means[1] > means[2], means


def test_mode_shares_match_the_logit_formula():
    """Sampled tour modes agree with P(m) = exp(V_m)/sum exp(V_k) within 4 binomial sigmas,
    computed person by person from the same times; raising the car constant raises car share."""
    city = twin.load_city("grid:10x10")
    shares = []
    for asc_car in (-1.0, 1.0):
        modes = ModeParams().replace(asc={"car": asc_car})
        pop = synthesize_population(city, 20_000, seed=9, modes=modes)
        first = pop.act_indptr[:-1] + 1
        tour = first[np.diff(pop.act_indptr) > 1]
        person = np.searchsorted(pop.act_indptr, tour, side="right") - 1
        o = pop._row_of(pop.home_node_idx[person])
        d = pop._row_of(pop.act_node_idx[tour])
        times = np.empty((len(tour), 4))
        for m, name in enumerate(MODES):
            base = pop._car_time_s[o, d] if name == "car" else pop._distance_m[o, d] / modes.speed_mps[name]
            times[:, m] = base + modes.terminal_s[name]
        p = mode_probabilities(times, pop.car_available[person], modes)
        expected = p.sum(axis=0)
        observed = np.bincount(pop.act_mode[tour], minlength=4)
        sigma = np.sqrt((p * (1 - p)).sum(axis=0))
        assert np.all(np.abs(observed - expected) <= 4 * sigma + 1), (observed, expected)
        shares.append(observed[0] / len(tour))
    assert shares[1] > shares[0]


def test_deterministic_same_seed_same_arrays(baohe):
    a = synthesize_population(baohe, 5_000, seed=3)
    b = synthesize_population(baohe, 5_000, seed=3)
    c = synthesize_population(baohe, 5_000, seed=4)
    for name in ("age", "sex", "household_idx", "home_node_idx", "work_node_idx", "act_node_idx", "act_start_s",
                 "act_mode"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    pd.testing.assert_frame_equal(a.trips(), b.trips())
    assert not np.array_equal(a.act_start_s[:100], c.act_start_s[:100])


def test_accessibility_shares_are_consistent(pop):
    acc = pop.accessibility()
    z = acc.by_zone
    assert ((z["elderly_care_walk_share"] >= 0) & (z["elderly_care_walk_share"] <= 1)).all()
    assert z["residents"].sum() == pop.n_persons
    s = acc.summary
    assert s["elderly_care_walk_share_gap"] == pytest.approx(
        s["elderly_care_walk_share_central"] - s["elderly_care_walk_share_peripheral"])
    # nothing is beyond an hour's walk: with a 1-hour limit everyone qualifies (4.4 x 3.3 km city)
    assert pop.accessibility(walk_limit_s=3600.0 * 3).summary["elderly_care_walk_share_all"] == 1.0
    assert pop.accessibility(walk_limit_s=0.0).summary["elderly_care_walk_share_all"] < 1.0


def _mode_costs(city):
    """All-pairs least cost by cost kind: [0] car free-flow seconds, [1] metres (other modes)."""
    ids = city.node_ids
    return city.travel_times(ids, ids), city.travel_times(ids, ids, link_cost_s=city.length_m)


def test_travellers_are_on_a_shortest_path_and_move_forward(pop, baohe):
    """A traveller between departure and arrival is on a least-cost path of its mode
    (C(o, v) + C(v, d) == C(o, d), by all-pairs costs computed apart), advances along it as
    time passes, is at the origin at departure and at the destination at arrival."""
    costs = _mode_costs(baohe)
    t = pop.trips(ids=False)
    o, d = t["origin_idx"].to_numpy(), t["destination_idx"].to_numpy()
    dep, arr = t["depart_s"].to_numpy(), t["arrive_s"].to_numpy()
    kind = np.where(t["mode"].cat.codes.to_numpy() == 0, 0, 1)
    person = t["person"].to_numpy()
    last = np.full(len(t), -1.0)
    n_checked = 0
    moved_inside = 0
    for t_s in np.arange(6.5 * 3600, 9.5 * 3600, 120.0):
        loc = pop.location_at(t_s)
        on = np.flatnonzero((dep <= t_s) & (t_s < arr))
        v = loc.node_idx[person[on]]
        assert (loc.activity[person[on]] == TRAVEL).all()
        for c in (0, 1):
            s = on[kind[on] == c]
            vs = v[kind[on] == c]
            C = costs[c]
            np.testing.assert_allclose(C[o[s], vs] + C[vs, d[s]], C[o[s], d[s]], rtol=1e-9, atol=1e-6)
            here = C[o[s], vs]
            assert (here >= last[s] - 1e-9).all(), "a traveller moved backwards along its route"
            last[s] = here
        moved_inside += int(((v != o[on]) & (v != d[on])).sum())
        n_checked += len(on)
    assert n_checked > 10_000 and moved_inside > 0.2 * n_checked
    rng = np.random.default_rng(0)
    for i in rng.choice(np.flatnonzero(arr > dep), 15, replace=False):
        assert pop.location_at(dep[i]).node_idx[person[i]] == o[i]
        at_arrival = pop.location_at(arr[i])
        assert at_arrival.node_idx[person[i]] == d[i] and at_arrival.activity[person[i]] != TRAVEL


def test_higher_car_link_costs_shift_modes_from_car_and_lengthen_car_legs(baohe):
    """Congestion feedback: synthesising on car link times three times free flow lowers the car
    share (logit on a slower car) and lengthens car legs (their durations use the link times);
    walk, bike and transit legs keep mode-speed times. Free-flow costs given explicitly change
    nothing."""
    free = synthesize_population(baohe, 20_000, seed=3)
    same = synthesize_population(baohe, 20_000, seed=3, link_cost_s=baohe.free_flow_time_s)
    np.testing.assert_array_equal(free.act_start_s, same.act_start_s)
    np.testing.assert_array_equal(free.act_mode, same.act_mode)
    slow = synthesize_population(baohe, 20_000, seed=3, link_cost_s=3.0 * baohe.free_flow_time_s)
    assert slow.summary()["mode_share_car"] < free.summary()["mode_share_car"] - 0.02

    def car_leg_network_s(p):
        t = p.trips(ids=False)
        car = t[t["mode"] == "car"]
        return float((car["arrive_s"] - car["depart_s"]).mean()) - 300.0

    assert car_leg_network_s(slow) > 1.5 * car_leg_network_s(free)
    # a car leg's duration is its least time on the given link costs plus the parking time
    t = slow.trips(ids=False)
    car = t[t["mode"] == "car"]
    C = baohe.travel_times(baohe.node_ids, baohe.node_ids, link_cost_s=3.0 * baohe.free_flow_time_s)
    np.testing.assert_allclose((car["arrive_s"] - car["depart_s"]).to_numpy(),
                               C[car["origin_idx"], car["destination_idx"]] + 300.0, rtol=1e-9)


def test_retimed_plans_stay_continuous_and_consistent(baohe):
    """Re-time car legs with observed times (here: least times on link costs twice free flow,
    standing in for a traffic run's): continuity and time consistency hold, each observed leg
    lasts its observed time plus parking, activity durations are kept, and later activities
    shift by the accumulated delay."""
    pop = synthesize_population(baohe, 4_000, seed=8)
    vt = pop.vehicle_trips()
    C = baohe.travel_times(baohe.node_ids, baohe.node_ids, link_cost_s=2.0 * baohe.free_flow_time_s)
    o, d = baohe.node_index(vt["origin"].to_numpy()), baohe.node_index(vt["destination"].to_numpy())
    obs = C[o, d]
    new = pop.with_travel_times(obs)
    k = new._trip_slots()
    assert (new.act_start_s[k] >= new.act_end_s[k - 1]).all() and (new.act_end_s >= new.act_start_s).all()
    slots = pop._vehicle_trip_slots()  # the rows of pop.vehicle_trips(), which obs follows
    np.testing.assert_allclose(new.act_start_s[slots] - new.act_end_s[slots - 1], obs + 300.0, rtol=1e-9)
    shift = new.act_start_s - pop.act_start_s
    person = np.repeat(np.arange(pop.n_persons), np.diff(pop.act_indptr))
    delay = np.zeros(len(shift))
    delay[slots] = (obs + 300.0) - (pop.act_start_s[slots] - pop.act_end_s[slots - 1])
    expect = np.zeros(len(shift))
    for j in range(len(shift)):  # accumulated delay within each person's day
        expect[j] = delay[j] + (expect[j - 1] if j and person[j - 1] == person[j] else 0.0)
    np.testing.assert_allclose(shift, expect, atol=1e-6)
    assert (delay[slots] >= -1e-6).all() and (delay[slots] > 1.0).mean() > 0.9  # o == d legs take no time
    for t_s in (7 * 3600.0, 8 * 3600.0, 18 * 3600.0):
        assert (new.location_at(t_s).node_idx >= 0).all()


@pytest.mark.shared
@pytest.mark.parametrize("rel", ["SiouxFalls/SiouxFalls_net.tntp", "Anaheim/Anaheim_net.tntp",
                                 "Chicago-Sketch/ChicagoSketch_net.tntp", "Berlin-Center/berlin-center_net.tntp"])
def test_synthesis_on_the_shared_tntp_cities(shared_data, rel):
    """On the TNTP cities (zone demand as the proxy for residents and jobs) IPF converges,
    the marginals hold within the stated bound, and everyone is on a node and in a zone at
    08:30 and 03:00, travellers on through nodes (outside every zone) included: the hourly
    presence sums to the population."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # implausible-speed warnings of two TNTP files
        city = twin.load_city(shared_data / "tntp" / rel)
    pop = twin.synthesize_population(city, 6000, seed=3)
    assert pop.meta["ipf_max_rel_error"] < 1e-10
    m = pop.marginals()
    assert ((m["abs_error"] <= 0.01 * m["target"]) | (m["abs_error"] <= 6.0)).all()
    t = pop.trips(ids=False)
    assert len(t) > pop.n_persons
    for t_s in (8.5 * 3600, 3 * 3600):
        loc = pop.location_at(t_s)
        assert (loc.node_idx >= 0).all() and (loc.node_idx < city.n_nodes).all()
        assert (loc.zone_idx >= 0).all() and (loc.zone_idx < city.n_zones).all()
    assert (pop.location_at(3 * 3600).node_idx == pop.home_node_idx).all()
    assert (pop.present_by_zone().sum(axis=1) == pop.n_persons).all()
