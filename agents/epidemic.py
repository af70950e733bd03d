"""An epidemic on the population's contacts: disease parameters, one run day by day, its result.

What it models, and at what fidelity
------------------------------------
A per-person state machine (:mod:`twin.kernels.epidemic`: susceptible, exposed,
presymptomatic, symptomatic, asymptomatic, severe, critical, recovered, dead) in continuous
time, advanced in daily steps; transmission on the contact layers of
:mod:`twin.agents.epidemic_contacts`; severe and critical cases take hospital ward and ICU
beds (loss systems) and fare worse without one. One infection per person (lasting immunity).

Defaults (:class:`Disease`) are **Covasim 4.0.1's defaults** (``covasim/parameters.py``;
Kerr et al. 2021), which cite their sources: durations as lognormals with the mean and
standard deviation in days (exposed -> infectious 4.5 / 1.5, Lauer et al. 2020;
infectious -> symptoms 1.1 / 0.9, Linton et al. 2020; symptoms -> severe 6.6 / 4.9; severe ->
critical 1.5 / 2.0; asymptomatic and mild recovery 8.0 / 2.0, Wölfel et al. 2020; severe and
critical recovery 18.1 / 6.3 and critical -> death 10.7 / 4.8, Verity et al. 2020); the
probabilities of symptoms, severe, critical disease and death by age decade (Imperial College
Report 9; O'Driscoll et al. 2021) and susceptibility odds ratios (Zhang et al. 2020); beta
0.016 per contact-day with layer weights household 3.0, school 0.6, work 0.6, community 0.3;
``no_hosp_factor`` and ``no_icu_factor`` 2.0. They describe COVID-19's wild type, not a
calibrated local outbreak. Covasim rounds durations to whole days and varies infectiousness
per person and with viral load; this model keeps durations continuous and infectiousness
constant while infectious (or a gamma profile, :attr:`Disease.profile_d`), with the same
mean behaviour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from twin.dists import Dist
from twin.errors import ScenarioError
from twin.kernels import epidemic as K

__all__ = ["Disease", "Prognoses", "EpidemicRun", "EpidemicResult", "erlang_b", "final_size", "DURATION_DEFAULTS"]

#: Covasim 4.0.1 default durations, days: (kind, mean, sd), in kernel column order.
DURATION_DEFAULTS = {
    "latent": ("lognormal", 4.5, 1.5), "presymptomatic": ("lognormal", 1.1, 0.9),
    "asymptomatic": ("lognormal", 8.0, 2.0), "mild": ("lognormal", 8.0, 2.0),
    "to_severe": ("lognormal", 6.6, 4.9), "to_critical": ("lognormal", 1.5, 2.0),
    "severe": ("lognormal", 18.1, 6.3), "to_death": ("lognormal", 10.7, 4.8),
    "critical": ("lognormal", 18.1, 6.3),
}


@dataclass(frozen=True)
class Prognoses:
    """Probabilities by age band (lower limits ``age_cutoffs``, years): *absolute* shares of the
    infected with symptoms, severe and critical disease and death, and relative susceptibility.
    Defaults: Covasim 4.0.1 by decade (see the module docstring)."""

    age_cutoffs: tuple = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90)
    susceptibility: tuple = (0.34, 0.67, 1.00, 1.00, 1.00, 1.00, 1.24, 1.47, 1.47, 1.47)
    symptomatic: tuple = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.90)
    severe: tuple = (0.00050, 0.00165, 0.00720, 0.02080, 0.03430, 0.07650, 0.13280, 0.20655, 0.24570, 0.24570)
    critical: tuple = (0.00003, 0.00008, 0.00036, 0.00104, 0.00216, 0.00933, 0.03639, 0.08923, 0.17420, 0.17420)
    death: tuple = (0.00002, 0.00002, 0.00010, 0.00032, 0.00098, 0.00265, 0.00766, 0.02439, 0.08292, 0.16190)

    def __post_init__(self):
        n = len(self.age_cutoffs)
        cuts = np.asarray(self.age_cutoffs, dtype=float)
        if n == 0 or cuts[0] != 0 or np.any(np.diff(cuts) <= 0):
            raise ScenarioError(f"prognoses: age_cutoffs = {list(self.age_cutoffs)}; expected increasing ages "
                                f"starting at 0")
        for name in ("susceptibility", "symptomatic", "severe", "critical", "death"):
            v = np.asarray(getattr(self, name), dtype=float)
            if v.shape != (n,) or not np.all(np.isfinite(v)) or np.any(v < 0) or \
                    (name != "susceptibility" and np.any(v > 1)):
                raise ScenarioError(f"prognoses: {name} = {list(getattr(self, name))}; expected {n} finite "
                                    f"numbers, one per age band, {'>= 0' if name == 'susceptibility' else 'in [0, 1]'}")
        chain = [np.asarray(getattr(self, k), dtype=float) for k in ("symptomatic", "severe", "critical", "death")]
        for (a, b), (na, nb) in zip(zip(chain, chain[1:]), (("symptomatic", "severe"), ("severe", "critical"),
                                                            ("critical", "death"))):
            if np.any(b > a):
                raise ScenarioError(f"prognoses: {nb} exceeds {na} in some age band; the absolute shares must "
                                    f"not grow along symptomatic >= severe >= critical >= death")

    def per_person(self, age):
        """``(sus, p_sym, p_sev | sym, p_crit | sev, p_death | crit)`` for ages ``age`` (years)."""
        band = np.searchsorted(np.asarray(self.age_cutoffs, dtype=float), np.asarray(age, dtype=float),
                               side="right") - 1
        band = np.clip(band, 0, len(self.age_cutoffs) - 1)

        def cond(num, den):
            num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
            return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

        sym = np.asarray(self.symptomatic, dtype=float)
        sev = cond(self.severe, sym)
        crit = cond(self.critical, self.severe)
        death = cond(self.death, self.critical)
        return (np.asarray(self.susceptibility, dtype=float)[band], sym[band], sev[band], crit[band], death[band])


def _duration(name, value, zero_ok=None):
    """A duration in days from ``(kind, mean_d, sd_d)``, a number (constant) or a Dist; as a
    :class:`~twin.dists.Dist` whose ``mean_s`` field holds **days**."""
    if isinstance(value, Dist):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        kind, mean, sd = "constant", float(value), 0.0
    else:
        try:
            kind, mean, sd = value
            mean, sd = float(mean), float(sd)
        except (TypeError, ValueError):
            raise ScenarioError(f"{name}: found {value!r}; expected days as a number or "
                                f"(kind, mean_d, sd_d)") from None
    # a constant latent period may be 0: infectious from infection (OpenABM's model)
    zero_ok = bool(zero_ok) and kind == "constant"
    if not (math.isfinite(mean) and math.isfinite(sd)) or mean < 0 or sd < 0 or (mean == 0 and not zero_ok) or \
            (kind in ("lognormal", "gamma") and sd <= 0):
        raise ScenarioError(f"{name}: mean {mean!r} d, sd {sd!r} d; expected finite numbers, "
                            f"mean > 0 (a constant latent period may be 0) and sd > 0 for lognormal and gamma")
    if kind not in ("constant", "exponential", "lognormal", "gamma"):
        raise ScenarioError(f"{name}: kind {kind!r}; expected constant, exponential, lognormal "
                            f"or gamma")
    return Dist(kind, mean, sd / mean if mean > 0 and kind in ("lognormal", "gamma") else 1.0)


@dataclass(frozen=True)
class Disease:
    """Disease parameters (defaults: Covasim 4.0.1, see the module docstring).

    Attributes
    ----------
    beta : float
        Transmission rate per contact-day of full infectiousness (probability
        ``1 - exp(-beta * layer weight * ...)`` per contact and day).
    layer_weights : dict
        Relative transmission per layer name (a layer not named has weight 1).
    durations : dict
        Name (:data:`twin.kernels.epidemic.DUR_COLUMNS`) -> days as a number, ``(kind, mean_d,
        sd_d)`` or a Dist in days; missing names take :data:`DURATION_DEFAULTS`.
    prognoses : Prognoses
    asymptomatic_factor : float
        Relative infectiousness of the asymptomatic.
    no_hosp_factor, no_icu_factor : float
        Multipliers of the probability of becoming critical without a ward bed, and of dying
        without an ICU bed (capped at 1).
    profile_d : tuple or None
        ``(mean_d, sd_d)``: infectiousness follows a gamma density of time since infection
        (OpenABM-Covid19's generation-interval curve) instead of being constant while infectious.
    """

    beta: float = 0.016
    layer_weights: dict = field(default_factory=lambda: {"household": 3.0, "school": 0.6, "work": 0.6,
                                                         "community": 0.3})
    durations: dict = field(default_factory=dict)
    prognoses: Prognoses = field(default_factory=Prognoses)
    asymptomatic_factor: float = 1.0
    no_hosp_factor: float = 2.0
    no_icu_factor: float = 2.0
    profile_d: tuple | None = None

    def __post_init__(self):
        for name in ("beta", "asymptomatic_factor", "no_hosp_factor", "no_icu_factor"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ScenarioError(f"epidemic: {name} = {v!r}; expected a finite number >= 0")
        for k, v in self.layer_weights.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ScenarioError(f"epidemic: layer weight {k} = {v!r}; expected a finite number >= 0")
        unknown = sorted(set(self.durations) - set(K.DUR_COLUMNS))
        if unknown:
            raise ScenarioError(f"epidemic durations: unknown {unknown}; expected names among {list(K.DUR_COLUMNS)}")
        for k, v in self.durations.items():
            _duration(f"epidemic duration {k}", v, zero_ok=k == "latent")
        if self.profile_d is not None:
            mean, sd = self.profile_d
            if not (math.isfinite(mean) and math.isfinite(sd)) or mean <= 0 or sd <= 0:
                raise ScenarioError(f"epidemic: profile_d = {self.profile_d!r}; expected (mean_d, sd_d) > 0")

    def duration(self, name) -> Dist:
        """The Dist of duration ``name``, in days."""
        return _duration(f"epidemic duration {name}", self.durations.get(name, DURATION_DEFAULTS[name]),
                         zero_ok=name == "latent")

    def profile_table(self, step_d=0.01):
        """The infectiousness profile's CDF in steps of ``step_d`` days (a 1-element table when
        infectiousness is constant)."""
        if self.profile_d is None:
            return np.ones(1), float(step_d)
        from scipy.stats import gamma

        mean, sd = self.profile_d
        k, theta = (mean / sd) ** 2, sd ** 2 / mean
        top = gamma.ppf(1 - 1e-9, k, scale=theta)
        grid = np.arange(0.0, top + 2 * step_d, step_d)
        return gamma.cdf(grid, k, scale=theta), float(step_d)


def erlang_b(servers, load):
    """Erlang's loss formula B(c, a): the share of Poisson arrivals refused by ``c`` servers
    under offered load ``a`` (erlangs), by the stable recursion B(k) = a B(k-1) / (k + a B(k-1))."""
    b = 1.0
    for k in range(1, int(servers) + 1):
        b = load * b / (k + load * b)
    return b


def final_size(r0):
    """The final size z of a major outbreak under homogeneous mixing: z = 1 - exp(-R0 z)
    (0 when R0 <= 1), solved by bisection."""
    if r0 <= 1.0:
        return 0.0
    lo, hi = 1e-12, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid - (1.0 - math.exp(-r0 * mid)) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(eq=False)
class EpidemicResult:
    """What an epidemic run produced.

    Attributes
    ----------
    daily : pandas.DataFrame
        One row per day: ``day``; persons in each state at the end of the day (the
        :data:`~twin.kernels.epidemic.STATE_NAMES`); ``new_infections`` and by layer
        (``new_<layer>``); the day's events (:data:`~twin.kernels.epidemic.EVENT_COLUMNS`);
        ``ward_occupied`` / ``icu_occupied`` (beds in use at the end of the day).
    zone_new : ndarray of int64 (n_days, n_zones)
        New infections per day by the home zone of the infected.
    t_inf_d : ndarray of float64 (n_persons,)
        Infection time, days (NaN: never infected).
    infector, inf_layer : ndarray (n_persons,)
        Who infected whom (-1: seeded or never) and on which layer (-1).
    layer_names : tuple of str
    """

    daily: pd.DataFrame
    zone_new: np.ndarray
    t_inf_d: np.ndarray
    infector: np.ndarray
    inf_layer: np.ndarray
    layer_names: tuple
    n_persons: int

    @property
    def attack_rate(self) -> float:
        """Share of persons ever infected."""
        return float(np.count_nonzero(~np.isnan(self.t_inf_d))) / max(self.n_persons, 1)


class EpidemicRun:
    """One epidemic on fixed contact layers, advanced day by day (:meth:`step`).

    Parameters
    ----------
    contacts : twin.agents.epidemic_contacts.Contacts
    disease : Disease
    age : ndarray (n_persons,)
        Ages, years.
    rng : numpy.random.Generator
        Draws every person's dice (durations and branches) at once, then the keys of the
        days and the seeded persons' infection times; nothing else draws.
    n_days : int
    home_zone : ndarray of int (n_persons,), optional
        Zone of each person's home (for ``zone_new``); all zone 0 if omitted.
    n_zones : int
    ward_beds, icu_beds : int or None
        Bed pools for the severe and the critical (None: unlimited).
    """

    def __init__(self, contacts, disease, age, rng, n_days, *, home_zone=None, n_zones=1, ward_beds=None,
                 icu_beds=None):
        n = contacts.n_persons
        age = np.asarray(age)
        if age.shape != (n,):
            raise ScenarioError(f"epidemic: {len(age)} ages for {n} persons")
        if int(n_days) != n_days or n_days < 1:
            raise ScenarioError(f"epidemic: days = {n_days!r}; expected an integer >= 1")
        self.contacts, self.disease, self.n, self.n_days = contacts, disease, n, int(n_days)
        self.sus, self.p_sym, self.p_sev, self.p_crit, self.p_death = disease.prognoses.per_person(age)
        u = rng.random((n, len(K.DUR_COLUMNS)))
        self.dur_d = np.empty((n, len(K.DUR_COLUMNS)), dtype=np.float64)
        for c, name in enumerate(K.DUR_COLUMNS):
            self.dur_d[:, c] = disease.duration(name).ppf(u[:, c])
        self.u_branch = rng.random((n, len(K.BRANCH_COLUMNS)))
        self.keys = rng.integers(0, 2 ** 63, size=self.n_days, dtype=np.int64).astype(np.uint64)
        self.rng = rng
        self.state = np.zeros(n, dtype=np.int8)
        self.t_state = np.zeros(n)
        self.t_next = np.full(n, np.inf)
        self.next_state = np.zeros(n, dtype=np.int8)
        self.t_inf = np.full(n, np.nan)
        self.inf_start = np.full(n, np.inf)
        self.inf_end = np.full(n, np.inf)
        self.infector = np.full(n, -1, dtype=np.int64)
        self.inf_layer = np.full(n, -1, dtype=np.int8)
        self.bed = np.full(n, -1, dtype=np.int64)
        self.t_severe = np.full(n, np.nan)
        self.t_onset = np.full(n, np.nan)
        self.stays = np.full((n, 4), np.nan)
        self.rel_inf = np.ones(n)
        self.home_zone = np.zeros(n, dtype=np.int64) if home_zone is None else np.asarray(home_zone, dtype=np.int64)
        self.n_zones = int(n_zones)
        big = n + 1                                    # unlimited: a bed for everyone
        self.ward_free_at = np.full(big if ward_beds is None else int(ward_beds), -np.inf)
        self.icu_free_at = np.full(big if icu_beds is None else int(icu_beds), -np.inf)
        names = contacts.layer_names
        self.beta_layer = np.array([disease.beta * disease.layer_weights.get(k, 1.0) for k in names], dtype=np.float64)
        self.profile_cdf, self.profile_step = disease.profile_table()
        self._heap_t = np.empty(n)
        self._heap_i = np.empty(n, dtype=np.int64)
        self._new = np.empty(n, dtype=np.int64)
        self._rows = []
        self.zone_new = np.zeros((self.n_days, self.n_zones), dtype=np.int64)
        self.day = 0

    def seed(self, persons, day=0) -> None:
        """Infect ``persons`` (indices; susceptible ones only) at uniform times on day ``day``."""
        persons = np.asarray(persons, dtype=np.int64)
        t = day + self.rng.random(len(persons))
        for j, tj in zip(persons, t):
            if self.state[j] == K.S:
                K.infect(int(j), float(tj), self.state, self.t_state, self.t_next, self.next_state, self.t_inf,
                         self.dur_d, self.u_branch, self.p_sym)
        np.add.at(self.zone_new[min(day, self.n_days - 1)], self.home_zone[persons], 1)

    def _rel_inf(self, isolated):
        f = self.disease.asymptomatic_factor
        if f != 1.0:
            self.rel_inf[:] = np.where((self.next_state == K.IA) | (self.state == K.IA), f, 1.0)
        else:
            self.rel_inf[:] = 1.0
        if isolated is not None:
            self.rel_inf[np.asarray(isolated, dtype=bool)] = 0.0

    def reserve_beds(self, pool, beds, until_d) -> int:
        """Hold up to ``beds`` free beds of ``pool`` (``"ward"`` / ``"icu"``) for others until
        ``until_d`` (days); returns how many were free to hold."""
        free_at = self.ward_free_at if pool == "ward" else self.icu_free_at
        free = np.flatnonzero(free_at <= self.day)[:max(int(beds), 0)]
        free_at[free] = until_d
        return len(free)

    def add_beds(self, ward=0, icu=0) -> None:
        """Open ``ward`` / ``icu`` more beds from now on (free at once)."""
        if ward:
            self.ward_free_at = np.concatenate([self.ward_free_at, np.full(int(ward), -np.inf)])
        if icu:
            self.icu_free_at = np.concatenate([self.icu_free_at, np.full(int(icu), -np.inf)])

    def step(self, *, layer_scale=None, home_only=None, zone_closed=None, isolated=None) -> dict:
        """Advance one day: progression of the day's transitions, then the day's transmission.

        ``layer_scale`` (n_layers,) multiplies each layer's transmission today (0 = closed);
        ``home_only`` (n_persons, bool) restricts persons to their household; ``zone_closed``
        (n_zones, bool) stops every activity out of home in those zones; ``isolated``
        (n_persons, bool) takes persons out of every contact (isolation in a facility).
        Returns the day's row (also kept for :meth:`result`).
        """
        d = self.day
        if d >= self.n_days:
            raise ScenarioError(f"epidemic: day {d} is past the run's {self.n_days} days")
        c = self.contacts
        events = np.zeros(len(K.EVENT_COLUMNS), dtype=np.int64)
        K.progress_day(d, self.state, self.t_state, self.t_next, self.next_state, self.inf_start, self.inf_end,
                       self.dur_d, self.u_branch, self.p_sev, self.p_crit, self.p_death,
                       float(self.disease.no_hosp_factor), float(self.disease.no_icu_factor),
                       self.ward_free_at, self.icu_free_at, self.bed, self.t_onset, self.t_severe, self.stays,
                       self._heap_t, self._heap_i, events)
        self._rel_inf(isolated)
        scale = np.ones(len(c.layer_names)) if layer_scale is None else np.asarray(layer_scale, dtype=np.float64)
        home = np.zeros(self.n, dtype=np.bool_) if home_only is None else np.asarray(home_only, dtype=np.bool_)
        closed = np.zeros(max(self.n_zones, 1), dtype=np.bool_) if zone_closed is None else \
            np.asarray(zone_closed, dtype=np.bool_)
        n_new = K.transmit_day(d, self.keys[d], self.state, self.t_state, self.t_next, self.next_state, self.t_inf,
                               self.inf_start, self.inf_end, self.rel_inf, self.sus, self.dur_d, self.u_branch,
                               self.p_sym, self.profile_cdf, self.profile_step, self.disease.profile_d is not None,
                               c.edge_indptr, c.edge_nbr, c.edge_layer, c.edge_zone, self.beta_layer, scale,
                               c.layer("household"), home, closed, c.bucket_indptr, c.bucket_member, c.bucket_zone,
                               c.pb_indptr, c.pbucket, int(c.community_contacts), c.layer("community"), self.infector,
                               self.inf_layer, self._new)
        new = self._new[:n_new]
        self.zone_new[d] += np.bincount(self.home_zone[new], minlength=self.n_zones)
        row = {"day": d}
        counts = np.bincount(self.state, minlength=K.N_STATES)
        row.update({name: int(counts[k]) for k, name in enumerate(K.STATE_NAMES)})
        row["new_infections"] = int(n_new)
        by_layer = np.bincount(self.inf_layer[new], minlength=len(c.layer_names))
        row.update({f"new_{name}": int(by_layer[k]) for k, name in enumerate(c.layer_names)})
        row.update({name: int(events[k]) for k, name in enumerate(K.EVENT_COLUMNS)})
        in_bed = self.bed >= 0
        row["ward_occupied"] = int(np.count_nonzero(in_bed & (self.state == K.SEV)))
        row["icu_occupied"] = int(np.count_nonzero(in_bed & (self.state == K.CRIT)))
        self._rows.append(row)
        self.day += 1
        return row

    def new_severe(self, day):
        """Persons who became severe during day ``day`` (indices, by time then index)."""
        t = self.t_severe
        who = np.flatnonzero((t >= day) & (t < day + 1))
        return who[np.argsort(t[who], kind="stable")]

    def infectious_weight(self):
        """Each person's infectious weight if infected (days infectious x relative infectiousness,
        or the profile mass of the infectious window), from the person's own dice, as if every
        severe case found a bed (the kernel's weight summed over the days)."""
        dur, u, dis = self.dur_d, self.u_branch, self.disease
        sym = u[:, 0] < self.p_sym
        start = dur[:, K.D_LATENT]
        onset = start + dur[:, K.D_PRESYM]
        end = np.where(sym, onset + np.where(u[:, 1] < self.p_sev, dur[:, K.D_TOSEV], dur[:, K.D_MILD]),
                       start + dur[:, K.D_ASYM])
        if dis.profile_d is None:
            w = end - start
        else:
            cdf, step = self.profile_cdf, self.profile_step

            def at(x):
                return np.interp(x / step, np.arange(len(cdf)), cdf, left=0.0, right=cdf[-1])

            w = at(end) - at(start)
        return np.where(sym, 1.0, dis.asymptomatic_factor) * w

    def r0(self) -> float:
        """R0 as the spectral radius of the individual next-generation matrix (Diekmann, Heesterbeek
        & Metz 1990) at today's layer rates: ``K[i, j]`` = expected infections of ``i`` by an
        infected ``j`` in a fully susceptible population (static contacts ``1 - exp(-beta_l W_j
        sus_i)``, community contacts ``c / (m - 1) beta_c W_j sus_i`` per shared zone-hour of
        ``m`` persons), by ARPACK's implicitly restarted Arnoldi (the Perron root, largest real
        part) to a relative 1e-6. Household clustering is not
        discounted (a household member counted as infectable by everyone in it), so on clustered
        layers this R0 is an upper bound of the mean offspring of the early generations."""
        return self._spectral()[0]

    def _spectral(self, v0=None, *, iterations=5000, tol=1e-6):
        from scipy import sparse

        key = self.beta_layer.tobytes()
        if v0 is None and getattr(self, "_r0_cache", (None,))[0] == key:
            return self._r0_cache[1], self._r0_cache[2]
        c, n = self.contacts, self.n
        w = self.infectious_weight()
        src = np.repeat(np.arange(n), np.diff(c.edge_indptr))
        hz = self.beta_layer[c.edge_layer] * w[src] * self.sus[c.edge_nbr]
        # B[i, j] = P(i infects contact j); K = B^T (rows: the infected), built without sorting
        b = sparse.csr_matrix((-np.expm1(-hz), c.edge_nbr, c.edge_indptr), shape=(n, n))
        cl = c.layer("community")
        m = np.diff(c.bucket_indptr)
        per = np.zeros(len(m))
        if cl >= 0 and c.community_contacts > 0:
            per = np.where(m > 1, c.community_contacts * self.beta_layer[cl] / np.maximum(m - 1, 1), 0.0)
        b_of = np.repeat(np.arange(len(m)), m)
        mem = np.asarray(c.bucket_member, dtype=np.int64)
        use_comm = bool(per.any())

        def kv(v):
            out = b.T @ v
            if use_comm:
                wv = (w * v)[mem]
                tot = np.bincount(b_of, weights=wv, minlength=len(m))
                out += self.sus * np.bincount(mem, weights=per[b_of] * (tot[b_of] - wv), minlength=n)
            return out

        from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigs

        v = np.ones(n) / n if v0 is None else v0
        if not kv(np.ones(n)).sum() > 0:                # no transmission at all
            self._r0_cache = (key, 0.0, v)
            return 0.0, v
        op = LinearOperator((n, n), matvec=kv, dtype=np.float64)
        try:
            vals, vecs = eigs(op, k=1, which="LR", v0=v, tol=tol, maxiter=iterations)
        except ArpackNoConvergence as exc:       # pragma: no cover - a near-degenerate spectrum
            vals, vecs = exc.eigenvalues, exc.eigenvectors
            if not len(vals):
                raise ScenarioError("epidemic: the next-generation matrix's spectral radius did not converge") \
                    from None
        lam = max(float(vals[0].real), 0.0)
        v = np.abs(vecs[:, 0].real)
        v = v / v.sum() if v.sum() > 0 else np.ones(n) / n
        self._r0_cache = (key, lam, v)
        return lam, v

    def calibrate_r0(self, target, *, rounds=8) -> float:
        """Scale every layer's rate by one factor so that :meth:`r0` equals ``target`` (to 0.1 %);
        returns the factor. A contact structure that cannot reach ``target`` (no contacts, or
        every contact infecting almost surely) is a ScenarioError."""
        if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
            raise ScenarioError(f"epidemic: r0 = {target!r}; expected a finite number > 0")
        base = self.beta_layer.copy()
        factor, v = 1.0, None
        for _ in range(rounds):
            r, v = self._spectral(v)
            if r <= 0:
                raise ScenarioError(f"epidemic: r0 = {target} cannot be reached: the contact layers give no "
                                    f"transmission (no contacts or every weight 0)")
            if abs(target / r - 1.0) < 1e-3:
                break
            factor *= target / r
            self.beta_layer = base * factor
        r = self.r0()
        if abs(r - target) > 0.01 * target:
            raise ScenarioError(f"epidemic: r0 = {target} cannot be reached on these contacts: it saturates at "
                                f"about {r:.2f} (contacts already infect almost surely)")
        return factor

    def run(self, **kw) -> "EpidemicResult":
        """Step to the last day; returns :meth:`result`."""
        while self.day < self.n_days:
            self.step(**kw)
        return self.result()

    def result(self) -> EpidemicResult:
        daily = pd.DataFrame(self._rows)
        return EpidemicResult(daily, self.zone_new[:len(daily)].copy(), self.t_inf.copy(), self.infector.copy(),
                              self.inf_layer.copy(), self.contacts.layer_names, self.n)
