"""Mesoscopic dynamic traffic on a :class:`~twin.graph.City`: ``simulate_traffic``.

Every trip is a vehicle that follows a route of links through per-link FIFO queues with
flow capacity, storage (spillback) and backward-travelling holes — the spatial-queue
model documented in :mod:`twin.kernels.traffic` (fidelity and sources there). This module
validates the demand, routes it, turns the city into the kernel's arrays, runs the
kernel in blocks (for progress and, later, for coupling with the SimPy clock), and
assembles per-trip records, per-interval link series and network KPIs.

Routes are least free-flow-time paths (one shortest-path tree per distinct origin); a share
of the vehicles re-routes en route on live link times (:class:`TrafficEngine`), and
closures, reopenings and capacity changes apply at their times. Signals are fixed-time
or max-pressure (:mod:`twin.signals`). Emergency vehicles (a trips table's optional
``vehicle_class`` column, or ``insert_vehicle(..., emergency=True)``) get priority when
``emergency_priority`` is on: signal pre-emption and queue bypass at ``bypass_speed_mps``
(the rule, its fidelity and sources are in :mod:`twin.kernels.traffic`), and they
re-route on their own live link times at every re-routing period, whatever the share.
:func:`dynamic_user_equilibrium` iterates day-to-day route choice.

This module holds :func:`simulate_traffic` and re-exports the rest from its siblings:
:mod:`twin.traffic_inputs` (parameters, constants, link arrays, trips and events),
:mod:`twin.traffic_routes` (routing), :mod:`twin.traffic_engine` (:class:`TrafficEngine`),
:mod:`twin.traffic_result` (:class:`TrafficResult`) and :mod:`twin.traffic_due`
(:func:`dynamic_user_equilibrium`).
"""

from __future__ import annotations

import logging

from twin.graph import City
from twin.traffic_due import DueResult, dynamic_user_equilibrium
from twin.traffic_engine import TrafficEngine
from twin.traffic_inputs import (DEFAULT_BYPASS_SPEED_MPS, STATUS_NAMES, TrafficParams, link_arrays, read_events,
                                 read_trips, read_vehicle_class)
from twin.traffic_result import TrafficResult

__all__ = ["simulate_traffic", "TrafficEngine", "TrafficResult", "TrafficParams", "link_arrays", "read_trips",
           "read_vehicle_class", "read_events", "dynamic_user_equilibrium", "DueResult", "DEFAULT_BYPASS_SPEED_MPS",
           "STATUS_NAMES"]

logger = logging.getLogger(__name__)


def simulate_traffic(city: City, trips, *, until_s, seed=0, dt_s=1.0, interval_s=300.0, stuck_time_s=300.0,
                     stop_when_done=True, events=None, signals=None, reroute_share=0.0, reroute_interval_s=300.0,
                     emergency_priority=True, bypass_speed_mps=DEFAULT_BYPASS_SPEED_MPS,
                     progress=None) -> TrafficResult:
    """Simulate trips through the city's road network (mesoscopic, per vehicle).

    Parameters
    ----------
    city : City
    trips : pandas.DataFrame or dict of array-like
        Columns ``origin``, ``destination`` (external node ids), ``depart_s`` (seconds),
        and optionally ``vehicle_class`` (``"car"``/``"emergency"`` or 0/1; see
        :func:`read_vehicle_class`).
    until_s : float
        Simulated horizon in seconds; trips unfinished by then are reported ``en_route``
        or ``waiting``.
    seed : int
        Seeds the node-model draws (capacity-weighted in-link order at merges) and the
        choice of which vehicles re-route.
    dt_s, interval_s, stuck_time_s, stop_when_done
        See :class:`TrafficParams`.
    events : table, optional
        Network events (see :func:`read_events`): link closures, reopenings and capacity
        changes at given times. Vehicles whose remaining route crosses a closed link are
        re-routed at the closure (and new departures route around it).
    signals : twin.signals.SignalPlan or twin.signals.MaxPressurePlan, optional
        Fixed-time signal plans per in-link, or max-pressure control (see
        :func:`twin.signals.signal_plan`).
    reroute_share : float
        Share (0..1) of the vehicles on the road that reconsider their route every
        ``reroute_interval_s`` on the current link travel times, switching when the new
        route is faster (en-route re-routing, as SUMO's rerouting device). Emergency
        vehicles always reconsider, every ``reroute_interval_s``, whatever the share.
    reroute_interval_s : float
        Period of that re-routing, seconds.
    emergency_priority : bool
        Emergency vehicles (``vehicle_class`` 1) pass queues and red signals (default
        True; the rule is in :mod:`twin.kernels.traffic`). False: they drive as cars.
    bypass_speed_mps : float
        Speed at which they pass a queue, m/s (> 0; default 5).
    progress : callable(done_s, total_s), optional
        Called after each block of simulated time.

    Returns
    -------
    TrafficResult

    Raises
    ------
    DemandError
        Malformed trips, events or parameters (see :func:`read_trips`, :func:`read_events`).
    UnknownNodeError
        A trip names a node the city does not have.

    Notes
    -----
    Unreachable destinations are not an error: such trips get status ``unroutable``
    and never depart; their count is in ``kpis["unroutable"]``.

    Examples
    --------
    >>> import twin
    >>> city = twin.load_city("grid:4x4")
    >>> res = twin.simulate_traffic(city, {"origin": [1], "destination": [16], "depart_s": [0.0]}, until_s=3600)
    >>> res.trips.loc[0, "status"], bool(res.trips.loc[0, "travel_time_s"] == res.trips.loc[0, "free_flow_time_s"])
    ('arrived', True)
    """
    engine = TrafficEngine(city, trips, until_s=until_s, seed=seed, dt_s=dt_s, interval_s=interval_s,
                           stuck_time_s=stuck_time_s, stop_when_done=stop_when_done, events=events, signals=signals,
                           reroute_share=reroute_share, reroute_interval_s=reroute_interval_s,
                           emergency_priority=emergency_priority, bypass_speed_mps=bypass_speed_mps)
    engine.run(progress=progress)
    return engine.result()
