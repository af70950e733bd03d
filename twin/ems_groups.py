"""The groups of an EMS spec: zones, call types, units, hospitals, dispatch, service, incidents.

Frozen dataclasses with units in field names and defaults, but no checks of their own:
:class:`twin.emergency.EmsSpec` validates them as a whole (its ``__post_init__``) and builds
them from plain dicts (:meth:`~twin.emergency.EmsSpec.from_dict`). Re-exported by
:mod:`twin.emergency`.
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.dists import Dist

__all__ = ["ZoneSpec", "CallTypeSpec", "UnitSpec", "HospitalSpec", "RelocationSpec", "DispatchSpec", "ServiceSpec",
           "IncidentSpec"]


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
        Units the call needs, ``(kind, count)`` pairs with kinds in :data:`~twin.emergency.UNIT_KINDS`
        (a dict ``{"fire": 2, "als": 1}`` is accepted and kept in its order). Default: one
        ALS ambulance. Each unit is one *slot*, filled in this order at dispatch.
    fallback : tuple of (str, str)
        ``(kind, substitute)`` pairs: a slot of ``kind`` with no idle unit of that kind is
        filled by an idle ``substitute`` (one step, not chained). Default ``als -> bls``.
    specialty : str
        A hospital specialty its patients need (``"stroke"``, ``"trauma"`` ...; empty: none):
        they go to a hospital offering it (:attr:`HospitalSpec.specialties`), chosen when the
        transport leaves the scene; to any hospital only when none offering it is reachable
        and in service.
    icu : bool
        Its patients need an ICU bed, known at the scene (major trauma, a cardiac arrest with
        return of circulation): they go to a hospital with ICU beds (as a specialty), with
        ``hospital_choice = "door"`` counting the expected wait for an ICU bed too, and after
        the ED stay they need the ICU (the ward / ICU probabilities of their priority are not
        used).

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
    specialty: str = ""
    icu: bool = False

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
        One of :data:`~twin.emergency.UNIT_KINDS` (default ``"als"``, an advanced-life-support ambulance).
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
    specialties : tuple of str
        What it offers beyond an ED (``"stroke"``, ``"trauma"`` ...), for call types with a
        :attr:`CallTypeSpec.specialty`.
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
    specialties: tuple = ()

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
    centres : tuple of (str, int or float)
        Call-taking centres, ``(name, call takers)`` (``math.inf``: never a wait). Empty (the
        default): no call takers, every call goes straight to processing. See
        :mod:`twin.agents.call_taking`.
    centre_of_type : tuple
        The centre of each call type (with ``centres``): an index, or a tuple of one index per
        zone (jurisdictions: the centre answering the type's calls in that zone).
    type_processing : tuple of Dist
        Processing time of each call type (its agency's), instead of ``processing``: a Dist,
        or a tuple of one Dist per zone (agencies answering the type in different districts
        with their own interview times); empty: ``processing`` for all. Drawn with the same
        dice either way.
    centre_of_kind : tuple
        The centre that owns (alone dispatches) each unit kind of
        :data:`twin.emergency.UNIT_KINDS`: an index or ``-1`` (any centre sends it), or a
        tuple of those per zone (who owns the kind where the call is). Empty (the default):
        every kind is shared. A call needing a unit another centre owns is *transferred*
        there after its own centre's processing: ``transfer`` seconds later it reaches that
        centre, waits for a call taker there, is interviewed again (``centre_processing``) and
        that centre sends its units (see :mod:`twin.agents.dispatch`).
    centre_of_unit : tuple of int
        The centre each unit belongs to (``-1``: any centre may send it); empty: the unit's
        kind's centre (``centre_of_kind`` must then be one index per kind).
    transfer : Dist
        Transfer delay between centres, seconds (one draw per call, common to its transfers).
    centre_processing : tuple of Dist
        The interview at each centre receiving a transfer (one per centre; empty: no
        re-interview). One draw per call, common to its transfers.
    mutual_aid : tuple of tuple of int
        Per centre, the centres whose units it may ask for when a slot finds none of its own
        idle: ``aid_delay`` later (one draw per call) the open slot may take their units too
        (one hop: their partners are not asked). Empty: hard borders.
    aid_delay : Dist
        Time to ask and get mutual aid, seconds.
    agencies : tuple of str
        The agencies' names (in either coordination mode: what the per-agency and
        cross-border KPIs are about); empty: none.
    agency_of_unit : tuple of int
        Each unit's agency (index into ``agencies``; ``-1``: none).
    agency_of_kind : tuple
        The agency owning each unit kind, like ``centre_of_kind`` (an index or ``-1``, or one
        per zone): a unit sent to a call where another agency owns its kind crosses a border.
    hospital_choice : str
        ``"nearest"``: the nearest hospital (fixed on the static times when the call is drawn,
        or, with diversion or a hospital out of service, chosen when the transport leaves the
        scene, skipping hospitals on diversion). ``"door"``: chosen when the transport leaves
        the scene, by the least travel time now plus the expected wait for an ED bed there
        (:meth:`twin.agents.ems.CityModel.door_wait_s`).
    hospital_report_s : float
        With ``"door"``: the hospitals' ED status is seen as of their last report, every this
        many seconds (``floor(now / T) T``); 0: live (a shared picture).
    """

    policy: str = "nearest"
    preference_lists: tuple = ()
    processing: Dist = Dist("constant", 0.0, 0.0)
    max_queue: int | None = None
    relocation: tuple = ()
    compliance_rate: float = 1.0
    centres: tuple = ()
    centre_of_type: tuple = ()
    type_processing: tuple = ()
    centre_of_kind: tuple = ()
    centre_of_unit: tuple = ()
    transfer: Dist = Dist("constant", 0.0, 0.0)
    centre_processing: tuple = ()
    mutual_aid: tuple = ()
    aid_delay: Dist = Dist("constant", 0.0, 0.0)
    agencies: tuple = ()
    agency_of_unit: tuple = ()
    agency_of_kind: tuple = ()
    hospital_choice: str = "nearest"
    hospital_report_s: float = 0.0


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
    (the incidents flow's), so calls of other runs keep their draws. A transported patient
    goes to the hospital nearest the incident (static times; with diversion, the nearest
    not on diversion when the transport starts). A patient's call is never lost: it waits
    in the dispatch queue whatever ``max_queue`` is. Patients are left out of the routine
    call KPIs and district tables; :attr:`~twin.emergency.EmsResult.incidents` reports each incident.
    """

    name: str
    location_idx: int
    time_s: float
    patients: int
    triage: tuple | None = None
    call_type: str | None = None
    transport_probability: float = 1.0
