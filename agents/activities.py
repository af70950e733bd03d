"""Daily activity chains: patterns, departure times, durations, destination and mode choice.

Fidelity: one weekday per person, tour-based. Each person draws one *day pattern* by person
type (a home-based tour, possibly chaining two out-of-home stops, or a day at home); the
tour's departure time and each stop's duration from truncated normal distributions; each
stop's place by a gravity (destination-logit) model from the previous place; and one mode
for the whole tour by a multinomial logit on the times of the tour's first leg. Travel times
are static within one synthesis: car times on free-flow (or given congested) link times, and
shortest-distance / mode-speed times on the city graph for the other modes.

Every default below is a documented *assumption*, overridable through
:class:`ActivityParams` and :class:`ModeParams`:

- day patterns and their shares by person type are illustrative, shaped like the weekday
  tour mix of large-city household travel surveys (most workers and students make one
  commute tour; about 15% of workers chain a shopping stop on the way home; retirees make
  short market/park/clinic tours);
- departure times follow the usual AM peak (work 07:45 ± 45 min, school 07:15 ± 20 min)
  and durations a working day (9 h ± 1 h) or a school day (8 h ± 1 h);
- destination choice is the singly constrained gravity model with exponential deterrence
  (Wilson 1967, "A statistical theory of spatial distribution models", *Transp. Res.* 1),
  i.e. a destination logit with size term ``ln W_j``:
  ``P(j | i) = W_j exp(-beta * t_ij) / sum_k W_k exp(-beta * t_ik)``, ``t`` in minutes;
- mode choice is a multinomial logit ``P(m) = exp(V_m) / sum exp(V_k)`` with
  ``V_m = asc_m + beta_time_per_min * t_m`` (Ortúzar & Willumsen, *Modelling Transport*,
  4th ed., 2011, ch. 7; the time coefficient -0.05/min lies in the range of estimated
  urban in-vehicle/out-of-vehicle time coefficients, e.g. Koppelman & Bhat 2006).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from twin.errors import ScenarioError

__all__ = [
    "ACTIVITIES", "HOME", "WORK", "SCHOOL", "SHOP", "LEISURE", "CLINIC", "CARE", "TRAVEL",
    "PERSON_TYPES", "WORKER", "STUDENT", "RETIREE", "OTHER",
    "MODES", "CAR", "TRANSIT", "WALK", "BIKE",
    "FACILITY_KINDS", "FACILITY_OF_ACTIVITY", "PATTERNS",
    "ActivityParams", "ModeParams", "mode_probabilities",
]

#: Activity codes (int8): index into this tuple. ``TRAVEL`` is used only by location lookups.
ACTIVITIES = ("home", "work", "school", "shop", "leisure", "clinic", "care", "travel")
HOME, WORK, SCHOOL, SHOP, LEISURE, CLINIC, CARE, TRAVEL = range(len(ACTIVITIES))
#: Person types (int8).
PERSON_TYPES = ("worker", "student", "retiree", "other")
WORKER, STUDENT, RETIREE, OTHER = range(len(PERSON_TYPES))
#: Mode codes (int8) of trips.
MODES = ("car", "transit", "walk", "bike")
CAR, TRANSIT, WALK, BIKE = range(len(MODES))
#: Facility kinds (int8), the places activities happen at (homes are nodes of the zone).
FACILITY_KINDS = ("workplace", "school", "market", "park", "clinic", "elderly_care", "hospital")
#: Facility kind serving each out-of-home activity.
FACILITY_OF_ACTIVITY = {WORK: "workplace", SCHOOL: "school", SHOP: "market", LEISURE: "park",
                        CLINIC: "clinic", CARE: "elderly_care"}

#: Day patterns: name -> activity sequence (home first and last, except the stay-home day).
PATTERNS = {
    "H": (HOME,),
    "HWH": (HOME, WORK, HOME),
    "HWSH": (HOME, WORK, SHOP, HOME),
    "HEH": (HOME, SCHOOL, HOME),
    "HSH": (HOME, SHOP, HOME),
    "HLH": (HOME, LEISURE, HOME),
    "HLSH": (HOME, LEISURE, SHOP, HOME),
    "HCH": (HOME, CLINIC, HOME),
    "HKH": (HOME, CARE, HOME),
}


def _default_pattern_shares():
    return {
        "worker": {"H": 0.08, "HWH": 0.77, "HWSH": 0.15},
        "student": {"H": 0.05, "HEH": 0.95},
        "retiree": {"H": 0.35, "HSH": 0.20, "HLH": 0.20, "HLSH": 0.10, "HCH": 0.07, "HKH": 0.08},
        # a retiree with a chronic condition visits a clinic twice as often
        "retiree_chronic": {"H": 0.32, "HSH": 0.18, "HLH": 0.17, "HLSH": 0.07, "HCH": 0.14, "HKH": 0.12},
        "other": {"H": 0.45, "HSH": 0.30, "HLH": 0.15, "HLSH": 0.05, "HCH": 0.05},
    }


def _default_departure_h():
    # activity that starts the tour -> (mean, sd, min, max) hours after midnight
    return {"work": (7.75, 0.75, 5.0, 11.0), "school": (7.25, 1 / 3, 6.0, 9.0), "shop": (9.5, 2.0, 7.0, 19.0),
            "leisure": (8.0, 2.5, 5.5, 19.0), "clinic": (8.5, 1.0, 7.0, 16.0), "care": (8.5, 0.75, 7.0, 11.0)}


def _default_duration_h():
    # activity -> (mean, sd, min, max) hours spent there
    return {"work": (9.0, 1.0, 4.0, 12.0), "school": (8.0, 1.0, 3.0, 10.0), "shop": (0.75, 0.4, 0.2, 3.0),
            "leisure": (1.5, 0.75, 0.25, 4.0), "clinic": (1.5, 0.75, 0.5, 4.0), "care": (6.0, 1.5, 2.0, 9.0)}


def _default_gravity_beta():
    # activity -> deterrence beta per minute of free-flow car time
    return {"work": 0.08, "school": 0.25, "shop": 0.20, "leisure": 0.15, "clinic": 0.12, "care": 0.15}


@dataclass(frozen=True)
class ActivityParams:
    """Day-pattern shares, timing distributions and destination-choice sensitivities.

    Attributes
    ----------
    pattern_shares : dict
        Person type (``worker``, ``student``, ``retiree``, ``retiree_chronic``, ``other``) ->
        {pattern name in :data:`PATTERNS` -> share}; each type's shares sum to 1.
    departure_h : dict
        First out-of-home activity -> (mean, sd, min, max) of the tour's departure from home,
        hours after midnight (a normal clipped to [min, max]).
    duration_h : dict
        Activity -> (mean, sd, min, max) of the time spent there, hours (clipped normal).
    gravity_beta_per_min : dict
        Activity -> deterrence ``beta`` of the gravity model, per minute (> 0 shortens trips).
    """

    pattern_shares: dict = field(default_factory=_default_pattern_shares)
    departure_h: dict = field(default_factory=_default_departure_h)
    duration_h: dict = field(default_factory=_default_duration_h)
    gravity_beta_per_min: dict = field(default_factory=_default_gravity_beta)

    def __post_init__(self):
        types = ("worker", "student", "retiree", "retiree_chronic", "other")
        _check_keys(self.pattern_shares, types, "pattern_shares", require_all=True)
        for ptype, shares in self.pattern_shares.items():
            _check_keys(shares, tuple(PATTERNS), f"pattern_shares[{ptype!r}]")
            values = np.array(list(shares.values()), dtype=float)
            if (values < 0).any() or abs(values.sum() - 1.0) > 1e-6:
                raise ScenarioError(f"activity params: pattern_shares[{ptype!r}] = {shares}; expected shares >= 0 "
                                    f"summing to 1 (sum is {values.sum():.6g})")
        out_acts = tuple(ACTIVITIES[a] for a in FACILITY_OF_ACTIVITY)
        for name in ("departure_h", "duration_h"):
            table = getattr(self, name)
            _check_keys(table, out_acts, name, require_all=True)
            for act, spec in table.items():
                if len(spec) != 4 or not (spec[1] >= 0 and spec[2] <= spec[3] and spec[2] >= 0):
                    raise ScenarioError(f"activity params: {name}[{act!r}] = {spec}; expected (mean, sd >= 0, "
                                        f"min >= 0, max >= min) in hours")
        _check_keys(self.gravity_beta_per_min, out_acts, "gravity_beta_per_min", require_all=True)
        for act, beta in self.gravity_beta_per_min.items():
            if not np.isfinite(beta) or beta < 0:
                raise ScenarioError(f"activity params: gravity_beta_per_min[{act!r}] = {beta}; expected a finite "
                                    f"number >= 0 (per minute)")

    def replace(self, **changes) -> "ActivityParams":
        """A copy with some tables updated key by key (``{"work": 0.2}`` changes one entry)."""
        merged = {}
        for name, value in changes.items():
            if name not in {f.name for f in dataclasses.fields(self)}:
                raise ScenarioError(f"unknown activity parameter {name!r}; accepted: "
                                    f"{[f.name for f in dataclasses.fields(self)]}")
            merged[name] = {**getattr(self, name), **value}
        return dataclasses.replace(self, **merged)


@dataclass(frozen=True)
class ModeParams:
    """Multinomial-logit mode choice and mode speeds.

    Attributes
    ----------
    asc : dict
        Mode -> alternative-specific constant (walk is the reference, 0).
    beta_time_per_min : float
        Utility per minute of door-to-door time (< 0).
    speed_mps : dict
        Network speed of ``walk`` (1.3 m/s), ``bike`` (4.0 m/s) and ``transit`` (5.0 m/s,
        i.e. 18 km/h average bus speed incl. stops); cars use free-flow link times.
    terminal_s : dict
        Mode -> fixed access/egress/wait time added to every trip (car 300 s for parking,
        transit 600 s for walking to the stop and waiting).
    car_ownership : float
        Share of households owning a car (0.40, an assumption for a large Chinese city in
        2020); persons aged 18-74 in such households can drive.
    """

    asc: dict = field(default_factory=lambda: {"car": -0.4, "transit": -0.6, "walk": 0.0, "bike": -0.3})
    beta_time_per_min: float = -0.05
    speed_mps: dict = field(default_factory=lambda: {"walk": 1.3, "bike": 4.0, "transit": 5.0})
    terminal_s: dict = field(default_factory=lambda: {"car": 300.0, "transit": 600.0, "walk": 0.0, "bike": 60.0})
    car_ownership: float = 0.40

    def __post_init__(self):
        _check_keys(self.asc, MODES, "asc", require_all=True)
        _check_keys(self.terminal_s, MODES, "terminal_s", require_all=True)
        _check_keys(self.speed_mps, ("walk", "bike", "transit"), "speed_mps", require_all=True)
        if not self.beta_time_per_min < 0:
            raise ScenarioError(f"mode params: beta_time_per_min = {self.beta_time_per_min}; expected < 0 per minute")
        for mode, v in self.speed_mps.items():
            if not (np.isfinite(v) and v > 0):
                raise ScenarioError(f"mode params: speed_mps[{mode!r}] = {v}; expected a finite speed > 0 m/s")
        for mode, v in self.terminal_s.items():
            if not (np.isfinite(v) and v >= 0):
                raise ScenarioError(f"mode params: terminal_s[{mode!r}] = {v}; expected seconds >= 0")
        if not 0.0 <= self.car_ownership <= 1.0:
            raise ScenarioError(f"mode params: car_ownership = {self.car_ownership}; expected a share in [0, 1]")

    def replace(self, **changes) -> "ModeParams":
        """A copy with some fields changed (dict fields are merged key by key)."""
        names = [f.name for f in dataclasses.fields(self)]
        merged = {}
        for name, value in changes.items():
            if name not in names:
                raise ScenarioError(f"unknown mode parameter {name!r}; accepted: {names}")
            merged[name] = {**getattr(self, name), **value} if isinstance(value, dict) else value
        return dataclasses.replace(self, **merged)


def _check_keys(table, accepted, what, require_all=False):
    if not isinstance(table, dict):
        raise TypeError(f"{what} must be a dict; got {type(table).__name__}")
    unknown = [k for k in table if k not in accepted]
    if unknown:
        raise ScenarioError(f"{what}: unknown key(s) {unknown}; accepted: {list(accepted)}")
    if require_all:
        missing = [k for k in accepted if k not in table]
        if missing:
            raise ScenarioError(f"{what}: missing key(s) {missing}; expected all of {list(accepted)}")


def mode_probabilities(time_s, car_available, params: ModeParams) -> np.ndarray:
    """Multinomial-logit probabilities of the modes.

    Parameters
    ----------
    time_s : ndarray of float64, shape (n, 4)
        Door-to-door time of each mode in :data:`MODES` order, seconds (``inf`` = unavailable).
    car_available : ndarray of bool, shape (n,)
        Whether the car alternative is available.
    params : ModeParams

    Returns
    -------
    ndarray of float64, shape (n, 4)
        ``P(m) = exp(V_m) / sum_k exp(V_k)`` with ``V_m = asc_m + beta_time_per_min * t_m / 60``;
        unavailable modes get probability 0. Rows sum to 1.

    Examples
    --------
    >>> p = mode_probabilities(np.array([[600.0, 600.0, 600.0, 600.0]]), np.array([True]), ModeParams())
    >>> round(float(p.sum()), 12)
    1.0
    """
    asc = np.array([params.asc[m] for m in MODES])
    v = asc[None, :] + params.beta_time_per_min * (np.asarray(time_s, dtype=np.float64) / 60.0)
    v[~np.asarray(car_available, dtype=bool), CAR] = -np.inf
    v = np.where(np.isfinite(v), v, -np.inf)
    vmax = v.max(axis=1, keepdims=True)
    vmax = np.where(np.isfinite(vmax), vmax, 0.0)
    e = np.exp(v - vmax)
    return e / e.sum(axis=1, keepdims=True)
