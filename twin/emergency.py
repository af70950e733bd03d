"""Emergency medical services: the scenario spec, distributions, codes and KPI arithmetic.

This core module holds what the EMS actors (:mod:`twin.agents.ems`) and later the CLI,
results writer and scenarios share, with no SimPy or Mesa in it:

- :class:`EmsSpec` and its groups, frozen dataclasses with units in field names, built from
  a plain dict (a TOML table) by :meth:`EmsSpec.from_dict` with clear
  :class:`~twin.errors.ScenarioError` messages;
- :class:`Dist`, a service/stay/processing-time distribution sampled by inverse transform
  from pre-drawn uniforms (so a call keeps its dice whatever unit serves it: common random
  numbers across policies);
- the unit lifecycle and call-outcome codes, and the stream names of one run;
- :func:`time_average`, :func:`response_summary` and :func:`district_summary` (per-district
  response and the central-vs-peripheral equity gap), the KPI arithmetic;
- :class:`EmsLayout` (where locations and zones sit on a city) and
  :meth:`EmsResult.write`, the EMS part of a results file;
- builders of the textbook systems the simulation is validated against
  (:func:`loss_ward_spec`, :func:`pooled_fleet_spec`, :func:`hypercube_spec`) and
  :func:`travel_time_matrix` from a :class:`~twin.graph.City`.

Fidelity: locations are indices into one static travel-time matrix (seconds); units move
on it without congestion. See :mod:`twin.agents.ems` for the process model.

The code is split over four core modules, all importable from here: :mod:`twin.dists`
(:class:`Dist` and the parsing helpers), :mod:`twin.ems_groups` (the groups,
:class:`ZoneSpec` ... :class:`IncidentSpec`), :mod:`twin.ems_result` (:class:`EmsLayout`,
:class:`EmsResult` and the KPI arithmetic) and this one (the codes, :class:`EmsSpec` with
its validation, and the builders).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from twin.dists import DIST_KINDS, Dist, _build, _check_keys, _choice, _fail, _integer, _number
from twin.ems_groups import (CallTypeSpec, DispatchSpec, HospitalSpec, IncidentSpec, RelocationSpec, ServiceSpec,
                             UnitSpec, ZoneSpec)
from twin.ems_result import EmsLayout, EmsResult, district_summary, response_summary, time_average
from twin.errors import ScenarioError

__all__ = [
    "Dist",
    "ZoneSpec",
    "CallTypeSpec",
    "UnitSpec",
    "HospitalSpec",
    "DispatchSpec",
    "RelocationSpec",
    "ServiceSpec",
    "IncidentSpec",
    "EmsSpec",
    "EmsResult",
    "EmsLayout",
    "UNIT_EVENTS",
    "OUTCOMES",
    "STREAMS",
    "STANDALONE_STREAMS",
    "DIST_KINDS",
    "POLICIES",
    "UNIT_KINDS",
    "AMBULANCE_KINDS",
    "time_average",
    "response_summary",
    "district_summary",
    "travel_time_matrix",
    "loss_ward_spec",
    "pooled_fleet_spec",
    "hypercube_spec",
]

#: Unit lifecycle event codes (int8 in the unit-events table), in lifecycle order.
UNIT_EVENTS = ("dispatched", "en_route", "on_scene", "transporting", "at_hospital", "handover", "available",
               "returning", "at_station", "relocating")
#: Call outcome codes (int8 in the calls table): open only when a run is not drained.
OUTCOMES = ("open", "completed", "lost")
#: Named random streams of one run, spawned in this order from the run seed (STYLE §10).
STREAMS = ("calls", "dispatch", "service", "hospital", "agents")
#: Streams of a standalone EMS run (:func:`twin.agents.ems.run_ems`): the EMS ones, then the
#: scripted incidents' own. In a scenario run the flows declare their streams
#: (:data:`twin.runner.RUN_STREAMS`) and the incidents flow hands the EMS model its stream.
STANDALONE_STREAMS = STREAMS + ("incidents",)
#: Accepted dispatch policies.
POLICIES = ("nearest", "preference")
#: Unit kinds: advanced and basic life support ambulances, fire engines, police cars.
UNIT_KINDS = ("als", "bls", "fire", "police")
#: The unit kinds that can transport a patient to hospital.
AMBULANCE_KINDS = ("als", "bls")
SERVICE_MODES = ("path", "busy_time")
RETURN_MODES = ("drive", "instant")
WARD_MODES = ("loss", "queue")


def _dist_conv(value, where):
    return Dist.parse(value, where)


def _tuple_of(cls, value, where, **converters):
    if isinstance(value, dict) or not isinstance(value, (list, tuple)):
        _fail(where, f"found {type(value).__name__}; expected a list of tables")
    return tuple(item if isinstance(item, cls) else _build(cls, item, f"{where}[{i}]", **converters)
                 for i, item in enumerate(value))


@dataclass(frozen=True, eq=False)
class EmsSpec:
    """A whole EMS system on one static travel-time matrix (see the module docstring).

    Attributes
    ----------
    travel_time_s : ndarray of float64, shape (n_locations, n_locations)
        Travel time between locations (stations, hospitals, zones), seconds; ``inf`` where
        unreachable. Use :func:`travel_time_matrix` for a :class:`~twin.graph.City`.
    zones, call_types, units, hospitals : tuples of the groups above
    dispatch : DispatchSpec
    service : ServiceSpec
    hourly_profile : tuple of 24 floats
        Multiplier of every zone's rate in each hour of the day (hour 0 = first hour of the
        run); defaults to flat.
    response_target_s : tuple of 3 floats or None
        Response-time target of priorities 1, 2, 3 for the "share within target" KPI
        (default 480 s for P1, none for P2 and P3).
    warmup_s : float
        KPIs are computed over ``[warmup_s, until_s)``.
    rate_table_per_h : ndarray of float64, shape (24, n_zones, n_call_types), or None
        Call rates by hour of the day (hour 0 = first hour of the run, repeating), zone and
        call type, calls/hour. When given it replaces ``arrival_rate_per_h ×
        hourly_profile × share`` for generating calls, so zones may have their own daily
        profiles and type mixes (per-district rates, a population present by hour);
        ``zones[].arrival_rate_per_h`` and the shares are then only descriptive.
        ``None`` (default): the product form.
    incidents : tuple of IncidentSpec
        Scripted mass-casualty incidents (default none).

    Raises
    ------
    ScenarioError
        From ``__post_init__``: any inconsistency, with where it is and what is accepted.
    """

    travel_time_s: np.ndarray
    zones: tuple = ()
    call_types: tuple = (CallTypeSpec("emergency"),)
    units: tuple = ()
    hospitals: tuple = ()
    dispatch: DispatchSpec = DispatchSpec()
    service: ServiceSpec = ServiceSpec()
    hourly_profile: tuple = (1.0,) * 24
    response_target_s: tuple = (480.0, None, None)
    warmup_s: float = 0.0
    rate_table_per_h: object = None
    incidents: tuple = ()

    # ---- construction from plain data ------------------------------------------------
    @classmethod
    def from_dict(cls, data, where="ems") -> "EmsSpec":
        """Build and validate a spec from nested dicts and lists (e.g. a parsed TOML table).

        Distributions are a number (constant seconds) or ``{kind, mean_s, cv}`` tables.

        Examples
        --------
        >>> spec = EmsSpec.from_dict({"travel_time_s": [[0.0]], "zones": [{"name": "z",
        ...     "location_idx": 0, "arrival_rate_per_h": 2.0}],
        ...     "units": [{"name": "a1", "station_idx": 0}]})
        >>> spec.n_units, spec.n_locations
        (1, 1)
        """
        if isinstance(data, EmsSpec):
            return data
        _check_keys(data, cls, where)
        if "travel_time_s" not in data:
            _fail(where, "missing 'travel_time_s' (a square matrix of seconds between locations)")
        kw = dict(data)
        if "zones" in kw:
            kw["zones"] = _tuple_of(ZoneSpec, kw["zones"], f"{where}.zones")
        if "call_types" in kw:
            kw["call_types"] = _tuple_of(CallTypeSpec, kw["call_types"], f"{where}.call_types", on_scene=_dist_conv)
        if "units" in kw:
            kw["units"] = _tuple_of(UnitSpec, kw["units"], f"{where}.units", busy_time=_dist_conv)
        if "hospitals" in kw:
            kw["hospitals"] = _tuple_of(HospitalSpec, kw["hospitals"], f"{where}.hospitals",
                                        length_of_stay=_dist_conv, ward_los=_dist_conv, icu_los=_dist_conv)
        if "dispatch" in kw and not isinstance(kw["dispatch"], DispatchSpec):
            dists = lambda v, w: tuple(_dist_conv(x, f"{w}[{i}]") for i, x in enumerate(v))   # noqa: E731
            per_zone = lambda v, w: tuple(dists(x, f"{w}[{i}]") if isinstance(x, (list, tuple))     # noqa: E731
                                          else _dist_conv(x, f"{w}[{i}]") for i, x in enumerate(v))
            kw["dispatch"] = _build(DispatchSpec, kw["dispatch"], f"{where}.dispatch", processing=_dist_conv,
                                    type_processing=per_zone, transfer=_dist_conv, centre_processing=dists,
                                    aid_delay=_dist_conv)
        if "service" in kw and not isinstance(kw["service"], ServiceSpec):
            kw["service"] = _build(ServiceSpec, kw["service"], f"{where}.service", busy_time=_dist_conv,
                                   turnout=_dist_conv, handover=_dist_conv)
        if "incidents" in kw:
            kw["incidents"] = _tuple_of(IncidentSpec, kw["incidents"], f"{where}.incidents")
        return cls(**kw)

    # ---- validation --------------------------------------------------------------------
    def __post_init__(self):
        tt = self._check_travel_times()
        n_loc = tt.shape[0]
        self._check_sequences()
        object.__setattr__(self, "warmup_s", _number(self.warmup_s, "ems.warmup_s"))
        self._check_rate_table()
        self._check_zones(n_loc)
        self._check_call_types()
        self._check_units(n_loc)
        self._check_hospitals(n_loc)
        self._check_unique_names()
        self._check_dispatch()
        self._check_relocation(n_loc)
        self._check_service()
        self._check_profile_and_targets()
        self._check_reachability(tt)
        if self.incidents:
            self._check_incidents(tt)

    def _check_travel_times(self):
        """Store :attr:`travel_time_s` as a read-only float64 matrix, checked, and return it."""
        w = "ems"
        tt = self.travel_time_s
        try:
            tt = np.array(tt, dtype=np.float64)
        except (TypeError, ValueError):
            _fail(f"{w}.travel_time_s", "expected a square matrix of numbers (seconds)")
        if tt.ndim != 2 or tt.shape[0] != tt.shape[1] or tt.shape[0] == 0:
            _fail(f"{w}.travel_time_s", f"shape {tt.shape}; expected a non-empty square matrix "
                                        f"(n_locations, n_locations)")
        bad = np.argwhere(np.isnan(tt) | (tt < 0))
        if len(bad):
            i, j = bad[0]
            _fail(f"{w}.travel_time_s[{i}][{j}]", f"found {tt[i, j]}; expected seconds >= 0 (inf if unreachable)")
        tt.setflags(write=False)
        object.__setattr__(self, "travel_time_s", tt)
        return tt

    def _check_sequences(self):
        """Store the list-valued fields as tuples (any other type is an error)."""
        w = "ems"
        for name in ("zones", "call_types", "units", "hospitals", "hourly_profile", "response_target_s"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                _fail(f"{w}.{name}", f"found {type(value).__name__}; expected a list")
            object.__setattr__(self, name, tuple(value))

    def _check_rate_table(self):
        """Store :attr:`rate_table_per_h`, when given, as a read-only checked array."""
        w = "ems"
        if self.rate_table_per_h is None:
            return
        try:
            rt = np.array(self.rate_table_per_h, dtype=np.float64)
        except (TypeError, ValueError):
            _fail(f"{w}.rate_table_per_h", "expected an array of calls/hour, shape (24, n_zones, n_call_types)")
        want = (24, len(self.zones), len(self.call_types))
        if rt.shape != want:
            _fail(f"{w}.rate_table_per_h", f"shape {rt.shape}; expected (24, n_zones, n_call_types) = {want}")
        bad = np.argwhere(~np.isfinite(rt) | (rt < 0))
        if len(bad):
            h, j, k = bad[0]
            _fail(f"{w}.rate_table_per_h[{h}][{j}][{k}]", f"found {rt[h, j, k]}; expected calls/hour >= 0")
        rt.setflags(write=False)
        object.__setattr__(self, "rate_table_per_h", rt)

    def _check_zones(self, n_loc):
        w = "ems"
        for i, z in enumerate(self.zones):
            at = f"{w}.zones[{i}] ('{z.name}')"
            _integer(z.location_idx, f"{at}.location_idx", maximum=n_loc - 1)
            _number(z.arrival_rate_per_h, f"{at}.arrival_rate_per_h")

    def _check_call_types(self):
        """Check the call types and store them with checked needs (:meth:`_check_needs`)."""
        w = "ems"
        if len(self.call_types) == 0:
            _fail(f"{w}.call_types", "empty; expected at least one call type")
        for i, c in enumerate(self.call_types):
            at = f"{w}.call_types[{i}] ('{c.name}')"
            _integer(c.priority, f"{at}.priority", minimum=1, maximum=3)
            _number(c.share, f"{at}.share")
            _number(c.transport_probability, f"{at}.transport_probability")
            if c.transport_probability > 1:
                _fail(f"{at}.transport_probability",
                      f"found {c.transport_probability}; expected a probability in [0, 1]")
            if not isinstance(c.on_scene, Dist):
                _fail(f"{at}.on_scene", f"found {c.on_scene!r}; expected a Dist")
        offered = {str(s) for h in self.hospitals for s in h.specialties}
        for i, c in enumerate(self.call_types):
            if c.icu and not any(h.icu_beds for h in self.hospitals):
                _fail(f"{w}.call_types[{i}] ('{c.name}').icu",
                      "its patients need an ICU bed and no hospital has ICU beds; give a hospital icu_beds > 0")
            if c.specialty and c.specialty not in offered:
                _fail(f"{w}.call_types[{i}] ('{c.name}').specialty",
                      f"{c.specialty!r} is offered by no hospital (hospitals' specialties: "
                      f"{', '.join(sorted(offered)) or 'none'})")
        object.__setattr__(self, "call_types", tuple(self._check_needs(c, f"{w}.call_types[{i}] ('{c.name}')")
                                                     for i, c in enumerate(self.call_types)))
        total = sum(c.share for c in self.call_types)
        if not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-9):
            _fail(f"{w}.call_types", f"shares sum to {total}; expected 1")

    def _check_units(self, n_loc):
        w = "ems"
        for i, u in enumerate(self.units):
            at = f"{w}.units[{i}] ('{u.name}')"
            _integer(u.station_idx, f"{at}.station_idx", maximum=n_loc - 1)
            if u.busy_time is not None and not isinstance(u.busy_time, Dist):
                _fail(f"{at}.busy_time", f"found {u.busy_time!r}; expected a Dist or None")
            _choice(u.kind, f"{at}.kind", UNIT_KINDS)

    def _check_hospitals(self, n_loc):
        """Check the hospitals and store them with checked patient flow (:meth:`_check_flow`)."""
        w = "ems"
        for i, h in enumerate(self.hospitals):
            at = f"{w}.hospitals[{i}] ('{h.name}')"
            _integer(h.location_idx, f"{at}.location_idx", maximum=n_loc - 1)
            _integer(h.beds, f"{at}.beds")
            _choice(h.mode, f"{at}.mode", WARD_MODES)
            _number(h.walk_in_rate_per_h, f"{at}.walk_in_rate_per_h")
            if not isinstance(h.length_of_stay, Dist):
                _fail(f"{at}.length_of_stay", f"found {h.length_of_stay!r}; expected a Dist")
            if h.mode == "queue" and h.beds == 0 and (h.walk_in_rate_per_h > 0 or self._transports()):
                _fail(f"{at}.beds", "found 0 beds in a queue ward; patients would wait forever. "
                                    "Use beds >= 1 or mode = 'loss'")
        clean = [self._check_flow(h, f"{w}.hospitals[{i}] ('{h.name}')") for i, h in enumerate(self.hospitals)]
        object.__setattr__(self, "hospitals", tuple(clean))
        for i, h in enumerate(self.hospitals):
            at = f"{w}.hospitals[{i}] ('{h.name}')"
            if any(h.icu_probability) and h.icu_beds is None and h.transfer and \
                    not any(g.icu_beds for g in self.hospitals):
                _fail(f"{at}.icu_probability", "ICU patients would be transferred but no hospital has icu_beds "
                                               ">= 1; add an ICU pool somewhere or set icu_probability to 0")

    def _check_unique_names(self):
        w = "ems"
        for name, label in ((self.zones, "zone"), (self.units, "unit"), (self.hospitals, "hospital"),
                            (self.call_types, "call type")):
            names = [x.name for x in name]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                _fail(w, f"duplicate {label} names {dup}; expected unique names")

    def _check_centres(self):
        """The call-taking centres and agencies (:func:`twin.ems_centres.check_centres`)."""
        from twin.ems_centres import check_centres

        check_centres(self, UNIT_KINDS)

    def _check_dispatch(self):
        """Check the dispatch policy and store the preference lists checked (relocation: see
        :meth:`_check_relocation`)."""
        w = "ems"
        d = self.dispatch
        _choice(d.policy, f"{w}.dispatch.policy", POLICIES)
        _choice(d.hospital_choice, f"{w}.dispatch.hospital_choice", ("nearest", "door"))
        _number(d.hospital_report_s, f"{w}.dispatch.hospital_report_s")
        if d.max_queue is not None:
            _integer(d.max_queue, f"{w}.dispatch.max_queue")
        if not isinstance(d.processing, Dist):
            _fail(f"{w}.dispatch.processing", f"found {d.processing!r}; expected a Dist")
        self._check_centres()
        n_units = len(self.units)
        if d.policy == "preference":
            lists = d.preference_lists
            if not isinstance(lists, (list, tuple)) or len(lists) != len(self.zones):
                found = len(lists) if isinstance(lists, (list, tuple)) else repr(lists)
                _fail(f"{w}.dispatch.preference_lists", f"found {found} lists for {len(self.zones)} zones; expected "
                                                        f"one list of unit indices per zone")
            clean = []
            for j, lst in enumerate(lists):
                at = f"{w}.dispatch.preference_lists[{j}]"
                if not isinstance(lst, (list, tuple)) or len(lst) == 0:
                    _fail(at, f"found {lst!r}; expected a non-empty list of unit indices")
                lst = tuple(_integer(u, at, maximum=n_units - 1) for u in lst)
                if len(set(lst)) != len(lst):
                    _fail(at, f"found {list(lst)}; expected distinct unit indices")
                clean.append(lst)
            object.__setattr__(self, "dispatch", dataclasses.replace(d, preference_lists=tuple(clean)))
        elif d.preference_lists:
            _fail(f"{w}.dispatch.preference_lists", "given with policy = 'nearest'; set policy = 'preference' "
                                                    "or drop the lists")

    def _check_service(self):
        w = "ems"
        s = self.service
        _choice(s.mode, f"{w}.service.mode", SERVICE_MODES)
        _choice(s.return_mode, f"{w}.service.return_mode", RETURN_MODES)
        for name in ("busy_time", "turnout", "handover"):
            if not isinstance(getattr(s, name), Dist):
                _fail(f"{w}.service.{name}", f"found {getattr(s, name)!r}; expected a Dist")

    def _check_profile_and_targets(self):
        """Store :attr:`hourly_profile` and :attr:`response_target_s` as checked float tuples."""
        w = "ems"
        if len(self.hourly_profile) != 24:
            _fail(f"{w}.hourly_profile", f"{len(self.hourly_profile)} values; expected 24 (one per hour)")
        prof = tuple(_number(v, f"{w}.hourly_profile[{h}]") for h, v in enumerate(self.hourly_profile))
        object.__setattr__(self, "hourly_profile", prof)
        if len(self.response_target_s) != 3:
            _fail(f"{w}.response_target_s", f"{len(self.response_target_s)} values; expected 3 (P1, P2, P3; "
                                            f"null for none)")
        object.__setattr__(self, "response_target_s", tuple(
            _number(v, f"{w}.response_target_s[{k}]", strict=True, allow_none=True)
            for k, v in enumerate(self.response_target_s)))

    def _check_reachability(self, tt):
        """Every call must be able to end (STYLE §9: fail at the boundary): enough units of
        each needed kind, a unit that can reach each zone with calls, a reachable hospital
        where calls are transported, and ambulances for transfers by ambulance."""
        w = "ems"
        n_units = len(self.units)
        rt = self.rate_table_per_h
        zone_demand = ([z.arrival_rate_per_h > 0 for z in self.zones] if rt is None
                       else list(rt.sum(axis=(0, 2)) > 0))
        type_demand = ([c.share > 0 for c in self.call_types] if rt is None else list(rt.sum(axis=(0, 1)) > 0))
        has_demand = any(zone_demand)
        if has_demand and n_units == 0:
            _fail(f"{w}.units", "no units but zones have calls; add units or set arrival_rate_per_h = 0")
        if has_demand:
            self._check_unit_kinds(type_demand)
        for j, z in enumerate(self.zones):
            if not zone_demand[j]:
                continue
            cand = (range(n_units) if self.dispatch.policy == "nearest" else self.dispatch.preference_lists[j])
            if not any(math.isfinite(tt[self.units[u].station_idx, z.location_idx]) for u in cand):
                _fail(f"{w}.zones[{j}] ('{z.name}')", "no eligible unit's station can reach this zone "
                                                      "(all travel times are inf)")
            if self.service.mode == "path" and self._transports():
                if not self.hospitals:
                    _fail(f"{w}.hospitals", "calls are transported (transport_probability > 0) but there "
                                            "are no hospitals")
                if not any(math.isfinite(tt[z.location_idx, h.location_idx]) for h in self.hospitals):
                    _fail(f"{w}.zones[{j}] ('{z.name}')", "no hospital is reachable from this zone")
        if any(h.transfer_by_ambulance for h in self.hospitals) and not any(u.kind in AMBULANCE_KINDS
                                                                            for u in self.units):
            _fail(f"{w}.hospitals", "transfer_by_ambulance = true but there are no ambulances (als, bls) to "
                                    "drive the transfers")

    def _check_unit_kinds(self, type_demand):
        """Each call type with calls needs enough units of each required kind (or its fallback)."""
        w = "ems"
        n_kind = {k: sum(u.kind == k for u in self.units) for k in UNIT_KINDS}
        for i, c in enumerate(self.call_types):
            if not type_demand[i]:
                continue
            fb = dict(c.fallback)
            for kind, n in c.requires:
                have = n_kind[kind] + (n_kind[fb[kind]] if kind in fb else 0)
                if have < n:
                    sub = f" or its fallback '{fb[kind]}'" if kind in fb else ""
                    _fail(f"{w}.call_types[{i}] ('{c.name}')",
                          f"requires {n} '{kind}' unit(s) but the system has {have} of kind '{kind}'{sub}; "
                          f"no unit set can serve this call type (units by kind: "
                          f"{', '.join(f'{k}={v}' for k, v in n_kind.items())})")

    def _check_incidents(self, tt):
        """Check :attr:`incidents` (each error names the incident) and store them cleaned."""
        w = "ems.incidents"
        if not isinstance(self.incidents, (list, tuple)):
            _fail(w, f"found {type(self.incidents).__name__}; expected a list of IncidentSpec")
        type_names = [c.name for c in self.call_types]
        n_kind = {k: sum(u.kind == k for u in self.units) for k in UNIT_KINDS}
        clean = []
        for i, inc in enumerate(self.incidents):
            if isinstance(inc, dict):
                inc = _build(IncidentSpec, inc, f"{w}[{i}]")
            if not isinstance(inc, IncidentSpec):
                _fail(f"{w}[{i}]", f"found {inc!r}; expected an IncidentSpec or a table")
            at = f"{w}[{i}] ('{inc.name}')"
            loc = _integer(inc.location_idx, f"{at}.location_idx", maximum=tt.shape[0] - 1)
            t = _number(inc.time_s, f"{at}.time_s")
            n = _integer(inc.patients, f"{at}.patients", minimum=1)
            p_tr = _number(inc.transport_probability, f"{at}.transport_probability")
            if p_tr > 1:
                _fail(f"{at}.transport_probability", f"found {p_tr!r}; expected a probability in [0, 1]")
            triage = inc.triage
            if triage is not None:
                if not isinstance(triage, (list, tuple)) or len(triage) != 3:
                    _fail(f"{at}.triage", f"found {triage!r}; expected 3 shares (P1, P2, P3) summing to 1")
                triage = tuple(_number(x, f"{at}.triage[P{k + 1}]") for k, x in enumerate(triage))
                if not math.isclose(math.fsum(triage), 1.0, rel_tol=0, abs_tol=1e-9):
                    _fail(f"{at}.triage", f"shares {list(triage)} sum to {math.fsum(triage):g}; expected 1")
            ctype = inc.call_type if inc.call_type is not None else type_names[0]
            if ctype not in type_names:
                _fail(f"{at}.call_type", f"found {ctype!r}; expected one of {', '.join(map(repr, type_names))}")
            c = self.call_types[type_names.index(ctype)]
            fb = dict(c.fallback)
            for kind, k in c.requires:
                have = n_kind[kind] + (n_kind[fb[kind]] if kind in fb else 0)
                if have < k:
                    _fail(at, f"call type {ctype!r} requires {k} '{kind}' unit(s) but the system has {have}; "
                              f"no unit set can serve the incident's patients")
            slots = c.slots
            if p_tr > 0 and not any(k in AMBULANCE_KINDS or f in AMBULANCE_KINDS for k, f in slots):
                _fail(f"{at}.transport_probability", f"found {p_tr} but call type {ctype!r} requires no "
                                                     f"ambulance ({', '.join(AMBULANCE_KINDS)}); only ambulances "
                                                     f"transport")
            if not any(math.isfinite(tt[u.station_idx, loc]) for u in self.units):
                _fail(at, f"no unit's station can reach location {loc} (all travel times are inf)")
            if p_tr > 0 and self.service.mode == "path":
                if not self.hospitals:
                    _fail(at, "patients are transported (transport_probability > 0) but there are no hospitals")
                if not any(math.isfinite(tt[loc, h.location_idx]) for h in self.hospitals):
                    _fail(at, f"no hospital is reachable from location {loc}")
            clean.append(IncidentSpec(str(inc.name), loc, t, n, triage, ctype, p_tr))
        names = [x.name for x in clean]
        dup = sorted({x for x in names if names.count(x) > 1})
        if dup:
            _fail(w, f"duplicate incident names {dup}; expected unique names")
        object.__setattr__(self, "incidents", tuple(clean))

    def _check_relocation(self, n_loc):
        d, w = self.dispatch, "ems.dispatch"
        rate = _number(d.compliance_rate, f"{w}.compliance_rate")
        if rate > 1:
            _fail(f"{w}.compliance_rate", f"found {rate!r}; expected a probability in [0, 1]")
        rules = d.relocation
        if not isinstance(rules, (list, tuple)):
            _fail(f"{w}.relocation", f"found {type(rules).__name__}; expected a list of RelocationSpec")
        stations = {u.station_idx for u in self.units}
        seen, clean = set(), []
        for i, r in enumerate(rules):
            at = f"{w}.relocation[{i}]"
            if isinstance(r, dict):
                r = _build(RelocationSpec, r, at)
            if not isinstance(r, RelocationSpec):
                _fail(at, f"found {r!r}; expected a RelocationSpec or a table {{kinds, table}}")
            kinds = (r.kinds,) if isinstance(r.kinds, str) else tuple(r.kinds)
            for k in kinds:
                _choice(k, f"{at}.kinds", UNIT_KINDS)
            if not kinds or seen & set(kinds):
                _fail(f"{at}.kinds", f"found {list(kinds)}; expected a non-empty list of kinds not in another "
                                     f"relocation table")
            seen |= set(kinds)
            if not isinstance(r.table, (list, tuple)) or not r.table:
                _fail(f"{at}.table", f"found {r.table!r}; expected a non-empty list of rows (row n-1: the "
                                     f"stations n available units should occupy)")
            n_kind = sum(u.kind in kinds for u in self.units)
            rows = []
            for n, row in enumerate(r.table, start=1):
                rat = f"{at}.table[{n - 1}]"
                if not isinstance(row, (list, tuple)) or len(row) > n:
                    _fail(rat, f"found {row!r}; expected a list of at most {n} station location(s) for {n} "
                               f"available unit(s)")
                row = tuple(_integer(x, rat, maximum=n_loc - 1) for x in row)
                for x in row:
                    if x not in stations:
                        _fail(rat, f"location {x} is not a station (stations: {sorted(stations)})")
                rows.append(row)
            if len(rows) > max(n_kind, 1):
                _fail(f"{at}.table", f"{len(rows)} rows but only {n_kind} unit(s) of kinds {list(kinds)}; "
                                     f"expected at most one row per unit")
            clean.append(RelocationSpec(kinds, tuple(rows)))
        object.__setattr__(self, "dispatch", dataclasses.replace(d, relocation=tuple(clean), compliance_rate=rate))

    @staticmethod
    def _check_needs(c, at):
        """``c`` with ``requires`` and ``fallback`` as checked tuples of pairs."""
        def pairs(value, name):
            if isinstance(value, dict):
                value = tuple(value.items())
            if not isinstance(value, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2
                                                                for p in value):
                _fail(f"{at}.{name}", f"found {value!r}; expected a table kind -> "
                                      f"{'count' if name == 'requires' else 'kind'}")
            return tuple(tuple(p) for p in value)

        req = pairs(c.requires, "requires")
        out = []
        for kind, n in req:
            _choice(kind, f"{at}.requires", UNIT_KINDS)
            out.append((kind, _integer(n, f"{at}.requires.{kind}")))
        if len({k for k, _ in out}) != len(out):
            _fail(f"{at}.requires", f"found {list(req)}; expected each kind once")
        if sum(n for _, n in out) == 0:
            _fail(f"{at}.requires", f"found {dict(out)}; expected at least one unit")
        fbs = pairs(c.fallback, "fallback")
        for kind, sub in fbs:
            _choice(kind, f"{at}.fallback", UNIT_KINDS)
            _choice(sub, f"{at}.fallback.{kind}", UNIT_KINDS)
            if sub == kind:
                _fail(f"{at}.fallback.{kind}", f"found {sub!r}; expected a different kind")
        if len({k for k, _ in fbs}) != len(fbs):
            _fail(f"{at}.fallback", f"found {list(fbs)}; expected each kind once")
        fb = dict(fbs)
        if c.transport_probability > 0 and not any(k in AMBULANCE_KINDS or fb.get(k) in AMBULANCE_KINDS
                                                   for k, n in out if n > 0):
            _fail(f"{at}.transport_probability", f"found {c.transport_probability} but the call type requires "
                                                 f"no ambulance ({', '.join(AMBULANCE_KINDS)}); only ambulances "
                                                 f"transport")
        return dataclasses.replace(c, requires=tuple(p for p in out if p[1] > 0), fallback=fbs)

    @staticmethod
    def _check_flow(h, at):
        """``h`` with its patient-flow fields checked (probabilities as float tuples)."""
        for name in ("ward_beds", "icu_beds"):
            if getattr(h, name) is not None:
                _integer(getattr(h, name), f"{at}.{name}")
        for name in ("ward_los", "icu_los"):
            if not isinstance(getattr(h, name), Dist):
                _fail(f"{at}.{name}", f"found {getattr(h, name)!r}; expected a Dist")
        for name in ("boarding", "diversion", "transfer", "transfer_by_ambulance"):
            if not isinstance(getattr(h, name), bool):
                _fail(f"{at}.{name}", f"found {getattr(h, name)!r}; expected true or false")
        thr = _number(h.diversion_threshold, f"{at}.diversion_threshold", strict=True)
        if thr > 1:
            _fail(f"{at}.diversion_threshold", f"found {thr!r}; expected an occupied share of beds in (0, 1]")
        probs = {}
        for name in ("ward_probability", "icu_probability"):
            v = getattr(h, name)
            if not isinstance(v, (list, tuple)) or len(v) != 3:
                _fail(f"{at}.{name}", f"found {v!r}; expected 3 probabilities (P1, P2, P3)")
            probs[name] = tuple(_number(x, f"{at}.{name}[{k}]") for k, x in enumerate(v))
            if max(probs[name]) > 1:
                _fail(f"{at}.{name}", f"found {list(v)}; expected probabilities in [0, 1]")
        for k in range(3):
            if probs["ward_probability"][k] + probs["icu_probability"][k] > 1 + 1e-12:
                _fail(f"{at}", f"ward_probability[{k}] + icu_probability[{k}] = "
                               f"{probs['ward_probability'][k] + probs['icu_probability'][k]}; expected <= 1")
        if any(probs["ward_probability"]) and h.ward_beds is None:
            _fail(f"{at}.ward_probability", "ward admissions given but no ward_beds; add ward_beds or set "
                                            "ward_probability to 0")
        if h.transfer_by_ambulance and not h.transfer:
            _fail(f"{at}.transfer_by_ambulance", "true but transfer = false; set transfer = true as well")
        if any(probs["icu_probability"]) and h.icu_beds is None and not h.transfer:
            _fail(f"{at}.icu_probability", "ICU admissions given but no icu_beds and transfer = false; add "
                                           "icu_beds, set transfer = true, or set icu_probability to 0")
        return dataclasses.replace(h, ward_probability=probs["ward_probability"],
                                   icu_probability=probs["icu_probability"], diversion_threshold=thr)

    def _transports(self):
        return any(c.transport_probability > 0 for c in self.call_types)

    # ---- convenience -------------------------------------------------------------------
    @property
    def n_locations(self) -> int:
        return self.travel_time_s.shape[0]

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_zones(self) -> int:
        return len(self.zones)

    @property
    def n_hospitals(self) -> int:
        return len(self.hospitals)


def travel_time_matrix(city, node_ids, link_cost_s=None) -> np.ndarray:
    """Static travel times between the given nodes of a city, seconds.

    The result indexes locations in ``node_ids`` order (stations, hospitals and zone
    centroids alike), ready for :attr:`EmsSpec.travel_time_s`.

    Parameters
    ----------
    city : twin.graph.City
    node_ids : sequence of node ids
    link_cost_s : ndarray of float64, shape (n_links,), optional
        Link costs (free-flow times when omitted), see :meth:`twin.graph.City.travel_times`.
    """
    return city.travel_times(list(node_ids), list(node_ids), link_cost_s=link_cost_s)


# --------------------------------------------------------------------------------------
# textbook systems

def loss_ward_spec(beds, admission_rate_per_h, length_of_stay, *, mode="loss", warmup_s=0.0) -> EmsSpec:
    """One ward with Poisson admissions and no ambulances: M/G/c/c (loss) or M/G/c (queue)."""
    return EmsSpec(travel_time_s=np.zeros((1, 1)),
                   hospitals=(HospitalSpec("ward", 0, beds, Dist.parse(length_of_stay, "length_of_stay"), mode,
                                           admission_rate_per_h),),
                   warmup_s=warmup_s)


def pooled_fleet_spec(n_units, call_rate_per_h, busy_time, *, max_queue=None, warmup_s=0.0) -> EmsSpec:
    """``n_units`` identical units at one station serving one zone with no travel and no
    hospital: an M/G/c queue (``max_queue=None``) or loss system (``max_queue=0``)."""
    return EmsSpec(travel_time_s=np.zeros((1, 1)),
                   zones=(ZoneSpec("zone", 0, call_rate_per_h),),
                   units=tuple(UnitSpec(f"unit{i}", 0) for i in range(n_units)),
                   dispatch=DispatchSpec("nearest", (), Dist("constant", 0.0, 0.0), max_queue),
                   service=ServiceSpec(mode="busy_time", busy_time=Dist.parse(busy_time, "busy_time")),
                   warmup_s=warmup_s)


def hypercube_spec(arrival_rate_per_h, mean_busy_s, preference_lists, travel_time_s, *, variant="loss",
                   warmup_s=0.0) -> EmsSpec:
    """Larson's hypercube system: distinguishable units, Poisson atoms, fixed preference
    lists, exponential busy time independent of travel, instant return.

    Parameters
    ----------
    arrival_rate_per_h : sequence of float, shape (J,)
    mean_busy_s : sequence of float, shape (N,)
        Mean busy time of each unit (``1 / μ_n``), seconds.
    preference_lists : sequence of J sequences of unit indices
    travel_time_s : array-like, shape (N, J)
        Travel time from unit ``n``'s station to atom ``j``. Locations ``0..N-1`` are the
        stations and ``N..N+J-1`` the atoms in the resulting spec.
    variant : {"loss", "queue"}
    """
    tau = np.asarray(travel_time_s, dtype=np.float64)
    n, j = len(mean_busy_s), len(arrival_rate_per_h)
    if tau.shape != (n, j):
        raise ScenarioError(f"hypercube travel_time_s has shape {tau.shape}; expected ({n}, {j}) (unit x atom)")
    _choice(variant, "hypercube variant", ("loss", "queue"))
    tt = np.zeros((n + j, n + j))
    tt[:n, n:] = tau
    tt[n:, :n] = tau.T
    return EmsSpec(travel_time_s=tt,
                   zones=tuple(ZoneSpec(f"atom{a}", n + a, r) for a, r in enumerate(arrival_rate_per_h)),
                   units=tuple(UnitSpec(f"unit{u}", u, Dist("exponential", m)) for u, m in enumerate(mean_busy_s)),
                   dispatch=DispatchSpec("preference", tuple(tuple(p) for p in preference_lists),
                                         Dist("constant", 0.0, 0.0), 0 if variant == "loss" else None),
                   service=ServiceSpec(mode="busy_time"),
                   warmup_s=warmup_s)
