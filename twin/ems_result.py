"""The outputs of one EMS run, where its locations sit on a city, and the KPI arithmetic.

- :class:`EmsLayout`, where a :class:`~twin.emergency.EmsSpec`'s abstract locations and
  zones sit on a city (nodes, districts, stations);
- :class:`EmsResult`, the tables and KPIs of one run, and :meth:`EmsResult.write`, the EMS
  part of a results file (:class:`twin.results.ResultsWriter`);
- :func:`time_average`, :func:`response_summary` and :func:`district_summary` (per-district
  response and the central-vs-peripheral equity gap).

Re-exported by :mod:`twin.emergency`; the run itself is :func:`twin.agents.ems.run_ems`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["EmsLayout", "EmsResult", "time_average", "response_summary", "district_summary"]


def _external_ids(lay):
    """``ids(location_idx)``: the external node id of each location (the city's id, as users
    know it), -1 without a city; text ids stay text."""
    ids = None if lay.location_node_id is None else np.asarray(lay.location_node_id)

    def node_id(loc):
        loc = np.asarray(loc, dtype=np.int64)
        if ids is None:
            return np.full(len(loc), -1, dtype=np.int64)
        out = ids[loc] if len(loc) else ids[:0]
        return out.astype(np.int64) if out.dtype.kind in "iu" else out.astype(str)

    return node_id

@dataclass(frozen=True, eq=False)
class EmsLayout:
    """Where an :class:`~twin.emergency.EmsSpec`'s abstract locations and zones sit on a city.

    Used for results files and district KPIs; an :class:`~twin.emergency.EmsSpec` alone has none of this.

    Attributes
    ----------
    location_node_idx : ndarray of int32, shape (n_locations,)
        City node index of each location, -1 for none.
    location_node_id : ndarray, shape (n_locations,), or None
        External node id of each location (int64 or str).
    zone_district_idx : ndarray of int32, shape (n_zones,)
        District (report area) of each EMS zone; several zones may share one (calls spread
        over a district's nodes).
    district_names : tuple of str
    district_central : ndarray of bool, shape (n_districts,)
        Central districts for the equity gap; all False disables the gap.
    station_names : tuple of str
        One name per station, in station order.
    station_location_idx : tuple of int
        Location of each station (a unit's ``station_idx``).
    """

    location_node_idx: np.ndarray
    location_node_id: np.ndarray | None
    zone_district_idx: np.ndarray
    district_names: tuple
    district_central: np.ndarray
    station_names: tuple
    station_location_idx: tuple

    @classmethod
    def default(cls, spec: "EmsSpec") -> "EmsLayout":
        """No city: every zone is its own district, none central; one station per distinct
        unit home location, named ``station<location_idx>``."""
        locs = tuple(sorted({u.station_idx for u in spec.units}))
        return cls(location_node_idx=np.full(spec.n_locations, -1, dtype=np.int32), location_node_id=None,
                   zone_district_idx=np.arange(spec.n_zones, dtype=np.int32),
                   district_names=tuple(z.name for z in spec.zones),
                   district_central=np.zeros(spec.n_zones, dtype=bool),
                   station_names=tuple(f"station{i}" for i in locs), station_location_idx=locs)


def _kpi_units(name):
    return "s" if name.endswith("_s") else "h" if name.endswith("_h") else "1"


@dataclass(frozen=True, eq=False)
class EmsResult:
    """Outputs of one EMS run (tables are pandas DataFrames; times in seconds from start).

    Attributes
    ----------
    calls : DataFrame
        One row per call: ``call_id, time_s, zone_idx, type_idx, priority, ready_s,
        dispatched_s, unit_idx, travel_s, on_scene_s, transport, hospital_idx,
        at_hospital_s, bed_s, available_s, outcome`` (name from :data:`~twin.emergency.OUTCOMES`),
        ``n_units`` (units sent), ``location_idx`` (where units drove to), ``wait_s``
        (ready to dispatch) and ``response_s`` (call to first unit on scene).
        NaN / -1 where a stage did not happen. Inter-hospital transfers by ambulance (see
        :class:`~twin.emergency.HospitalSpec`) are rows too, with ``zone_idx`` -1 and ``type_idx`` =
        ``len(spec.call_types)`` (type name ``"inter-hospital transfer"``): ``on_scene_s``
        is the ambulance at the sending hospital, ``bed_s`` its arrival at the receiving one;
        they are left out of the call KPIs and district tables.
    unit_events : DataFrame
        ``time_s, unit_idx, call_id, event`` (name from :data:`~twin.emergency.UNIT_EVENTS`), in event order.
    units : DataFrame
        One row per unit: ``unit_idx, name, kind, station_idx, n_dispatches, busy_s,
        utilisation`` over the KPI window.
    admissions : DataFrame
        One row per patient arriving at a ward: ``hospital_idx, call_id`` (-1 walk-in),
        ``arrival_s, bed_s, discharge_s, blocked``.
    hospitals : DataFrame
        One row per ward over the KPI window: ``hospital_idx, name, beds, arrivals,
        blocked, blocking, occupancy_mean, occupancy_max, utilisation, bed_wait_mean_s,
        waiting_mean``.
    occupancy : DataFrame
        Step series of every ward: ``time_s, hospital_idx, occupied_beds, waiting`` (values
        from ``time_s`` on); wards start empty.
    dispatch_queue : DataFrame
        Step series ``time_s, queue_length`` of the dispatch queue.
    kpis : dict
        Scalar KPIs over ``[warmup_s, until_s)`` (see :func:`twin.agents.ems.run_ems`).
    seed : int or numpy.random.SeedSequence
    until_s, end_s : float
        End of arrivals, and the time the (drained) run stopped.
    spec : EmsSpec
    assignments : DataFrame or None
        One row per unit sent to a call, in call order: ``call_id, unit_idx, slot``
        (requirement slot filled), ``dispatched_s, on_scene_s, available_s`` (NaN where
        not reached).
    stays, diverted, diversion_periods, hospital_flow, pool_occupancy : DataFrame or None
        Only when a hospital uses patient flow or diversion (see :class:`~twin.emergency.HospitalSpec`).
        ``stays``: one row per ward / ICU request: ``call_id`` (-1 walk-in), ``pool``
        (``ward``/``icu``), ``hospital_idx`` (where the bed is), ``from_hospital_idx`` (the
        ED), ``request_s`` (end of ED stay), ``bed_s``, ``discharge_s``, ``blocked``,
        ``transferred``, ``boarding_s`` (``bed_s - request_s``). ``diverted``: one row per
        diverted transport: ``call_id, time_s, nearest_hospital_idx, hospital_idx``.
        ``diversion_periods``: ``hospital_idx, start_s, end_s`` (NaN: still on).
        ``hospital_flow``: one row per hospital over the KPI window: ``ward_beds,
        icu_beds`` (-1 none), ``{ward,icu}_{admissions,blocked,occupancy_mean}``,
        ``n_boarded, boarding_mean_s, boarding_p90_s, diversion_h, diverted_from,
        diverted_to, transfers_out, transfers_in``. ``pool_occupancy``: step series
        ``time_s, hospital_idx, pool, occupied_beds, boarding``.
    relocations : DataFrame or None
        Only with move-up (``DispatchSpec.relocation``): one row per move order,
        ``time_s, unit_idx, from_location_idx, to_location_idx, planned_s`` (travel time
        when ordered), ``end_s`` (arrival, or diversion/redirection; NaN while driving or
        refused), ``driven_s, obeyed, completed``.
    incidents : DataFrame or None
        Only with scripted incidents (:attr:`~twin.emergency.EmsSpec.incidents`): one row per incident,
        ``incident_idx, name, location_idx, time_s, patients, n_p1, n_p2, n_p3,
        first_call_id`` (its patients are calls ``first_call_id .. first_call_id + patients
        - 1``), ``n_transported``, the durations from ``time_s`` ``last_on_scene_s`` (the
        last patient's first unit on scene), ``scene_clear_s`` (the last patient transported
        leaves the scene, or the last unit leaves it when none is), ``last_at_hospital_s``
        (the last transported patient at hospital; NaN when none) and ``complete_s`` (the
        last unit free), ``n_hospitals_used`` and ``hospitals`` (their names, ``;``-joined,
        in hospital order). NaN where not reached (an undrained run).
    call_taking, call_centres : DataFrame or None
        Only with call-taking centres (:attr:`~twin.emergency.DispatchSpec.centres`): one row
        per call that reached a centre, ``call_id, centre, arrive_s, answer_s, wait_s`` (NaN
        while waiting for a call taker); and per centre ``centre, call_takers, calls,
        wait_mean_s, wait_share, answered_in_target_share`` over the KPI window.
    agency_response : DataFrame or None
        Only with agencies owning unit kinds: each agency's first unit on scene
        (:func:`twin.agents.joint.joint_response`).
    hospital_choices : DataFrame or None
        Only where hospitals are chosen at the scene (``hospital_choice = "door"`` or
        diversion): one row per transport, ``call_id, time_s`` (leaving the scene),
        ``nearest_hospital_idx, hospital_idx`` (chosen), ``travel_nearest_s, travel_s`` (travel
        times then), ``door_wait_nearest_s, door_wait_s`` (the expected wait for an ED bed at
        each, as the centre saw it; NaN with the nearest choice).
    """

    calls: object
    unit_events: object
    units: object
    admissions: object
    hospitals: object
    occupancy: object
    dispatch_queue: object
    kpis: dict
    seed: int
    until_s: float
    end_s: float
    spec: EmsSpec = field(repr=False)
    assignments: object = field(default=None, repr=False)
    stays: object = field(default=None, repr=False)
    diverted: object = field(default=None, repr=False)
    diversion_periods: object = field(default=None, repr=False)
    hospital_flow: object = field(default=None, repr=False)
    pool_occupancy: object = field(default=None, repr=False)
    relocations: object = field(default=None, repr=False)
    incidents: object = field(default=None, repr=False)
    call_taking: object = field(default=None, repr=False)
    call_centres: object = field(default=None, repr=False)
    agency_response: object = field(default=None, repr=False)
    hospital_choices: object = field(default=None, repr=False)

    def district_kpis(self, layout: "EmsLayout | None" = None):
        """Per-district response KPIs and the equity gap over the KPI window.

        See :func:`district_summary`; ``layout`` defaults to :meth:`EmsLayout.default`.
        """
        layout = layout if layout is not None else EmsLayout.default(self.spec)
        calls = self.calls
        if len(calls) and (calls["zone_idx"].to_numpy() < 0).any():      # inter-hospital transfers
            calls = calls[calls["zone_idx"].to_numpy() >= 0]
        return district_summary(calls, layout.zone_district_idx, layout.district_names,
                                layout.district_central, self.spec.response_target_s,
                                self.kpis["window_start_s"], self.kpis["window_end_s"])

    def write(self, writer, *, prefix="ems", layout: "EmsLayout | None" = None) -> None:
        """Write the run into an open :class:`twin.results.ResultsWriter`.

        Datasets (``p`` is ``prefix``; every one with units; times in seconds from the start):

        ``/events/p_calls``
            One row per call: ``call_id, zone_idx, zone`` (its EMS demand point),
            ``district_idx, district`` (the city district, named as ``twin run`` prints it),
            ``node_idx, node`` (the call's location: city node index and the city's own node
            id; -1 without a city), ``type_idx, type, priority``, the times
            ``call_s, ready_s, dispatch_s, on_scene_s, at_hospital_s, bed_s, complete_s``
            (unit free again) and ``travel_s, wait_s`` (ready to dispatch),
            ``response_time_s`` (call to first unit on scene), ``state`` (terminal state,
            one of :data:`~twin.emergency.OUTCOMES`), ``unit_idx, hospital_idx, transport``. NaN / -1 where
            a stage did not happen.
        ``/events/p_unit_events``
            ``time_s, unit_idx, call_id, event`` (:data:`~twin.emergency.UNIT_EVENTS` names; call_id -1 for
            a relocation move).
        ``/events/p_assignments``
            The dispatch assignments: one row per unit sent to a call, in call order,
            ``call_id, unit_idx, slot, dispatched_s, on_scene_s, available_s``.
        ``/events/p_relocations``
            Only with move-up: the :attr:`relocations` table.
        ``/events/p_admissions``
            ``hospital_idx, call_id`` (-1 walk-in), ``arrival_s, bed_s, discharge_s, blocked``.
        ``/network/p_stations``, ``/network/p_units``, ``/network/hospitals``, ``/network/p_zones``, ``/network/p_districts``
            Stations (``name, location_idx, node_idx, n_units``), units (``name,
            station_idx``), hospitals (``name, location_idx, node_idx, beds, mode``), zones
            and districts (``central``).
        ``/timeseries/p_hospital_occupancy``
            ``occupancy_beds`` and ``waiting_patients``, time × hospital, a step series at
            every change (value from ``time_s`` on).
        ``/timeseries/p_dispatch_queue``
            ``queue_length``, time × 1.
        ``/summary/p_<kpi>``
            The scalar KPIs of :func:`twin.agents.ems.run_ems` (per-ward ones go to the
            table ``/summary/p_hospitals``) plus ``n_blocked``, ``blocking`` (blocked /
            arrivals over all wards), ``n_unserved`` and ``unserved_share`` (lost or open
            calls), and the equity gap of :func:`district_summary`. Tables
            ``/summary/p_units``, ``p_hospitals``, ``p_districts``.
        ``/events/p_inpatient_stays``, ``/events/p_diverted_transports``, ``/events/p_diversion_periods``, ``/summary/p_hospital_flow``
            Only with patient flow or diversion: the :attr:`stays`, :attr:`diverted`,
            :attr:`diversion_periods` and :attr:`hospital_flow` tables, with units; the
            scalar KPIs ``boarding_mean_s, boarding_p90_s, n_boarded, n_diverted,
            diversion_h, n_transfers, n_inpatient_blocked`` go to ``/summary/p_<kpi>``.
        ``/events/p_incidents``
            Only with scripted incidents: the :attr:`incidents` table plus ``node_idx``
            (the per-incident ``incident_<i>_*`` KPIs are not written as scalars).
        """
        lay = layout if layout is not None else EmsLayout.default(self.spec)
        node_of_loc = np.asarray(lay.location_node_idx, dtype=np.int32)
        node_id = _external_ids(lay)
        zloc = np.array([z.location_idx for z in self.spec.zones], dtype=np.int64)
        self._write_calls(writer, prefix, lay, node_of_loc, zloc, node_id)
        self._write_events(writer, prefix)
        self._write_network(writer, prefix, lay, node_of_loc, zloc, node_id)
        self._write_series(writer, prefix)
        self._write_summary(writer, prefix, lay, node_of_loc)

    def _write_calls(self, writer, p, lay, node_of_loc, zloc, node_id):
        """``/events/p_calls``: one row per call, with zone, district, node and type names."""
        spec = self.spec
        c = self.calls
        zone_idx = c["zone_idx"].to_numpy(np.int32)
        type_names = np.array([t.name for t in spec.call_types] + ["inter-hospital transfer"], dtype=object)
        zone_names = np.array([z.name for z in spec.zones] + [""], dtype=object)      # [-1]: no zone
        zone_district = np.append(np.asarray(lay.zone_district_idx, dtype=np.int32), -1)
        call_loc = (c["location_idx"].to_numpy(np.int64) if "location_idx" in c
                    else zloc[zone_idx] if len(c) else np.empty(0, np.int64))
        times = {"call_s": "time_s", "ready_s": "ready_s", "dispatch_s": "dispatched_s", "on_scene_s": "on_scene_s",
                 "at_hospital_s": "at_hospital_s", "bed_s": "bed_s", "complete_s": "available_s",
                 "travel_s": "travel_s", "wait_s": "wait_s", "response_time_s": "response_s"}
        district_names = np.array(list(lay.district_names) + [""], dtype=object)     # [-1]: no district
        cols = {"call_id": c["call_id"].to_numpy(np.int64), "zone_idx": zone_idx,
                "zone": zone_names[zone_idx].astype(str) if len(c) else np.array([], dtype=str),
                "district_idx": zone_district[zone_idx],
                "district": district_names[zone_district[zone_idx]].astype(str) if len(c) else np.array([], dtype=str),
                "node_idx": node_of_loc[call_loc] if len(c) else np.array([], dtype=np.int32),
                "node": node_id(call_loc),
                "type_idx": c["type_idx"].to_numpy(np.int16),
                "type": type_names[c["type_idx"].to_numpy(np.int64)].astype(str) if len(c) else np.array([], dtype=str),
                "priority": c["priority"].to_numpy(np.int8)}
        cols.update({k: c[v].to_numpy(np.float64) for k, v in times.items()})
        cols.update({"state": c["outcome"].astype(str).to_numpy().astype(str), "unit_idx": c["unit_idx"].to_numpy(np.int32),
                     "hospital_idx": c["hospital_idx"].to_numpy(np.int32), "transport": c["transport"].to_numpy(bool)})
        units = {k: "" for k in cols}
        units.update({k: "s" for k in times})
        writer.write_table(f"/events/{p}_calls", cols, units=units)

    def _write_events(self, writer, p):
        """``/events/p_unit_events``, ``p_assignments``, ``p_relocations`` and ``p_admissions``."""
        ue = self.unit_events
        writer.write_table(f"/events/{p}_unit_events", {
            "time_s": ue["time_s"].to_numpy(np.float64), "unit_idx": ue["unit_idx"].to_numpy(np.int32),
            "call_id": ue["call_id"].to_numpy(np.int64), "event": ue["event"].astype(str).to_numpy().astype(str)},
            units={"time_s": "s", "unit_idx": "", "call_id": "", "event": ""})
        if self.assignments is not None:
            a = self.assignments
            writer.write_table(f"/events/{p}_assignments", {
                "call_id": a["call_id"].to_numpy(np.int64), "unit_idx": a["unit_idx"].to_numpy(np.int32),
                "slot": a["slot"].to_numpy(np.int16),
                **{k: a[k].to_numpy(np.float64) for k in ("dispatched_s", "on_scene_s", "available_s")}},
                units={"call_id": "", "unit_idx": "", "slot": "", "dispatched_s": "s", "on_scene_s": "s",
                       "available_s": "s"})
        if self.relocations is not None:
            r = self.relocations
            writer.write_table(f"/events/{p}_relocations", {
                "time_s": r["time_s"].to_numpy(np.float64), "unit_idx": r["unit_idx"].to_numpy(np.int32),
                "from_location_idx": r["from_location_idx"].to_numpy(np.int32),
                "to_location_idx": r["to_location_idx"].to_numpy(np.int32),
                **{k: r[k].to_numpy(np.float64) for k in ("planned_s", "end_s", "driven_s")},
                "obeyed": r["obeyed"].to_numpy(bool), "completed": r["completed"].to_numpy(bool)},
                units={"time_s": "s", "unit_idx": "", "from_location_idx": "", "to_location_idx": "",
                       "planned_s": "s", "end_s": "s", "driven_s": "s", "obeyed": "", "completed": ""})
        ad = self.admissions
        writer.write_table(f"/events/{p}_admissions", {
            "hospital_idx": ad["hospital_idx"].to_numpy(np.int32), "call_id": ad["call_id"].to_numpy(np.int64),
            "arrival_s": ad["arrival_s"].to_numpy(np.float64), "bed_s": ad["bed_s"].to_numpy(np.float64),
            "discharge_s": ad["discharge_s"].to_numpy(np.float64), "blocked": ad["blocked"].to_numpy(bool)},
            units={"hospital_idx": "", "call_id": "", "arrival_s": "s", "bed_s": "s", "discharge_s": "s",
                   "blocked": ""})

    def _write_network(self, writer, p, lay, node_of_loc, zloc, node_id):
        """``/network/``: where things are (stations, units, hospitals, zones, districts, locations)."""
        spec = self.spec
        st_loc = np.asarray(lay.station_location_idx, dtype=np.int32)
        unit_station = np.array([int(np.flatnonzero(st_loc == u.station_idx)[0]) if (st_loc == u.station_idx).any()
                                 else -1 for u in spec.units], dtype=np.int32)
        writer.write_table(f"/network/{p}_stations", {
            "station_idx": np.arange(len(st_loc), dtype=np.int32), "name": np.array(lay.station_names, dtype=str),
            "location_idx": st_loc, "node_idx": node_of_loc[st_loc], "node": node_id(st_loc),
            "n_units": np.bincount(unit_station[unit_station >= 0], minlength=len(st_loc)).astype(np.int32)},
            units={"station_idx": "", "name": "", "location_idx": "", "node_idx": "", "node": "", "n_units": "1"})
        writer.write_table(f"/network/{p}_units", {
            "unit_idx": np.arange(spec.n_units, dtype=np.int32),
            "name": np.array([u.name for u in spec.units], dtype=str), "station_idx": unit_station,
            "location_idx": np.array([u.station_idx for u in spec.units], dtype=np.int32)},
            units={"unit_idx": "", "name": "", "station_idx": "", "location_idx": ""})
        hloc = np.array([h.location_idx for h in spec.hospitals], dtype=np.int32)
        writer.write_table("/network/hospitals", {
            "hospital_idx": np.arange(spec.n_hospitals, dtype=np.int32),
            "name": np.array([h.name for h in spec.hospitals], dtype=str), "location_idx": hloc,
            "node_idx": node_of_loc[hloc], "node": node_id(hloc),
            "beds": np.array([h.beds for h in spec.hospitals], dtype=np.int64),
            "mode": np.array([h.mode for h in spec.hospitals], dtype=str)},
            units={"hospital_idx": "", "name": "", "location_idx": "", "node_idx": "", "node": "", "beds": "beds",
                   "mode": ""})
        writer.write_table(f"/network/{p}_zones", {
            "zone_idx": np.arange(spec.n_zones, dtype=np.int32), "name": np.array([z.name for z in spec.zones], dtype=str),
            "location_idx": zloc.astype(np.int32), "node_idx": node_of_loc[zloc], "node": node_id(zloc),
            "district_idx": np.asarray(lay.zone_district_idx, dtype=np.int32),
            "arrival_rate_per_h": np.array([z.arrival_rate_per_h for z in spec.zones], dtype=np.float64)},
            units={"zone_idx": "", "name": "", "location_idx": "", "node_idx": "", "node": "", "district_idx": "",
                   "arrival_rate_per_h": "1/h"})
        writer.write_table(f"/network/{p}_districts", {
            "district_idx": np.arange(len(lay.district_names), dtype=np.int32),
            "name": np.array(lay.district_names, dtype=str), "central": np.asarray(lay.district_central, dtype=bool)},
            units={"district_idx": "", "name": "", "central": ""})
        if lay.location_node_id is not None:
            ids = np.asarray(lay.location_node_id)
            writer.write_table(f"/network/{p}_locations", {
                "location_idx": np.arange(spec.n_locations, dtype=np.int32), "node_idx": node_of_loc,
                "node_id": ids if ids.dtype.kind in "iu" else ids.astype(str)},
                units={"location_idx": "", "node_idx": "", "node_id": ""})

    def _write_series(self, writer, p):
        """``/timeseries/``: one row per change time (the last value at a shared time wins)."""
        spec = self.spec
        if spec.n_hospitals:
            occ = self.occupancy
            t_all = np.unique(occ["time_s"].to_numpy(np.float64))
            beds = np.zeros((len(t_all), spec.n_hospitals), dtype=np.float32)
            waiting = np.zeros_like(beds)
            for h in range(spec.n_hospitals):
                rows = occ[occ["hospital_idx"] == h]
                t_h = rows["time_s"].to_numpy(np.float64)
                k = np.searchsorted(t_h, t_all, side="right") - 1      # last change at or before t
                ok = k >= 0
                beds[ok, h] = rows["occupied_beds"].to_numpy()[k[ok]]
                waiting[ok, h] = rows["waiting"].to_numpy()[k[ok]]
            app = writer.series_appender(f"{p}_hospital_occupancy", {
                "occupancy_beds": (spec.n_hospitals, "beds"), "waiting_patients": (spec.n_hospitals, "1")})
            for i, t in enumerate(t_all):
                app.append(float(t), occupancy_beds=beds[i], waiting_patients=waiting[i])
        dq = self.dispatch_queue
        t_q = dq["time_s"].to_numpy(np.float64)
        keep = np.append(t_q[1:] != t_q[:-1], True)                   # last value at a shared time
        app = writer.series_appender(f"{p}_dispatch_queue", {"queue_length": (1, "1")})
        for t, q in zip(t_q[keep], dq["queue_length"].to_numpy()[keep]):
            app.append(float(t), queue_length=np.array([q], dtype=np.float32))

    def _write_summary(self, writer, p, lay, node_of_loc):
        """``/summary/``: scalar KPIs and the unit, hospital and district tables (then the
        patient-flow and incident tables, when present)."""
        c = self.calls
        for name, value in self.kpis.items():
            if name.startswith(("hospital_", "incident_", "agency_")):
                continue
            writer.write_summary(f"{p}_{name}", value, units=_kpi_units(name))
        hosp = self.hospitals
        n_arr, n_blk = int(hosp["arrivals"].sum()), int(hosp["blocked"].sum())
        inwin = ((c["time_s"] >= self.kpis["window_start_s"]) & (c["time_s"] < self.kpis["window_end_s"])
                 & (c["zone_idx"] >= 0))
        n_unserved = int((inwin & c["outcome"].isin(["lost", "open"])).sum())
        extra = {"n_blocked": n_blk, "blocking": n_blk / n_arr if n_arr else math.nan, "n_unserved": n_unserved,
                 "unserved_share": n_unserved / int(inwin.sum()) if inwin.any() else math.nan}
        districts, gap = self.district_kpis(lay)
        extra.update(gap)
        for name, value in extra.items():
            writer.write_summary(f"{p}_{name}", value, units=_kpi_units(name))
        u = self.units
        writer.write_table(f"/summary/{p}_units", {
            "unit_idx": u["unit_idx"].to_numpy(np.int32), "name": u["name"].astype(str).to_numpy().astype(str),
            "n_dispatches": u["n_dispatches"].to_numpy(np.int64), "busy_s": u["busy_s"].to_numpy(np.float64),
            "utilisation": u["utilisation"].to_numpy(np.float64)},
            units={"unit_idx": "", "name": "", "n_dispatches": "1", "busy_s": "s", "utilisation": "1"})
        hcols = {k: hosp[k].to_numpy(np.float64) for k in ("blocking", "occupancy_mean", "utilisation",
                                                             "bed_wait_mean_s", "waiting_mean")}
        writer.write_table(f"/summary/{p}_hospitals", {
            "hospital_idx": hosp["hospital_idx"].to_numpy(np.int32), "name": hosp["name"].astype(str).to_numpy().astype(str),
            "beds": hosp["beds"].to_numpy(np.int64), "arrivals": hosp["arrivals"].to_numpy(np.int64),
            "blocked": hosp["blocked"].to_numpy(np.int64), "occupancy_max": hosp["occupancy_max"].to_numpy(np.int64),
            **hcols},
            units={"hospital_idx": "", "name": "", "beds": "beds", "arrivals": "1", "blocked": "1", "occupancy_max": "beds",
                   "blocking": "1", "occupancy_mean": "beds", "utilisation": "1", "bed_wait_mean_s": "s",
                   "waiting_mean": "1"})
        if self.stays is not None:
            self._write_flow(writer, p)
        if self.incidents is not None:
            self._write_incidents(writer, p, node_of_loc)
        if self.call_taking is not None:
            self._write_call_taking(writer, p)
        if self.agency_response is not None:
            self._write_agency_response(writer, p)
        if self.hospital_choices is not None:
            hc = self.hospital_choices
            writer.write_table(f"/events/{p}_hospital_choices", {
                "call_id": hc["call_id"].to_numpy(np.int64),
                **{k: hc[k].to_numpy(np.int32) for k in ("nearest_hospital_idx", "hospital_idx")},
                **{k: hc[k].to_numpy(np.float64) for k in ("time_s", "travel_nearest_s", "travel_s",
                                                           "door_wait_nearest_s", "door_wait_s")}},
                units={"call_id": "", "nearest_hospital_idx": "", "hospital_idx": "", "time_s": "s",
                       "travel_nearest_s": "s", "travel_s": "s", "door_wait_nearest_s": "s", "door_wait_s": "s"})
        writer.write_table(f"/summary/{p}_districts", {
            "district_idx": districts["district_idx"].to_numpy(np.int32),
            "name": districts["name"].astype(str).to_numpy().astype(str),
            "central": districts["central"].to_numpy(bool),
            **{k: districts[k].to_numpy(np.int64) for k in ("n_calls", "n_unserved")},
            **{k: districts[k].to_numpy(np.float64) for k in ("response_mean_s", "response_p90_s", "within_target",
                                                                "response_p1_mean_s")}},
            units={"district_idx": "", "name": "", "central": "", "n_calls": "1", "n_unserved": "1",
                   "response_mean_s": "s", "response_p90_s": "s", "within_target": "1", "response_p1_mean_s": "s"})

    def _write_call_taking(self, writer, p):
        t, c = self.call_taking, self.call_centres
        writer.write_table(f"/events/{p}_call_taking", {
            "call_id": t["call_id"].to_numpy(np.int64), "centre": t["centre"].astype(str).to_numpy().astype(str),
            "transferred": t["transferred"].to_numpy(bool),
            **{k: t[k].to_numpy(np.float64) for k in ("arrive_s", "answer_s", "wait_s", "done_s")}},
            units={"call_id": "", "centre": "", "transferred": "", "arrive_s": "s", "answer_s": "s", "wait_s": "s",
                   "done_s": "s"})
        writer.write_table(f"/summary/{p}_call_centres", {
            "centre": c["centre"].astype(str).to_numpy().astype(str), "call_takers": c["call_takers"].to_numpy(np.float64),
            "calls": c["calls"].to_numpy(np.int64), "transfers_in": c["transfers_in"].to_numpy(np.int64),
            **{k: c[k].to_numpy(np.float64) for k in ("wait_mean_s", "wait_share", "answered_in_target_share")}},
            units={"centre": "", "call_takers": "persons", "calls": "1", "transfers_in": "1", "wait_mean_s": "s",
                   "wait_share": "1",
                   "answered_in_target_share": "1"})

    def _write_agency_response(self, writer, p):
        t = self.agency_response
        writer.write_table(f"/summary/{p}_agency_response", {
            **{k: t[k].astype(str).to_numpy().astype(str) for k in ("agency", "unit_kinds")},
            **{k: t[k].to_numpy(np.int64) for k in ("calls", "reached")},
            **{k: t[k].to_numpy(np.float64) for k in ("on_scene_mean_s", "on_scene_p90_s")}},
            units={"agency": "", "unit_kinds": "", "calls": "1", "reached": "1", "on_scene_mean_s": "s",
                   "on_scene_p90_s": "s"})

    def _write_incidents(self, writer, p, node_of_loc):
        inc = self.incidents
        durations = ("last_on_scene_s", "scene_clear_s", "last_at_hospital_s", "complete_s")
        ints = ("patients", "n_p1", "n_p2", "n_p3", "n_transported", "n_hospitals_used")
        loc = inc["location_idx"].to_numpy(np.int64)
        writer.write_table(f"/events/{p}_incidents", {
            "incident_idx": inc["incident_idx"].to_numpy(np.int32), "name": inc["name"].astype(str).to_numpy().astype(str),
            "location_idx": loc.astype(np.int32), "node_idx": node_of_loc[loc] if len(loc) else np.empty(0, np.int32),
            "time_s": inc["time_s"].to_numpy(np.float64), "first_call_id": inc["first_call_id"].to_numpy(np.int64),
            **{k: inc[k].to_numpy(np.int64) for k in ints}, **{k: inc[k].to_numpy(np.float64) for k in durations},
            "hospitals": inc["hospitals"].astype(str).to_numpy().astype(str)},
            units={"incident_idx": "", "name": "", "location_idx": "", "node_idx": "", "time_s": "s",
                   "first_call_id": "", **{k: "1" for k in ints}, **{k: "s" for k in durations}, "hospitals": ""})

    def _write_flow(self, writer, p):
        st = self.stays
        writer.write_table(f"/events/{p}_inpatient_stays", {
            "call_id": st["call_id"].to_numpy(np.int64), "pool": st["pool"].astype(str).to_numpy().astype(str),
            "hospital_idx": st["hospital_idx"].to_numpy(np.int32),
            "from_hospital_idx": st["from_hospital_idx"].to_numpy(np.int32),
            **{k: st[k].to_numpy(np.float64) for k in ("request_s", "bed_s", "discharge_s", "boarding_s")},
            "blocked": st["blocked"].to_numpy(bool), "transferred": st["transferred"].to_numpy(bool)},
            units={"call_id": "", "pool": "", "hospital_idx": "", "from_hospital_idx": "", "request_s": "s",
                   "bed_s": "s", "discharge_s": "s", "boarding_s": "s", "blocked": "", "transferred": ""})
        dv = self.diverted
        writer.write_table(f"/events/{p}_diverted_transports", {
            "call_id": dv["call_id"].to_numpy(np.int64), "time_s": dv["time_s"].to_numpy(np.float64),
            "nearest_hospital_idx": dv["nearest_hospital_idx"].to_numpy(np.int32),
            "hospital_idx": dv["hospital_idx"].to_numpy(np.int32)},
            units={"call_id": "", "time_s": "s", "nearest_hospital_idx": "", "hospital_idx": ""})
        dp = self.diversion_periods
        writer.write_table(f"/events/{p}_diversion_periods", {
            "hospital_idx": dp["hospital_idx"].to_numpy(np.int32), "start_s": dp["start_s"].to_numpy(np.float64),
            "end_s": dp["end_s"].to_numpy(np.float64)},
            units={"hospital_idx": "", "start_s": "s", "end_s": "s"})
        hf = self.hospital_flow
        ints = ("hospital_idx", "ward_beds", "icu_beds", "ward_admissions", "ward_blocked", "icu_admissions",
                "icu_blocked", "n_boarded", "diverted_from", "diverted_to", "transfers_out", "transfers_in")
        floats = {"ward_occupancy_mean": "beds", "icu_occupancy_mean": "beds", "boarding_mean_s": "s",
                  "boarding_p90_s": "s", "diversion_h": "h"}
        cols = {k: hf[k].to_numpy(np.int64) for k in ints}
        cols["name"] = hf["name"].astype(str).to_numpy().astype(str)
        cols.update({k: hf[k].to_numpy(np.float64) for k in floats})
        units = {k: "1" for k in ints}
        units.update(hospital_idx="", name="", ward_beds="beds", icu_beds="beds", **floats)
        writer.write_table(f"/summary/{p}_hospital_flow", cols, units=units)



# --------------------------------------------------------------------------------------
# KPI arithmetic

def time_average(times_s, values, start_s, end_s, initial=0.0, *, integral=False) -> float:
    """Time average (or integral) of a right-continuous step function over ``[start_s, end_s)``.

    Parameters
    ----------
    times_s : array-like of float, sorted ascending
        Times at which the value changes.
    values : array-like of float
        The value from ``times_s[k]`` until the next change (the last one at a shared time
        wins).
    start_s, end_s : float
        The window, ``start_s < end_s``.
    initial : float
        The value before the first change.
    integral : bool
        Return the integral (value × seconds) instead of the average.

    Examples
    --------
    >>> time_average([1.0, 3.0], [2.0, 0.0], 0.0, 4.0)
    1.0
    """
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if not end_s > start_s:
        raise ValueError(f"window [{start_s}, {end_s}) is empty")
    # value at start: last change at or before start
    k = np.searchsorted(t, start_s, side="right")
    v0 = v[k - 1] if k > 0 else initial
    inside = (t > start_s) & (t < end_s)
    tt = np.concatenate([[start_s], t[inside], [end_s]])
    vv = np.concatenate([[v0], v[inside]])
    total = float(np.sum(vv * np.diff(tt)))
    return total if integral else total / (end_s - start_s)


def response_summary(response_s, target_s=None) -> dict:
    """Mean, median, 90th percentile and count of response times, and share within target.

    NaN entries (unserved calls) are left out. Returns NaN statistics for no data.
    """
    r = np.asarray(response_s, dtype=np.float64)
    r = r[~np.isnan(r)]
    out = {"n": int(len(r)),
           "mean_s": float(r.mean()) if len(r) else math.nan,
           "p50_s": float(np.percentile(r, 50)) if len(r) else math.nan,
           "p90_s": float(np.percentile(r, 90)) if len(r) else math.nan}
    if target_s is not None:
        out["target_s"] = float(target_s)
        out["within_target"] = float(np.mean(r <= target_s)) if len(r) else math.nan
    return out


def district_summary(calls, zone_district_idx, district_names, district_central, response_target_s, start_s,
                     end_s):
    """Response KPIs per district and the central-vs-peripheral equity gap.

    Parameters
    ----------
    calls : DataFrame
        :attr:`EmsResult.calls` (columns ``time_s, zone_idx, priority, response_s, outcome``).
    zone_district_idx : ndarray of int, shape (n_zones,)
        District of each EMS zone.
    district_names : sequence of str, length n_districts
    district_central : ndarray of bool, shape (n_districts,)
    response_target_s : sequence of 3 floats or None
        Target of priorities 1, 2, 3 (None: no target).
    start_s, end_s : float
        Calls received in ``[start_s, end_s)`` count.

    Returns
    -------
    districts : DataFrame
        One row per district: ``district_idx, name, central, n_calls, n_unserved`` (lost or
        open), ``response_mean_s, response_p90_s`` (served calls, all priorities),
        ``within_target`` (share of served calls of a priority with a target that met it)
        and ``response_p1_mean_s``.
    gap : dict
        ``equity_gap_response_mean_s``, ``equity_gap_response_p90_s`` and
        ``equity_gap_within_target``: peripheral minus central, over the pooled calls of each
        group (times: positive when the periphery waits longer; the share within target:
        negative when fewer of its calls meet it), as ``twin run`` prints them. NaN when no
        district is central, none is peripheral, or a group has no served call.

    Examples
    --------
    >>> import pandas as pd
    >>> calls = pd.DataFrame({"time_s": [1.0, 2.0, 3.0], "zone_idx": [0, 1, 1], "priority": [1, 1, 2],
    ...                       "response_s": [300.0, 600.0, 900.0], "outcome": ["completed"] * 3})
    >>> d, gap = district_summary(calls, [0, 1], ["c", "p"], np.array([True, False]), (480.0, None, None),
    ...                           0.0, 10.0)
    >>> d["response_mean_s"].tolist(), gap["equity_gap_response_mean_s"], d["within_target"].tolist()
    ([300.0, 750.0], 450.0, [1.0, 0.0])
    """
    import pandas as pd

    names = list(district_names)
    central = np.asarray(district_central, dtype=bool)
    t = calls["time_s"].to_numpy(np.float64)
    inwin = (t >= start_s) & (t < end_s)
    dist = np.asarray(zone_district_idx, dtype=np.int64)[calls["zone_idx"].to_numpy(np.int64)] if len(calls) \
        else np.empty(0, np.int64)
    resp = calls["response_s"].to_numpy(np.float64)
    prio = calls["priority"].to_numpy(np.int64)
    target = np.array([math.nan if v is None else v for v in response_target_s], dtype=np.float64)
    tgt = target[prio - 1] if len(prio) else np.empty(0)
    unserved = calls["outcome"].isin(["lost", "open"]).to_numpy()

    def stats(sel):
        r = resp[sel & ~np.isnan(resp)]
        has_t = sel & ~np.isnan(resp) & ~np.isnan(tgt)
        p1 = resp[sel & (prio == 1) & ~np.isnan(resp)]
        return (int(sel.sum()), int((sel & unserved).sum()), float(r.mean()) if len(r) else math.nan,
                float(np.percentile(r, 90)) if len(r) else math.nan,
                float(np.mean(resp[has_t] <= tgt[has_t])) if has_t.any() else math.nan,
                float(p1.mean()) if len(p1) else math.nan)

    rows = [(d, names[d], bool(central[d])) + stats(inwin & (dist == d)) for d in range(len(names))]
    table = pd.DataFrame(rows, columns=["district_idx", "name", "central", "n_calls", "n_unserved",
                                        "response_mean_s", "response_p90_s", "within_target", "response_p1_mean_s"])
    gap = {"equity_gap_response_mean_s": math.nan, "equity_gap_response_p90_s": math.nan,
           "equity_gap_within_target": math.nan}
    if central.any() and not central.all() and len(calls):
        c = stats(inwin & central[dist])
        p = stats(inwin & ~central[dist])
        gap = {"equity_gap_response_mean_s": p[2] - c[2], "equity_gap_response_p90_s": p[3] - c[3],
               "equity_gap_within_target": p[4] - c[4]}
    return table, gap
