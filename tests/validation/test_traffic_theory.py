"""The spatial-queue traffic model against closed forms we did not write.

References: the deterministic point queue (D/D/1 with fluid arrivals; e.g. Daganzo,
*Fundamentals of Transportation and Traffic Operations*, 1997, ch. 2) and the LWR
kinematic-wave model with a triangular fundamental diagram (free speed ``v_f``, capacity
``q``, jam density ``k_j``, backward wave speed ``w = q / (k_j - q / v_f)``; Newell 1993).

How the discrete model departs from the fluid forms (this is where every tolerance below
comes from):

- time runs in whole ticks of ``dt``: a link takes ``max(1, round(t_ff / dt))`` ticks, freed
  space takes ``max(1, round(L / w / dt))`` ticks to reach the upstream end, and a count read
  at tick ``k`` covers the whole tick ``[k dt, (k+1) dt)``;
- flows are integers per tick: a link discharging ``mu`` vehicles per tick with ``mu`` not an
  integer alternates between ``floor`` and ``ceil``, so a count over any window is within one
  vehicle of ``mu`` times its length;
- the fluid of ``N`` vehicles is ``N`` discrete vehicles: a sum over vehicles differs from the
  area under the fluid curve by half a vehicle's worth per vehicle;
- storage is ``max(floor(L n k_j), ceil(q (ff + hole)) + 1)`` vehicles (``twin.traffic.link_arrays``).

Scenarios are built directly from arrays (:class:`twin.data.network.RawNetwork`) so that every
link time is a whole number of ticks unless a test says otherwise. Where the stuck rule is
not what is being tested it is switched off (``stuck_time_s`` huge): see
``test_stuck_rule_counts_queueing_time`` for why.
"""

import numpy as np
import pytest

import twin
from twin.data.network import DEFAULT_JAM_DENSITY_VEH_PER_KM_PER_LANE, RawNetwork
from twin.traffic import link_arrays, simulate_traffic

KJ = DEFAULT_JAM_DENSITY_VEH_PER_KM_PER_LANE / 1000.0   # veh/m/lane
NO_STUCK = 1e9                                          # seconds: stuck rule never fires


def corridor(length_m, speed_mps, lanes, cap_veh_per_h):
    """A one-way chain of links 0 -> 1 -> ... -> n (node ids = indices)."""
    m = len(length_m)
    n = m + 1
    return twin.load_city(RawNetwork(
        name="corridor", source="test corridor", node_ids=np.arange(n), x_m=np.arange(n) * 100.0, y_m=np.zeros(n),
        link_from_idx=np.arange(m), link_to_idx=np.arange(1, n), length_m=np.asarray(length_m, float),
        free_speed_mps=np.asarray(speed_mps, float), lanes=np.asarray(lanes, float),
        capacity_veh_per_h=np.asarray(cap_veh_per_h, float)))


def trips_table(origin, destination, depart_s):
    depart_s = np.asarray(depart_s, float)
    n = len(depart_s)
    return {"origin": np.broadcast_to(origin, n).copy(), "destination": np.broadcast_to(destination, n).copy(),
            "depart_s": depart_s}


def steady_departures(rate_veh_per_s, t_end_s, dt, t0_s=0.0):
    """``rate * dt`` vehicles at every tick start in ``[t0, t_end)`` (rate * dt must be whole)."""
    per_tick = rate_veh_per_s * dt
    assert per_tick == int(per_tick)
    ticks = np.arange(t0_s, t_end_s, dt)
    return np.repeat(ticks, int(per_tick))


# ------------------------------------------------------------------------------------------
# 1. single bottleneck: the deterministic point queue
# ------------------------------------------------------------------------------------------



@pytest.mark.parametrize("cap_b, dt", [
    pytest.param(1800.0, 1.0, id="mu=0.5/tick"),
    pytest.param(1800.0, 4.0, id="mu=2/tick"),
    pytest.param(1800.0, 5.0, id="mu=2.5/tick"),
    pytest.param(1000.0, 1.0, id="mu=0.278/tick"),
])
def test_single_bottleneck_point_queue(cap_b, dt):
    """Demand ``lam`` > bottleneck capacity ``mu`` for ``T`` seconds, then none: D/D/1.

    Corridor A->B (200 m, 4 lanes, 14 400 veh/h: never binding) -> B->C (5 km, 2 lanes,
    capacity ``mu``; storage 1 333 vehicles > all ``N = lam T`` = 600 vehicles, so nothing
    spills and the queue is a point queue at C). ``lam`` = 1 veh/s, ``T`` = 600 s; all link
    times are whole ticks, so the free-flow time is exact and ``tt - t_ff`` is pure delay.
    The queue forms at ``t_q`` (the free-flow time A->C). Fluid predictions and tolerances:

    - discharge: every 60 s bin inside ``[t_q, t_q + T lam / mu)`` counts ``60 mu`` vehicles,
      ±1 (integer vehicles per tick: the budget's fractional phase);
    - queue: ``Q(t) = A(t - t_ff,BC) - D(t)`` from cumulative link counts equals
      ``(lam - mu)(t - t_q)`` while loading and ``(lam - mu) T - mu (t - t_q - T)`` after,
      within ``lam dt + 1`` (the tick's counts hold a whole tick of arrivals, plus the
      budget's one vehicle); so also its growth rate and maximum ``(lam - mu) T``;
    - clearance: the last vehicle leaves at ``t_q + T lam / mu`` within ``1 / mu + dt`` (the
      N-th discrete vehicle leaves one headway before the fluid's end, plus one tick);
    - total delay: ``sum(tt - t_ff)`` equals the triangle ``T (lam - mu) T lam / mu / 2``
      within ``N (dt + (1/mu - 1/lam) / 2)``: each vehicle's delay is a whole number of ticks
      within one tick of its fluid delay ``n (1/mu - 1/lam)``, and the sum over vehicles
      ``n = 0..N-1`` falls short of the area by ``N (1/mu - 1/lam) / 2``.
    """
    lam, T = 1.0, 600.0
    mu = cap_b / 3600.0
    city = corridor([200.0, 5000.0], [10.0, 25.0], [4, 2], [14400.0, cap_b])
    la = link_arrays(city, dt)
    assert la["storage"][1] > lam * T                      # no spillback by construction
    dep = steady_departures(lam, T, dt)
    N = len(dep)
    res = simulate_traffic(city, trips_table(0, 2, dep), until_s=4000.0, dt_s=dt, interval_s=dt,
                           stuck_time_s=NO_STUCK)
    tr = res.trips
    assert (tr["status"] == "arrived").all()
    ff = la["ff_steps"]
    np.testing.assert_array_equal(tr["free_flow_time_s"], ff.sum() * dt)   # link times are whole ticks
    t_q = ff.sum() * dt
    t_clear = t_q + T * lam / mu

    # discharge at capacity, from the bottleneck's outflow series
    out = res.links["outflow_veh"][:, 1]
    spb = int(round(60.0 / dt))
    k0 = int(round(t_q / dt))
    nb = int((t_clear - t_q) // 60.0) - 1
    bins = out[k0:k0 + nb * spb].reshape(nb, spb).sum(axis=1)
    assert np.all(np.abs(bins - 60.0 * mu) <= 1.0), (bins.min(), bins.max(), 60.0 * mu)

    # the virtual queue at the bottleneck from cumulative counts (Newell's curves)
    cum_in = np.cumsum(res.links["inflow_veh"][:, 1])
    cum_out = np.cumsum(out)
    k = np.arange(len(cum_out))
    due = np.where(k >= ff[1], cum_in[np.maximum(k - ff[1], 0)], 0)
    Q = due - cum_out
    t = k * dt
    fluid = np.where(t < t_q, 0.0, np.where(t <= t_q + T, (lam - mu) * (t - t_q),
                                            np.maximum(0.0, (lam - mu) * T - mu * (t - t_q - T))))
    assert np.max(np.abs(Q - fluid)) <= lam * dt + 1.0
    assert abs(Q.max() - (lam - mu) * T) <= lam * dt + 1.0

    # clearance time and total delay
    assert abs(tr["arrive_s"].max() - t_clear) <= 1.0 / mu + dt
    delay = (tr["travel_time_s"] - tr["free_flow_time_s"]).sum()
    area = 0.5 * T * (lam - mu) * T * lam / mu
    assert abs(delay - area) <= N * (dt + 0.5 * (1.0 / mu - 1.0 / lam)), (delay, area)


# ------------------------------------------------------------------------------------------
# 2. spillback and the backward wave
# ------------------------------------------------------------------------------------------

# source L0 (never full), L1 450 m and L2 300 m (4 lanes, 7 200 veh/h), L3 a 15 m single-lane
# bottleneck of 1 800 veh/h: a lane drop at node 3. v_f = 15 m/s, k_j = 1/7.5 veh/m/lane, so
# w = 0.5 / (0.1333 - 0.5/15) = 5 m/s on every link.
SPILL_LENGTHS = [3000.0, 450.0, 300.0, 15.0]
SPILL_LANES = [4, 4, 4, 1]
SPILL_CAPS = [7200.0, 7200.0, 7200.0, 1800.0]
SPILL_VF = 15.0


def _spill_run(stuck_time_s=NO_STUCK, T=1500.0):
    """1 veh/s from node 0 to node 4 for ``T`` seconds; per-tick link series."""
    city = corridor(SPILL_LENGTHS, [SPILL_VF] * 4, SPILL_LANES, SPILL_CAPS)
    trips = trips_table(0, 4, steady_departures(1.0, T, 1.0))
    return city, simulate_traffic(city, trips, until_s=6000.0, interval_s=1.0, stuck_time_s=stuck_time_s)


def _live_holes(out, h):
    """Holes in flight at the end of each tick: vehicles that left in the last ``h`` ticks."""
    c = np.concatenate([[0], np.cumsum(out)])
    k = np.arange(len(out))
    return c[k + 1] - c[np.maximum(k + 1 - h, 0)]


def test_spillback_fills_upstream_links_at_the_lwr_shock_speed():
    """Queue behind a lane drop spills back link by link; fill times match storage and LWR.

    ``lam`` = 1 veh/s > ``mu`` = 0.5 veh/s (the bottleneck L3). A link is *full* once its
    vehicles plus the freed space still travelling upstream (holes) reach its storage; from
    then its inflow drops from ``lam`` to ``mu`` and the link upstream starts queueing. Per
    tick series (``interval_s = dt``) give the tick ``t_full`` at which each link first
    refuses a vehicle.

    - Storage: congested at flow ``mu`` a link holds ``S - mu h`` vehicles (holes in flight
      make up the rest: the congested branch of the triangle, density ``n k_j - mu / w``);
      vehicles + holes never exceed ``S`` and reach it exactly.
    - Storage fill: a link's content rises from ``lam ff`` (free flow) to ``S - mu h`` at
      ``lam - mu``, so ``t_full(L) - t_full(L+1) = (S - mu h - lam ff) / (lam - mu)`` with the
      model's own ``S, h, ff`` (``link_arrays``); tolerance 2 ticks = one vehicle at
      ``lam - mu`` (integer vehicles per tick).
    - LWR: the shock between the free-flow state ``(lam, lam / v_f)`` and the congested state
      ``(mu, n k_j - mu / w)`` crosses a link of length ``L`` in ``L (n k_j - mu/w - lam/v_f) /
      (lam - mu)``, computed from the network attributes only. Tolerance ``(q dt + 3 + (lam +
      mu) dt / 2) / (lam - mu)`` ticks: the discrete storage exceeds ``L n k_j`` by at most
      ``q dt + 2`` (its floor of ``ceil(q (ff + h)) + 1`` with ``ff``, ``h`` rounded to ticks),
      rounding ``ff`` and ``h`` moves ``lam ff + mu h`` by at most ``(lam + mu) dt / 2``, and
      counts are ±1.
    """
    lam, mu, dt = 1.0, 0.5, 1.0
    city, res = _spill_run()
    la = link_arrays(city, dt)
    S, h, ff = la["storage"], la["hole_steps"], la["ff_steps"]
    inflow, outflow = res.links["inflow_veh"], res.links["outflow_veh"]
    n_veh = np.cumsum(inflow - outflow, axis=0)
    np.testing.assert_array_equal(res.links["occupancy_veh"], n_veh)  # per-tick occupancy = vehicles present
    assert res.kpis["forced_moves"] == 0 and res.kpis["completed"] == 1500

    t_full = {}
    for L in (1, 2, 3):
        first = int(np.flatnonzero(inflow[:, L])[0])
        assert first == ff[:L].sum()                                      # free flow up to the queue
        t_full[L] = first + int(np.flatnonzero(inflow[first:1500, L] < lam)[0])
        total = n_veh[:, L] + _live_holes(outflow[:, L], h[L])
        assert total.max() == S[L]                                        # storage reached, never exceeded
        assert total[t_full[L]] == S[L]
    for L in (1, 2):                                                      # the long links
        assert abs(n_veh[:, L].max() - (S[L] - mu * h[L])) <= 1.0
        model = (S[L] - mu * h[L] - lam * ff[L]) / (lam - mu)
        assert model >= h[L]                                              # holes saturate before it fills
        assert abs((t_full[L] - t_full[L + 1]) - model) <= 2.0
        Lm, n, q = SPILL_LENGTHS[L], SPILL_LANES[L], SPILL_CAPS[L] / 3600.0
        w = la["w_mps"][L]
        assert w == pytest.approx(q / n / (KJ - q / n / SPILL_VF))
        lwr = Lm * (n * KJ - mu / w - lam / SPILL_VF) / (lam - mu) / dt
        tol = (q * dt + 3.0 + (lam + mu) * dt / 2.0) / (lam - mu)
        assert abs((t_full[L] - t_full[L + 1]) - lwr) <= tol, (L, t_full, lwr)


def test_freed_space_travels_upstream_at_w():
    """In a full link, space freed at the downstream end admits a vehicle ``L / w`` later.

    Same corridor; 30 % of the trips (seeded draw) end at node 3 and leave L2 without
    needing space on L3, which makes L2's outflow an irregular 0/1/2 series (a periodic
    series would identify a lag only modulo its period). While a link is full — from
    ``t_full`` until the last vehicle enters it, which includes the release after demand
    stops at 1 500 s — every vehicle enters exactly when a hole arrives: ``inflow[t] ==
    outflow[t - h]`` tick by tick, with ``h = hole_steps`` from ``link_arrays``, and that lag
    is the only one that matches. Against the wave speed: ``|h dt - L / w| <= dt / 2``
    (rounding to whole ticks), so the release reaches the upstream end of each link
    within one tick of ``L / w``, and of a chain of links within one tick per link.
    """
    rng = np.random.default_rng(7)
    dep = steady_departures(1.0, 1500.0, 1.0)
    dest = np.where(rng.random(len(dep)) < 0.3, 3, 4)
    city = corridor(SPILL_LENGTHS, [SPILL_VF] * 4, SPILL_LANES, SPILL_CAPS)
    res = simulate_traffic(city, trips_table(0, dest, dep), until_s=6000.0, interval_s=1.0,
                           stuck_time_s=NO_STUCK)
    assert res.kpis["forced_moves"] == 0
    la = link_arrays(city, 1.0)
    inflow, outflow = res.links["inflow_veh"], res.links["outflow_veh"]
    cum_in, cum_out = np.cumsum(inflow, axis=0), np.cumsum(outflow, axis=0)
    ff = la["ff_steps"]

    def upstream_queued(L, t):
        """At least 2 vehicles (what one tick can admit) are due at the end of link L - 1 at tick t."""
        u = L - 1
        due = np.where(t - ff[u] >= 0, cum_in[np.maximum(t - ff[u], 0), u], 0)
        return due - cum_out[t - 1, u] >= 2

    full = {}
    for L in (1, 2):
        h = int(la["hole_steps"][L])
        assert abs(h - SPILL_LENGTHS[L] / la["w_mps"][L]) <= 0.5
        first = int(np.flatnonzero(inflow[:, L])[0])
        start = first + int(np.flatnonzero(inflow[first:1500, L] == 0)[0])   # full from here
        end = int(np.flatnonzero(inflow[:, L])[-1])                          # last vehicle in
        full[L] = (start, end)
        t = np.arange(start, end + 1)
        t = t[upstream_queued(L, t)]
        assert len(t) > 0.9 * (end - start) and t[-1] > 1500 + h             # covers the release
        assert len(np.unique(outflow[t - h, L])) >= 3                        # an irregular signal
        np.testing.assert_array_equal(inflow[t, L], outflow[t - h, L])
        for lag in range(1, 3 * h):
            if lag != h:
                assert np.mean(inflow[t, L] == outflow[t - lag, L]) < 0.9, lag
    # the chain: space freed at L2's downstream end reaches L1's upstream end h2 + h1 ticks later
    h1, h2 = int(la["hole_steps"][1]), int(la["hole_steps"][2])
    t = np.arange(full[1][0], full[1][1] + 1)
    t = t[upstream_queued(1, t) & (t - h1 >= full[2][0]) & (t - h1 <= full[2][1]) & upstream_queued(2, t - h1)]
    assert len(t) > 500
    np.testing.assert_array_equal(inflow[t, 1], outflow[t - h1 - h2, 2])
    chain_s = (SPILL_LENGTHS[1] + SPILL_LENGTHS[2]) / la["w_mps"][1]
    assert abs((h1 + h2) * 1.0 - chain_s) <= 2 * 0.5


def test_stuck_rule_counts_queueing_time():
    """A queue that moves every other tick is not gridlock: the stuck rule must not fire.

    The spillback corridor with the default ``stuck_time_s`` = 300 s. Without the stuck rule
    (``ref``) the bottleneck frees a space every 2 ticks and each full link's head moves on
    within 2 ticks of becoming head (the per-tick series of
    ``test_spillback_fills_upstream_links_at_the_lwr_shock_speed``), so no head vehicle is
    ever blocked for anywhere near 300 s: expected no forced moves and identical arrivals.
    """
    city, res = _spill_run(stuck_time_s=300.0)
    city, ref = _spill_run()
    assert ref.kpis["forced_moves"] == 0
    assert res.kpis["forced_moves"] == 0
    np.testing.assert_array_equal(res.trips["arrive_s"], ref.trips["arrive_s"])


# ------------------------------------------------------------------------------------------
# 3. free flow
# ------------------------------------------------------------------------------------------

def _isolated_trips(city, n_trips, seed, t0_s=60.0):
    """Random OD pairs departing one by one, each after the previous one has arrived."""
    rng = np.random.default_rng(seed)
    D = city.travel_times(city.node_ids)
    o = rng.integers(0, city.n_nodes, size=4 * n_trips)
    d = rng.integers(0, city.n_nodes, size=4 * n_trips)
    ok = (o != d) & np.isfinite(D[o, d])
    o, d = o[ok][:n_trips], d[ok][:n_trips]
    # longer than any trip alone: each of its < n_nodes links is rounded up by less than a tick (dt <= 5 s)
    gap = np.ceil(D[np.isfinite(D)].max()) + 5.0 * city.n_nodes
    depart = t0_s + gap * np.arange(len(o))
    return trips_table(city.node_ids[o], city.node_ids[d], depart), float(depart[-1] + gap)


@pytest.mark.parametrize("source, dt", [("grid:6x6", 1.0), ("grid:6x6", 4.0),
                                        ("hefei-baohe", 1.0), ("hefei-baohe", 2.0)])
def test_free_flow_travel_times(source, dt):
    """Alone on the network, a vehicle's travel time is its route's free-flow time in ticks.

    One vehicle at a time (each departs after the previous one arrived), departures at whole
    ticks from 60 s on (after every link's outflow budget is full; see
    ``test_first_vehicle_at_time_zero_travels_at_free_flow``). Expected exactly
    ``tt == sum(ff_steps) dt`` over the route (``City.path``; its free-flow time is checked
    to equal the simulated route's first). On ``grid:6x6`` link times (36 s, 60 s) are whole
    ticks, so ``tt == free_flow_time_s`` (to 1e-9 s: float64 rounding of 500 m / 8.33 m/s).
    On hefei-baohe they are not: each link is rounded to the nearest tick (±dt/2), and a link
    shorter than half a tick is raised to one tick (error ``dt - t_ff``), so ``|tt - t_ff| <=
    sum over the route of max(dt/2, dt - t_ff)`` (``<= n_links dt / 2`` when no link is that
    short, which is checked on those routes).
    """
    city = twin.load_city(source)
    la = link_arrays(city, dt)
    trips, until = _isolated_trips(city, 40, seed=11)
    res = simulate_traffic(city, trips, until_s=until, dt_s=dt, stuck_time_s=NO_STUCK)
    tr = res.trips
    assert (tr["status"] == "arrived").all()
    assert res.kpis["forced_moves"] == 0
    for i in range(len(tr)):
        route = city.path(tr["origin"][i], tr["destination"][i])
        assert len(route) == tr["n_links"][i]
        assert city.free_flow_time_s[route].sum() == pytest.approx(tr["free_flow_time_s"][i], rel=1e-12)
        assert tr["travel_time_s"][i] == la["ff_steps"][route].sum() * dt
        bound = np.maximum(dt / 2.0, dt - city.free_flow_time_s[route]).sum()
        assert abs(tr["travel_time_s"][i] - tr["free_flow_time_s"][i]) <= bound + 1e-9
        if np.all(city.free_flow_time_s[route] >= dt / 2.0):
            assert abs(tr["travel_time_s"][i] - tr["free_flow_time_s"][i]) <= len(route) * dt / 2.0 + 1e-9
    if source.startswith("grid"):
        # link times are 500 m / (30 or 50 km/h) = 60 s and 36 s up to float64 rounding of the speed
        np.testing.assert_allclose(tr["travel_time_s"], tr["free_flow_time_s"], rtol=0, atol=1e-9)


def test_first_vehicle_at_time_zero_travels_at_free_flow():
    """One vehicle on an empty network at ``t = 0`` moves at free flow, as at any later time."""
    city = corridor([10.0, 10.0], [10.0, 10.0], [1, 1], [900.0, 900.0])
    tts = [simulate_traffic(city, trips_table(0, 2, [t]), until_s=100.0).trips["travel_time_s"][0]
           for t in (10.0, 0.0)]
    assert tts[0] == 2.0
    assert tts[1] == 2.0


# ------------------------------------------------------------------------------------------
# 4. merge: capacity-weighted node model
# ------------------------------------------------------------------------------------------

def merge_city(cap1, cap2):
    """Two 150 m in-links (0->2, 1->2) merging into a 15 m single-lane link 2->3 of 1 800 veh/h."""
    return twin.load_city(RawNetwork(
        name="merge", source="test merge", node_ids=np.arange(4), x_m=np.array([0.0, 0.0, 100.0, 200.0]),
        y_m=np.array([100.0, -100.0, 0.0, 0.0]), link_from_idx=np.array([0, 1, 2]), link_to_idx=np.array([2, 2, 3]),
        length_m=np.array([150.0, 150.0, 15.0]), free_speed_mps=np.full(3, 15.0), lanes=np.array([4.0, 4.0, 1.0]),
        capacity_veh_per_h=np.array([cap1, cap2, 1800.0])))


@pytest.mark.parametrize("cap1, cap2", [(7200.0, 7200.0), (7200.0, 3600.0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_shares_follow_in_link_capacity(cap1, cap2, seed):
    """Two oversaturated in-links share the downstream capacity in proportion to their own.

    Each in-link gets 1 veh/s (more than all of the 0.5 veh/s downstream capacity ``mu``)
    for 8 000 s. Once the short downstream link is full, it admits one vehicle per freed
    space, one space every 2 ticks, and the node serves the in-links in a random order
    weighted by capacity, so each space goes to in-link 1 with probability ``p = c1 / (c1 +
    c2)`` (1/2, then 2/3), independently (counter-based hash per tick). Both in-links stay
    queued all the time (their budgets, 2 and 1 veh/tick, never bind).

    Over the window [300 s, 8 000 s): the total through the merge is ``mu`` times its length
    ±1 (no capacity is lost at the merge), and in-link 1's share of the ``N`` ≈ 3 850
    vehicles is ``p`` within 4 binomial standard deviations ``4 sqrt(p (1 - p) / N)``
    (≈ 0.032; a false alarm has probability 6e-5 per seed; over 40 seeds the z-scores had
    mean -0.16 and sd 1.07 when this test was written).
    """
    city = merge_city(cap1, cap2)
    T = 8000
    dep = np.repeat(np.arange(T, dtype=float), 2)
    origin = np.tile([0, 1], T)
    res = simulate_traffic(city, trips_table(origin, 3, dep), until_s=float(T), seed=seed, interval_s=100.0,
                           stuck_time_s=NO_STUCK)
    out = res.links["outflow_veh"]
    w = slice(3, 80)                                     # intervals [300 s, 8 000 s)
    a, b = int(out[w, 0].sum()), int(out[w, 1].sum())
    n = a + b
    assert abs(n - 0.5 * 7700) <= 1
    assert int(out[w, 2].sum()) == pytest.approx(n, abs=3)   # ±3: vehicles on the 1-tick, 3-vehicle link
    p = cap1 / (cap1 + cap2)
    assert abs(a / n - p) <= 4.0 * np.sqrt(p * (1 - p) / n), (a, b, p)


# ------------------------------------------------------------------------------------------
# 5. gridlock and the stuck rule
# ------------------------------------------------------------------------------------------

def ring_city(n=4):
    ang = 2 * np.pi * np.arange(n) / n
    return twin.load_city(RawNetwork(
        name="ring", source="test ring", node_ids=np.arange(n), x_m=100 * np.cos(ang), y_m=100 * np.sin(ang),
        link_from_idx=np.arange(n), link_to_idx=(np.arange(n) + 1) % n, length_m=np.full(n, 60.0),
        free_speed_mps=np.full(n, 10.0), lanes=np.ones(n), capacity_veh_per_h=np.full(n, 1800.0)))


def _ring_trips(n=4, per_node=30):
    o = np.repeat(np.arange(n), per_node)
    return trips_table(o, (o + n - 1) % n, np.zeros(len(o)))     # three links round the ring


def test_gridlock_is_resolved_by_the_stuck_rule():
    """A full one-way ring where every head needs the next (full) link: gridlock.

    With ``stuck_time_s`` = 10 s blocked heads are forced on (counted), the ring unjams and
    every trip arrives; the vehicle counts add up at every tick.
    """
    city = ring_city()
    trips = _ring_trips()
    res = simulate_traffic(city, trips, until_s=20000.0, stuck_time_s=10.0)
    assert res.kpis["forced_moves"] > 0
    assert res.kpis["completed"] == 120
    assert (res.trips["status"] == "arrived").all()
    dep, inn, arr = res.step_counts.T
    assert np.all(dep >= inn + arr)
    assert tuple(res.step_counts[-1]) == (120, 0, 120)


def test_gridlock_without_the_stuck_rule_holds_everyone():
    """Without the stuck rule the ring stays jammed and nothing is lost.

    Every link holds exactly its storage, no one arrives, and ``completed + en_route +
    waiting + not_departed + unroutable`` is the number of trips; the last row of
    ``step_counts`` says the same, and link inflows minus outflows are the vehicles on the links.
    """
    city = ring_city()
    trips = _ring_trips()
    res = simulate_traffic(city, trips, until_s=3000.0, stuck_time_s=NO_STUCK)
    k = res.kpis
    la = link_arrays(city, 1.0)
    assert k["forced_moves"] == 0 and k["completed"] == 0
    assert k["en_route"] == la["storage"].sum()
    assert k["completed"] + k["en_route"] + k["waiting"] + k["not_departed"] + k["unroutable"] == 120
    assert k["waiting"] == 120 - la["storage"].sum()
    assert tuple(res.step_counts[-1]) == (120, k["en_route"], 0)
    on_links = res.links["inflow_veh"].sum(axis=0) - res.links["outflow_veh"].sum(axis=0)
    np.testing.assert_array_equal(on_links, la["storage"])
    assert res.kpis["simulated_s"] == 3000.0
