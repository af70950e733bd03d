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
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from dataclasses import dataclass, field, fields

import numpy as np
from scipy.special import gammaincinv, ndtri

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
    "RUN_STREAMS",
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
#: Every stream of a scenario run, children of ``SeedSequence(seed)`` in this order: the EMS
#: ones, traffic demand and engine, the synthetic population, traffic-crash calls, then the
#: scripted incidents (each added last, so the earlier streams are unchanged).
RUN_STREAMS = STREAMS + ("traffic_demand", "traffic", "population", "crashes", "incidents")
#: Accepted distribution kinds.
DIST_KINDS = ("constant", "exponential", "lognormal", "gamma", "empirical")
#: Accepted dispatch policies.
POLICIES = ("nearest", "preference")
#: Unit kinds: advanced and basic life support ambulances, fire engines, police cars.
UNIT_KINDS = ("als", "bls", "fire", "police")
#: The unit kinds that can transport a patient to hospital.
AMBULANCE_KINDS = ("als", "bls")
SERVICE_MODES = ("path", "busy_time")
RETURN_MODES = ("drive", "instant")
WARD_MODES = ("loss", "queue")


# --------------------------------------------------------------------------------------
# parsing helpers

def _fail(where, msg):
    raise ScenarioError(f"{where}: {msg}")


def _number(value, where, *, minimum=0.0, strict=False, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        _fail(where, f"found {value!r}; expected a finite number {'>' if strict else '>='} {minimum:g}")
    if value < minimum or (strict and value == minimum):
        _fail(where, f"found {value!r}; expected a number {'>' if strict else '>='} {minimum:g}")
    return float(value)


def _integer(value, where, *, minimum=0, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(where, f"found {value!r}; expected an integer >= {minimum}")
    if value < minimum or (maximum is not None and value > maximum):
        rng = f"in {minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        _fail(where, f"found {value!r}; expected an integer {rng}")
    return int(value)


def _choice(value, where, accepted):
    if value not in accepted:
        _fail(where, f"found {value!r}; expected one of {', '.join(repr(a) for a in accepted)}")
    return value


def _check_keys(data, cls, where):
    if not isinstance(data, dict):
        _fail(where, f"found {type(data).__name__} {data!r}; expected a table (dict) of {cls.__name__} fields")
    names = [f.name for f in fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ScenarioError(f"unknown key '{key}' in {where}; {hint}accepted keys: {', '.join(names)}")


def _build(cls, data, where, **converters):
    """Build a frozen group from a dict: unknown keys are errors; converters parse fields."""
    _check_keys(data, cls, where)
    kwargs = {}
    for key, value in data.items():
        conv = converters.get(key)
        kwargs[key] = conv(value, f"{where}.{key}") if conv else value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a missing required key
        raise ScenarioError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------------------
# distributions

@dataclass(frozen=True)
class Dist:
    """A non-negative time distribution, sampled by inverse transform.

    Attributes
    ----------
    kind : str
        One of :data:`DIST_KINDS`.
    mean_s : float
        Mean in seconds, ``>= 0`` (``> 0`` except for ``constant``). For ``empirical`` it is
        the table's weighted mean, computed (any value given is replaced).
    cv : float
        Coefficient of variation (standard deviation / mean), ``> 0`` for ``lognormal`` and
        ``gamma``; ignored (1) for ``exponential`` and (0) for ``constant``; the table's own
        for ``empirical`` (computed).
    values_s : tuple of float
        ``empirical`` only: the table of observed values, seconds (``>= 0``, finite, any
        order, repeats allowed).
    weights : tuple of float
        ``empirical`` only: a weight ``>= 0`` per value (relative frequencies, summing to
        more than 0); empty for equal weights.

    Notes
    -----
    ``empirical`` is *discrete*, without interpolation: the values are sorted (stably) and
    ``ppf(u)`` is the smallest value ``x_k`` whose cumulative normalised weight exceeds
    ``u``, ``x_k`` with ``W_{k-1} <= u < W_k``. A sample takes only the table's values,
    with their weights as probabilities, so its mean is exactly the table's weighted mean
    and its quantiles are the table's (a length-of-stay table from records, reproduced as
    recorded).

    Examples
    --------
    >>> Dist("exponential", 60.0).ppf([0.5]).round(3)
    array([41.589])
    >>> Dist.parse(30, "x").kind
    'constant'
    >>> d = Dist.parse({"kind": "empirical", "values_s": [600, 60, 300], "weights": [1, 2, 1]}, "x")
    >>> d.mean_s, d.ppf([0.0, 0.49, 0.5, 0.74, 0.75, 0.999]).tolist()
    (255.0, [60.0, 60.0, 300.0, 300.0, 600.0, 600.0])
    """

    kind: str
    mean_s: float
    cv: float = 1.0
    values_s: tuple = ()
    weights: tuple = ()

    def __post_init__(self):
        _choice(self.kind, "distribution kind", DIST_KINDS)
        if self.kind == "empirical":
            self._init_empirical()
            return
        if self.values_s or self.weights:
            _fail(f"{self.kind} distribution", "values_s and weights belong to kind = 'empirical'")
        _number(self.mean_s, f"{self.kind} distribution mean_s", strict=self.kind != "constant")
        if self.kind in ("lognormal", "gamma"):
            _number(self.cv, f"{self.kind} distribution cv", strict=True)

    def _init_empirical(self):
        where = "empirical distribution"
        vals = self.values_s
        if isinstance(vals, (str, bytes)) or not isinstance(vals, (list, tuple, np.ndarray)) or len(vals) == 0:
            _fail(f"{where} values_s", f"found {vals!r}; expected a non-empty list of seconds >= 0")
        vals = tuple(_number(v, f"{where} values_s[{k}]") for k, v in enumerate(vals))
        w = self.weights
        if w is None or (isinstance(w, (list, tuple, np.ndarray)) and len(w) == 0):
            w = (1.0,) * len(vals)
        if isinstance(w, (str, bytes)) or not isinstance(w, (list, tuple, np.ndarray)) or len(w) != len(vals):
            _fail(f"{where} weights", f"found {w!r}; expected {len(vals)} weights >= 0 (one per value), or none")
        w = tuple(_number(x, f"{where} weights[{k}]") for k, x in enumerate(w))
        total = math.fsum(w)
        if not total > 0:
            _fail(f"{where} weights", f"found {list(w)}; expected weights >= 0 with a positive sum")
        order = np.argsort(np.asarray(vals), kind="stable")
        sorted_v = np.asarray(vals, dtype=np.float64)[order]
        p = np.asarray(w, dtype=np.float64)[order] / total
        cum = np.cumsum(p)
        cum[-1] = 1.0
        mean = float(np.dot(p, sorted_v))
        var = float(np.dot(p, (sorted_v - mean) ** 2))
        object.__setattr__(self, "values_s", vals)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "mean_s", mean)
        object.__setattr__(self, "cv", math.sqrt(var) / mean if mean > 0 else 0.0)
        object.__setattr__(self, "_table", (sorted_v, cum))

    @classmethod
    def empirical(cls, values_s, weights=()) -> "Dist":
        """An ``empirical`` distribution of a table of values (seconds) and optional weights."""
        return cls("empirical", 0.0, 0.0, tuple(values_s), tuple(weights))

    @classmethod
    def parse(cls, value, where):
        """A :class:`Dist` from a number (a constant, in seconds) or a table.

        A table has ``kind`` and ``mean_s`` and, for lognormal and gamma, ``cv``; an
        ``empirical`` table has ``values_s`` and optional ``weights`` instead.
        """
        if isinstance(value, Dist):
            return value
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return cls("constant", _number(value, where), 0.0)
        if not isinstance(value, dict):
            _fail(where, f"found {value!r}; expected a number of seconds or a table "
                         f"{{kind = ..., mean_s = ..., cv = ...}} with kind in {', '.join(DIST_KINDS)} "
                         f"(empirical: {{kind = 'empirical', values_s = [...], weights = [...]}})")
        _check_keys(value, cls, where)
        if value.get("kind") == "empirical":
            extra = sorted(k for k in value if k not in ("kind", "values_s", "weights"))
            if extra or "values_s" not in value:
                _fail(where, f"an empirical distribution table takes 'values_s' (seconds) and optional "
                             f"'weights' (its mean is the table's); found keys {sorted(value)}")
            try:
                return cls.empirical(_seq(value["values_s"], f"{where}.values_s"),
                                     _seq(value.get("weights", ()), f"{where}.weights"))
            except ScenarioError as exc:
                raise ScenarioError(f"{where}: {exc}") from None
        if "kind" not in value or "mean_s" not in value:
            _fail(where, f"a distribution table needs 'kind' and 'mean_s'; found keys {sorted(value)}")
        try:
            return cls(value["kind"], value["mean_s"], value.get("cv", 1.0), value.get("values_s", ()),
                       value.get("weights", ()))
        except ScenarioError as exc:
            raise ScenarioError(f"{where}: {exc}") from None

    @property
    def is_zero(self) -> bool:
        return self.kind == "constant" and self.mean_s == 0.0

    def ppf(self, u):
        """Quantiles at probabilities ``u`` in ``[0, 1)``, in seconds (ndarray of float64)."""
        u = np.asarray(u, dtype=np.float64)
        m = self.mean_s
        if self.kind == "constant":
            return np.full(u.shape, m)
        if self.kind == "exponential":
            return -m * np.log1p(-u)
        if self.kind == "lognormal":
            s2 = math.log1p(self.cv ** 2)
            return np.exp(math.log(m) - 0.5 * s2 + math.sqrt(s2) * ndtri(u))
        if self.kind == "empirical":
            vals, cum = self._table
            k = np.searchsorted(cum, u, side="right")
            return vals[np.minimum(k, len(vals) - 1)]
        shape = 1.0 / self.cv ** 2                               # gamma
        return gammaincinv(shape, u) * (m / shape)


def _seq(value, where):
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        _fail(where, f"found {value!r}; expected a list of numbers")
    return tuple(value)


# --------------------------------------------------------------------------------------
# spec groups

@dataclass(frozen=True)
class ZoneSpec:
    """A demand zone (an atom): where calls come from.

    Attributes
    ----------
    name : str
    location_idx : int
        Row/column of the zone in the travel-time matrix.
    arrival_rate_per_h : float
        Base call rate in calls/hour, multiplied by the hourly profile.
    """

    name: str
    location_idx: int
    arrival_rate_per_h: float


@dataclass(frozen=True)
class CallTypeSpec:
    """A call type: its priority, share of calls and on-scene needs.

    Attributes
    ----------
    name : str
    priority : int
        1 (most urgent) to 3. The dispatch queue is ordered by priority, then call time.
    share : float
        Fraction of all calls of this type (the shares of all types sum to 1).
    on_scene : Dist
        Time on scene, seconds (path mode).
    transport_probability : float
        Probability that the patient is taken to hospital (path mode), in [0, 1]. Only an
        ambulance transports: the unit filling the first requirement whose kind (or
        fallback) is ``"als"`` or ``"bls"``; a call type with a transport probability must
        require one.
    requires : tuple of (str, int)
        Units the call needs, ``(kind, count)`` pairs with kinds in :data:`UNIT_KINDS`
        (a dict ``{"fire": 2, "als": 1}`` is accepted and kept in its order). Default: one
        ALS ambulance. Each unit is one *slot*, filled in this order at dispatch.
    fallback : tuple of (str, str)
        ``(kind, substitute)`` pairs: a slot of ``kind`` with no idle unit of that kind is
        filled by an idle ``substitute`` (one step, not chained). Default ``als -> bls``.

    Notes
    -----
    A call is *served* (its response time ends) when the first of its units arrives on
    scene, and *completed* when the last one is free again.
    """

    name: str
    priority: int = 1
    share: float = 1.0
    on_scene: Dist = Dist("constant", 0.0, 0.0)
    transport_probability: float = 0.0
    requires: tuple = (("als", 1),)
    fallback: tuple = (("als", "bls"),)

    @property
    def slots(self) -> tuple:
        """One ``(kind, fallback kind or None)`` per unit needed, in requirement order."""
        fb = dict(self.fallback)
        return tuple((k, fb.get(k)) for k, n in self.requires for _ in range(n))


@dataclass(frozen=True)
class UnitSpec:
    """A response unit (ambulance, fire engine or police car) and its home station.

    Attributes
    ----------
    name : str
    station_idx : int
        Location index of the home station.
    busy_time : Dist or None
        This unit's busy time in ``busy_time`` service mode; the service default when None.
    kind : str
        One of :data:`UNIT_KINDS` (default ``"als"``, an advanced-life-support ambulance).
    """

    name: str
    station_idx: int
    busy_time: Dist | None = None
    kind: str = "als"


@dataclass(frozen=True)
class HospitalSpec:
    """A hospital ward with beds.

    Attributes
    ----------
    name : str
    location_idx : int
    beds : int
        Number of beds, ``>= 0``.
    length_of_stay : Dist
        Bed occupancy time of a patient, seconds.
    mode : str
        ``"loss"``: a patient finding every bed occupied is blocked (turned away, counted);
        ``"queue"``: patients wait for a bed (an ambulance waits with its patient) in
        triage order: priority 1 first, then by arrival (walk-ins count as priority 3).
    walk_in_rate_per_h : float
        Poisson rate of admissions that do not come by ambulance, patients/hour.

    Patient flow (all optional; the defaults keep a single ward of ``beds``). With a
    ward or ICU pool, ``beds`` / ``length_of_stay`` / ``mode`` describe the emergency
    department (ED):

    ward_beds, icu_beds : int or None
        Inpatient pools (``None``: none). After the ED stay a patient of priority ``k``
        needs a ward bed with probability ``ward_probability[k-1]`` and an ICU bed with
        ``icu_probability[k-1]`` (else goes home). Walk-ins count as priority 3.
    ward_los, icu_los : Dist
        Bed occupancy of a ward and an ICU patient, seconds.
    ward_probability, icu_probability : tuple of 3 floats
        By call priority P1, P2, P3; ``ward + icu <= 1`` per priority.
    boarding : bool
        True: a patient finding the ward / ICU full *boards* in the ED (keeping the ED bed)
        until one frees (FCFS). False: the pool is a loss system (the patient is counted
        as blocked and leaves the ED).
    diversion : bool
        The hospital is on diversion while its ED (or, with an ICU pool, its ICU) has at
        least ``diversion_threshold`` of its beds occupied; ambulances then take the
        nearest hospital not on diversion (the nearest overall when all are).
    diversion_threshold : float
        Occupied share of beds in ``(0, 1]`` that starts diversion (1: full).
    transfer : bool
        A patient needing ICU when this hospital has no ICU pool, or its ICU is full, is
        transferred at once to the nearest hospital (travel time now) with a free ICU bed,
        releasing the ED bed; without such a hospital the patient boards (or is blocked).
        Simplification: the transfer takes no ambulance and no travel time, unless
        ``transfer_by_ambulance``.
    transfer_by_ambulance : bool
        With ``transfer``: the transfer is a dispatch request of priority 3 (an
        inter-hospital transfer call, one ALS ambulance, else BLS): the ICU bed at the
        target is reserved at once, the patient boards in the ED (keeping the ED bed) until
        the ambulance has driven to this hospital and loaded them (``service.handover``),
        then is driven to the target and takes the reserved bed on arrival. A transfer
        request is never lost (it waits in the dispatch queue whatever ``max_queue`` is).
    """

    name: str
    location_idx: int
    beds: int
    length_of_stay: Dist = Dist("exponential", 86400.0)
    mode: str = "loss"
    walk_in_rate_per_h: float = 0.0
    ward_beds: int | None = None
    ward_los: Dist = Dist("exponential", 4 * 86400.0)
    icu_beds: int | None = None
    icu_los: Dist = Dist("exponential", 3 * 86400.0)
    ward_probability: tuple = (0.0, 0.0, 0.0)
    icu_probability: tuple = (0.0, 0.0, 0.0)
    boarding: bool = True
    diversion: bool = False
    diversion_threshold: float = 1.0
    transfer: bool = False
    transfer_by_ambulance: bool = False

    @property
    def has_flow(self) -> bool:
        """True when the hospital uses any patient-flow option (ward, ICU, transfer)."""
        return self.ward_beds is not None or self.icu_beds is not None or self.transfer


@dataclass(frozen=True)
class RelocationSpec:
    """A move-up (system-status management) compliance table for some unit kinds.

    Attributes
    ----------
    kinds : tuple of str
        The unit kinds counted and moved by this table (default the ambulances, ALS and BLS).
    table : tuple of tuple of int
        Row ``n - 1`` lists the station locations (``station_idx`` values, one entry per
        unit, a location may repeat) that the ``n`` available units of these kinds should
        occupy; with more available units than rows, the last row applies and the extra
        units stay where they are going. Each row has at most ``n`` entries.

    Notes
    -----
    Whenever a unit of these kinds becomes busy or free, the available ones (at a
    station, returning, or relocating) are assigned to the row's stations so that the
    total travel time from where they are (now, from the travel-time provider; 0 for a
    unit already at or heading to that station) is least — an exact minimum-cost
    assignment (Hungarian method, :func:`scipy.optimize.linear_sum_assignment`). A unit
    assigned to another station than the one it is at or heading to gets a move order,
    obeyed with probability ``DispatchSpec.compliance_rate``. A relocating unit is
    available for dispatch (and is then diverted to the call from where it started moving).
    """

    kinds: tuple = ("als", "bls")
    table: tuple = ()


@dataclass(frozen=True)
class DispatchSpec:
    """The dispatch centre.

    Attributes
    ----------
    policy : str
        ``"nearest"``: the idle unit with the least travel time from where it is
        (ties: lowest unit index); ``"preference"``: the first idle unit on the zone's
        fixed preference list.
    preference_lists : tuple of tuple of int
        One list of unit indices per zone (``preference`` policy only). A unit not on a
        zone's list never serves it.
    processing : Dist
        Call-processing time from call to ready-to-dispatch, seconds.
    max_queue : int or None
        Calls that may wait for a unit; ``None`` is unlimited, ``0`` makes a loss system
        (a ready call finding no eligible idle unit is lost, "unserved").
    relocation : tuple of RelocationSpec
        Move-up compliance tables (optional; none: units always return home). The kinds of
        two tables must not overlap.
    compliance_rate : float
        Probability in ``[0, 1]`` that a move order is obeyed (drawn from the seeded
        ``dispatch`` stream's own child; a refused order is re-considered at the next change).
    """

    policy: str = "nearest"
    preference_lists: tuple = ()
    processing: Dist = Dist("constant", 0.0, 0.0)
    max_queue: int | None = None
    relocation: tuple = ()
    compliance_rate: float = 1.0


@dataclass(frozen=True)
class ServiceSpec:
    """How a unit spends its busy time.

    Attributes
    ----------
    mode : str
        ``"path"``: turnout, travel to scene, on scene, transport to the nearest hospital
        with probability ``transport_probability``, wait for a bed (queue wards),
        handover, then available and returning. ``"busy_time"``: the textbook model — the
        whole busy period is one draw of ``busy_time`` (the unit's own, else this one)
        independent of location, then the unit is at its station again (instant return);
        travel times are recorded for the KPIs but do not lengthen the busy period.
    busy_time : Dist
        Busy period in ``busy_time`` mode, seconds.
    turnout : Dist
        Dispatch to wheels rolling, seconds (path mode).
    handover : Dist
        Patient handover once a bed is granted, seconds (path mode).
    return_mode : str
        ``"drive"`` back to the station on the travel-time matrix (available meanwhile) or
        ``"instant"`` (path mode).
    """

    mode: str = "path"
    busy_time: Dist = Dist("exponential", 3600.0)
    turnout: Dist = Dist("constant", 60.0, 0.0)
    handover: Dist = Dist("constant", 900.0, 0.0)
    return_mode: str = "drive"


@dataclass(frozen=True)
class IncidentSpec:
    """A scripted incident: a mass-casualty incident (MCI) of ``patients`` at one place and time.

    Attributes
    ----------
    name : str
    location_idx : int
        Where it happens (a location of the travel-time matrix).
    time_s : float
        When every patient's call arrives, seconds from the start (``>= 0``; before the
        run's ``until_s``).
    patients : int
        Number of patients, ``>= 1``; one call each.
    triage : tuple of 3 floats or None
        Shares of priorities P1, P2, P3 among the patients (summing to 1); each patient's
        priority is drawn from them. ``None``: every patient has the call type's priority.
    call_type : str or None
        Name of the call type whose needs the patients take (``requires``, ``fallback``,
        ``on_scene``); ``None``: the first call type.
    transport_probability : float
        Probability in ``[0, 1]`` that a patient is taken to hospital; default 1 (every
        patient is transported), whatever the call type's own.

    Notes
    -----
    At ``time_s`` the ``patients`` calls (numbered P1 first, then P2, then P3; ties in draw
    order) reach the dispatch centre one after another, at the incident's location and with
    no zone (``zone_idx`` -1). Their priorities and per-call dice (processing, turnout,
    on-scene, transport, handover, length of stay) come from the run's ``incidents`` stream
    (:data:`RUN_STREAMS`), so calls of other runs keep their draws. A transported patient
    goes to the hospital nearest the incident (static times; with diversion, the nearest
    not on diversion when the transport starts). A patient's call is never lost: it waits
    in the dispatch queue whatever ``max_queue`` is. Patients are left out of the routine
    call KPIs and district tables; :attr:`EmsResult.incidents` reports each incident.
    """

    name: str
    location_idx: int
    time_s: float
    patients: int
    triage: tuple | None = None
    call_type: str | None = None
    transport_probability: float = 1.0


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
            kw["dispatch"] = _build(DispatchSpec, kw["dispatch"], f"{where}.dispatch", processing=_dist_conv)
        if "service" in kw and not isinstance(kw["service"], ServiceSpec):
            kw["service"] = _build(ServiceSpec, kw["service"], f"{where}.service", busy_time=_dist_conv,
                                   turnout=_dist_conv, handover=_dist_conv)
        if "incidents" in kw:
            kw["incidents"] = _tuple_of(IncidentSpec, kw["incidents"], f"{where}.incidents")
        return cls(**kw)

    # ---- validation --------------------------------------------------------------------
    def __post_init__(self):
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
        n_loc = tt.shape[0]
        for name in ("zones", "call_types", "units", "hospitals", "hourly_profile", "response_target_s"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                _fail(f"{w}.{name}", f"found {type(value).__name__}; expected a list")
            object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "warmup_s", _number(self.warmup_s, f"{w}.warmup_s"))
        if self.rate_table_per_h is not None:
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

        for i, z in enumerate(self.zones):
            at = f"{w}.zones[{i}] ('{z.name}')"
            _integer(z.location_idx, f"{at}.location_idx", maximum=n_loc - 1)
            _number(z.arrival_rate_per_h, f"{at}.arrival_rate_per_h")
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
        object.__setattr__(self, "call_types", tuple(self._check_needs(c, f"{w}.call_types[{i}] ('{c.name}')")
                                                     for i, c in enumerate(self.call_types)))
        total = sum(c.share for c in self.call_types)
        if not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-9):
            _fail(f"{w}.call_types", f"shares sum to {total}; expected 1")
        for i, u in enumerate(self.units):
            at = f"{w}.units[{i}] ('{u.name}')"
            _integer(u.station_idx, f"{at}.station_idx", maximum=n_loc - 1)
            if u.busy_time is not None and not isinstance(u.busy_time, Dist):
                _fail(f"{at}.busy_time", f"found {u.busy_time!r}; expected a Dist or None")
            _choice(u.kind, f"{at}.kind", UNIT_KINDS)
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
        for name, label in ((self.zones, "zone"), (self.units, "unit"), (self.hospitals, "hospital"),
                            (self.call_types, "call type")):
            names = [x.name for x in name]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                _fail(w, f"duplicate {label} names {dup}; expected unique names")

        d = self.dispatch
        _choice(d.policy, f"{w}.dispatch.policy", POLICIES)
        if d.max_queue is not None:
            _integer(d.max_queue, f"{w}.dispatch.max_queue")
        if not isinstance(d.processing, Dist):
            _fail(f"{w}.dispatch.processing", f"found {d.processing!r}; expected a Dist")
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
        self._check_relocation(n_loc)

        s = self.service
        _choice(s.mode, f"{w}.service.mode", SERVICE_MODES)
        _choice(s.return_mode, f"{w}.service.return_mode", RETURN_MODES)
        for name in ("busy_time", "turnout", "handover"):
            if not isinstance(getattr(s, name), Dist):
                _fail(f"{w}.service.{name}", f"found {getattr(s, name)!r}; expected a Dist")

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

        # Reachability: every call must be able to end (STYLE §9: fail at the boundary).
        rt = self.rate_table_per_h
        zone_demand = ([z.arrival_rate_per_h > 0 for z in self.zones] if rt is None
                       else list(rt.sum(axis=(0, 2)) > 0))
        type_demand = ([c.share > 0 for c in self.call_types] if rt is None else list(rt.sum(axis=(0, 1)) > 0))
        has_demand = any(zone_demand)
        if has_demand and n_units == 0:
            _fail(f"{w}.units", "no units but zones have calls; add units or set arrival_rate_per_h = 0")
        if has_demand:
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
        for j, z in enumerate(self.zones):
            if not zone_demand[j]:
                continue
            cand = (range(n_units) if d.policy == "nearest" else self.dispatch.preference_lists[j])
            if not any(math.isfinite(tt[self.units[u].station_idx, z.location_idx]) for u in cand):
                _fail(f"{w}.zones[{j}] ('{z.name}')", "no eligible unit's station can reach this zone "
                                                      "(all travel times are inf)")
            if s.mode == "path" and self._transports():
                if not self.hospitals:
                    _fail(f"{w}.hospitals", "calls are transported (transport_probability > 0) but there "
                                            "are no hospitals")
                if not any(math.isfinite(tt[z.location_idx, h.location_idx]) for h in self.hospitals):
                    _fail(f"{w}.zones[{j}] ('{z.name}')", "no hospital is reachable from this zone")
        if any(h.transfer_by_ambulance for h in self.hospitals) and not any(u.kind in AMBULANCE_KINDS
                                                                            for u in self.units):
            _fail(f"{w}.hospitals", "transfer_by_ambulance = true but there are no ambulances (als, bls) to "
                                    "drive the transfers")
        if self.incidents:
            self._check_incidents(tt)

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


@dataclass(frozen=True, eq=False)
class EmsLayout:
    """Where an :class:`EmsSpec`'s abstract locations and zones sit on a city.

    Used for results files and district KPIs; an :class:`EmsSpec` alone has none of this.

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
        at_hospital_s, bed_s, available_s, outcome`` (name from :data:`OUTCOMES`),
        ``n_units`` (units sent), ``location_idx`` (where units drove to), ``wait_s``
        (ready to dispatch) and ``response_s`` (call to first unit on scene).
        NaN / -1 where a stage did not happen. Inter-hospital transfers by ambulance (see
        :class:`HospitalSpec`) are rows too, with ``zone_idx`` -1 and ``type_idx`` =
        ``len(spec.call_types)`` (type name ``"inter-hospital transfer"``): ``on_scene_s``
        is the ambulance at the sending hospital, ``bed_s`` its arrival at the receiving one;
        they are left out of the call KPIs and district tables.
    unit_events : DataFrame
        ``time_s, unit_idx, call_id, event`` (name from :data:`UNIT_EVENTS`), in event order.
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
        Only when a hospital uses patient flow or diversion (see :class:`HospitalSpec`).
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
        Only with scripted incidents (:attr:`EmsSpec.incidents`): one row per incident,
        ``incident_idx, name, location_idx, time_s, patients, n_p1, n_p2, n_p3,
        first_call_id`` (its patients are calls ``first_call_id .. first_call_id + patients
        - 1``), ``n_transported``, the durations from ``time_s`` ``last_on_scene_s`` (the
        last patient's first unit on scene), ``scene_clear_s`` (the last patient transported
        leaves the scene, or the last unit leaves it when none is), ``last_at_hospital_s``
        (the last transported patient at hospital; NaN when none) and ``complete_s`` (the
        last unit free), ``n_hospitals_used`` and ``hospitals`` (their names, ``;``-joined,
        in hospital order). NaN where not reached (an undrained run).
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
            One row per call: ``call_id, zone_idx, zone, district_idx, node_idx`` (of the
            call's location, -1 without a city), ``type_idx, type, priority``, the times
            ``call_s, ready_s, dispatch_s, on_scene_s, at_hospital_s, bed_s, complete_s``
            (unit free again) and ``travel_s, wait_s`` (ready to dispatch),
            ``response_time_s`` (call to first unit on scene), ``state`` (terminal state,
            one of :data:`OUTCOMES`), ``unit_idx, hospital_idx, transport``. NaN / -1 where
            a stage did not happen.
        ``/events/p_unit_events``
            ``time_s, unit_idx, call_id, event`` (:data:`UNIT_EVENTS` names; call_id -1 for
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
        spec, lay = self.spec, layout if layout is not None else EmsLayout.default(self.spec)
        p = prefix
        c = self.calls
        zone_idx = c["zone_idx"].to_numpy(np.int32)
        zloc = np.array([z.location_idx for z in spec.zones], dtype=np.int64)
        type_names = np.array([t.name for t in spec.call_types] + ["inter-hospital transfer"], dtype=object)
        zone_names = np.array([z.name for z in spec.zones] + [""], dtype=object)      # [-1]: no zone
        node_of_loc = np.asarray(lay.location_node_idx, dtype=np.int32)
        zone_district = np.append(np.asarray(lay.zone_district_idx, dtype=np.int32), -1)
        call_loc = (c["location_idx"].to_numpy(np.int64) if "location_idx" in c
                    else zloc[zone_idx] if len(c) else np.empty(0, np.int64))
        times = {"call_s": "time_s", "ready_s": "ready_s", "dispatch_s": "dispatched_s", "on_scene_s": "on_scene_s",
                 "at_hospital_s": "at_hospital_s", "bed_s": "bed_s", "complete_s": "available_s",
                 "travel_s": "travel_s", "wait_s": "wait_s", "response_time_s": "response_s"}
        cols = {"call_id": c["call_id"].to_numpy(np.int64), "zone_idx": zone_idx,
                "zone": zone_names[zone_idx].astype(str) if len(c) else np.array([], dtype=str),
                "district_idx": zone_district[zone_idx],
                "node_idx": node_of_loc[call_loc] if len(c) else np.array([], dtype=np.int32),
                "type_idx": c["type_idx"].to_numpy(np.int16),
                "type": type_names[c["type_idx"].to_numpy(np.int64)].astype(str) if len(c) else np.array([], dtype=str),
                "priority": c["priority"].to_numpy(np.int8)}
        cols.update({k: c[v].to_numpy(np.float64) for k, v in times.items()})
        cols.update({"state": c["outcome"].astype(str).to_numpy().astype(str), "unit_idx": c["unit_idx"].to_numpy(np.int32),
                     "hospital_idx": c["hospital_idx"].to_numpy(np.int32), "transport": c["transport"].to_numpy(bool)})
        units = {k: "" for k in cols}
        units.update({k: "s" for k in times})
        writer.write_table(f"/events/{p}_calls", cols, units=units)

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

        # ---- network: where things are
        st_loc = np.asarray(lay.station_location_idx, dtype=np.int32)
        unit_station = np.array([int(np.flatnonzero(st_loc == u.station_idx)[0]) if (st_loc == u.station_idx).any()
                                 else -1 for u in spec.units], dtype=np.int32)
        writer.write_table(f"/network/{p}_stations", {
            "station_idx": np.arange(len(st_loc), dtype=np.int32), "name": np.array(lay.station_names, dtype=str),
            "location_idx": st_loc, "node_idx": node_of_loc[st_loc],
            "n_units": np.bincount(unit_station[unit_station >= 0], minlength=len(st_loc)).astype(np.int32)},
            units={"station_idx": "", "name": "", "location_idx": "", "node_idx": "", "n_units": "1"})
        writer.write_table(f"/network/{p}_units", {
            "unit_idx": np.arange(spec.n_units, dtype=np.int32),
            "name": np.array([u.name for u in spec.units], dtype=str), "station_idx": unit_station,
            "location_idx": np.array([u.station_idx for u in spec.units], dtype=np.int32)},
            units={"unit_idx": "", "name": "", "station_idx": "", "location_idx": ""})
        hloc = np.array([h.location_idx for h in spec.hospitals], dtype=np.int32)
        writer.write_table("/network/hospitals", {
            "hospital_idx": np.arange(spec.n_hospitals, dtype=np.int32),
            "name": np.array([h.name for h in spec.hospitals], dtype=str), "location_idx": hloc,
            "node_idx": node_of_loc[hloc], "beds": np.array([h.beds for h in spec.hospitals], dtype=np.int64),
            "mode": np.array([h.mode for h in spec.hospitals], dtype=str)},
            units={"hospital_idx": "", "name": "", "location_idx": "", "node_idx": "", "beds": "beds", "mode": ""})
        writer.write_table(f"/network/{p}_zones", {
            "zone_idx": np.arange(spec.n_zones, dtype=np.int32), "name": np.array([z.name for z in spec.zones], dtype=str),
            "location_idx": zloc.astype(np.int32), "node_idx": node_of_loc[zloc],
            "district_idx": np.asarray(lay.zone_district_idx, dtype=np.int32),
            "arrival_rate_per_h": np.array([z.arrival_rate_per_h for z in spec.zones], dtype=np.float64)},
            units={"zone_idx": "", "name": "", "location_idx": "", "node_idx": "", "district_idx": "",
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

        # ---- time series: one row per change time (the last value at a shared time wins)
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

        # ---- summary
        for name, value in self.kpis.items():
            if name.startswith(("hospital_", "incident_")):
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
        writer.write_table(f"/summary/{p}_districts", {
            "district_idx": districts["district_idx"].to_numpy(np.int32),
            "name": districts["name"].astype(str).to_numpy().astype(str),
            "central": districts["central"].to_numpy(bool),
            **{k: districts[k].to_numpy(np.int64) for k in ("n_calls", "n_unserved")},
            **{k: districts[k].to_numpy(np.float64) for k in ("response_mean_s", "response_p90_s", "within_target",
                                                                "response_p1_mean_s")}},
            units={"district_idx": "", "name": "", "central": "", "n_calls": "1", "n_unserved": "1",
                   "response_mean_s": "s", "response_p90_s": "s", "within_target": "1", "response_p1_mean_s": "s"})

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
        ``equity_gap_response_mean_s`` and ``equity_gap_response_p90_s`` (peripheral minus
        central, over the pooled calls of each group) and ``equity_gap_within_target``
        (central minus peripheral share): positive when the periphery is served worse. NaN
        when no district is central, none is peripheral, or a group has no served call.

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
               "equity_gap_within_target": c[4] - p[4]}
    return table, gap


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
