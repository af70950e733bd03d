"""Run a scenario file: emergency response on a city, optionally coupled with traffic.

A scenario is a TOML file (``tomllib``) whose tables map to the frozen groups below
(units in the field names, a description in each field's metadata)::

    [city]        name = "hefei-baohe"          embedded city, network file or "grid:6x6"
    [run]         until_s, seed, drain
    [kpi]         warmup_s, response_target_s = [P1, P2, P3], central_zones
    [calls]       locations = "nodes" | "centroid"; rate_per_h (total or per zone) or
                  population (per zone) with rate_per_1000_per_day; hourly_profile (24);
                  district_profiles (zone id -> 24)
    [[call_types]] name, priority, share, on_scene, transport_probability, requires, fallback,
                  rate_per_h (zone id -> calls/h), district_multiplier (zone id -> factor)
    [[stations]]  name, node, ambulances, als, bls, fire, police, busy_time
    [[hospitals]] name, node, beds, length_of_stay, mode, walk_in_rate_per_h; patient flow (optional):
                  ward_beds, ward_los, icu_beds, icu_los, ward_probability, icu_probability,
                  boarding, diversion, diversion_threshold, transfer, transfer_by_ambulance
    [dispatch]    policy, processing, max_queue, relocation, compliance_rate
    [service]     mode, turnout, handover, return_mode, busy_time, emergency_speed_factor
    [traffic]     random_trips, trips, window_start_s, window_s, until_s, dt_s, sync_s,
                  reroute_share, reroute_interval_s, signals, signal_cycle_s,
                  crash_call_type, crash_rate_per_million_veh_km   (optional)
    [population]  persons, seed, calls_from_presence, traffic_from_cars   (optional)
    [[incidents]] name, node, time_s, patients, triage, call_type, transport_probability (optional)

Durations are seconds: a number (constant) or a table ``{kind = "lognormal", mean_s = 900,
cv = 0.5}``, or an empirical table ``{kind = "empirical", values_s = [3600, 7200, 86400],
weights = [5, 3, 1]}`` (discrete, no interpolation; see :class:`twin.emergency.Dist`). Zone ids are the city's district ids
(``City.zone_ids``; TOML keys are strings, matched against ``str(zone_id)``). Node ids are
the city's external node ids. :func:`scenario_fields` lists every key with its description.

Mapping onto :class:`~twin.emergency.EmsSpec`
---------------------------------------------
*Locations* are city nodes: stations first, then hospitals, then call locations, each node
once. The static travel-time matrix is the least free-flow time between them divided by
``service.emergency_speed_factor`` per link. *Call locations*: with ``locations = "nodes"``
(default) a district's calls are spread over all of its nodes with equal weight (one EMS
zone per node, rate = district rate / number of nodes); with ``"centroid"`` they all come
from one node per district, the node nearest the mean coordinate of the district's nodes
(its lowest-index node when the city has no coordinates). A city without districts is one
district, ``"city"``. A district rate is ``rate_per_h`` (a table by zone id, or one total
split in proportion to the districts' node counts) or ``population / 1000 ×
rate_per_1000_per_day / 24`` per hour; districts without an entry get no calls. Every
district rate is multiplied by ``hourly_profile[h]`` in hour ``h`` of the day (so a profile
averaging 1 keeps the daily total), or by its own ``district_profiles[d][h]``. A call type
takes ``share`` of a district's rate, times its ``district_multiplier[d]`` (default 1), unless
it gives its own ``rate_per_h`` (zone id -> calls/hour, times the district's profile). Any of
these, or calls from presence, builds the per-(hour, zone, type) table
``EmsSpec.rate_table_per_h`` (each cell its own Poisson process); otherwise the spec keeps the
product form and its random draws.

*Move-up.* ``[dispatch] relocation = [{kinds = ["als", "bls"], table = [["central"],
["central", "north"], ...]}]`` is a compliance table by station name: row ``n - 1`` lists
the stations ``n`` available units should occupy (see :class:`twin.emergency.RelocationSpec`:
least-total-travel-time assignment on the current times, moves obeyed with probability
``compliance_rate``, a moving unit is available for dispatch). Each station's ``ambulances`` become ALS units
``<station>-1``, ``<station>-2`` ... and its ``als``, ``bls``, ``fire`` and ``police``
counts units ``<station>-<kind>-1`` ... of those kinds (a station with no count at all has
one ambulance). A call type's ``requires = {fire = 2, als = 1}`` names the units it needs
and ``fallback = {als = "bls"}`` the substitutes (defaults: one ALS, ``als -> bls``; see
:class:`twin.emergency.CallTypeSpec`). A call type that the stations' units cannot serve
is an error at load time.

Traffic coupling (fidelity)
---------------------------
With a ``[traffic]`` table that has demand (``random_trips > 0`` or a ``trips`` CSV), the
runner builds a :class:`~twin.traffic.TrafficEngine` on the same city and advances it in
lockstep with the SimPy clock: a process at SimPy's ``URGENT`` priority calls
``engine.run_until(env.now)`` every ``sync_s`` seconds (default 60) up to the traffic
horizon (``traffic.until_s``, default ``run.until_s``); link times stay as last seen after
it.

*Units as vehicles* (``ambulances_in_traffic = true``, the default). Every leg a unit drives
(to the scene, scene to hospital, between hospitals, back to its station or to a move-up
post) is a vehicle inserted into the engine at the leg's start
(:meth:`~twin.traffic.TrafficEngine.insert_vehicle`, routed on the current link times) and
the leg lasts until that vehicle arrives in the traffic model
(:meth:`~twin.traffic.TrafficEngine.arrival_event`, which fires at the simulated arrival
time itself). Units thus add load, queue, and are re-timed by congestion met on the way.
Lights and sirens: response legs to calls of priority ``<= lights_and_sirens_priority``
(default 2) and transports of priority-1 patients are emergency vehicles; with
``emergency_priority`` (default true) they pass queues at ``bypass_speed_mps`` and red
signals (the kernel's priority rule, :mod:`twin.kernels.traffic`) and re-route on live times
every re-routing period. Dispatch and hospital choices use the engine's emergency link
times (``link_travel_times_s(emergency=True)``) as estimates. Limits: a unit redirected
while returning leaves its vehicle to finish the old leg (one extra car), and starts the
new leg from where the old one started; legs starting after the traffic horizon, or not
finished by it, take the last link times. ``[service] emergency_speed_factor`` and
``queue_delay_share`` must stay 1 here (they belong to the next mode).

*Legs timed at their start* (``ambulances_in_traffic = false``). Whenever a unit starts a
leg, and when the nearest-idle policy compares units, the travel time is the least-cost
path on the *current* link costs ``free_flow_time_s / emergency_speed_factor +
service.queue_delay_share × queue delay`` (the delay is ``TrafficEngine.link_travel_times_s()
- free_flow_time_s``: vehicles already queued at the link's end over its capacity). The leg
then lasts that long: the ambulance adds no load and is not re-timed when congestion changes
mid-leg; priority is the share of the queue delay it keeps (1 none, 0 full bypass and
preemption).

The hospital a call goes to is fixed on static times, unless a hospital has ``diversion =
true``: then it is chosen when the transport leaves the scene, on the current times,
skipping hospitals on diversion. Without ``[traffic]`` (or with no demand) times are the static matrix.

*Traffic crashes.* With ``crash_call_type`` naming a call type (usually of ``share = 0``),
crash calls arise from the coupled traffic's exposure: at every sync, each EMS zone gets
``Poisson(crash_rate_per_million_veh_km × vehicle-km driven on its links since the last
sync / 1e6)`` calls in the next sync period (:class:`CrashCalls`; a link belongs to its
tail node's zone, and with crash calls every district with nodes has zones). The default
rate, :data:`CRASH_RATE_PER_MILLION_VEH_KM` = 0.37, is the US injury-crash rate (NHTSA,
Traffic Safety Facts 2019). Its random draws come from the ``crashes`` stream.

Synthetic population (fidelity)
-------------------------------
An optional ``[population]`` table synthesises ``persons`` people and their day
(:func:`twin.agents.population.synthesize_population`, seed ``[population] seed`` or, when
omitted, the ``population`` stream of the run seed, so ``--seed`` changes the population too).

* ``calls_from_presence = true`` (default): call rates follow the people *present* in each
  district hour by hour (``Population.present_by_zone`` at 00:00, 01:00 ... 23:00; the run's
  hour 0 is taken as midnight) times ``[calls] rate_per_1000_per_day`` (required; ``[calls]
  rate_per_h`` and ``population`` must then be absent): in hour ``h`` district ``d`` gets
  ``r / 1000 / 24 × P[h, d] × w[h]`` calls per hour, ``w`` the ``hourly_profile`` (or the
  district's ``district_profiles`` entry), so the shift within the day between districts
  (business districts by day, residential ones at night) is kept; the zones'
  ``arrival_rate_per_h`` is then the daily mean (descriptive).
* ``traffic_from_cars = true`` (default): when ``[traffic]`` has no demand (no
  ``random_trips``, no ``trips``; the table may be absent, its other keys then take their
  defaults) the background traffic is the population's car legs
  (``Population.vehicle_trips()``), less the few whose origin and destination are the same
  node (the traffic model rejects them). The traffic horizon is then ``traffic.until_s`` or,
  by default, ``max(run.until_s, 86400)`` so the whole day of car legs is simulated.
* The results file gets the population (``Population.write``: ``/events/population_*``,
  ``/timeseries/population_present``, ``/summary/population_*``) and ``twin run`` prints a
  population line.

*Scripted incidents.* Each ``[[incidents]]`` table is a mass-casualty incident
(:class:`twin.emergency.IncidentSpec`)::

    [[incidents]]
    name = "bus crash"
    node = 123                     # city node id
    time_s = 30600                 # 08:30
    patients = 25
    triage = { "1" = 0.2, "2" = 0.3, "3" = 0.5 }    # or [0.2, 0.3, 0.5]; omitted: the call type's priority
    call_type = "trauma"           # optional: the first call type
    transport_probability = 1.0    # optional: every patient is transported

At ``time_s`` its ``patients`` calls (one per patient, priorities drawn from ``triage``)
reach the dispatch centre from ``node``; each takes the call type's units and on-scene
time. Their draws come from the ``incidents`` stream (the last of :data:`RUN_STREAMS`).
The patients are left out of the routine call KPIs; ``twin run`` prints one line per
incident and the results file gets ``/events/ems_incidents``.

Randomness: the run seed spawns the EMS streams :data:`twin.emergency.STREAMS` and three more,
``traffic_demand`` (random trips), ``traffic`` (engine), ``population`` (synthesis),
``crashes`` and ``incidents``, all from ``numpy.random.SeedSequence(seed)`` in that order, so a run with and without traffic
sees the same calls and per-call dice (common random numbers), and adding the population
stream changed no earlier stream.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import numbers
import sys
import time
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

import numpy as np

from twin.emergency import (AMBULANCE_KINDS, RUN_STREAMS, CallTypeSpec, DispatchSpec, Dist, EmsLayout, EmsResult,
                            EmsSpec, HospitalSpec, IncidentSpec, RelocationSpec, ServiceSpec, STREAMS, UNIT_KINDS,
                            UnitSpec, ZoneSpec, travel_time_matrix)
from twin.errors import DemandError, ScenarioError, TwinError

__all__ = [
    "run",
    "load_scenario",
    "Scenario",
    "RunResult",
    "TrafficTravelTimes",
    "CrashCalls",
    "CRASH_RATE_PER_MILLION_VEH_KM",
    "link_zone_index",
    "builtin_scenarios",
    "scenario_fields",
    "apply_overrides",
    "dump_toml",
    "write_run",
    "format_kpis",
    "add_run_parser",
    "run_main",
]

logger = logging.getLogger(__name__)

# Streams spawned from the run seed, in order (twin.emergency.RUN_STREAMS): the EMS ones, then
# traffic demand and engine, the synthetic population, traffic-crash calls, then scripted
# incidents (each added last, so the earlier streams are unchanged).

#: Default injury-crash rate per million vehicle-km: NHTSA, *Traffic Safety Facts 2019*
#: (DOT HS 813 141, 2021), 1,916,000 police-reported injury crashes over 3,262 billion
#: vehicle-miles travelled in the USA, i.e. 59 per 100 million vehicle-miles = 0.59 per
#: million vehicle-miles = 0.37 per million vehicle-km. An order of magnitude, not a local
#: calibration: override it with ``[traffic] crash_rate_per_million_veh_km``.
CRASH_RATE_PER_MILLION_VEH_KM = 0.37


# --------------------------------------------------------------------------------------
# scenario groups

def _f(default, kind, description, **opts):
    return field(default=default, metadata={"kind": kind, "description": description, **opts})


_DIST = "a number of seconds or a table {kind, mean_s, cv} or {kind = 'empirical', values_s, weights}"


@dataclass(frozen=True)
class CityGroup:
    """``[city]``: the road network."""

    name: str = _f("hefei-baohe", "str", "embedded city name, network file (relative to the scenario file) "
                                         "or synthetic spec such as 'grid:6x6'")


@dataclass(frozen=True)
class RunGroup:
    """``[run]``: horizon and seed."""

    until_s: float = _f(86400.0, "float", "calls arrive on [0, until_s), seconds", minimum=0.0, strict=True)
    seed: int = _f(0, "int", "run seed (>= 0); twin run --seed overrides it", minimum=0)
    drain: bool = _f(True, "bool", "keep running after until_s until every call has ended")
    description: str = _f("", "str", "free text shown by twin run")


@dataclass(frozen=True)
class KpiGroup:
    """``[kpi]``: how KPIs are computed."""

    warmup_s: float = _f(0.0, "float", "KPIs cover calls received in [warmup_s, until_s), seconds", minimum=0.0)
    response_target_s: tuple = _f((480.0,), "floats", "response-time targets of priorities 1, 2, 3 (seconds; "
                                                      "a shorter list leaves the rest without a target)",
                                  min_len=0, max_len=3, minimum=0.0, strict=True)
    central_zones: tuple | None = _f(None, "ids", "zone ids counted as central for the equity gap (default: the "
                                                  "city's meta['central_zone_ids'])")


@dataclass(frozen=True)
class CallsGroup:
    """``[calls]``: where and how often calls arise."""

    locations: str = _f("nodes", "choice", "'nodes': a district's calls spread equally over its nodes; "
                                           "'centroid': from the node nearest its mean coordinate",
                        choices=("nodes", "centroid"))
    rate_per_h: object = _f(None, "rates", "calls/hour: one total (split by district node counts) or a table "
                                           "zone id -> calls/hour")
    population: dict | None = _f(None, "table", "zone id -> residents (with rate_per_1000_per_day)")
    rate_per_1000_per_day: float | None = _f(None, "float", "calls per 1,000 residents per day", minimum=0.0)
    hourly_profile: tuple = _f((1.0,) * 24, "floats", "24 multipliers of the rates, hour 0 = first hour of the run",
                               min_len=24, max_len=24, minimum=0.0)
    district_profiles: dict | None = _f(None, "profiles", "zone id -> 24 multipliers: that district's own hourly "
                                                          "profile instead of hourly_profile")


@dataclass(frozen=True)
class CallTypeGroup:
    """``[[call_types]]``: one call type (see :class:`twin.emergency.CallTypeSpec`)."""

    name: str = _f("", "str", "call type name")
    priority: int = _f(1, "int", "1 (most urgent) to 3", minimum=1, maximum=3)
    share: float = _f(1.0, "float", "fraction of calls of this type (shares sum to 1)", minimum=0.0)
    on_scene: Dist = _f(Dist("constant", 0.0, 0.0), "dist", f"time on scene: {_DIST}")
    transport_probability: float = _f(0.0, "float", "probability of transport to hospital", minimum=0.0,
                                      maximum=1.0)
    requires: dict | None = _f(None, "counts", "units needed, kind -> count, kinds in als, bls, fire, police "
                                               "(default {als = 1})", choices=UNIT_KINDS)
    fallback: dict | None = _f(None, "kinds", "substitute kinds, kind -> kind (default {als = 'bls'})",
                               choices=UNIT_KINDS)
    rate_per_h: dict | None = _f(None, "table", "zone id -> calls/hour of this type (its own rates, times the "
                                                "district's hourly profile) instead of share x the district rate")
    district_multiplier: dict | None = _f(None, "table", "zone id -> multiplier of this type's rate in that "
                                                         "district (default 1)")


@dataclass(frozen=True)
class StationGroup:
    """``[[stations]]``: a station of ambulances, fire engines and police cars."""

    name: str = _f("", "str", "station name (units are <name>-1, <name>-2 ... and <name>-<kind>-1 ...)")
    node: object = _f(None, "node", "city node id of the station")
    ambulances: int | None = _f(None, "int", "ALS ambulances based here (default 1 when no kind count is given)",
                                minimum=0)
    als: int = _f(0, "int", "advanced-life-support ambulances based here", minimum=0)
    bls: int = _f(0, "int", "basic-life-support ambulances based here", minimum=0)
    fire: int = _f(0, "int", "fire engines based here", minimum=0)
    police: int = _f(0, "int", "police cars based here", minimum=0)
    busy_time: Dist | None = _f(None, "dist", f"busy time in service.mode = 'busy_time': {_DIST}")


@dataclass(frozen=True)
class HospitalGroup:
    """``[[hospitals]]``: a hospital (one ward of beds, see :class:`twin.emergency.HospitalSpec`)."""

    name: str = _f("", "str", "hospital name")
    node: object = _f(None, "node", "city node id of the hospital")
    beds: int = _f(1, "int", "beds", minimum=0)
    length_of_stay: Dist = _f(Dist("exponential", 86400.0), "dist", f"bed occupancy per patient: {_DIST}")
    mode: str = _f("loss", "choice", "'loss': a patient finding no bed is turned away; 'queue': waits",
                   choices=("loss", "queue"))
    walk_in_rate_per_h: float = _f(0.0, "float", "admissions not by ambulance, patients/hour", minimum=0.0)
    ward_beds: int | None = _f(None, "int", "inpatient ward beds after the ED stay (omit: no ward pool; then beds "
                                             "is the emergency department)", minimum=0)
    ward_los: Dist = _f(Dist("exponential", 4 * 86400.0), "dist", f"ward bed occupancy per patient: {_DIST}")
    icu_beds: int | None = _f(None, "int", "ICU beds after the ED stay (omit: no ICU pool)", minimum=0)
    icu_los: Dist = _f(Dist("exponential", 3 * 86400.0), "dist", f"ICU bed occupancy per patient: {_DIST}")
    ward_probability: tuple = _f((0.0, 0.0, 0.0), "floats", "probability an ED patient of priority P1, P2, P3 "
                                                            "needs a ward bed (walk-ins count as P3)",
                                 min_len=3, max_len=3, minimum=0.0, maximum=1.0)
    icu_probability: tuple = _f((0.0, 0.0, 0.0), "floats", "probability an ED patient of priority P1, P2, P3 "
                                                           "needs an ICU bed", min_len=3, max_len=3, minimum=0.0,
                                maximum=1.0)
    boarding: bool = _f(True, "bool", "true: a patient finding the ward/ICU full boards in the ED (keeps the ED "
                                      "bed) until one frees; false: blocked (loss)")
    diversion: bool = _f(False, "bool", "go on diversion while the ED (or ICU) is full: ambulances take the "
                                        "nearest hospital not on diversion")
    diversion_threshold: float = _f(1.0, "float", "occupied share of ED (or ICU) beds that starts diversion",
                                    minimum=0.0, strict=True, maximum=1.0)
    transfer: bool = _f(False, "bool", "ICU patients finding no free ICU bed here go at once to the nearest "
                                       "hospital with one (no ambulance, no travel time)")
    transfer_by_ambulance: bool = _f(False, "bool", "with transfer: the transfer is an ambulance request of "
                                                    "priority 3 (hospital to hospital); the patient boards until "
                                                    "picked up")


@dataclass(frozen=True)
class DispatchGroup:
    """``[dispatch]``: the dispatch centre."""

    policy: str = _f("nearest", "choice", "'nearest': the idle unit with the least travel time now",
                     choices=("nearest",))
    processing: Dist = _f(Dist("constant", 0.0, 0.0), "dist", f"call processing time: {_DIST}")
    max_queue: int | None = _f(None, "int", "calls that may wait for a unit (omit for unlimited; 0 = loss "
                                            "system)", minimum=0)
    relocation: tuple | None = _f(None, "relocation", "move-up compliance tables: a list of {kinds = [...], table "
                                                      "= [[stations for 1 free unit], [... for 2], ...]} (station "
                                                      "names; kinds default ['als', 'bls'])")
    compliance_rate: float = _f(1.0, "float", "probability a move-up order is obeyed", minimum=0.0, maximum=1.0)


@dataclass(frozen=True)
class ServiceGroup:
    """``[service]``: how units spend their busy time (see :class:`twin.emergency.ServiceSpec`)."""

    mode: str = _f("path", "choice", "'path': turnout, travel, scene, transport, handover, return; "
                                     "'busy_time': one draw of busy_time", choices=("path", "busy_time"))
    turnout: Dist = _f(Dist("constant", 60.0, 0.0), "dist", f"dispatch to wheels rolling: {_DIST}")
    handover: Dist = _f(Dist("constant", 900.0, 0.0), "dist", f"patient handover at hospital: {_DIST}")
    return_mode: str = _f("drive", "choice", "'drive' back to the station or 'instant'",
                          choices=("drive", "instant"))
    busy_time: Dist = _f(Dist("exponential", 3600.0), "dist", f"busy period in busy_time mode: {_DIST}")
    emergency_speed_factor: float = _f(1.0, "float", "ambulance speed / link free-flow speed (queue delays are "
                                                     "not scaled)", minimum=0.0, strict=True)
    queue_delay_share: float = _f(1.0, "float", "share of a link's live queue delay an ambulance suffers: 1 = "
                                                "stuck like everyone, 0 = full priority (queue bypass and signal "
                                                "preemption, the 'green wave')", minimum=0.0)


@dataclass(frozen=True)
class TrafficGroup:
    """``[traffic]``: background traffic coupled to the EMS clock (optional table)."""

    random_trips: int = _f(0, "int", "uniform random OD trips (twin.cli.random_trips)", minimum=0)
    trips: str = _f("", "str", "CSV of trips (origin, destination, depart_s), relative to the scenario file")
    window_start_s: float = _f(0.0, "float", "start of the random trips' departure window, seconds", minimum=0.0)
    window_s: float = _f(3600.0, "float", "length of the departure window, seconds", minimum=0.0, strict=True)
    until_s: float | None = _f(None, "float", "traffic horizon, seconds (default run.until_s)", minimum=0.0,
                               strict=True)
    dt_s: float = _f(1.0, "float", "traffic tick, seconds", minimum=0.0, strict=True)
    sync_s: float = _f(60.0, "float", "the EMS reads link times this often, seconds", minimum=0.0, strict=True)
    reroute_share: float = _f(0.0, "float", "share of vehicles re-routing en route", minimum=0.0, maximum=1.0)
    reroute_interval_s: float = _f(300.0, "float", "re-routing period, seconds", minimum=0.0, strict=True)
    signals: bool = _f(False, "bool", "signals at every node with 3+ in-links (control: signal_control)")
    signal_control: str = _f("fixed-time", "choice", "with signals = true: 'fixed-time' (Webster splits) or "
                                                     "'max-pressure' (Varaiya 2013)",
                             choices=("fixed-time", "max-pressure"))
    signal_cycle_s: float = _f(90.0, "float", "fixed-time signal cycle, seconds", minimum=0.0, strict=True)
    min_green_s: float = _f(15.0, "float", "max-pressure decision period, seconds", minimum=0.0, strict=True)
    ambulances_in_traffic: bool = _f(True, "bool", "units drive as vehicles of the traffic model (else each leg "
                                                   "is timed on the live link times at its start)")
    emergency_priority: bool = _f(True, "bool", "lights-and-sirens legs pass queues and red signals "
                                                "(ambulances_in_traffic)")
    bypass_speed_mps: float = _f(5.0, "float", "speed of an emergency vehicle past a queue, m/s", minimum=0.0,
                                 strict=True)
    lights_and_sirens_priority: int = _f(2, "int", "response legs to calls of this priority or more urgent (1 = "
                                                   "most) use lights and sirens; transports only for priority 1",
                                         minimum=0)
    crash_call_type: str = _f("", "str", "call type of traffic crashes arising from the coupled traffic's "
                                         "exposure (empty: none)")
    crash_rate_per_million_veh_km: float = _f(CRASH_RATE_PER_MILLION_VEH_KM, "float",
                                              "crash calls per million vehicle-km driven (default: US injury "
                                              "crashes, NHTSA 2019)", minimum=0.0)


@dataclass(frozen=True)
class PopulationGroup:
    """``[population]``: a synthetic population feeding calls and traffic (optional table)."""

    persons: int | None = _f(None, "int", "persons to synthesise (twin.agents.population.synthesize_population)",
                             minimum=1)
    seed: int | None = _f(None, "int", "population seed (default: the 'population' stream of the run seed)",
                          minimum=0)
    calls_from_presence: bool = _f(True, "bool", "call rates from the persons present in each district "
                                                 "(needs [calls] rate_per_1000_per_day)")
    traffic_from_cars: bool = _f(True, "bool", "background traffic = the population's car legs when [traffic] "
                                               "has no random_trips or trips")


@dataclass(frozen=True)
class IncidentGroup:
    """``[[incidents]]``: a scripted mass-casualty incident (see :class:`twin.emergency.IncidentSpec`)."""

    name: str = _f("", "str", "incident name")
    node: object = _f(None, "node", "city node id where it happens")
    time_s: float = _f(0.0, "float", "when the patients' calls arrive, seconds from the start (< run.until_s)",
                       minimum=0.0)
    patients: int = _f(1, "int", "number of patients, one call each", minimum=1)
    triage: tuple | None = _f(None, "triage", "shares of priorities 1, 2, 3 among the patients, summing to 1: "
                                              "{\"1\" = 0.2, \"2\" = 0.3, \"3\" = 0.5} or [0.2, 0.3, 0.5] "
                                              "(omit: the call type's priority)")
    call_type: str = _f("", "str", "call type whose units and on-scene time the patients take (default: the "
                                   "first call type)")
    transport_probability: float = _f(1.0, "float", "probability a patient is taken to hospital (default 1: "
                                                    "all)", minimum=0.0, maximum=1.0)


#: Top-level tables: name -> (group class, is an array of tables).
GROUPS = {
    "city": (CityGroup, False), "run": (RunGroup, False), "kpi": (KpiGroup, False), "calls": (CallsGroup, False),
    "call_types": (CallTypeGroup, True), "stations": (StationGroup, True), "hospitals": (HospitalGroup, True),
    "dispatch": (DispatchGroup, False), "service": (ServiceGroup, False), "traffic": (TrafficGroup, False),
    "population": (PopulationGroup, False), "incidents": (IncidentGroup, True),
}


def scenario_fields() -> dict:
    """Every scenario key, ``"table.key" -> description`` (for docs and ``twin run --keys``)."""
    return {f"{t}.{f.name}": f.metadata["description"] for t, (cls, _) in GROUPS.items() for f in fields(cls)}


# --------------------------------------------------------------------------------------
# parsing and validation

def _did_you_mean(key, accepted):
    close = difflib.get_close_matches(str(key), list(accepted), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _bound_text(meta):
    lo, hi, strict = meta.get("minimum"), meta.get("maximum"), meta.get("strict", False)
    parts = []
    if lo is not None:
        parts.append(f"{'>' if strict else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"<= {hi:g}")
    return " and ".join(parts)


def _in_bounds(v, meta):
    lo, hi, strict = meta.get("minimum"), meta.get("maximum"), meta.get("strict", False)
    if lo is not None and (v < lo or (strict and v == lo)):
        return False
    return hi is None or v <= hi


def _convert(value, meta, where):
    """Check one value against its field's kind; returns the converted value."""
    kind = meta["kind"]

    def bad(expected):
        raise ScenarioError(f"{where} = {value!r}; expected {expected}")

    if kind == "str":
        return value if isinstance(value, str) else bad("a string")
    if kind == "bool":
        return value if isinstance(value, bool) else bad("true or false")
    if kind == "choice":
        return value if value in meta["choices"] else bad("one of " + ", ".join(repr(c) for c in meta["choices"]))
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not _in_bounds(value, meta):
            bad(f"an integer {_bound_text(meta)}")
        return int(value)
    if kind == "float":
        if not _is_number(value) or not math.isfinite(value) or not _in_bounds(value, meta):
            bad(f"a finite number {_bound_text(meta)}")
        return float(value)
    if kind == "floats":
        lo_n, hi_n = meta.get("min_len", 0), meta.get("max_len")
        n_text = f"{lo_n}" if lo_n == hi_n else f"{lo_n} to {hi_n}"
        if not isinstance(value, (list, tuple)) or not (lo_n <= len(value) <= (hi_n or len(value))):
            bad(f"a list of {n_text} numbers {_bound_text(meta)}")
        for v in value:
            if not _is_number(v) or not math.isfinite(v) or not _in_bounds(v, meta):
                bad(f"a list of {n_text} numbers {_bound_text(meta)} (found {v!r})")
        return tuple(float(v) for v in value)
    if kind == "dist":
        try:
            return Dist.parse(value, where)
        except ScenarioError as exc:
            if "expected one of" in str(exc):
                raise
            raise ScenarioError(f"{exc}; accepted: {_DIST}") from None
    if kind == "node":
        return value if (isinstance(value, str) or (isinstance(value, numbers.Integral)
                                                    and not isinstance(value, bool))) else bad("a node id")
    if kind == "ids":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, numbers.Integral)) for v in value):
            bad("a list of zone ids")
        return tuple(value)
    if kind in ("counts", "kinds"):
        accepted = ", ".join(repr(c) for c in meta["choices"])
        if not isinstance(value, dict) or not value:
            bad(f"a table kind -> {'count' if kind == 'counts' else 'kind'} with kinds in {accepted}")
        for k, v in value.items():
            if k not in meta["choices"]:
                raise ScenarioError(f"{where}: unknown unit kind {k!r}; expected one of {accepted}")
            if kind == "counts" and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0):
                raise ScenarioError(f"{where}.{k} = {v!r}; expected an integer >= 0")
            if kind == "kinds" and v not in meta["choices"]:
                raise ScenarioError(f"{where}.{k} = {v!r}; unknown unit kind, expected one of {accepted}")
        return {k: (int(v) if kind == "counts" else v) for k, v in value.items()}
    if kind == "triage":
        expected = 'shares of priorities 1, 2, 3: a table {"1" = ..., "2" = ..., "3" = ...} or a list of 3'
        if isinstance(value, dict):
            keys = {str(k).upper().removeprefix("P"): v for k, v in value.items()}
            for k in keys:
                if k not in ("1", "2", "3"):
                    raise ScenarioError(f"{where}: unknown priority {k!r}; expected {expected}")
            value = [keys.get(str(p), 0.0) for p in (1, 2, 3)]
        if not isinstance(value, (list, tuple)) or len(value) != 3:
            bad(expected)
        for v in value:
            if not _is_number(v) or not math.isfinite(v) or v < 0:
                bad(f"{expected}, each a number >= 0 (found {v!r})")
        return tuple(float(v) for v in value)
    if kind == "profiles":
        if not isinstance(value, dict):
            bad("a table zone id -> list of 24 multipliers >= 0")
        out = {}
        for k, v in value.items():
            if (not isinstance(v, (list, tuple)) or len(v) != 24
                    or not all(_is_number(x) and math.isfinite(x) and x >= 0 for x in v)):
                raise ScenarioError(f"{where}.{k} = {v!r}; expected a list of 24 multipliers >= 0")
            out[str(k)] = tuple(float(x) for x in v)
        return out
    if kind == "relocation":
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            bad("a list of tables {kinds = [...], table = [[station names], ...]}")
        out = []
        for i, r in enumerate(value):
            at = f"{where}[{i}]"
            if not isinstance(r, dict):
                raise ScenarioError(f"{at} = {r!r}; expected a table {{kinds = [...], table = [[...], ...]}}")
            for key in r:
                if key not in ("kinds", "table"):
                    raise ScenarioError(f"unknown key '{key}' in {at}; accepted keys: kinds, table")
            kinds = r.get("kinds", list(AMBULANCE_KINDS))
            if isinstance(kinds, str):
                kinds = [kinds]
            if not isinstance(kinds, (list, tuple)) or not kinds or any(k not in UNIT_KINDS for k in kinds):
                raise ScenarioError(f"{at}.kinds = {kinds!r}; expected a list of unit kinds in "
                                    f"{', '.join(repr(k) for k in UNIT_KINDS)}")
            table = r.get("table")
            if (not isinstance(table, (list, tuple)) or not table
                    or not all(isinstance(row, (list, tuple)) and all(isinstance(x, str) for x in row)
                               for row in table)):
                raise ScenarioError(f"{at}.table = {table!r}; expected a list of rows, row n-1 the station names "
                                    f"n available units should occupy")
            out.append({"kinds": tuple(kinds), "table": tuple(tuple(row) for row in table)})
        return tuple(out)
    if kind in ("table", "rates"):
        if kind == "rates" and _is_number(value):
            if not math.isfinite(value) or value < 0:
                bad("a number >= 0 or a table zone id -> number >= 0")
            return float(value)
        if not isinstance(value, dict):
            bad("a table zone id -> number >= 0" + (" or one number >= 0" if kind == "rates" else ""))
        out = {}
        for k, v in value.items():
            if not _is_number(v) or not math.isfinite(v) or v < 0:
                raise ScenarioError(f"{where}.{k} = {v!r}; expected a number >= 0")
            out[str(k)] = float(v)
        return out
    raise AssertionError(kind)  # pragma: no cover


def _parse_group(cls, data, where):
    """Build a group from a table: unknown keys are errors (with a suggestion)."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: found {type(data).__name__} {data!r}; expected a table")
    names = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ScenarioError(f"unknown key '{key}' in {where}; {_did_you_mean(key, names)}"
                                f"accepted keys: {', '.join(names)}")
        kwargs[key] = _convert(value, names[key].metadata, f"{where} {key}")
    return cls(**kwargs)


def _where(source, table, index=None, name=None):
    label = f"[{table}]" if index is None else f"[{table}.{index}]" + (f" ('{name}')" if name else "")
    return f"{source}: {label}"


def parse_groups(data: dict, source: str) -> dict:
    """Validate a scenario dict into its groups: table name -> group (list for arrays)."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a TOML document of tables; found {type(data).__name__}")
    for key in data:
        if key not in GROUPS:
            raise ScenarioError(f"unknown table '{key}' in {source}; {_did_you_mean(key, GROUPS)}"
                                f"accepted tables: {', '.join(GROUPS)}")
    out = {}
    for table, (cls, is_array) in GROUPS.items():
        if not is_array:
            if table in ("traffic", "population") and table not in data:
                out[table] = None
                continue
            out[table] = _parse_group(cls, data.get(table, {}), _where(source, table))
            continue
        items = data.get(table, [])
        if isinstance(items, dict) or not isinstance(items, list):
            raise ScenarioError(f"{_where(source, table)}: expected an array of tables [[{table}]]")
        groups = []
        for i, item in enumerate(items):
            name = item.get("name") if isinstance(item, dict) else None
            g = _parse_group(cls, item, _where(source, table, i, name))
            if not g.name:
                g = dataclasses.replace(g, name=f"{table.rstrip('s')}{i}")
            groups.append(g)
        out[table] = groups
    for table in ("stations", "hospitals", "incidents"):
        for i, g in enumerate(out[table]):
            if g.node is None:
                raise ScenarioError(f"{_where(source, table, i, g.name)}: missing 'node' (the city node id)")
    if not out["call_types"]:
        out["call_types"] = [CallTypeGroup(name="emergency")]
    calls = out["calls"]
    by_rate, by_pop = calls.rate_per_h is not None, calls.population is not None
    pg = out["population"]
    if pg is not None and pg.persons is None:
        raise ScenarioError(f"{_where(source, 'population')}: missing 'persons' (the number of persons to "
                            f"synthesise, an integer >= 1)")
    if pg is not None and pg.calls_from_presence:
        if calls.rate_per_1000_per_day is None:
            raise ScenarioError(f"{_where(source, 'population')} calls_from_presence = true needs "
                                f"{_where(source, 'calls')} rate_per_1000_per_day (calls per 1,000 persons present "
                                f"per day); add it, or set calls_from_presence = false")
        if by_rate or by_pop:
            key = "rate_per_h" if by_rate else "population"
            raise ScenarioError(f"{_where(source, 'calls')} {key} conflicts with {_where(source, 'population')} "
                                f"calls_from_presence = true (rates come from the persons present); remove "
                                f"{key}, or set calls_from_presence = false")
    elif by_rate == by_pop or (by_pop != (calls.rate_per_1000_per_day is not None)):
        raise ScenarioError(f"{_where(source, 'calls')}: give either rate_per_h (a total or a table zone id -> "
                            f"calls/hour) or population (zone id -> residents) with rate_per_1000_per_day")
    return out


# --------------------------------------------------------------------------------------
# --set overrides

def _parse_override_value(text, meta):
    kind = meta.get("kind") if meta else None
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    if kind in ("str", "choice") and not isinstance(value, str):
        value = text
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind == "node" and isinstance(value, float):
        value = text
    return value


def apply_overrides(data: dict, overrides, source="scenario") -> dict:
    """Apply dotted ``key=value`` overrides to a scenario dict (a deep copy is returned).

    Parameters
    ----------
    data : dict
        A parsed scenario (``tomllib.loads`` output).
    overrides : sequence of str or dict
        ``"run.seed=3"``, ``"hospitals.0.beds=20"``, ``"hospitals.central.beds=20"`` (an
        array item by index or name), ``"calls.rate_per_h.5=2.0"`` (a zone's entry),
        ``"hospitals.0.length_of_stay.mean_s=7200"`` (a field of a distribution table),
        ``"traffic.random_trips=2000"`` (creates ``[traffic]`` when absent). Values are TOML
        values (``3``, ``2.5``, ``true``, ``"x"``, ``[1, 2]``); anything that does not parse
        is taken as a string (``city.name=grid:6x6``). Integers given for float keys become
        floats.

    Raises
    ------
    ScenarioError
        A malformed override, an unknown table or key (with a suggestion), or an array index
        out of range.

    Examples
    --------
    >>> apply_overrides({"run": {"seed": 1}}, ["run.seed=3", "run.until_s=3600"])["run"]
    {'seed': 3, 'until_s': 3600.0}
    """
    data = json.loads(json.dumps(data))  # a deep copy of plain TOML data
    if isinstance(overrides, dict):
        overrides = [f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in overrides.items()]
    for item in overrides or ():
        if not isinstance(item, str) or "=" not in item:
            raise ScenarioError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. run.seed=3")
        key, text = (s.strip() for s in item.split("=", 1))
        parts = key.split(".")
        where = f"--set {key}"
        table = parts[0]
        if table not in GROUPS:
            raise ScenarioError(f"{where}: unknown table '{table}' in {source}; {_did_you_mean(table, GROUPS)}"
                                f"accepted tables: {', '.join(GROUPS)}")
        cls, is_array = GROUPS[table]
        rest = parts[1:]
        if is_array:
            items = data.setdefault(table, [])
            if not rest:
                raise ScenarioError(f"{where}: expected {table}.<index or name>.<key>")
            sel = rest[0]
            if not items:
                raise ScenarioError(f"{where}: {source} has no [[{table}]] items to override")
            names = [it.get("name") for it in items]
            if sel.isdigit() and int(sel) < len(items):
                parent = items[int(sel)]
            elif sel in names:
                parent = items[names.index(sel)]
            else:
                raise ScenarioError(f"{where}: no [[{table}]] item '{sel}' in {source}; expected an index "
                                    f"0..{len(items) - 1} or a name in {names}")
            rest = rest[1:]
        else:
            parent = data.setdefault(table, {})
        if not rest:
            raise ScenarioError(f"{where}: expected a key of [{table}]: {', '.join(f.name for f in fields(cls))}")
        names = {f.name: f for f in fields(cls)}
        if rest[0] not in names:
            raise ScenarioError(f"{where}: unknown key '{table}.{rest[0]}' in {source}; "
                                f"{_did_you_mean(rest[0], names)}accepted keys of [{table}]: {', '.join(names)}")
        meta = names[rest[0]].metadata
        if len(rest) == 1:
            parent[rest[0]] = _parse_override_value(text, meta)
        elif len(rest) == 2 and meta["kind"] in ("table", "rates", "dist", "profiles", "triage"):
            sub = parent.get(rest[0])
            if sub is None and meta["kind"] != "dist":
                sub = parent[rest[0]] = {}
            if not isinstance(sub, dict):
                raise ScenarioError(f"{where}: '{table}.{rest[0]}' is {sub!r}, not a table; set it whole "
                                    f"({table}.{rest[0]}=...)")
            sub[rest[1]] = _parse_override_value(text, {"kind": "str" if rest[1] == "kind" else "float"})
        else:
            raise ScenarioError(f"{where}: '{table}.{rest[0]}' has no sub-key '{'.'.join(rest[1:])}'")
    return data


# --------------------------------------------------------------------------------------
# TOML writing (for the resolved scenario in /meta)

def _toml_key(k):
    k = str(k)
    return k if k and all(c.isalnum() or c in "_-" for c in k) and k.isascii() else json.dumps(k)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        v = float(v)
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def dump_toml(data: dict) -> str:
    """TOML text of a scenario dict: tables, arrays of tables, inline tables below them.

    ``None`` values are left out (TOML has no null). ``tomllib.loads(dump_toml(d))``
    gives ``d`` back for such plain data.

    Examples
    --------
    >>> print(dump_toml({"run": {"seed": 1}, "stations": [{"node": 5, "ambulances": 2}]}))
    [run]
    seed = 1
    <BLANKLINE>
    [[stations]]
    node = 5
    ambulances = 2
    <BLANKLINE>
    """
    lines = []
    for key, value in data.items():
        if value is None or isinstance(value, dict) or (isinstance(value, list) and value
                                                        and all(isinstance(x, dict) for x in value)):
            continue
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["" if lines else None, f"[{_toml_key(key)}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None]
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            for item in value:
                lines += ["" if lines else None, f"[[{_toml_key(key)}]]"]
                lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items() if v is not None]
    return "\n".join(x for x in lines if x is not None) + "\n"


def _plain(value):
    if isinstance(value, Dist):
        if value.kind == "constant":
            return value.mean_s
        if value.kind == "empirical":
            return {"kind": "empirical", "values_s": list(value.values_s), "weights": list(value.weights)}
        d = {"kind": value.kind, "mean_s": value.mean_s}
        if value.kind in ("lognormal", "gamma"):
            d["cv"] = value.cv
        return d
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _resolved_data(groups) -> dict:
    out = {}
    for table, value in groups.items():
        if value is None:
            continue
        if isinstance(value, list):
            out[table] = [{f.name: _plain(getattr(g, f.name)) for f in fields(g)
                           if getattr(g, f.name) is not None} for g in value]
        else:
            out[table] = {f.name: _plain(getattr(value, f.name)) for f in fields(value)
                          if getattr(value, f.name) is not None}
    return out


# --------------------------------------------------------------------------------------
# the scenario on a city

@dataclass(frozen=True, eq=False)
class Scenario:
    """A validated scenario on its city, ready to run.

    Attributes
    ----------
    name : str
        File stem (``hefei_day``) or ``"scenario"``.
    source : str
        Label used in messages: the file name, ``<name>.toml`` for a built-in.
    path : pathlib.Path or None
        The file, when read from one (relative paths in it are resolved against its folder).
    text : str
        The scenario text as given (before overrides).
    overrides : tuple of str
    data : dict
        The resolved scenario (overrides applied, defaults filled in); :attr:`resolved_text`
        is its TOML.
    groups : dict
        Table name -> validated group (lists for ``call_types``, ``stations``, ``hospitals``;
        ``traffic`` is None when absent).
    city : twin.graph.City
    ems : EmsSpec
    layout : EmsLayout
        Where locations, stations and districts are on the city.
    population : twin.agents.population.Population or None
        The synthetic population of ``[population]`` (on the scenario's run seed).
    """

    name: str
    source: str
    path: Path | None
    text: str
    overrides: tuple
    data: dict
    groups: dict
    city: object = field(repr=False)
    ems: EmsSpec = field(repr=False)
    layout: EmsLayout = field(repr=False)
    population: object = field(default=None, repr=False)

    @property
    def resolved_text(self) -> str:
        return dump_toml(self.data)

    @property
    def run_group(self) -> RunGroup:
        return self.groups["run"]

    @property
    def traffic(self) -> TrafficGroup | None:
        return self.groups["traffic"]


def builtin_scenarios() -> list:
    """Names of the built-in scenarios (``scenarios/*.toml``), sorted."""
    root = resources.files("twin.scenarios")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def _read_source(spec):
    """(name, source label, path or None, text) of a path, a built-in name or TOML text."""
    if isinstance(spec, Path) or (isinstance(spec, str) and "\n" not in spec):
        path = Path(spec)
        if path.is_file():
            try:
                return path.stem, path.name, path, path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ScenarioError(f"cannot read scenario file {str(path)!r}: {exc}") from None
        name = path.name[:-5] if path.name.endswith(".toml") else path.name
        if str(spec) == path.name or str(spec) == name:
            res = resources.files("twin.scenarios").joinpath(f"{name}.toml")
            if res.is_file():
                return name, f"{name}.toml", None, res.read_text(encoding="utf-8")
        raise ScenarioError(f"no scenario file {str(spec)!r} and no built-in scenario of that name; built-in "
                            f"scenarios: {', '.join(builtin_scenarios())}")
    if isinstance(spec, str):
        return "scenario", "<scenario text>", None, spec
    raise TypeError(f"expected a scenario path, built-in name, TOML text or dict; got {type(spec).__name__}")


def load_scenario(spec, *, overrides=None) -> Scenario:
    """Read, override and validate a scenario, load its city and build the EMS spec.

    Parameters
    ----------
    spec : str, pathlib.Path, dict or Scenario
        A TOML file, a built-in scenario name (``"hefei_day"``, see
        :func:`builtin_scenarios`; used when no such file exists), TOML text, a parsed dict,
        or a :class:`Scenario` (re-resolved with ``overrides``).
    overrides : sequence of str or dict, optional
        Dotted ``key=value`` overrides (see :func:`apply_overrides`).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Malformed TOML, unknown tables or keys, bad values, unknown node or zone ids — each
        message names the file, the table and the key, what was found and what is accepted.
    """
    from twin.loading import load_city

    if isinstance(spec, Scenario):
        name, source, path, text = spec.name, spec.source, spec.path, spec.text
        raw = spec.data
        overrides = tuple(spec.overrides) + tuple(_override_list(overrides))
    elif isinstance(spec, dict):
        name, source, path, text, raw = "scenario", "<scenario dict>", None, dump_toml(spec), spec
    else:
        name, source, path, text = _read_source(spec)
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    overrides = tuple(_override_list(overrides))
    data = apply_overrides(raw, overrides, source) if overrides else raw
    label = source + (" (with --set overrides)" if overrides else "")
    groups = parse_groups(data, label)

    city_name = groups["city"].name
    if path is not None and (path.parent / city_name).is_file():
        city_name = str(path.parent / city_name)
    try:
        city = load_city(city_name)
    except TwinError as exc:
        raise ScenarioError(f"{label}: [city] name = {groups['city'].name!r}: {exc}") from None
    population = _synthesize(groups, city, label, groups["run"].seed)
    ems, layout = _build_ems(groups, city, label, population)
    return Scenario(name=name, source=source, path=path, text=text, overrides=overrides,
                    data=_resolved_data(groups), groups=groups, city=city, ems=ems, layout=layout,
                    population=population)


def population_seed(groups_or_scenario, run_seed) -> int | None:
    """Seed of the ``[population]`` synthesis for a run seed (None without the table)."""
    groups = getattr(groups_or_scenario, "groups", groups_or_scenario)
    pg = groups.get("population")
    if pg is None:
        return None
    return int(pg.seed) if pg.seed is not None else _stream_seeds(run_seed)["population"]


def _synthesize(groups, city, label, run_seed):
    pg = groups.get("population")
    if pg is None:
        return None
    from twin.agents.population import synthesize_population

    try:
        return synthesize_population(city, pg.persons, seed=population_seed(groups, run_seed))
    except ScenarioError as exc:
        raise ScenarioError(f"{label}: [population] persons = {pg.persons}: {exc}") from None


def _override_list(overrides):
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return [f"{k}={json.dumps(v) if isinstance(v, str) else _toml_value(v)}" for k, v in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return list(overrides)


def _node_idx(city, node, where):
    value = node
    if isinstance(node, str) and city.node_ids.dtype.kind in "iu":
        try:
            value = int(node)
        except ValueError:
            pass
    try:
        return int(np.atleast_1d(city.node_index([value]))[0])
    except TwinError as exc:
        raise ScenarioError(f"{where} node = {node!r}: not a node of city {city.name!r} ({exc})") from None


def presence_rates_per_h(population, calls) -> np.ndarray:
    """District call rates by hour of the day (calls/hour, shape (24, n_zones), city zone
    order) from the persons present.

    ``r / 1000 / 24 × P[h, d] × w[h]`` with ``P = population.present_by_zone()`` (hours
    0..23), ``w = calls.hourly_profile`` and ``r = calls.rate_per_1000_per_day`` (see the
    module docstring for the fidelity).
    """
    present = population.present_by_zone().to_numpy(dtype=np.float64)       # (24, n_zones)
    w = np.asarray(calls.hourly_profile, dtype=np.float64)
    return present * w[:, None] * calls.rate_per_1000_per_day / 1000.0 / 24.0


def _district_rate_table(groups, city, label, population, district_names, nodes_of, district):
    """Rates by hour, district and call type (calls/hour, shape (24, n_d, n_types)) and
    whether the plain product form ``rate_d × hourly_profile × share`` describes them."""
    calls, pg = groups["calls"], groups.get("population")
    cts = groups["call_types"]
    n_d, n_t = len(district_names), len(cts)
    w = np.asarray(calls.hourly_profile, dtype=np.float64)
    profile = np.repeat(w[:, None], n_d, axis=1)                            # (24, n_d)
    for k, v in (calls.district_profiles or {}).items():
        profile[:, district(k, f"{label}: [calls] district_profiles.{k}")] = v
    if pg is not None and pg.calls_from_presence:
        present = population.present_by_zone().to_numpy(dtype=np.float64)   # (24, n_d)
        base = present * profile * calls.rate_per_1000_per_day / 1000.0 / 24.0
    else:
        base = _product_rates(groups, nodes_of, district, label, n_d)[None, :] * profile
    out = np.empty((24, n_d, n_t))
    for t, c in enumerate(cts):
        at = f"{label}: [call_types.{t}] ('{c.name}')"
        if c.rate_per_h is not None:
            own = np.zeros(n_d)
            for k, v in c.rate_per_h.items():
                own[district(k, f"{at} rate_per_h.{k}")] = v
            out[:, :, t] = own[None, :] * profile
        else:
            out[:, :, t] = base * c.share
        for k, v in (c.district_multiplier or {}).items():
            out[:, district(k, f"{at} district_multiplier.{k}"), t] *= v
    product = not ((pg is not None and pg.calls_from_presence) or calls.district_profiles
                   or any(c.rate_per_h is not None or c.district_multiplier for c in cts))
    return out, product


def _product_rates(groups, nodes_of, district, label, n_d):
    """District base rates (calls/hour) of the product form, as computed before rate tables."""
    calls = groups["calls"]
    rate = np.zeros(n_d)
    if calls.rate_per_h is not None and not isinstance(calls.rate_per_h, dict):
        counts = np.array([len(n) for n in nodes_of], dtype=np.float64)
        rate = calls.rate_per_h * counts / counts.sum()
    else:
        table = calls.rate_per_h if calls.rate_per_h is not None else calls.population
        key = "rate_per_h" if calls.rate_per_h is not None else "population"
        factor = 1.0 if calls.rate_per_h is not None else calls.rate_per_1000_per_day / 1000.0 / 24.0
        for k, v in table.items():
            rate[district(k, f"{label}: [calls] {key}.{k}")] = v * factor
    return rate


def _build_ems(groups, city, label, population=None):
    run, kpi, calls = groups["run"], groups["kpi"], groups["calls"]
    tg = groups.get("traffic")
    # districts
    if city.n_zones:
        district_names = tuple(str(z) for z in city.zone_ids)
        district_of_node = np.asarray(city.zone_of_node, dtype=np.int64)
    else:
        district_names = ("city",)
        district_of_node = np.zeros(city.n_nodes, dtype=np.int64)
    n_d = len(district_names)
    nodes_of = [np.flatnonzero(district_of_node == d) for d in range(n_d)]
    index_of = {n: d for d, n in enumerate(district_names)}

    def district(key, where):
        if key not in index_of:
            raise ScenarioError(f"{where}: unknown zone id {key!r}; city {city.name!r} has zones "
                                f"{', '.join(district_names)}")
        return index_of[key]

    rate_dht, product = _district_rate_table(groups, city, label, population, district_names, nodes_of, district)
    rate = rate_dht.sum(axis=2).mean(axis=0)                 # daily mean calls/hour per district
    if product:                                               # exactly the old form: keep its numbers
        rate = _product_rates(groups, nodes_of, district, label, n_d)
    crash_type = tg.crash_call_type if tg is not None else ""
    type_names = [c.name for c in groups["call_types"]]
    if crash_type and crash_type not in type_names:
        raise ScenarioError(f"{label}: [traffic] crash_call_type = {crash_type!r}: no such call type; call types: "
                            f"{', '.join(repr(n) for n in type_names)}")
    for d in range(n_d):
        if rate[d] > 0 and len(nodes_of[d]) == 0:
            raise ScenarioError(f"{label}: [calls] zone {district_names[d]!r} has calls but no nodes")

    # locations: stations, hospitals, then call locations; each node once
    loc_of_node = {}

    def loc(node_idx):
        return loc_of_node.setdefault(int(node_idx), len(loc_of_node))

    station_loc = [loc(_node_idx(city, s.node, f"{label}: [stations.{i}] ('{s.name}')"))
                   for i, s in enumerate(groups["stations"])]
    hospital_loc = [loc(_node_idx(city, h.node, f"{label}: [hospitals.{i}] ('{h.name}')"))
                    for i, h in enumerate(groups["hospitals"])]
    zones, zone_district, zone_rows = [], [], []
    for d in range(n_d):
        if (rate[d] <= 0 and not crash_type) or len(nodes_of[d]) == 0:   # crash calls may come from anywhere
            continue
        members = nodes_of[d]
        if calls.locations == "centroid":
            x, y = city.x_m[members], city.y_m[members]
            if np.isfinite(x).all() and np.isfinite(y).all():
                members = members[[int(np.argmin((x - x.mean()) ** 2 + (y - y.mean()) ** 2))]]
            else:
                members = members[:1]
        for n in members:
            name = district_names[d] if calls.locations == "centroid" else f"{district_names[d]}:{city.node_ids[n]}"
            zones.append(ZoneSpec(name, loc(n), float(rate[d] / len(members))))
            zone_district.append(d)
            zone_rows.append(rate_dht[:, d, :] / len(members))
    incidents = []
    for i, g in enumerate(groups.get("incidents") or ()):
        at = f"{label}: [incidents.{i}] ('{g.name}')"
        if g.time_s >= run.until_s:
            raise ScenarioError(f"{at} time_s = {g.time_s:g}; expected a time before [run] until_s = {run.until_s:g}")
        if g.call_type and g.call_type not in type_names:
            raise ScenarioError(f"{at} call_type = {g.call_type!r}: no such call type; call types: "
                                f"{', '.join(repr(n) for n in type_names)}")
        incidents.append(IncidentSpec(g.name, loc(_node_idx(city, g.node, at)), g.time_s, g.patients, g.triage,
                                      g.call_type or None, g.transport_probability))
    loc_nodes = np.array(sorted(loc_of_node, key=loc_of_node.get), dtype=np.int64)
    factor = groups["service"].emergency_speed_factor
    tt = travel_time_matrix(city, city.node_ids[loc_nodes], link_cost_s=city.free_flow_time_s / factor)

    units = []
    for s, sloc in zip(groups["stations"], station_loc):
        kinds = {k: getattr(s, k) for k in UNIT_KINDS}
        ambulances = s.ambulances if s.ambulances is not None else (0 if any(kinds.values()) else 1)
        units += [UnitSpec(f"{s.name}-{k + 1}", sloc, s.busy_time) for k in range(ambulances)]
        units += [UnitSpec(f"{s.name}-{kind}-{k + 1}", sloc, s.busy_time, kind)
                  for kind, n in kinds.items() for k in range(n)]
    hospitals = [HospitalSpec(h.name, hloc, h.beds, h.length_of_stay, h.mode, h.walk_in_rate_per_h,
                              ward_beds=h.ward_beds, ward_los=h.ward_los, icu_beds=h.icu_beds, icu_los=h.icu_los,
                              ward_probability=h.ward_probability, icu_probability=h.icu_probability,
                              boarding=h.boarding, diversion=h.diversion,
                              diversion_threshold=h.diversion_threshold, transfer=h.transfer,
                              transfer_by_ambulance=h.transfer_by_ambulance)
                 for h, hloc in zip(groups["hospitals"], hospital_loc)]
    shares = [c.share for c in groups["call_types"]]
    rate_table = None
    if not product:
        rate_table = np.stack(zone_rows, axis=1) if zone_rows else np.zeros((24, 0, len(shares)))
        total = rate_table.sum(axis=(0, 1))
        if total.sum() > 0:                   # the shares the table implies (descriptive)
            shares = [float(x) for x in total / total.sum()]
    call_types = [CallTypeSpec(c.name, c.priority, sh, c.on_scene, c.transport_probability,
                               **({"requires": c.requires} if c.requires is not None else {}),
                               **({"fallback": c.fallback} if c.fallback is not None else {}))
                  for c, sh in zip(groups["call_types"], shares)]
    dsp, svc = groups["dispatch"], groups["service"]
    st_names = tuple(s.name for s in groups["stations"])
    relocation = []
    for i, r in enumerate(dsp.relocation or ()):
        rows = []
        for n, row in enumerate(r["table"]):
            for name in row:
                if name not in st_names:
                    raise ScenarioError(f"{label}: [dispatch] relocation[{i}].table[{n}]: unknown station {name!r}; "
                                        f"stations: {', '.join(repr(x) for x in st_names)}")
            rows.append(tuple(station_loc[st_names.index(name)] for name in row))
        relocation.append(RelocationSpec(tuple(r["kinds"]), tuple(rows)))
    targets = tuple(kpi.response_target_s) + (None,) * (3 - len(kpi.response_target_s))
    if kpi.warmup_s >= run.until_s:
        raise ScenarioError(f"{label}: [kpi] warmup_s = {kpi.warmup_s}; expected less than [run] until_s = "
                            f"{run.until_s}")
    try:
        ems = EmsSpec(travel_time_s=tt, zones=tuple(zones), call_types=tuple(call_types), units=tuple(units),
                      hospitals=tuple(hospitals),
                      dispatch=DispatchSpec(dsp.policy, (), dsp.processing, dsp.max_queue, tuple(relocation),
                                            dsp.compliance_rate),
                      service=ServiceSpec(svc.mode, svc.busy_time, svc.turnout, svc.handover, svc.return_mode),
                      hourly_profile=tuple(calls.hourly_profile), response_target_s=targets,
                      warmup_s=kpi.warmup_s, rate_table_per_h=rate_table, incidents=tuple(incidents))
    except ScenarioError as exc:
        raise ScenarioError(f"{label}: {exc}") from None
    if crash_type:
        c = ems.call_types[type_names.index(crash_type)]
        n_kind = {k: sum(u.kind == k for u in ems.units) for k in UNIT_KINDS}
        fb = dict(c.fallback)
        for kind, n in c.requires:
            if n_kind[kind] + (n_kind[fb[kind]] if kind in fb else 0) < n:
                raise ScenarioError(f"{label}: [traffic] crash_call_type = {crash_type!r} requires {n} '{kind}' "
                                    f"unit(s); the stations have {n_kind[kind]}")

    central_ids = kpi.central_zones if kpi.central_zones is not None else tuple(city.meta.get("central_zone_ids", ()))
    central = np.zeros(n_d, dtype=bool)
    for z in central_ids:
        central[district(str(z), f"{label}: [kpi] central_zones")] = True
    for i, n in enumerate(st_names):
        if st_names.count(n) > 1:
            raise ScenarioError(f"{label}: [stations.{i}] name = {n!r}; station names must be unique")
    layout = EmsLayout(location_node_idx=loc_nodes.astype(np.int32), location_node_id=city.node_ids[loc_nodes],
                       zone_district_idx=np.array(zone_district, dtype=np.int32), district_names=district_names,
                       district_central=central, station_names=st_names, station_location_idx=tuple(station_loc))
    return ems, layout


# --------------------------------------------------------------------------------------
# traffic coupling

def _urgent_timeout(env, delay_s):
    """A timeout at SimPy's URGENT priority: at a shared time it fires before normal events."""
    import simpy.events

    ev = env.event()
    ev._ok, ev._value = True, None          # a triggered event, as simpy.Timeout builds it
    env.schedule(ev, simpy.events.URGENT, delay_s)
    return ev


class TrafficTravelTimes:
    """Travel-time provider for :class:`twin.agents.ems.CityModel` on live traffic.

    Parameters
    ----------
    engine : twin.traffic.TrafficEngine
        Advanced to the SimPy clock every ``sync_s`` seconds by :meth:`start`'s process.
    location_node_idx : ndarray of int, shape (n_locations,)
        City node of each EMS location.
    sync_s : float
        Synchronisation period, seconds.
    until_s : float
        Last synchronisation time (the traffic horizon); later legs see the last link times.
    emergency_speed_factor : float
        Ambulance speed over link free-flow speed (queue delays are not scaled).
    queue_delay_share : float
        Share of the live queue delay an ambulance suffers (1: none of the priority
        measures; 0: it bypasses queues and signals preempt for it). Without ``vehicles`` only.
    vehicles : bool
        Units drive as vehicles of the engine (:meth:`drive`); then ``emergency_speed_factor``
        and ``queue_delay_share`` must be 1 (the kernel moves them at link speeds, with its
        own priority rule).
    lights_and_sirens_priority : int
        With ``vehicles``: response legs to calls of priority ``<=`` this, and transports of
        priority 1, are emergency vehicles (priority in the engine when it has
        ``emergency_priority``); other legs are ordinary vehicles.

    Notes
    -----
    Without ``vehicles``, link costs are ``free_flow_time_s / emergency_speed_factor + share ×
    (live - free_flow_time_s)`` with ``live = engine.link_travel_times_s()``; with them, the
    engine's own emergency link times (``link_travel_times_s(emergency=True)``: the bypass
    time when priority is on). Least-cost rows from an origin are cached until the next
    synchronisation. See the module docstring for the fidelity.
    """

    def __init__(self, engine, location_node_idx, *, sync_s=60.0, until_s, emergency_speed_factor=1.0,
                 queue_delay_share=1.0, crashes=None, vehicles=False, lights_and_sirens_priority=2):
        if vehicles and (emergency_speed_factor != 1.0 or queue_delay_share != 1.0):
            raise ScenarioError("[service] emergency_speed_factor and queue_delay_share apply to legs timed on "
                                "live link times; with [traffic] ambulances_in_traffic = true the units are "
                                "vehicles of the traffic model (priority: [traffic] emergency_priority, "
                                "bypass_speed_mps). Leave both at 1 or set ambulances_in_traffic = false")
        self.vehicles = bool(vehicles)
        self.ls_priority = int(lights_and_sirens_priority)
        self.legs = []            # (vehicle index, leg code, emergency, start_s, end_s) of driven legs
        if self.vehicles:
            self.drive = self._drive_leg
        self.engine = engine
        self.crashes = crashes
        self.model = None
        self.city = engine.city
        self.loc_nodes = np.asarray(location_node_idx, dtype=np.int64)
        self.sync_s = float(sync_s)
        self.until_s = float(until_s)
        self.factor = float(emergency_speed_factor)
        self.queue_share = float(queue_delay_share)
        self._cost = None
        self._rows = {}
        self._route_cost = {}          # emergency (bool) -> routing costs of unit vehicles
        self.n_syncs = 0

    def start(self, model) -> None:
        self.model = model
        model.env.process(self._sync(model.env))

    def _sync(self, env):
        while True:
            self.engine.run_until(min(env.now, self.until_s))
            self._cost = None
            self._rows.clear()
            self._route_cost.clear()
            self.n_syncs += 1
            if self.crashes is not None:
                self.crashes.on_sync(self.model, env.now, min(self.sync_s, self.until_s - env.now))
            if env.now >= self.until_s:
                return
            yield _urgent_timeout(env, min(self.sync_s, self.until_s - env.now))

    def link_cost_s(self) -> np.ndarray:
        """Current ambulance cost of every link, seconds (``inf`` when closed)."""
        if self._cost is None:
            if self.vehicles:
                self._cost = np.asarray(self.engine.link_travel_times_s(emergency=True), dtype=np.float64)
                return self._cost
            ff = self.city.free_flow_time_s
            live = self.engine.link_travel_times_s()
            cost = ff / self.factor + self.queue_share * np.maximum(live - ff, 0.0)
            cost[~np.isfinite(live)] = np.inf
            self._cost = cost
        return self._cost

    #: Leg codes of :attr:`legs`.
    LEGS = ("response", "transport", "transfer", "return")

    def _drive_leg(self, env, origin_idx, destination_idx, *, leg, priority):
        """Drive one leg as a vehicle of the engine; a SimPy process ending when it arrives."""
        emergency = (leg == "response" and 0 < priority <= self.ls_priority) or (leg == "transport" and priority == 1)
        return env.process(self._leg(env, int(origin_idx), int(destination_idx), self.LEGS.index(leg), emergency))

    def _leg(self, env, o, d, leg, emergency):
        t0 = env.now
        no, nd = int(self.loc_nodes[o]), int(self.loc_nodes[d])
        if no == nd:
            return
        dt = self.engine.params.dt_s
        if env.now + dt >= self.until_s:        # past the traffic horizon: the last link times
            yield env.timeout(self.time_s(o, d))
            return
        self.engine.run_until(env.now)
        ids = self.city.node_ids
        # routed on this sync period's link times (those the dispatch estimates used)
        cost = self._route_cost_s(emergency)
        v = self.engine.insert_vehicle(ids[no], ids[nd], depart_s=env.now, emergency=emergency, link_cost_s=cost)
        try:
            yield self.engine.arrival_event(env, v)
        except DemandError:                     # the horizon came first: the rest at the last link times
            left = self.time_s(o, d) - (env.now - t0)
            if left > 0:
                yield env.timeout(left)
        self.legs.append((v, leg, emergency, t0, env.now))

    def legs_table(self):
        """Driven legs: ``vehicle`` (row of the traffic trips table), ``leg``, ``emergency``,
        ``start_s``, ``end_s``, ``travel_time_s``."""
        import pandas as pd

        rows = self.legs
        df = pd.DataFrame({
            "vehicle": np.array([r[0] for r in rows], dtype=np.int64),
            "leg": pd.Categorical([self.LEGS[r[1]] for r in rows], categories=list(self.LEGS)),
            "emergency": np.array([r[2] for r in rows], dtype=bool),
            "start_s": np.array([r[3] for r in rows], dtype=np.float64),
            "end_s": np.array([r[4] for r in rows], dtype=np.float64)})
        df["travel_time_s"] = df["end_s"] - df["start_s"]
        return df

    def _row(self, origin):
        row = self._rows.get(origin)
        if row is None:
            ids = self.city.node_ids
            row = self.city.travel_times(ids[self.loc_nodes[origin]], ids[self.loc_nodes],
                                         link_cost_s=self.link_cost_s())[0]
            self._rows[origin] = row
        return row

    def _col(self, destination):
        """Times from every location to ``destination`` (one backward search), cached like rows."""
        key = -1 - destination
        col = self._rows.get(key)
        if col is None:
            ids = self.city.node_ids
            col = self.city.travel_times_to(ids[self.loc_nodes[destination]], ids[self.loc_nodes],
                                            link_cost_s=self.link_cost_s())[0]
            self._rows[key] = col
        return col

    def time_s(self, origin_idx, destination_idx):
        if isinstance(origin_idx, (int, np.integer)):
            return float(self._row(int(origin_idx))[destination_idx])
        if isinstance(destination_idx, (int, np.integer)):   # many units to one place: one backward search
            return self._col(int(destination_idx))[np.asarray(origin_idx, dtype=np.int64)]
        return np.array([self._row(int(o))[destination_idx] for o in origin_idx], dtype=np.float64)

    def _route_cost_s(self, emergency):
        """Link costs a unit vehicle is routed on: the current emergency (or ordinary) link
        times, closed links at the engine's finite closed cost; cached until the next sync."""
        key = bool(emergency)
        if key not in self._route_cost:
            from twin.traffic import CLOSED_COST_S

            cost = self.link_cost_s() if key else np.asarray(self.engine.link_travel_times_s(), dtype=np.float64)
            self._route_cost[key] = np.where(np.isfinite(cost), cost, CLOSED_COST_S)
        return self._route_cost[key]


class CrashCalls:
    """Traffic-crash calls from the coupled traffic's exposure, zone by zone.

    Parameters
    ----------
    engine : twin.traffic.TrafficEngine
    link_zone_idx : ndarray of int, shape (n_links,)
        EMS zone of each link (its tail node's zone), -1 for none.
    n_zones : int
    type_idx : int
        The call type of the crash calls.
    rate_per_million_veh_km : float
        Crash calls per million vehicle-km (default :data:`CRASH_RATE_PER_MILLION_VEH_KM`).
    rng : numpy.random.Generator
        The ``crashes`` stream (counts, times and each call's dice).
    until_s : float
        Calls arrive before this time (the run's ``until_s``).

    Notes
    -----
    At every synchronisation at time ``t`` the vehicle-km driven on each zone's links since
    the previous one, ``x_z`` (links' vehicle exits × length; read from the engine's
    ``TrafficEngine.link_exits``, as its ``vkt_veh_km`` KPI counts them), give ``Poisson(rate × x_z /
    1e6)`` crash calls in zone ``z``, placed uniformly in the next period ``[t, t + sync_s)``
    (a one-period lag: the exposure is known only at its end), truncated at ``until_s``. The
    rows of :attr:`exposure` (``start_s, end_s, zone_idx, veh_km, expected_calls, n_calls``)
    record every period and zone with exposure; ``expected_calls`` is 0 for a period whose
    calls would fall after ``until_s``.
    """

    COLUMNS = ["start_s", "end_s", "zone_idx", "veh_km", "expected_calls", "n_calls"]

    def __init__(self, engine, link_zone_idx, n_zones, type_idx, rate_per_million_veh_km, rng, until_s):
        self.engine = engine
        self.length_km = engine.city.length_m / 1000.0
        self.link_zone_idx = np.asarray(link_zone_idx, dtype=np.int64)
        self._has_zone = self.link_zone_idx >= 0
        self.n_zones = int(n_zones)
        self.type_idx = int(type_idx)
        self.rate = float(rate_per_million_veh_km)
        self.rng = rng
        self.until_s = float(until_s)
        self._prev = np.zeros(engine.city.n_links)
        self._t_prev = 0.0
        self.exposure = []

    def on_sync(self, model, now_s, next_sync_s):
        total = self.engine.link_exits()
        veh_km = (total - self._prev) * self.length_km
        self._prev = total
        x = np.bincount(self.link_zone_idx[self._has_zone], weights=veh_km[self._has_zone], minlength=self.n_zones)
        t0, t1 = now_s, min(now_s + next_sync_s, self.until_s)
        mean = self.rate * x / 1e6 if t1 > t0 else np.zeros_like(x)
        counts = self.rng.poisson(mean)
        for z in np.flatnonzero(x > 0):
            self.exposure.append((self._t_prev, now_s, int(z), float(x[z]), float(mean[z]), int(counts[z])))
        self._t_prev = now_s
        n = int(counts.sum())
        if n:
            times = self.rng.uniform(t0, t1, size=n)
            zones = np.repeat(np.arange(self.n_zones), counts)
            order = np.argsort(times, kind="stable")
            model.add_calls(times[order], zones[order], np.full(n, self.type_idx), self.rng)

    def table(self):
        """The exposure rows as a DataFrame."""
        import pandas as pd

        t = pd.DataFrame(self.exposure, columns=self.COLUMNS)
        return t.astype({"start_s": np.float64, "end_s": np.float64, "zone_idx": np.int32, "veh_km": np.float64,
                         "expected_calls": np.float64, "n_calls": np.int64})


def link_zone_index(scenario) -> np.ndarray:
    """EMS zone of every link of the scenario's city (its tail node's zone), -1 for none.

    With ``[calls] locations = "nodes"`` a node is its own zone; with ``"centroid"`` every
    node of a district belongs to the district's zone.
    """
    city, ems, lay = scenario.city, scenario.ems, scenario.layout
    zone_of_node = np.full(city.n_nodes, -1, dtype=np.int64)
    if scenario.groups["calls"].locations == "centroid":
        district_of_node = (np.asarray(city.zone_of_node, dtype=np.int64) if city.n_zones
                            else np.zeros(city.n_nodes, dtype=np.int64))
        zone_of_district = np.full(len(lay.district_names), -1, dtype=np.int64)
        zone_of_district[np.asarray(lay.zone_district_idx, dtype=np.int64)] = np.arange(ems.n_zones)
        ok = district_of_node >= 0
        zone_of_node[ok] = zone_of_district[district_of_node[ok]]
    else:
        nodes = np.asarray(lay.location_node_idx, dtype=np.int64)[[z.location_idx for z in ems.zones]]
        zone_of_node[nodes] = np.arange(ems.n_zones)
    return zone_of_node[np.asarray(city.link_from_idx, dtype=np.int64)]


def _stream_seeds(seed):
    """Integer seeds of the traffic and population streams (children 5, 6, 7 of SeedSequence(seed))."""
    children = np.random.SeedSequence(seed).spawn(len(RUN_STREAMS))
    return {name: int(c.generate_state(1, dtype=np.uint32)[0]) for name, c in zip(RUN_STREAMS, children)
            if name not in STREAMS}


def car_trips(population):
    """The population's car legs as traffic demand (``origin``, ``destination``, ``depart_s``).

    Legs whose origin and destination are the same node are left out (the traffic model
    rejects them).
    """
    t = population.vehicle_trips()
    t = t[t["origin"].to_numpy() != t["destination"].to_numpy()]
    return t[["origin", "destination", "depart_s"]].reset_index(drop=True)


def _traffic_trips(scenario, seed_demand):
    import pandas as pd

    from twin.cli import random_trips

    tg, city = scenario.traffic, scenario.city
    parts = []
    if tg.trips:
        path = Path(tg.trips)
        if not path.is_absolute() and scenario.path is not None:
            path = scenario.path.parent / path
        try:
            parts.append(pd.read_csv(path))
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"{scenario.source}: [traffic] trips = {tg.trips!r}: cannot read {path}: {exc}") \
                from None
    if tg.random_trips:
        t = random_trips(city, tg.random_trips, tg.window_s, seed_demand)
        t["depart_s"] = t["depart_s"] + tg.window_start_s
        parts.append(pd.DataFrame(t))
    if not parts:
        return None
    trips = pd.concat(parts, ignore_index=True)
    return trips.sort_values("depart_s", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# running

@dataclass(frozen=True, eq=False)
class RunResult:
    """What :func:`run` returns.

    Attributes
    ----------
    scenario : Scenario
    seed : int
    ems : EmsResult
    traffic : twin.traffic.TrafficResult or None
        The coupled traffic run (None without ``[traffic]`` demand).
    districts : DataFrame
        Per-district response KPIs (:func:`twin.emergency.district_summary`).
    kpis : dict
        ``ems.kpis`` plus ``n_blocked``, ``blocking``, ``n_unserved`` and the equity gap.
    path : pathlib.Path or None
        The results file, when written.
    wall_s : float
        Wall-clock seconds of the simulation.
    n_syncs : int
        Traffic synchronisations done (0 without traffic).
    population : twin.agents.population.Population or None
        The ``[population]`` of this run's seed.
    traffic_group : TrafficGroup or None
        The traffic settings used (defaults when the traffic came from the population's cars
        without a ``[traffic]`` table).
    crash_exposure : DataFrame or None
        With ``[traffic] crash_call_type``: the exposure rows of :class:`CrashCalls`; the KPIs
        then hold ``n_crash_calls``, ``crash_exposure_veh_km`` and ``crash_expected_calls``.
    unit_legs : DataFrame or None
        With ``[traffic] ambulances_in_traffic``: every leg the units drove as vehicles
        (:meth:`TrafficTravelTimes.legs_table`; ``vehicle`` is the row of ``traffic.trips``);
        the KPIs then hold ``unit_legs``, ``unit_legs_emergency`` and the mean driven time of
        emergency and ordinary legs, ``unit_leg_emergency_mean_s`` / ``unit_leg_ordinary_mean_s``.
    """

    scenario: Scenario
    seed: int
    ems: EmsResult
    traffic: object
    districts: object
    kpis: dict
    path: Path | None
    wall_s: float
    n_syncs: int = 0
    population: object = None
    traffic_group: TrafficGroup | None = None
    crash_exposure: object = None
    unit_legs: object = None

    @property
    def traffic_from_cars(self) -> bool:
        """Whether the coupled traffic is the population's car legs."""
        sc = self.scenario.groups
        pg, tg = sc.get("population"), sc.get("traffic")
        return bool(pg is not None and pg.traffic_from_cars and self.traffic is not None
                    and not (tg is not None and (tg.random_trips or tg.trips)))


def run(spec_or_path, *, seed=None, out=None, overrides=None, progress=None, overwrite=False) -> RunResult:
    """Run a scenario and optionally write its results file.

    Parameters
    ----------
    spec_or_path : str, pathlib.Path, dict or Scenario
        What :func:`load_scenario` accepts (a file, a built-in name such as ``"hefei_day"``,
        TOML text, a dict or a loaded scenario).
    seed : int, optional
        Run seed; ``[run] seed`` when omitted.
    out : str or os.PathLike, optional
        Write one HDF5 results file here (see :func:`write_run`).
    overrides : sequence of str or dict, optional
        Dotted ``key=value`` overrides (:func:`apply_overrides`).
    progress : callable(done_s, total_s), optional
        Called after each simulated hour up to ``until_s``.
    overwrite : bool
        Replace an existing ``out``.

    Returns
    -------
    RunResult

    Raises
    ------
    ScenarioError
        A malformed scenario or seed.
    ResultsError
        ``out`` exists and ``overwrite`` is False, or its folder does not exist (checked
        before simulating).

    Examples
    --------
    >>> res = run("hefei_day", overrides=["run.until_s=3600", "traffic.random_trips=500"])
    >>> res.kpis["n_calls"] > 0, res.traffic is not None
    (True, True)
    """
    from twin.agents.ems import run_ems
    from twin.errors import ResultsError

    scenario = load_scenario(spec_or_path, overrides=overrides) if (overrides or not isinstance(
        spec_or_path, Scenario)) else spec_or_path
    rg = scenario.run_group
    seed = rg.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ScenarioError(f"run seed = {seed!r}; expected an integer >= 0")
    seed = int(seed)
    if out is not None:
        out = Path(out)
        if out.exists() and not overwrite:
            raise ResultsError(f"results file {str(out)!r} already exists; pass overwrite=True (--overwrite)")
        if not out.parent.is_dir():
            raise ResultsError(f"cannot write results to {str(out)!r}: folder {str(out.parent)!r} does not exist")

    t0 = time.perf_counter()
    pg = scenario.groups.get("population")
    if pg is not None and population_seed(scenario, seed) != population_seed(scenario, rg.seed):
        pop = _synthesize(scenario.groups, scenario.city, scenario.source, seed)
        ems_spec, layout = _build_ems(scenario.groups, scenario.city, scenario.source, pop)
        scenario = dataclasses.replace(scenario, ems=ems_spec, layout=layout, population=pop)
    engine = travel = None
    tg = scenario.traffic
    cars = None
    if pg is not None and pg.traffic_from_cars and (tg is None or (not tg.random_trips and not tg.trips)):
        tg = tg if tg is not None else TrafficGroup()
        cars = car_trips(scenario.population)
    if tg is not None:
        seeds = _stream_seeds(seed)
        trips = cars if cars is not None else _traffic_trips(scenario, seeds["traffic_demand"])
        if trips is None:
            logger.info("[traffic] has no demand (random_trips = 0, no trips file): static travel times")
        else:
            from twin.traffic import TrafficEngine

            signals = None
            if tg.signals:
                from twin.signals import signal_plan

                signals = signal_plan(scenario.city, tg.signal_control, cycle_s=tg.signal_cycle_s,
                                      min_green_s=tg.min_green_s)
            horizon = tg.until_s if tg.until_s is not None else (
                max(rg.until_s, 86400.0) if cars is not None else rg.until_s)
            engine = TrafficEngine(scenario.city, trips, until_s=horizon, seed=seeds["traffic"], dt_s=tg.dt_s,
                                   reroute_share=tg.reroute_share, reroute_interval_s=tg.reroute_interval_s,
                                   signals=signals, stop_when_done=False, emergency_priority=tg.emergency_priority,
                                   bypass_speed_mps=tg.bypass_speed_mps)
            crashes = None
            if tg.crash_call_type:
                names = [c.name for c in scenario.ems.call_types]
                crashes = CrashCalls(engine, link_zone_index(scenario), scenario.ems.n_zones,
                                     names.index(tg.crash_call_type), tg.crash_rate_per_million_veh_km,
                                     np.random.default_rng(seeds["crashes"]), rg.until_s)
            travel = TrafficTravelTimes(engine, scenario.layout.location_node_idx, sync_s=tg.sync_s, until_s=horizon,
                                        emergency_speed_factor=scenario.groups["service"].emergency_speed_factor,
                                        queue_delay_share=scenario.groups["service"].queue_delay_share,
                                        crashes=crashes, vehicles=tg.ambulances_in_traffic,
                                        lights_and_sirens_priority=tg.lights_and_sirens_priority)
            logger.info("traffic coupled: %d %strips, sync every %.0f s up to %.0f s", len(trips),
                        "population car " if cars is not None else "", tg.sync_s, horizon)
    ems = run_ems(scenario.ems, seed=seed, until_s=rg.until_s, drain=rg.drain, travel=travel, progress=progress)
    traffic = None
    if engine is not None:
        engine.run_until(travel.until_s)
        traffic = engine.result()
    wall_s = time.perf_counter() - t0
    districts, gap = ems.district_kpis(scenario.layout)
    kpis = dict(ems.kpis)
    hosp = ems.hospitals
    n_arr, n_blk = int(hosp["arrivals"].sum()), int(hosp["blocked"].sum())
    kpis.update(n_blocked=n_blk, blocking=n_blk / n_arr if n_arr else math.nan,
                n_unserved=kpis["n_lost"] + kpis["n_open"],
                unserved_share=(kpis["n_lost"] + kpis["n_open"]) / kpis["n_calls"] if kpis["n_calls"] else math.nan)
    kpis.update(gap)
    crash_table = None
    if travel is not None and travel.crashes is not None:
        crash_table = travel.crashes.table()
        kpis.update(n_crash_calls=int(crash_table["n_calls"].sum()),
                    crash_exposure_veh_km=float(crash_table["veh_km"].sum()),
                    crash_expected_calls=float(crash_table["expected_calls"].sum()))
    legs = None
    if travel is not None and travel.vehicles:
        legs = travel.legs_table()
        em = legs["emergency"].to_numpy()
        tt = legs["travel_time_s"].to_numpy()
        kpis.update(unit_legs=len(legs), unit_legs_emergency=int(em.sum()),
                    unit_leg_emergency_mean_s=float(tt[em].mean()) if em.any() else math.nan,
                    unit_leg_ordinary_mean_s=float(tt[~em].mean()) if (~em).any() else math.nan)
    result = RunResult(scenario=scenario, seed=seed, ems=ems, traffic=traffic, districts=districts, kpis=kpis,
                       path=None, wall_s=wall_s, n_syncs=travel.n_syncs if travel is not None else 0,
                       population=scenario.population, traffic_group=tg if engine is not None else None,
                       crash_exposure=crash_table, unit_legs=legs)
    if out is not None:
        write_run(out, result, overwrite=overwrite)
        result = dataclasses.replace(result, path=out)
    return result


def _versions():
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for pkg in ("numpy", "numba", "simpy", "mesa", "h5py", "pandas"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:  # pragma: no cover
            pass
    return out


def write_run(path, result: RunResult, *, overwrite=False) -> Path:
    """Write a run to one HDF5 results file (``<path>.partial``, renamed on a clean close).

    ``/meta`` holds the resolved scenario TOML (``scenario``), the text as given
    (``scenario_original``), the overrides, seed, stream names, city, horizon and package
    versions; ``/network`` the city (:func:`twin.graph.write_network`) and the EMS
    layout; then the traffic outputs (``traffic_*``, when coupled) and the EMS outputs
    (``ems_*``, see :meth:`twin.emergency.EmsResult.write`).
    """
    from twin.graph import write_network
    from twin.results import ResultsWriter

    sc = result.scenario
    tg = result.traffic_group or sc.traffic or TrafficGroup()
    meta = {"command": "run", "scenario_name": sc.name, "scenario_source": sc.source, "scenario": sc.resolved_text,
            "scenario_original": sc.text, "overrides": list(sc.overrides), "seed": int(result.seed),
            "streams": list(RUN_STREAMS), "city": sc.city.name, "until_s": float(sc.run_group.until_s),
            "coupling": ("units as vehicles in traffic" if result.unit_legs is not None else
                         "traffic at leg start" if result.traffic is not None else "static free-flow"),
            "versions": _versions()}
    if result.traffic is not None:
        meta.update(dt_s=float(tg.dt_s), interval_s=float(result.traffic.params.interval_s), sync_s=float(tg.sync_s))
    pop = result.population
    if pop is not None:
        pg = sc.groups["population"]
        meta.update(population_persons=int(pop.n_persons), calls_from_presence=bool(pg.calls_from_presence),
                    traffic_from_cars=result.traffic_from_cars)
    with ResultsWriter(path, meta=meta, overwrite=overwrite) as writer:
        write_network(writer, sc.city)
        if pop is not None:
            pop.write(writer)
        if result.traffic is not None:
            result.traffic.write(writer)
        result.ems.write(writer, layout=sc.layout)
        if result.crash_exposure is not None:
            ce = result.crash_exposure
            writer.write_table("/events/ems_crash_exposure", {k: ce[k].to_numpy() for k in CrashCalls.COLUMNS},
                               units={"start_s": "s", "end_s": "s", "zone_idx": "", "veh_km": "veh*km",
                                      "expected_calls": "1", "n_calls": "1"})
            for name, unit in (("n_crash_calls", "1"), ("crash_exposure_veh_km", "veh*km"),
                               ("crash_expected_calls", "1")):
                writer.write_summary(f"ems_{name}", result.kpis[name], units=unit)
        if result.unit_legs is not None:
            lg = result.unit_legs
            writer.write_table("/events/ems_unit_legs", {
                "vehicle": lg["vehicle"].to_numpy(), "leg": lg["leg"].astype(str).to_numpy(),
                "emergency": lg["emergency"].to_numpy(), "start_s": lg["start_s"].to_numpy(),
                "end_s": lg["end_s"].to_numpy(), "travel_time_s": lg["travel_time_s"].to_numpy()},
                units={"vehicle": "", "leg": "", "emergency": "", "start_s": "s", "end_s": "s", "travel_time_s": "s"})
            for name, unit in (("unit_legs", "1"), ("unit_legs_emergency", "1"), ("unit_leg_emergency_mean_s", "s"),
                               ("unit_leg_ordinary_mean_s", "s")):
                writer.write_summary(f"ems_{name}", result.kpis[name], units=unit)
    logger.info("wrote %s", path)
    return Path(path)


# --------------------------------------------------------------------------------------
# command line

def _fmt_min(s):
    return "-" if s is None or not math.isfinite(s) else f"{s / 60:.1f} min"


def _fmt_pct(x):
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.1f} %"


def format_kpis(result: RunResult) -> str:
    """The KPI table ``twin run`` prints."""
    k, sc, ems = result.kpis, result.scenario, result.ems
    days = sc.run_group.until_s / 86400.0
    lines = [f"{'calls':<34} {k['n_calls']:,}  ({k['n_calls'] / days:,.0f}/day; lost {k['n_lost']}, "
             f"open {k['n_open']})",
             f"{'response time mean':<34} {_fmt_min(k['response_mean_s'])}",
             f"{'response time p90':<34} {_fmt_min(k['response_p90_s'])}"]
    for p in (1, 2, 3):
        if f"response_p{p}_within_target" in k:
            lab = f"P{p} within {k[f'response_p{p}_target_s'] / 60:g} min"
            lines.append(f"{lab:<34} {_fmt_pct(k[f'response_p{p}_within_target'])}  "
                         f"({k[f'response_p{p}_n']} calls, mean {_fmt_min(k[f'response_p{p}_mean_s'])})")
    lines += [f"{'unit utilisation (mean)':<34} {_fmt_pct(k['unit_utilisation_mean'])}",
              f"{'dispatch wait (share waiting)':<34} {_fmt_pct(k['dispatch_wait_share'])}",
              f"{'hospital blocking':<34} {_fmt_pct(k['blocking'])}  ({k['n_blocked']} of "
              f"{int(ems.hospitals['arrivals'].sum())} arrivals)"]
    for _, h in ems.hospitals.iterrows():
        lines.append(f"  {h['name']:<32} {h['beds']} beds, mean occupied {h['occupancy_mean']:.1f}, "
                     f"blocking {_fmt_pct(h['blocking'])}")
    if "boarding_mean_s" in k:                  # patient flow or diversion
        lines += [f"{'ED boarding':<34} mean {_fmt_min(k['boarding_mean_s'])}, p90 {_fmt_min(k['boarding_p90_s'])}"
                  f"  ({k['n_boarded']} patients boarded)",
                  f"{'diversion':<34} {k['diversion_h']:.1f} h  ({k['n_diverted']} transports diverted)",
                  f"{'inter-hospital transfers':<34} {k['n_transfers']}"
                  + (f"  ({k['n_transfers_ambulance']} by ambulance, pick-up mean "
                     f"{_fmt_min(k['transfer_pickup_mean_s'])})" if "n_transfers_ambulance" in k else ""),
                  f"{'ward/ICU blocked':<34} {k['n_inpatient_blocked']}"]
    if "relocation_orders" in k:
        lines.append(f"{'move-up relocations':<34} {k['relocation_moves']} moves "
                     f"({k['relocation_refused']} refused, {k['relocation_diverted']} diverted to calls), "
                     f"driving {k['relocation_driving_s'] / 3600:.1f} h")
    if ems.incidents is not None:
        for _, r in ems.incidents.iterrows():
            lab = f"incident {r['name']!r}"
            lines.append(f"{lab[:34]:<34} {r['patients']} patients (P1 {r['n_p1']}, P2 {r['n_p2']}, P3 "
                         f"{r['n_p3']}) at {r['time_s'] / 3600:.2f} h: last on scene +{_fmt_min(r['last_on_scene_s'])}, "
                         f"scene clear +{_fmt_min(r['scene_clear_s'])}, last at hospital "
                         f"+{_fmt_min(r['last_at_hospital_s'])}, {r['n_hospitals_used']} hospital(s)"
                         + (f" ({r['hospitals'].replace(';', ', ')})" if r['hospitals'] else ""))
    if "n_crash_calls" in k:
        lines.append(f"{'traffic-crash calls':<34} {k['n_crash_calls']}  (expected "
                     f"{k['crash_expected_calls']:.2f} from {k['crash_exposure_veh_km']:,.0f} veh-km)")
    gm = k["equity_gap_response_mean_s"]
    if math.isfinite(gm):
        lines.append(f"{'equity gap, peripheral - central':<34} mean {gm / 60:+.1f} min, p90 "
                     f"{k['equity_gap_response_p90_s'] / 60:+.1f} min, within target "
                     f"{-100 * k['equity_gap_within_target'] + 0.0:+.1f} pp")
    else:
        lines.append(f"{'equity gap, peripheral - central':<34} - (no central or no peripheral calls)")
    lines.append("")
    lines.append(f"  {'zone':<10} {'central':>7} {'calls':>6} {'mean':>9} {'p90':>9} {'in target':>10}")
    for _, d in result.districts.iterrows():
        lines.append(f"  {d['name']:<10} {'yes' if d['central'] else '':>7} {d['n_calls']:>6} "
                     f"{_fmt_min(d['response_mean_s']):>9} {_fmt_min(d['response_p90_s']):>9} "
                     f"{_fmt_pct(d['within_target']):>10}")
    pop = result.population
    if pop is not None:
        pg = sc.groups["population"]
        s = pop.summary()
        uses = [u for u, on in (("calls from presence", pg.calls_from_presence),
                                ("traffic from car legs", result.traffic_from_cars)) if on]
        lines += ["", f"{'population':<34} {pop.n_persons:,} persons, {pop.n_households:,} households, "
                      f"{s['trips_per_person']:.2f} trips/person, car share {_fmt_pct(s['mode_share_car'])}"
                      f" (seed {pop.meta['seed']}; {', '.join(uses) or 'not coupled'})"]
    if result.traffic is not None:
        t = result.traffic.kpis
        n_legs = k.get("unit_legs", 0)
        lines += ["", f"{'traffic':<34} {len(result.traffic.trips) - n_legs:,} trips"
                      f"{f' + {n_legs:,} unit legs' if n_legs else ''}, completed {t['completed']:,}, "
                      f"congestion index {t['congestion_index']:.3f}, mean trip {_fmt_min(t['mean_travel_time_s'])}"]
    if "unit_legs" in k:
        tg = result.traffic_group
        prio = "with priority" if tg is not None and tg.emergency_priority else "no priority"
        lines.append(f"{'units as vehicles':<34} {k['unit_legs']:,} legs, {k['unit_legs_emergency']:,} lights and "
                     f"sirens ({prio}) mean {_fmt_min(k['unit_leg_emergency_mean_s'])}, others mean "
                     f"{_fmt_min(k['unit_leg_ordinary_mean_s'])}")
    return "\n".join(lines) + "\n"


def add_run_parser(subparsers):
    """Add ``twin run`` to the CLI's subparsers (``twin.cli.build_parser`` calls this)."""
    p = subparsers.add_parser("run", help="run a scenario (EMS on a city, optionally coupled with traffic)",
                              description="Run a scenario TOML file or a built-in scenario and print its KPIs.")
    p.add_argument("scenario", nargs="?", help="scenario TOML file or built-in name (e.g. hefei_day)")
    p.add_argument("--out", help="write the results file (HDF5) here")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--seed", type=int, help="run seed (default: [run] seed)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. --set run.until_s=3600 --set hospitals.0.beds=20 (repeatable)")
    p.add_argument("--list", action="store_true", help="list the built-in scenarios and exit")
    p.add_argument("--keys", action="store_true", help="list every scenario key with its description and exit")
    p.set_defaults(func=run_main)
    return p


def run_main(args) -> int:
    """``twin run``: run, print the KPI table, write ``--out``."""
    out = sys.stdout
    if args.list:
        for name in builtin_scenarios():
            out.write(f"{name}\n")
        return 0
    if args.keys:
        for key, desc in scenario_fields().items():
            out.write(f"{key:<34} {desc}\n")
        return 0
    if not args.scenario:
        raise ScenarioError(f"give a scenario file or built-in name; built-in scenarios: "
                            f"{', '.join(builtin_scenarios())}")
    scenario = load_scenario(args.scenario, overrides=args.overrides)
    rg = scenario.run_group
    bar = None
    if not getattr(args, "quiet", False) and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=round(rg.until_s), unit="sim-s", desc="run", leave=False)

    def progress(done_s, total_s):
        if bar is not None:
            bar.update(round(done_s) - bar.n)

    try:
        res = run(scenario, seed=args.seed, out=args.out, progress=progress, overwrite=args.overwrite)
    finally:
        if bar is not None:
            bar.close()
    city = scenario.city
    tg = res.traffic_group or scenario.traffic
    traffic = (f"traffic coupled every {tg.sync_s:g} s ({len(res.traffic.trips):,} trips)"
               if res.traffic is not None else "static free-flow travel times")
    out.write(f"scenario {scenario.name} on {city.name} ({city.n_nodes:,} nodes): {rg.until_s / 3600:g} h, seed "
              f"{res.seed}, {scenario.ems.n_units} units, {scenario.ems.n_hospitals} hospitals; {traffic}\n")
    if rg.description:
        out.write(f"{rg.description}\n")
    out.write(f"simulated in {res.wall_s:.2f} s wall\n\n")
    out.write(format_kpis(res))
    if res.path is not None:
        out.write(f"\nwrote {res.path}\n")
    return 0
