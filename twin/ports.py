"""Ports: the small protocols through which flows meet (STYLE §15).

A flow *provides* a port by handing an object that implements it to the context
(``ctx.provide(Port, obj)``) and *uses* one by asking for it (``ctx.port(Port)``). The
protocols say what a caller may rely on, with units; they are defined here, in the core, so
no flow imports another. Plan-time ports are offered while a scenario loads
(:class:`twin.flows.PlanContext`), run-time ports while a run builds
(:class:`twin.flows.RunContext`).
"""

from __future__ import annotations

from typing import Protocol

from twin.errors import ScenarioError

__all__ = ["link_control", "Presence", "TripDemand", "TripIntake", "LiveTravel", "Exposure", "LinkControl",
           "TripOutcome", "TripRelease", "EvacuationOrder", "CallPlan", "CallIntake", "ShelterSites", "ShelterOccupancy",
           "FloodedSites", "FacilityControl", "Residents", "CallOutcome", "DayPlans", "HospitalBeds",
           "InpatientBeds"]


class Presence(Protocol):
    """Plan time: where people are, hour by hour (a synthetic population)."""

    def present_by_zone(self):
        """Persons present per city zone at 00:00, 01:00 ... 23:00: a DataFrame (24, n_zones)
        in ``City.zone_ids`` order."""

    def present_among(self, flag, hour):
        """Persons present per city zone at ``hour``:00 among those with ``flag``:
        ``"elderly_alone"`` (65 or older, living alone) or ``"no_car"`` (no car available);
        float array (n_zones,) in ``City.zone_ids`` order."""


class TripDemand(Protocol):
    """Plan time: background car trips for the traffic flow (a population's car legs)."""

    #: The shortest traffic horizon the demand needs, seconds (a day of car legs: 86,400).
    min_horizon_s: float

    def trips(self):
        """Trips ``origin``, ``destination`` (node ids), ``depart_s`` (seconds), depart order."""


class TripIntake(Protocol):
    """Plan time: more trips for the traffic flow to drive (evacuees, relief trucks ...), after its own."""

    def add(self, trips, label):
        """Add ``trips`` (``origin``, ``destination`` node ids, ``depart_s`` seconds; a dict of
        arrays or a DataFrame) for flow ``label``; returns their rows ``(start, stop)`` in the
        traffic result's trips table."""


class TripOutcome(Protocol):
    """Run time: what happened to trips added through :class:`TripIntake`."""

    def trips(self, rows):
        """Once the traffic flow has finished: the traffic result's trips table, rows
        ``(start, stop)``: ``depart_s``, ``arrive_s`` (NaN if not arrived), ``travel_time_s``,
        ``status`` ..."""

    def stranded(self, rows):
        """Once the traffic flow has finished: for rows ``(start, stop)``, whether each trip had
        not arrived and no open route led from where it was to its destination at the end
        (bool array): stranded by closures."""

    def arrivals_s(self, rows):
        """During the run: arrival times of rows ``(start, stop)`` so far, seconds (float
        array; NaN for trips that have not arrived as far as the traffic has been simulated,
        which is up to the last synchronisation or later)."""


class TripRelease(Protocol):
    """Run time: trips added through :class:`TripIntake` held back until an order given during
    the run lets them go (the traffic flow)."""

    def hold(self, rows) -> None:
        """Hold the trips of rows ``(start, stop)`` not yet departed: they do not depart until
        released (the trips table reads ``cancelled`` for those never released)."""

    def release(self, rows, depart_s) -> None:
        """Let the held trips of rows ``(start, stop)`` depart at ``depart_s`` (seconds, one per
        row; a time before now is now), on their planned routes."""


class EvacuationOrder(Protocol):
    """The evacuation order when a rule gives it (``[evacuation] order = "rule"``; the
    evacuation flow): offered at plan time, so a rule may name it, and at run time."""

    def issue(self) -> bool:
        """Run time: give the order now; False (and nothing done) when it was given before."""


class LiveTravel(Protocol):
    """Run time: travel times and vehicles on live traffic (the traffic flow)."""

    def provider(self, location_node_idx, *, emergency_speed_factor=1.0, queue_delay_share=1.0):
        """A travel-time provider over these city nodes (``time_s(o, d)`` in seconds between
        location indices; with units as vehicles also ``drive(...)``), kept in step with the
        traffic on the shared clock."""

    def fleet(self, location_node_idx, legs):
        """A provider whose vehicles always drive in the traffic as ordinary vehicles (trucks,
        buses): ``time_s(o, d)`` as above and ``drive(env, o, d, leg=name, priority=0)``, a
        SimPy process ending on arrival (a leg cut off by closures waits for a route);
        ``legs`` names the leg kinds its ``legs_table()`` reports."""


class Exposure(Protocol):
    """Run time: what the traffic has driven, and a hook at each synchronisation."""

    #: Link lengths, metres (City order).
    length_m: object

    def link_exits(self):
        """Vehicles that have left each link so far (float array, City link order)."""

    def on_sync(self, callback) -> None:
        """Call ``callback(now_s, next_sync_s)`` after each synchronisation with the clock."""

    def vehicles_on_links(self):
        """Vehicles on each link now, as far as the traffic has been simulated (float array,
        City link order; emergency vehicles bypassing the queues not counted)."""

    def queued_on_links(self):
        """Vehicles queued on each link now: those past their free-flow time on it, waiting to
        leave (float array, City link order; as :meth:`vehicles_on_links`)."""


class LinkControl(Protocol):
    """Run time: changes to the links during the run (the traffic flow applies them)."""

    def schedule(self, time_s, action, links, capacity_veh_per_h=None, free_speed_mps=None) -> None:
        """At ``time_s`` (seconds, >= now), ``action`` the links (int array of City link
        indices): ``"close"``, ``"open"``, ``"capacity"`` (a new saturation flow,
        ``capacity_veh_per_h`` > 0) or ``"speed"`` (a new free speed, ``free_speed_mps`` > 0,
        for vehicles entering from then on). Vehicles and units re-route around closures."""


def link_control(ctx, table) -> LinkControl:
    """The run's :class:`LinkControl`, or a ScenarioError saying that table ``[[table]]`` needs
    live traffic (a flow that changes links calls this in ``build``)."""
    control = ctx.port(LinkControl)
    if control is None:
        raise ScenarioError(f"{ctx.scenario.source}: [[{table}]] act on the links the traffic drives on, and this "
                            f"scenario has no traffic: add a [traffic] table with random_trips or trips (or a "
                            f"[population] whose car legs drive)")
    return control


class CallPlan(Protocol):
    """Plan time: the emergency calls' geography and types (the EMS flow)."""

    n_zones: int

    def zone_of_node(self):
        """EMS zone of every city node (int array, -1 for none)."""

    def call_type_index(self, name, where) -> int:
        """Index of call type ``name``; a located ScenarioError when there is none."""

    def check_servable(self, name, where) -> None:
        """A located ScenarioError when the stations' units cannot serve call type ``name``."""

    def site_index(self, kind, name, where) -> int:
        """Index of the ``kind`` (``"station"`` / ``"hospital"``, in the order of
        :meth:`FacilityControl.sites`; ``"unit"``, in the EMS units' order) named ``name``; a
        located ScenarioError when there is none."""

    def add_places(self, node_idx) -> None:
        """Make these City nodes places units can be sent to (after every other place, so the
        others keep their indices): posts a rule sends units to."""

    def add_incidents(self, incidents, stream) -> None:
        """Scripted incidents (``twin.emergency.IncidentSpec`` with ``location_idx`` a city
        node index), drawn from run stream ``stream``."""


class CallIntake(Protocol):
    """Run time: calls into the dispatch centre (the EMS flow)."""

    clock: object

    def add_calls(self, time_s, zone_idx, type_idx, rng):
        """Calls arising during the run (times ascending, ``>= clock.now``, seconds); each
        call's dice from ``rng``. Returns their call indices."""

    def on_call(self, callback) -> None:
        """Call ``callback(call_idx, time_s, priority)`` when a call reaches dispatch."""

    def describe(self, call_idx) -> tuple:
        """``(call type index, district index)`` of a call (district in ``City.zone_ids``
        order; -1 for a call with no district, such as a scripted incident's patient; type -1
        for an inter-hospital transfer, which is no call to a centre)."""

    def withdraw_unreceived(self, first, stop) -> int:
        """Of the calls ``first .. stop - 1`` (one :meth:`add_calls`), those not yet at dispatch
        never come (a forecast member draws its own); returns how many."""

    def incidents(self):
        """After the run: one row per scripted incident (DataFrame) or None."""


class ShelterSites(Protocol):
    """Plan time: the shelters people go to (the evacuation flow's ``[[shelters]]``)."""

    #: Shelter names, in the order of every per-shelter array.
    names: tuple
    #: City node index of each shelter (int array).
    node_idx: object


class ShelterOccupancy(Protocol):
    """Run time: the people in each shelter, as far as the traffic has been simulated."""

    def persons(self, now_s):
        """Persons in each shelter at ``now_s`` (float array, :class:`ShelterSites` order)."""

    def person_seconds(self, now_s):
        """Persons in each shelter integrated from the start to ``now_s``, person-seconds
        (float array): a consumption rate per person times differences of it gives exact
        demand between two times."""


class FloodedSites(Protocol):
    """Plan time: when places stand in the water (the hazards flow's floods)."""

    def out_of_service(self, node_idx) -> tuple:
        """Intervals ``(start_s, end_s)`` during which City node ``node_idx`` stands in at least
        its flood's ``facility_depth_mm`` (``end_s`` inf: to the end of the run), merged over
        the floods, in time order; ``()`` when it stays dry."""

    def depth_mm(self, node_idx, t_s) -> float:
        """Water depth at City node ``node_idx`` at ``t_s`` (its deepest link at the floods'
        last evaluation step at or before ``t_s``, the deepest flood), mm."""


class FacilityControl(Protocol):
    """Run time: facilities another flow may take out of service (the EMS flow's stations and
    hospitals)."""

    def sites(self):
        """``(kind, index, name, node_idx)`` of every facility: kind ``"station"`` or
        ``"hospital"``, its index among those, its name, its City node index."""

    def set_in_service(self, kind, index, in_service) -> None:
        """Take a facility out of service now (``in_service`` False) or back: a station's units
        move to the nearest station in service and come back after; a hospital takes no new
        ambulance patients (transports go to the nearest hospital in service) and moves its
        ED patients and walk-ins to the nearest hospital in service."""

    def status(self, kind, index) -> dict:
        """A hospital's state now: ``occupancy`` (ED beds occupied / ED beds, 0..1; 1 without
        beds), ``waiting`` (patients waiting for an ED bed)."""

    def divert(self, index, on) -> None:
        """Put hospital ``index`` on diversion now (``on`` True: ambulances take patients to the
        nearest hospital not on diversion), take it off (False), or hand it back to its own
        diversion rule (None)."""

    def add_beds(self, index, beds) -> None:
        """Open ``beds`` surge ED beds at hospital ``index`` now (negative: close surge beds
        opened before, never its own)."""

    def post(self, kind, node_idx) -> int:
        """Send the nearest idle unit of ``kind`` (``"police"`` ...) to City node ``node_idx``
        (a place added with :meth:`CallPlan.add_places`) to stay there, out of dispatch, until
        :meth:`recall`; returns the unit's index, or -1 when none of that kind is idle."""

    def recall(self, unit) -> None:
        """End unit ``unit``'s post: it is free for dispatch again and drives home."""

    def unit_name(self, unit) -> str:
        """Unit ``unit``'s name."""

    def restation(self, unit, station) -> None:
        """Make station ``station`` (an index) unit ``unit``'s home now (None: its own again):
        idle, it drives there at once; busy, after its call."""


class Residents(Protocol):
    """Plan time: who lives where (a synthetic population)."""

    def residents(self):
        """One entry per person: ``age`` (years, int array), ``home_node_idx`` (City node
        index), ``living_alone`` (bool: a one-person household), ``car`` (bool: a car available)."""


class CallOutcome(Protocol):
    """Run time, once the EMS flow has finished: what became of calls added through
    :class:`CallIntake`."""

    def response_times_s(self, call_idx):
        """Response time of each call, seconds (NaN where no unit reached it)."""


class DayPlans(Protocol):
    """Plan time: the synthetic persons with their households and activity day plans."""

    def population(self):
        """The :class:`twin.agents.population.Population` (struct of arrays; read, never changed)."""


class HospitalBeds(Protocol):
    """Plan time: the inpatient beds of the city's hospitals (the EMS flow's ``[[hospitals]]``)."""

    def beds(self):
        """``{"ward": int, "icu": int}``: ward and ICU beds summed over the hospitals (a hospital
        without the pool counts 0)."""


class InpatientBeds(Protocol):
    """Run time: the hospitals' ward and ICU beds on the clock, shared with other flows."""

    def in_use(self, pool) -> int:
        """Beds of ``pool`` (``"ward"`` / ``"icu"``) in use now, over all hospitals."""

    def admit(self, pool, stay_s, tag) -> bool:
        """Put a patient (``tag``, a negative id) into a free bed of ``pool`` now, in the
        hospital with the most free beds of it, for ``stay_s`` seconds; False when every bed of
        the pool is taken."""
