"""Fixed-time signals in the spatial-queue kernel against closed forms we did not write,
and the signal-plan builders of ``twin.signals``.

References: the capacity of a signalised approach, ``c = s g / C`` (saturation flow ``s``,
effective green ``g``, cycle ``C``; Webster 1958, HCM 2010 ch. 18), and Webster's uniform
delay for deterministic arrivals below capacity, ``d = C (1 - g/C)^2 / (2 (1 - q/s))``
(Webster 1958, *Traffic signal settings*, Road Research Technical Paper 39; HCM's uniform
delay ``d1`` with ``X < 1`` is the same expression).

The kernel is called directly (``run_link``, a minimal stand-in for ``twin.traffic``), on a
single signalised link that is every vehicle's only link, so a vehicle's delay at the
signal is its leaving tick less its due tick. How the discrete model departs from the
fluid forms, and so where the tolerances come from:

- a queued link discharges its budget, which is full (``s + 1`` vehicles, ``s`` per tick)
  at the start of green: the ``i``-th queued vehicle (from 0) leaves at ``G + ceil(i/s) - 1``
  (``G`` the first green tick), up to one tick before the fluid's ``G + i/s``, and a green
  of ``g`` ticks passes between ``s g`` and ``s g + 1`` vehicles;
- vehicles are whole: the ``i``-th arrival of a red has ``i`` vehicles ahead where the fluid
  arriving at the same instant has ``x`` in ``[i, i + 1)``, so it leaves up to ``1/s`` ticks
  earlier;
- arrivals are at whole ticks: the mean over arrivals is a left Riemann sum, step one tick,
  of the fluid's delay as a function of arrival time, which falls linearly through red and
  queue clearing; the sum exceeds the integral by at most half the total drop,
  ``r / (1 - q/s)`` over a cycle of ``C`` arrival ticks (``r = C - g``).
"""

import dataclasses
import math

import numpy as np
import pytest

import twin
from twin.data.network import RawNetwork
from twin.data.synthetic import grid_city
from twin.errors import ScenarioError
from twin.kernels import traffic as K
from twin.signals import SignalPlan, approach_direction, fixed_time_plan


def run_link(ff_steps, cap_per_step, depart_step, n_steps, sig_cycle, sig_green_from, sig_green_to, *,
             storage=10**5, hole_steps=1):
    """Run ``simulate_queue`` on one link 0 -> 1 that is every vehicle's whole route.

    Returns ``(arrive_step, outflow per tick)``.
    """
    n_veh = len(depart_step)
    depart = np.asarray(depart_step, dtype=np.int64)
    one = lambda x, dt: np.array([x], dtype=dt)                      # noqa: E731
    cap = one(cap_per_step, np.float64)
    ring_cap = one(storage + 2, np.int32)
    route_seq = np.empty(2 * n_veh, dtype=np.int32)
    route_seq[0::2] = 0
    route_seq[1::2] = -1 - np.arange(n_veh)
    order = np.lexsort((np.arange(n_veh), depart)).astype(np.int64)
    arrive = np.full(n_veh, -1, dtype=np.int64)
    outflow = np.zeros((n_steps, 1), dtype=np.int32)
    K.simulate_queue(
        np.array([0, 0, 1], dtype=np.int64), one(0, np.int32), one(1, np.int32), one(ff_steps, np.int32), cap,
        one(storage, np.int32), one(hole_steps, np.int32),
        one(sig_cycle, np.int32), one(sig_green_from, np.int32), one(sig_green_to, np.int32), one(True, np.bool_),
        np.zeros(1, dtype=np.int64), ring_cap,
        route_seq, 2 * np.arange(n_veh, dtype=np.int64), depart, order, np.array([0, n_veh], dtype=np.int64), order,
        n_steps, 10**9, 0, 1, False,
        np.zeros(n_veh, np.int8), False, 1.0, 1.0, np.ones(1), np.ones(1), np.ones(1),     # no emergency priority
        np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int32), 1, 0,        # no max-pressure
        np.zeros(int(ring_cap[0]), dtype=np.int64), np.zeros(int(ring_cap[0]), dtype=np.int32),
        np.zeros(1, np.int32), np.zeros(1, np.int32),
        np.zeros(1, np.int32), np.zeros(1, np.int32), np.full(1, K.NEVER, dtype=np.int64), np.zeros(1, np.int64),
        np.full(2, K.NEVER, dtype=np.int64), cap + 1.0, np.zeros(1, np.int64),
        np.zeros(n_veh, dtype=np.int8), arrive, np.full(n_veh, -1, np.int64), np.zeros(n_veh, np.int64),
        np.zeros(0, np.int32),
        n_veh, np.zeros(0, np.int64), np.zeros(1, np.int64),             # set-up: all routable, no emergency vehicle
        np.zeros((n_steps, 1), np.int32), outflow, np.zeros((n_steps, 1), np.int64), np.zeros((n_steps, 1), np.int64),
        np.zeros((n_steps, 1, 2), np.int64), np.zeros((n_steps, 3), np.int64), np.zeros(len(K.COUNTER_NAMES), np.int64))
    return arrive, outflow[:, 0]


def one_link_plan(cycle_s, green_start_s, green_s):
    return SignalPlan(np.array([cycle_s]), np.array([green_start_s]), np.array([green_s]))


# ------------------------------------------------------------------------------------------
# closed forms
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dt_s", [1.0, 2.0])
@pytest.mark.parametrize("cycle_s, green_s, sat_veh_per_h", [(90.0, 40.0, 1800.0), (120.0, 50.0, 3600.0),
                                                              (60.0, 26.0, 1080.0), (90.0, 46.0, 5400.0)])
def test_capacity_of_signalised_approach(cycle_s, green_s, sat_veh_per_h, dt_s):
    """Oversaturated approach: flow over 30 whole cycles = ``s g / C`` (HCM), vehicle-exactly bounded.

    Tolerance: each cycle passes between ``s g`` and ``s g + 1`` vehicles (the full budget at
    the start of green; module docstring), so the flow lies in ``[s g / C, (s g + 1) / C]``.
    The plan goes through :meth:`SignalPlan.to_ticks`, with the green starting mid-cycle.
    """
    plan = one_link_plan(cycle_s, 30.0, green_s)
    sig = [a[0] for a in plan.to_ticks(dt_s)]
    n_cyc = int(round(cycle_s / dt_s))
    s = sat_veh_per_h * dt_s / 3600.0                               # vehicles per tick
    g = int(round(green_s / dt_s))
    n = int(s * g + 2) * 40
    _, outflow = run_link(3, s, np.zeros(n), 40 * n_cyc, *sig, storage=400)
    passed = outflow[5 * n_cyc:35 * n_cyc].sum()                    # 30 cycles, queue never empty
    flow_veh_per_h = passed / (30 * cycle_s) * 3600.0
    webster = sat_veh_per_h * green_s / cycle_s
    assert webster <= flow_veh_per_h <= webster + 3600.0 / cycle_s + 1e-9
    assert outflow[5 * n_cyc:].max() <= math.floor(s + 1.0)          # never above the capped budget
    assert passed == 30 * math.floor(s * g + 1.0 + 1e-9)             # the start-of-green vehicle, each cycle


@pytest.mark.parametrize("cycle, green, sat, headway", [
    (90, 40, 0.5, 7), (120, 50, 0.5, 7), (120, 50, 1.0, 7), (60, 30, 1.0, 7), (90, 45, 1.5, 7),
    (120, 60, 0.25, 11), (91, 40, 1.0, 3)])
def test_webster_uniform_delay(cycle, green, sat, headway):
    """Evenly spaced arrivals below capacity: mean delay against Webster's uniform delay.

    One vehicle every ``headway`` ticks (``q = 1 / headway``), ``headway`` coprime to the
    cycle, for ``headway`` cycles after a warm-up of as many: every tick of the cycle is an
    arrival tick exactly once. Bounds (module docstring): a vehicle leaves between
    ``1 + 1/s`` ticks earlier than the fluid and not later, and the mean over whole-tick
    arrivals exceeds the fluid's time average by at most ``r / (2 C (1 - q/s))``::

        d_W - (1 + 1/s)  <=  d  <=  d_W + r / (2 C (1 - q/s)).
    """
    assert math.gcd(cycle, headway) == 1
    q = 1.0 / headway
    assert q * cycle < sat * green                                   # X < 1
    period = headway * cycle
    depart = np.arange(0, 3 * period, headway)
    arrive, _ = run_link(4, sat, depart, 3 * period + 2 * cycle, cycle, 0, green)
    due = depart + 4
    sel = (due >= period) & (due < 2 * period)
    assert sel.sum() == cycle
    d = float((arrive[sel] - due[sel]).mean())
    y = q / sat
    red = cycle - green
    d_webster = cycle * (1 - green / cycle) ** 2 / (2 * (1 - y))
    assert d_webster - (1 + 1 / sat) <= d <= d_webster + red / (2 * cycle * (1 - y))


@pytest.mark.parametrize("cycle_s, green_start_s, green_s", [(60.0, 10.0, 20.0), (60.0, 50.0, 20.0),
                                                             (90.0, 0.0, 44.0)])
def test_arrival_on_red_waits_exactly_until_green(cycle_s, green_start_s, green_s):
    """A lone vehicle reaching the stop line in red leaves at the first green instant; in green, at once.

    Ticks of 2 s; free flow 10 s. The green window wraps round the cycle end in the second
    case. Exact: all times are whole ticks.
    """
    dt = 2.0
    sig = [a[0] for a in one_link_plan(cycle_s, green_start_s, green_s).to_ticks(dt)]
    for dep in range(0, int(2 * cycle_s / dt)):
        arrive, _ = run_link(5, 1.0, [dep], 200, *sig)
        due_s = (dep + 5) * dt
        t = due_s
        while not ((t - green_start_s) % cycle_s < green_s):
            t += dt
        assert arrive[0] * dt == t, dep


# ------------------------------------------------------------------------------------------
# fixed_time_plan on grid:5x5
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def grid5():
    return twin.load_city("grid:5x5")


def test_fixed_time_plan_nodes_and_groups(grid5):
    """Every node with >= 3 in-links (all but the 4 corners) is signalised; approaches are grouped by direction."""
    city = grid5
    plan = fixed_time_plan(city)
    in_count = np.diff(city.rev_indptr)
    expect_nodes = np.flatnonzero(in_count >= 3)
    assert len(expect_nodes) == 21
    signal_nodes = np.unique(city.link_to_idx[plan.signalised])
    np.testing.assert_array_equal(signal_nodes, expect_nodes)
    np.testing.assert_array_equal(plan.signalised, np.isin(city.link_to_idx, expect_nodes))
    assert np.isnan(plan.green_start_s[~plan.signalised]).all() and (plan.green_s[~plan.signalised] == 0).all()
    dx, dy = approach_direction(city)
    vertical = city.x_m[city.link_from_idx] == city.x_m[city.link_to_idx]
    np.testing.assert_array_equal(np.abs(dy) >= np.abs(dx), vertical)


def test_fixed_time_plan_splits(grid5):
    """At each node: two phases, greens sum to cycle - 2 lost times, split by group capacity, offsets applied."""
    city = grid5
    cycle, lost = 80.0, 3.0
    offset = np.arange(city.n_nodes) * 7.0
    plan = fixed_time_plan(city, cycle_s=cycle, lost_time_s=lost, offset_s=offset)
    vertical = city.x_m[city.link_from_idx] == city.x_m[city.link_to_idx]
    for node in np.unique(city.link_to_idx[plan.signalised]):
        links = city.rev_link[city.rev_indptr[node]:city.rev_indptr[node + 1]]
        ns, ew = links[vertical[links]], links[~vertical[links]]
        assert len(ns) and len(ew)
        g_ns, g_ew = plan.green_s[ns], plan.green_s[ew]
        assert np.ptp(g_ns) == 0 and np.ptp(g_ew) == 0 and g_ns[0] > 0 and g_ew[0] > 0
        assert g_ns[0] + g_ew[0] == pytest.approx(cycle - 2 * lost)
        cap = city.capacity_veh_per_h
        assert g_ns[0] / g_ew[0] == pytest.approx(cap[ns].sum() / cap[ew].sum())
        assert (plan.cycle_s[links] == cycle).all()
        assert plan.green_start_s[ns][0] == pytest.approx(offset[node] % cycle)
        assert plan.green_start_s[ew][0] == pytest.approx((offset[node] + g_ns[0] + lost) % cycle)


@pytest.mark.parametrize("dt_s", [1.0, 2.0, 4.0, 5.0, 7.0])
def test_fixed_time_plan_ticks_never_conflict(grid5, dt_s):
    """In ticks, the two groups at a node are never green in the same tick, and each gets green.

    A 90 s cycle is not whole ticks of 4 s or 7 s: rounded, with the phases scaled into it.
    """
    city = grid5
    plan = fixed_time_plan(city, offset_s=np.arange(city.n_nodes) * 13.0)
    c, f, t = plan.to_ticks(dt_s)
    vertical = city.x_m[city.link_from_idx] == city.x_m[city.link_to_idx]

    def green(L, k):
        m = k % c[L]
        return f[L] <= m < t[L] if f[L] <= t[L] else (m >= f[L] or m < t[L])

    for node in np.unique(city.link_to_idx[plan.signalised]):
        links = city.rev_link[city.rev_indptr[node]:city.rev_indptr[node + 1]]
        ns, ew = links[vertical[links]][0], links[~vertical[links]][0]
        g = np.array([[green(ns, k), green(ew, k)] for k in range(c[ns])])
        assert g.any(axis=0).all() and not g.all(axis=1).any()


def test_fixed_time_plan_explicit_nodes_and_flows(grid5):
    city = grid5
    centre = int(city.node_index(13))
    plan = fixed_time_plan(city, nodes=[13])                        # external id
    assert set(city.link_to_idx[plan.signalised].tolist()) == {centre}
    # Webster's split from link flows: green in proportion to each group's largest flow ratio
    vertical = city.x_m[city.link_from_idx] == city.x_m[city.link_to_idx]
    flow = np.where(vertical, 600.0, 200.0)
    p = fixed_time_plan(city, link_flow_veh_per_h=flow, nodes=[13], cycle_s=90.0, lost_time_s=4.0)
    links = city.rev_link[city.rev_indptr[centre]:city.rev_indptr[centre + 1]]
    ratio = flow / city.capacity_veh_per_h
    y_ns, y_ew = ratio[links[vertical[links]]].max(), ratio[links[~vertical[links]]].max()
    assert p.green_s[links[vertical[links]]][0] == pytest.approx(82.0 * y_ns / (y_ns + y_ew))


def test_fixed_time_plan_one_direction_node():
    """A node whose three in-links all come along one east-west road: skipped by default, an error if named."""
    raw = RawNetwork(name="line", source="test", node_ids=np.array([10, 11, 12, 13]),
                     x_m=np.array([0.0, -100.0, 100.0, -200.0]), y_m=np.array([0.0, 0.0, 5.0, -10.0]),
                     link_from_idx=np.array([1, 2, 3, 0]), link_to_idx=np.array([0, 0, 0, 2]),
                     length_m=np.full(4, 100.0), free_speed_mps=np.full(4, 10.0), lanes=np.ones(4),
                     capacity_veh_per_h=np.full(4, 1800.0))
    city = twin.load_city(raw)
    assert not fixed_time_plan(city).signalised.any()
    with pytest.raises(ScenarioError, match="node 10: every in-link approaches east-west .3 in-links.; a two-phase"):
        fixed_time_plan(city, nodes=[10])


def test_fixed_time_plan_errors(grid5):
    with pytest.raises(ScenarioError, match=r"cycle_s = 10.0; expected .* >= 2 \* \(lost_time_s \+ min_green_s\)"):
        fixed_time_plan(grid5, cycle_s=10.0)
    with pytest.raises(ScenarioError, match="lost_time_s = -1"):
        fixed_time_plan(grid5, lost_time_s=-1)
    with pytest.raises(ScenarioError, match="min_in_links = 0"):
        fixed_time_plan(grid5, min_in_links=0)
    with pytest.raises(ScenarioError, match="offset_s must be a number or an array of 25"):
        fixed_time_plan(grid5, offset_s=[1.0, 2.0])
    with pytest.raises(ScenarioError, match="offset_s at node 3 = nan; expected finite"):
        fixed_time_plan(grid5, offset_s=np.where(np.arange(25) == 2, np.nan, 0.0))
    with pytest.raises(ScenarioError, match="has no node coordinates"):
        fixed_time_plan(twin.load_city(dataclasses.replace(grid_city(5, 5), x_m=np.full(25, np.nan),
                                                           y_m=np.full(25, np.nan))))


# ------------------------------------------------------------------------------------------
# SignalPlan.from_table and to_ticks
# ------------------------------------------------------------------------------------------

def test_from_table(grid5):
    plan = SignalPlan.from_table(grid5, [(12, 13, 90, 0, 40), (14, 13, 90.0, 45.0, 40.0)])
    a, b = (int(np.flatnonzero((grid5.link_from_idx == grid5.node_index(u)) &
                               (grid5.link_to_idx == grid5.node_index(13)))[0]) for u in (12, 14))
    assert plan.signalised.sum() == 2 and plan.cycle_s[a] == 90 and plan.green_start_s[b] == 45
    c, f, t = plan.to_ticks(1.0)
    assert (c[a], f[a], t[a], c[b], f[b], t[b]) == (90, 0, 40, 90, 45, 85)
    c, f, t = plan.to_ticks(5.0)
    assert (c[b], f[b], t[b]) == (18, 9, 17)
    assert (SignalPlan.unsignalised(grid5).to_ticks(1.0)[0] == 0).all()


@pytest.mark.parametrize("rows, match", [
    ([(12, 99, 90, 0, 40)], r"signal plan row 0: unknown node 99 in city"),
    ([(12, 18, 90, 0, 40)], r"signal plan row 0 \(link 12 -> 18\): city .* has no link from 12 to 18"),
    ([(12, 13, 90, 0, 40), (12, 13, 90, 0, 91)], r"row 1 \(link 12 -> 13\): green_s = 91 with cycle_s = 90; "
                                                  r"expected 0 < green_s <= cycle_s"),
    ([(12, 13, 90, -5, 40)], r"row 0 \(link 12 -> 13\): green_start_s = -5; expected >= 0"),
    ([(12, 13, -90, 0, 40)], r"cycle_s = -90; expected > 0"),
    ([(12, 13, 90, 0, 0)], r"green_s = 0 with cycle_s = 90"),
    ([(12, 13, float("nan"), 0, 40)], r"cycle_s = nan; expected a finite number"),
    ([(12, 13, 90, "a", 40)], r"green_start_s = 'a'; expected a finite number"),
    ([(12, 13, 90, 0)], r"signal plan row 0: \(12, 13, 90, 0\); expected \(from_node, to_node, cycle_s, "),
    ([(12, 13, 90, 0, 40), (12, 13, 90, 45, 40)], r"row 1 .*given twice \(rows 0 and 1\)"),
])
def test_from_table_errors(grid5, rows, match):
    with pytest.raises(ScenarioError, match=match):
        SignalPlan.from_table(grid5, rows)


def test_to_ticks_rules():
    plan = SignalPlan(np.array([60.0, 60.0, 60.0, np.nan]), np.array([50.0, 0.0, 70.0, np.nan]),
                      np.array([20.0, 60.0, 0.4, 0.0]))
    c, f, t = plan.to_ticks(2.0)
    assert (c.tolist(), f.tolist(), t.tolist()) == ([30, 0, 30, 0], [25, 0, 5, 0], [5, 0, 6, 0])
    with pytest.raises(ScenarioError, match="shorter than two ticks"):
        one_link_plan(3.0, 0.0, 1.0).to_ticks(4.0)
    with pytest.raises(ScenarioError, match="dt_s = 0"):
        plan.to_ticks(0)
    with pytest.raises(ScenarioError, match="expected cycle_s > 0, green_start_s >= 0 and 0 < green_s <= cycle_s"):
        one_link_plan(60.0, 0.0, 70.0)


def test_approach_direction_uses_last_segment():
    """A link whose chord runs east-west but whose polyline ends heading north is a north-south approach."""
    raw = RawNetwork(name="bend", source="test", node_ids=np.array([0, 1]), x_m=np.array([0.0, 100.0]),
                     y_m=np.array([0.0, 10.0]), link_from_idx=np.array([0, 1]), link_to_idx=np.array([1, 0]),
                     length_m=np.full(2, 120.0), free_speed_mps=np.full(2, 10.0), lanes=np.ones(2),
                     capacity_veh_per_h=np.full(2, 1800.0), geom_indptr=np.array([0, 3, 5]),
                     geom_x_m=np.array([0.0, 100.0, 100.0, 100.0, 0.0]),
                     geom_y_m=np.array([0.0, -10.0, 10.0, 10.0, 0.0]))
    dx, dy = approach_direction(twin.load_city(raw))
    assert (dx.tolist(), dy.tolist()) == ([0.0, -100.0], [20.0, -10.0])
