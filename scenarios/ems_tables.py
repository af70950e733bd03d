"""The EMS flow's scenario tables: ``[kpi]``, ``[calls]``, ``[[call_types]]``, ``[[stations]]``,
``[[hospitals]]``, ``[dispatch]``, ``[service]``, ``[[agencies]]`` and ``[coordination]``, with
their domain converters.

Durations are seconds: a number (constant) or a table ``{kind = "lognormal", mean_s = 900,
cv = 0.5}``, or an empirical table ``{kind = "empirical", values_s = [3600, 7200, 86400],
weights = [5, 3, 1]}`` (discrete, no interpolation; see :class:`twin.dists.Dist`). Zone ids
are the city's district ids (``City.zone_ids``; TOML keys are strings, matched against
``str(zone_id)``). Node ids are the city's external node ids.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from twin.dists import Dist
from twin.emergency import AMBULANCE_KINDS, UNIT_KINDS
from twin.errors import ScenarioError
from twin.spec import Table, setting

__all__ = ["KpiGroup", "CallsGroup", "CallTypeGroup", "StationGroup", "HospitalGroup", "DispatchGroup",
           "ServiceGroup", "AgencyGroup", "CoordinationGroup", "EMS_TABLES", "DIST_TEXT", "dist_setting"]

#: What a duration setting accepts (in messages).
DIST_TEXT = "a number of seconds or a table {kind, mean_s, cv} or {kind = 'empirical', values_s, weights}"


def _dist(value, where):
    try:
        return Dist.parse(value, where)
    except ScenarioError as exc:
        if "expected one of" in str(exc):
            raise
        raise ScenarioError(f"{exc}; accepted: {DIST_TEXT}") from None


def _dist_plain(value):
    return value.plain()


def dist_setting(default, description):
    """A duration-distribution setting (seconds; see :data:`DIST_TEXT`)."""
    return setting(default, "dist", f"{description}: {DIST_TEXT}", convert=_dist, plain=_dist_plain,
                   subkeys="existing")


#: Most units of one kind at one station (a bound, so a typo of 1e9 is an error, not a hang).
MAX_UNITS = 10_000


def _unit_table(kind):
    accepted = ", ".join(repr(c) for c in UNIT_KINDS)

    def convert(value, where):
        if not isinstance(value, dict) or not value:
            raise ScenarioError(f"{where} = {value!r}; expected a table kind -> "
                                f"{'count' if kind == 'counts' else 'kind'} with kinds in {accepted}")
        for k, v in value.items():
            if k not in UNIT_KINDS:
                raise ScenarioError(f"{where}: unknown unit kind {k!r}; expected one of {accepted}")
            if kind == "counts" and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0):
                raise ScenarioError(f"{where}.{k} = {v!r}; expected an integer >= 0")
            if kind == "kinds" and v not in UNIT_KINDS:
                raise ScenarioError(f"{where}.{k} = {v!r}; unknown unit kind, expected one of {accepted}")
        return {k: (int(v) if kind == "counts" else v) for k, v in value.items()}
    return convert


def _relocation_item(r, at):
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
            or not all(isinstance(row, (list, tuple)) and all(isinstance(x, str) for x in row) for row in table)):
        raise ScenarioError(f"{at}.table = {table!r}; expected a list of rows, row n-1 the station names "
                            f"n available units should occupy")
    return {"kinds": tuple(kinds), "table": tuple(tuple(row) for row in table)}


def _relocation(value, where):
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ScenarioError(f"{where} = {value!r}; expected a list of tables {{kinds = [...], table = [[station "
                            f"names], ...]}}")
    return tuple(_relocation_item(r, f"{where}[{i}]") for i, r in enumerate(value))


@dataclass(frozen=True)
class KpiGroup:
    """``[kpi]``: how KPIs are computed."""

    warmup_s: float = setting(0.0, "float", "KPIs cover calls received in [warmup_s, until_s), seconds", minimum=0.0)
    response_target_s: tuple = setting((480.0,), "floats", "response-time targets of priorities 1, 2, 3 (seconds; "
                                                           "a shorter list leaves the rest without a target)",
                                       min_len=0, max_len=3, minimum=0.0, strict=True)
    central_zones: tuple | None = setting(None, "ids", "zone ids counted as central for the equity gap (default: "
                                                       "the city's meta['central_zone_ids'])")


@dataclass(frozen=True)
class CallsGroup:
    """``[calls]``: where and how often calls arise."""

    locations: str = setting("nodes", "choice", "'nodes': a district's calls spread equally over its nodes; "
                                                "'centroid': from the node nearest its mean coordinate",
                             choices=("nodes", "centroid"))
    rate_per_h: object = setting(None, "rates", "calls/hour: one total (split by district node counts) or a table "
                                                "zone id -> calls/hour")
    population: dict | None = setting(None, "table", "zone id -> residents (with rate_per_1000_per_day)")
    rate_per_1000_per_day: float | None = setting(None, "float", "calls per 1,000 residents per day", minimum=0.0)
    hourly_profile: tuple = setting((1.0,) * 24, "floats", "24 multipliers of the rates, hour 0 = first hour of "
                                                           "the run", min_len=24, max_len=24, minimum=0.0)
    district_profiles: dict | None = setting(None, "profiles", "zone id -> 24 multipliers: that district's own "
                                                               "hourly profile instead of hourly_profile")


@dataclass(frozen=True)
class CallTypeGroup:
    """``[[call_types]]``: one call type (see :class:`twin.emergency.CallTypeSpec`)."""

    name: str = setting("", "str", "call type name")
    priority: int = setting(1, "int", "1 (most urgent) to 3", minimum=1, maximum=3)
    share: float = setting(1.0, "float", "fraction of calls of this type (shares sum to 1)", minimum=0.0)
    on_scene: Dist = dist_setting(Dist("constant", 0.0, 0.0), "time on scene")
    transport_probability: float = setting(0.0, "float", "probability of transport to hospital", minimum=0.0,
                                           maximum=1.0)
    requires: dict | None = setting(None, "counts", "units needed, kind -> count, kinds in als, bls, fire, police "
                                                    "(default {als = 1})", convert=_unit_table("counts"))
    fallback: dict | None = setting(None, "kinds", "substitute kinds, kind -> kind (default {als = 'bls'})",
                                    convert=_unit_table("kinds"))
    specialty: str = setting("", "str", "a hospital specialty its patients need (e.g. stroke, trauma): they go to "
                                        "a hospital whose specialties list it, chosen at the scene")
    icu: bool = setting(False, "bool", "its patients need an ICU bed, known at the scene (major trauma): taken to a "
                                       "hospital with ICU beds, chosen at the scene (hospital_choice = 'door': "
                                       "counting the wait for an ICU bed), and admitted to its ICU after the ED")
    rate_per_h: dict | None = setting(None, "table", "zone id -> calls/hour of this type (its own rates, times the "
                                                     "district's hourly profile) instead of share x the district "
                                                     "rate")
    district_multiplier: dict | None = setting(None, "table", "zone id -> multiplier of this type's rate in that "
                                                              "district (default 1)")


@dataclass(frozen=True)
class StationGroup:
    """``[[stations]]``: a station of ambulances, fire engines and police cars."""

    name: str = setting("", "str", "station name (units are <name>-1, <name>-2 ... and <name>-<kind>-1 ...)")
    node: object = setting(None, "node", "city node id of the station")
    ambulances: int | None = setting(None, "int", "ALS ambulances based here (default 1 when no kind count is "
                                                  "given)", minimum=0, maximum=MAX_UNITS)
    als: int = setting(0, "int", "advanced-life-support ambulances based here", minimum=0, maximum=MAX_UNITS)
    bls: int = setting(0, "int", "basic-life-support ambulances based here", minimum=0, maximum=MAX_UNITS)
    fire: int = setting(0, "int", "fire engines based here", minimum=0, maximum=MAX_UNITS)
    police: int = setting(0, "int", "police cars based here", minimum=0, maximum=MAX_UNITS)
    busy_time: Dist | None = dist_setting(None, "busy time in service.mode = 'busy_time'")


@dataclass(frozen=True)
class HospitalGroup:
    """``[[hospitals]]``: a hospital (one ward of beds, see :class:`twin.emergency.HospitalSpec`)."""

    name: str = setting("", "str", "hospital name")
    node: object = setting(None, "node", "city node id of the hospital")
    beds: int = setting(1, "int", "beds", minimum=0)
    length_of_stay: Dist = dist_setting(Dist("exponential", 86400.0), "bed occupancy per patient")
    mode: str = setting("loss", "choice", "'loss': a patient finding no bed is turned away; 'queue': waits",
                        choices=("loss", "queue"))
    walk_in_rate_per_h: float = setting(0.0, "float", "admissions not by ambulance, patients/hour", minimum=0.0)
    ward_beds: int | None = setting(None, "int", "inpatient ward beds after the ED stay (omit: no ward pool; then "
                                                 "beds is the emergency department)", minimum=0)
    ward_los: Dist = dist_setting(Dist("exponential", 4 * 86400.0), "ward bed occupancy per patient")
    icu_beds: int | None = setting(None, "int", "ICU beds after the ED stay (omit: no ICU pool)", minimum=0)
    icu_los: Dist = dist_setting(Dist("exponential", 3 * 86400.0), "ICU bed occupancy per patient")
    ward_probability: tuple = setting((0.0, 0.0, 0.0), "floats", "probability an ED patient of priority P1, P2, "
                                                                 "P3 needs a ward bed (walk-ins count as P3)",
                                      min_len=3, max_len=3, minimum=0.0, maximum=1.0)
    icu_probability: tuple = setting((0.0, 0.0, 0.0), "floats", "probability an ED patient of priority P1, P2, P3 "
                                                                "needs an ICU bed", min_len=3, max_len=3,
                                     minimum=0.0, maximum=1.0)
    boarding: bool = setting(True, "bool", "true: a patient finding the ward/ICU full boards in the ED (keeps the "
                                           "ED bed) until one frees; false: blocked (loss)")
    diversion: bool = setting(False, "bool", "go on diversion while the ED (or ICU) is full: ambulances take the "
                                             "nearest hospital not on diversion")
    diversion_threshold: float = setting(1.0, "float", "occupied share of ED (or ICU) beds that starts diversion",
                                         minimum=0.0, strict=True, maximum=1.0)
    transfer: bool = setting(False, "bool", "ICU patients finding no free ICU bed here go at once to the nearest "
                                            "hospital with one (no ambulance, no travel time)")
    transfer_by_ambulance: bool = setting(False, "bool", "with transfer: the transfer is an ambulance request of "
                                                         "priority 3 (hospital to hospital); the patient boards "
                                                         "until picked up")
    specialties: tuple = setting((), "ids", "specialties it offers beyond an ED (e.g. stroke, trauma), for call "
                                            "types with a specialty")


@dataclass(frozen=True)
class DispatchGroup:
    """``[dispatch]``: the dispatch centre."""

    policy: str = setting("nearest", "choice", "'nearest': the idle unit with the least travel time now",
                          choices=("nearest",))
    processing: Dist = dist_setting(Dist("constant", 0.0, 0.0), "call processing time")
    max_queue: int | None = setting(None, "int", "calls that may wait for a unit (omit for unlimited; 0 = loss "
                                                 "system)", minimum=0)
    relocation: tuple | None = setting(None, "relocation", "move-up compliance tables: a list of {kinds = [...], "
                                                           "table = [[stations for 1 free unit], [... for 2], ...]} "
                                                           "(station names; kinds default ['als', 'bls'])",
                                       convert=_relocation)
    compliance_rate: float = setting(1.0, "float", "probability a move-up order is obeyed", minimum=0.0,
                                     maximum=1.0)
    hospital_choice: str = setting("nearest", "choice", "where a patient is taken: 'nearest' (the nearest hospital "
                                                        "not on diversion; fixed at the call unless a hospital has "
                                                        "diversion) or 'door' (chosen at the scene: the least live "
                                                        "travel time plus the expected wait for an ED bed there)",
                                   choices=("nearest", "door"))


@dataclass(frozen=True)
class ServiceGroup:
    """``[service]``: how units spend their busy time (see :class:`twin.emergency.ServiceSpec`)."""

    mode: str = setting("path", "choice", "'path': turnout, travel, scene, transport, handover, return; "
                                          "'busy_time': one draw of busy_time", choices=("path", "busy_time"))
    turnout: Dist = dist_setting(Dist("constant", 60.0, 0.0), "dispatch to wheels rolling")
    handover: Dist = dist_setting(Dist("constant", 900.0, 0.0), "patient handover at hospital")
    return_mode: str = setting("drive", "choice", "'drive' back to the station or 'instant'",
                               choices=("drive", "instant"))
    busy_time: Dist = dist_setting(Dist("exponential", 3600.0), "busy period in busy_time mode")
    emergency_speed_factor: float = setting(1.0, "float", "ambulance speed / link free-flow speed (queue delays "
                                                          "are not scaled)", minimum=0.0, strict=True)
    queue_delay_share: float = setting(1.0, "float", "share of a link's live queue delay an ambulance suffers: 1 = "
                                                     "stuck like everyone, 0 = full priority (queue bypass and "
                                                     "signal preemption, the 'green wave')", minimum=0.0)


@dataclass(frozen=True)
class AgencyGroup:
    """``[[agencies]]``: a department with its own dispatch centre (120 medical, 119 fire, 110
    police ...): the call types its centre answers, its call takers and their interview time
    (:mod:`twin.agents.call_taking`). Every call type belongs to exactly one agency, every unit
    kind to at most one (a kind no agency owns is sent by whichever centre has the call)."""

    name: str = setting("", "str", "agency name")
    call_types: tuple = setting((), "ids", "the [[call_types]] (names) whose calls its centre answers")
    units: tuple = setting((), "ids", "the unit kinds it owns (als, bls, fire, police) at the stations in its "
                                      "districts: in siloed mode only its centre sends them, a call needing them is "
                                      "transferred to it")
    districts: tuple = setting((), "ids", "its jurisdiction, district ids (omit: every district); agencies answering "
                                          "the same call type or owning the same unit kind have disjoint districts")
    mutual_aid: tuple = setting((), "ids", "agencies (names) whose units its centre may ask for when none of its own "
                                           "is idle, [coordination] aid_delay later (siloed mode; one hop)")
    call_takers: int | None = setting(None, "int", "call takers answering its calls at once (omit: unlimited, no "
                                                   "call waits for one)", minimum=1, maximum=100_000)
    processing: Dist | None = setting(None, "dist", f"call processing (interview) time of its calls (omit: "
                                                    f"[dispatch] processing): {DIST_TEXT}", convert=_dist,
                                      plain=_dist_plain)


@dataclass(frozen=True)
class CoordinationGroup:
    """``[coordination]``: how the agencies' centres work together."""

    mode: str = setting("siloed", "choice", "'siloed': each agency's centre answers its own calls with its own call "
                                            "takers; 'unified': one centre with all the call takers answers every "
                                            "call", choices=("siloed", "unified"))
    transfer: Dist = dist_setting(Dist("constant", 60.0, 0.0), "transfer of a call to the centre owning units it needs "
                                                               "(siloed mode; an assumption, not measured)")
    reinterview: bool = setting(True, "bool", "a transferred call is interviewed again at the receiving centre (its "
                                              "agency's processing time), after waiting for a call taker there")
    aid_delay: Dist = dist_setting(Dist("constant", 120.0, 0.0), "asking a mutual-aid partner for a unit (siloed "
                                                                 "mode; an assumption, not measured)")
    hospital_report_s: float = setting(1800.0, "float", "siloed mode: the hospitals report their ED beds to the "
                                                        "centres every this many seconds, and [dispatch] "
                                                        "hospital_choice = 'door' chooses on the last report (an "
                                                        "assumption; unified mode and 0: the live status)",
                                       minimum=0.0)


_NODE = (("node", "the city node id"),)

#: The EMS flow's tables, in scenario order.
EMS_TABLES = (
    Table("kpi", KpiGroup), Table("calls", CallsGroup), Table("call_types", CallTypeGroup, array=True),
    Table("stations", StationGroup, array=True, required=_NODE),
    Table("hospitals", HospitalGroup, array=True, required=_NODE),
    Table("dispatch", DispatchGroup), Table("service", ServiceGroup),
    Table("agencies", AgencyGroup, array=True, required=(("name", "the agency's name"),
                                                          ("call_types", "the call types its centre answers"))),
    Table("coordination", CoordinationGroup),
)
