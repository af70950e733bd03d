"""The :class:`Population` struct-of-arrays and its results: locations, accessibility, storage.

This module holds the :class:`Population` dataclass (person, household and activity arrays,
checked once in ``__post_init__``) with its queries (trips, car legs, where everyone is,
presence by zone, the 15-minute life circle, fitted marginals), re-timing from observed car
times, equality, and writing to and reading from the HDF5 results store
(:func:`read_population`); and the small result records :class:`Locations` and
:class:`Accessibility`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from twin.agents.activities import (
    ACTIVITIES, CAR, FACILITY_KINDS, MODES, PERSON_TYPES, STUDENT, TRAVEL, WORKER, ModeParams)
from twin.agents.population_defaults import (
    AGE_BANDS, AGE_COLUMNS, CHRONIC, ELDERLY_ALONE, HOUSEHOLD_COLUMNS, HOUSEHOLD_SIZES, ZONE_COLUMNS)
from twin.agents.population_plans import _py, _route_trees
from twin.agents.population_zones import _activity_nodes, _central_zones
from twin.errors import ResultsError, ScenarioError, TwinError
from twin.kernels.population import locate_persons, locate_persons_on_routes

#: Cost kind (first axis of the route trees) that routes each mode: car on car link times,
#: the other modes on link lengths (they move at a mode speed over the shortest distance).
_TREE_OF_MODE = np.array([0 if m == "car" else 1 for m in MODES], dtype=np.int64)


# ------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class Locations:
    """Where everyone is at one instant: arrays of shape (n_persons,)."""

    t_s: float
    node_idx: np.ndarray
    zone_idx: np.ndarray
    activity: np.ndarray
    n_travelling: int


@dataclass(frozen=True)
class Accessibility:
    """15-minute life-circle metrics: a per-zone table and central/peripheral summary."""

    by_zone: pd.DataFrame
    summary: dict


_PERSON_DTYPES = {"age": np.uint8, "sex": np.int8, "person_type": np.int8, "health_flags": np.uint8,
                  "car_available": np.bool_, "household_idx": np.int32, "home_node_idx": np.int32,
                  "work_node_idx": np.int32}
_HOUSEHOLD_DTYPES = {"hh_size": np.uint8, "hh_zone_idx": np.int32, "hh_node_idx": np.int32, "hh_car": np.bool_}
_ACTIVITY_DTYPES = {"act_type": np.int8, "act_node_idx": np.int32, "act_start_s": np.float64,
                    "act_end_s": np.float64, "act_mode": np.int8}


@dataclass(eq=False)
class Population:
    """A synthetic population and its day, as struct-of-arrays (never an object per person).

    Build one with :func:`synthesize_population`.

    Attributes
    ----------
    city : twin.City
    age : ndarray of uint8, shape (n_persons,)
        Age in years.
    sex : ndarray of int8
        0 female, 1 male.
    person_type : ndarray of int8
        Code into :data:`~twin.agents.activities.PERSON_TYPES` (worker, student, retiree,
        other); this is also the employment status.
    health_flags : ndarray of uint8
        Bits :data:`CHRONIC` (chronic condition) and :data:`ELDERLY_ALONE` (65+, 1-person household).
    car_available : ndarray of bool
    household_idx, home_node_idx, work_node_idx : ndarray of int32
        Household row; home node; workplace or school node (-1 for neither).
    hh_size : ndarray of uint8, shape (n_households,)
    hh_zone_idx, hh_node_idx : ndarray of int32
    hh_car : ndarray of bool
    act_indptr : ndarray of int64, shape (n_persons + 1,)
        Person ``p``'s activities are slots ``act_indptr[p]:act_indptr[p+1]`` in time order.
    act_type : ndarray of int8, shape (n_activities,)
        Code into :data:`~twin.agents.activities.ACTIVITIES`.
    act_node_idx : ndarray of int32
    act_start_s, act_end_s : ndarray of float64
        Arrival and departure, seconds after midnight (home: 0 and ``inf``).
    act_mode : ndarray of int8
        Mode of the trip arriving at the activity (code into ``MODES``), -1 for the first.
    facilities : pandas.DataFrame
        ``kind``, ``node_idx``, ``weight``.
    zone_table : pandas.DataFrame
        The zone inputs the population was fitted to.
    meta : dict
        Seed, IPF iterations and error, parameters, timings.
    """

    city: object
    age: np.ndarray
    sex: np.ndarray
    person_type: np.ndarray
    health_flags: np.ndarray
    car_available: np.ndarray
    household_idx: np.ndarray
    home_node_idx: np.ndarray
    work_node_idx: np.ndarray
    hh_size: np.ndarray
    hh_zone_idx: np.ndarray
    hh_node_idx: np.ndarray
    hh_car: np.ndarray
    act_indptr: np.ndarray
    act_type: np.ndarray
    act_node_idx: np.ndarray
    act_start_s: np.ndarray
    act_end_s: np.ndarray
    act_mode: np.ndarray
    facilities: pd.DataFrame
    zone_table: pd.DataFrame
    meta: dict = field(default_factory=dict)
    _matrix_nodes: np.ndarray = field(default=None, repr=False)
    _car_time_s: np.ndarray = field(default=None, repr=False)
    _distance_m: np.ndarray = field(default=None, repr=False)
    _car_link_cost_s: np.ndarray = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        n = len(self.age)
        for group, size in ((_PERSON_DTYPES, n), (_HOUSEHOLD_DTYPES, len(self.hh_size)),
                            (_ACTIVITY_DTYPES, len(self.act_type))):
            for name, dtype in group.items():
                a = getattr(self, name)
                if a.dtype != dtype or a.shape != (size,) or not a.flags.c_contiguous:
                    raise TypeError(f"Population.{name}: dtype {a.dtype}, shape {a.shape}; expected "
                                    f"contiguous {np.dtype(dtype).name} of shape ({size},)")
        if self.act_indptr.dtype != np.int64 or self.act_indptr.shape != (n + 1,):
            raise TypeError(f"Population.act_indptr: expected int64 of shape ({n + 1},)")

    # sizes ------------------------------------------------------------------------
    @property
    def n_persons(self) -> int:
        """Number of persons."""
        return len(self.age)

    @property
    def n_households(self) -> int:
        """Number of households."""
        return len(self.hh_size)

    @property
    def n_trips(self) -> int:
        """Number of trips (activities after each person's first)."""
        return len(self.act_type) - self.n_persons

    @property
    def home_zone_idx(self) -> np.ndarray:
        """Zone index of each person's home (int32)."""
        return self.hh_zone_idx[self.household_idx]

    def state_nbytes(self) -> dict:
        """Bytes held in person, household and activity (plan) arrays."""
        persons = sum(getattr(self, k).nbytes for k in _PERSON_DTYPES)
        households = sum(getattr(self, k).nbytes for k in _HOUSEHOLD_DTYPES)
        plans = sum(getattr(self, k).nbytes for k in _ACTIVITY_DTYPES) + self.act_indptr.nbytes
        return {"persons": persons, "households": households, "plans": plans, "total": persons + households + plans}

    def __repr__(self):
        return (f"Population(city={self.city.name!r}, n_persons={self.n_persons}, n_households={self.n_households}, "
                f"n_trips={self.n_trips})")

    # trips ------------------------------------------------------------------------
    def _trip_slots(self):
        first = np.zeros(len(self.act_type), dtype=bool)
        first[self.act_indptr[:-1]] = True
        return np.flatnonzero(~first)

    def trips(self, *, ids=True) -> pd.DataFrame:
        """All trips, in person then time order.

        Parameters
        ----------
        ids : bool, default True
            Origin and destination as external node ids; node indices (``*_idx``) if False.

        Returns
        -------
        pandas.DataFrame
            ``person`` (int32), ``origin``, ``destination``, ``depart_s``, ``arrive_s``
            (float64, s), ``mode`` and ``purpose`` (categoricals: the destination activity;
            ``home`` for return legs).
        """
        k = self._trip_slots()
        person = (np.searchsorted(self.act_indptr, k, side="right") - 1).astype(np.int32)
        o, d = self.act_node_idx[k - 1], self.act_node_idx[k]
        cols = {"person": person}
        if ids:
            cols.update(origin=self.city.node_ids[o], destination=self.city.node_ids[d])
        else:
            cols.update(origin_idx=o, destination_idx=d)
        cols.update(depart_s=self.act_end_s[k - 1], arrive_s=self.act_start_s[k],
                    mode=pd.Categorical.from_codes(self.act_mode[k], MODES),
                    purpose=pd.Categorical.from_codes(self.act_type[k], ACTIVITIES))
        return pd.DataFrame(cols)

    def vehicle_trips(self) -> pd.DataFrame:
        """Car legs as traffic demand: ``origin``, ``destination``, ``depart_s`` (+ ``person``), by departure."""
        t = self.trips()
        t = t[t["mode"] == "car"].sort_values(["depart_s", "person"], kind="stable")
        return t[["origin", "destination", "depart_s", "person"]].reset_index(drop=True)

    # where is everyone ----------------------------------------------------------
    def location_at(self, t_s, *, along_routes=True) -> Locations:
        """Node, zone and activity of every person at time ``t_s`` (seconds after midnight).

        Parameters
        ----------
        t_s : float
            The instant.
        along_routes : bool, default True
            Place a traveller on its trip's route: the trip's least-cost path (car legs by
            the car link times the plan was made with, other modes by link length) at the
            node reached after the elapsed fraction of the trip (see
            ``twin.kernels.population.locate_persons_on_routes``). The first call builds and
            caches one shortest-path tree per trip-origin node and cost kind
            (:meth:`route_trees`). With False, a traveller is at the trip's origin before
            its mid-time and at its destination afterwards (no trees needed).

        Returns
        -------
        Locations
            Travellers have activity ``travel``. Vectorised (numba), parallel over persons.
            ``zone_idx`` is the zone of ``node_idx``; a traveller on a node outside every
            zone (the through nodes of TNTP cities) counts in the zone of the nearer end of
            its trip, so everyone is in a zone at every time.

        Raises
        ------
        ScenarioError
            ``t_s`` is not a finite number.
        """
        t_s = float(t_s)
        if not math.isfinite(t_s):
            raise ScenarioError(f"location_at: t_s = {t_s}; expected finite seconds after midnight")
        node = np.empty(self.n_persons, dtype=np.int32)
        act = np.empty(self.n_persons, dtype=np.int8)
        if along_routes:
            row_of, dist, pred = self.route_trees()
            n_trav = locate_persons_on_routes(t_s, self.act_indptr, self.act_start_s, self.act_end_s,
                                              self.act_node_idx, self.act_type, self.act_mode, TRAVEL, row_of,
                                              _TREE_OF_MODE, dist, pred, node, act)
        else:
            n_trav = locate_persons(t_s, self.act_indptr, self.act_start_s, self.act_end_s, self.act_node_idx,
                                    self.act_type, TRAVEL, node, act)
        zone = self.city.zone_of_node[node]
        off = zone < 0
        if off.any():
            # a traveller on a node outside every zone (a TNTP through node): the zone of the
            # nearer end of its trip, so every person is in some zone at every time
            near = np.empty(self.n_persons, dtype=np.int32)
            locate_persons(t_s, self.act_indptr, self.act_start_s, self.act_end_s, self.act_node_idx,
                           self.act_type, TRAVEL, near, np.empty(self.n_persons, dtype=np.int8))
            zone = zone.copy()
            zone[off] = self.city.zone_of_node[near[off]]
        return Locations(t_s, node, zone, act, int(n_trav))

    def route_trees(self):
        """Shortest-path trees from every activity node, built on first use and cached.

        Returns
        -------
        row_of_node : ndarray of int64, shape (n_nodes,)
            Tree row of each node (-1 outside every zone: no trip starts there).
        dist : ndarray of float64, shape (2, n_rows, n_nodes)
            Least cost from each row's node: ``[0]`` car time (s) on the car link times of
            the plans (free flow, or ``link_cost_s`` of the synthesis), ``[1]`` length (m).
        pred_node : ndarray of int32, shape (2, n_rows, n_nodes)
            Predecessor node on each least-cost path (-1 at the root and unreachable nodes).

        Notes
        -----
        One Dijkstra per zone node and cost kind (``twin.kernels.routing.dijkstra_sssp``);
        memory ``24 * n_rows * n_nodes`` bytes (0.6 MB on the embedded city, 8.7 MB on
        Chicago-Sketch), independent of the number of persons.
        """
        if "trees" not in self._cache:
            self._cache["trees"] = _route_trees(self.city, self._matrix_nodes, self._car_link_cost_s)
        return self._cache["trees"]

    def with_travel_times(self, car_travel_time_s) -> "Population":
        """A copy whose plans are re-timed from observed car travel times.

        Parameters
        ----------
        car_travel_time_s : array-like of float, shape (n_vehicle_trips,)
            Observed node-to-node travel time of each car leg, seconds, in the row order of
            :meth:`vehicle_trips` (e.g. the travel times of a traffic run on that demand);
            NaN keeps a leg's planned time.

        Returns
        -------
        Population
            Car legs take ``observed + terminal_s["car"]`` (the parking time of the plan's
            mode parameters); every later departure and arrival of the person shifts so
            that activity durations are kept, so the plans stay continuous (each trip
            departs when the previous activity ends) and time-consistent
            (``start <= end <= next start``). Destinations, modes and routes are unchanged.
            ``meta["retimed"]`` counts the legs changed and their mean delay.

        Raises
        ------
        ScenarioError
            Wrong length, or a negative or infinite time (the row, person and trip are named).
        """
        obs = np.asarray(car_travel_time_s, dtype=np.float64).ravel()
        slots = self._vehicle_trip_slots()
        if obs.shape != (len(slots),):
            raise ScenarioError(f"with_travel_times: got {obs.size} car travel times; expected one per row of "
                                f"vehicle_trips() ({len(slots)})")
        bad = np.flatnonzero(~np.isnan(obs) & ~(np.isfinite(obs) & (obs >= 0)))
        if len(bad):
            i = int(bad[0])
            k = int(slots[i])
            person = int(np.searchsorted(self.act_indptr, k, side="right") - 1)
            raise ScenarioError(f"with_travel_times: row {i} (person {person}, trip from node "
                                f"{_py(self.city.node_ids[self.act_node_idx[k - 1]])!r} to "
                                f"{_py(self.city.node_ids[self.act_node_idx[k]])!r}) has travel time {obs[i]}; "
                                "expected seconds >= 0 or NaN (keep the plan)")
        terminal = self.meta.get("modes", {}).get("terminal_s", {}).get("car", ModeParams().terminal_s["car"])
        dur = self.act_start_s.copy()
        dur[1:] -= self.act_end_s[:-1]                     # planned duration of the trip arriving at each slot
        dur[self.act_indptr[:-1]] = 0.0
        ok = ~np.isnan(obs)
        new_dur = dur.copy()
        new_dur[slots[ok]] = obs[ok] + terminal
        start, end = self.act_start_s.copy(), self.act_end_s.copy()
        stay = self.act_end_s - self.act_start_s           # kept; inf for the last activity
        touched = new_dur != dur                           # slots from the first changed leg on are re-timed
        lengths = np.diff(self.act_indptr)
        for j in range(1, int(lengths.max()) if len(lengths) else 0):
            k = self.act_indptr[:-1][lengths > j] + j
            touched[k] |= touched[k - 1]
            k = k[touched[k]]
            start[k] = end[k - 1] + new_dur[k]
            end[k] = np.where(np.isfinite(stay[k]), start[k] + stay[k], np.inf)
        delay = new_dur[slots[ok]] - dur[slots[ok]]
        meta = {**self.meta, "retimed": {"car_legs": int(ok.sum()),
                                         "mean_delay_s": float(delay.mean()) if len(delay) else 0.0}}
        return dataclasses.replace(self, act_start_s=start, act_end_s=end, meta=meta, _cache={})

    def _vehicle_trip_slots(self):
        """Activity slots of the car legs, in :meth:`vehicle_trips` row order."""
        k = self._trip_slots()
        k = k[self.act_mode[k] == CAR]
        person = np.searchsorted(self.act_indptr, k, side="right") - 1
        return k[np.lexsort((person, self.act_end_s[k - 1]))]

    def present_by_zone(self, times_s=None) -> pd.DataFrame:
        """Persons present in each zone at each time (default: every hour 00:00..23:00).

        Returns a DataFrame indexed by ``time_s`` with one column per zone id; rows sum to
        ``n_persons`` (travellers count in the zone of the node they are at, or of the
        nearer end of their trip on a node outside every zone; see :meth:`location_at`).
        """
        kept = self._cache.get("present_by_hour")
        if times_s is None and kept is not None:          # (the plans never change: the hours once)
            return kept.copy()
        times = np.arange(24) * 3600.0 if times_s is None else np.asarray(times_s, dtype=np.float64)
        out = np.empty((len(times), self.city.n_zones), dtype=np.int64)
        for i, t in enumerate(times):
            loc = self.location_at(t)
            out[i] = np.bincount(loc.zone_idx, minlength=self.city.n_zones)
        df = pd.DataFrame(out, index=pd.Index(times, name="time_s"), columns=self.city.zone_ids)
        if times_s is None:
            self._cache["present_by_hour"] = df.copy()
        return df

    # accessibility ----------------------------------------------------------------
    def accessibility(self, *, walk_limit_s=900.0, drive_limit_s=1800.0, elderly_age=65,
                      link_cost_s=None) -> Accessibility:
        """The 15-minute life circle, per district and central vs peripheral.

        Parameters
        ----------
        walk_limit_s : float, default 900
            Walking time limit to an elderly-care centre or clinic (walk speed of the run).
        drive_limit_s : float, default 1800
            Driving time limit to a hospital.
        elderly_age : int, default 65
        link_cost_s : ndarray of float64, shape (n_links,), optional
            Link travel times for the driving times, seconds: free flow when omitted;
            congested times from a traffic run (e.g. ``TrafficEngine.link_travel_times_s()``
            at the peak, or a ``mean_travel_time_s`` row of its link series) give the
            congested accessibility.

        Returns
        -------
        Accessibility
            ``by_zone``: ``zone_id``, ``central``, ``residents``, ``elderly``,
            ``elderly_care_walk_share`` (share of elderly within ``walk_limit_s`` walking of
            a clinic or elderly-care centre) and ``hospital_drive_share`` (share of residents
            within ``drive_limit_s`` driving of a hospital). ``summary``: both shares for
            ``central``, ``peripheral`` and ``all`` residents, and ``*_gap`` = central
            minus peripheral (NaN where a side has nobody).
        """
        walk = self.meta["modes"]["speed_mps"]["walk"]
        row = self._row_of(self.home_node_idx)
        fac = self.facilities
        care = self._row_of(fac["node_idx"].to_numpy()[fac["kind"].isin(["clinic", "elderly_care"]).to_numpy()])
        hosp = self._row_of(fac["node_idx"].to_numpy()[(fac["kind"] == "hospital").to_numpy()])
        n_rows = len(self._matrix_nodes)
        walk_ok = (self._distance_m[:, care].min(axis=1) / walk <= walk_limit_s) if len(care) else np.zeros(n_rows, bool)
        if not len(hosp):
            drive_ok = np.zeros(n_rows, bool)
        elif link_cost_s is None and self._car_link_cost_s is None:
            drive_ok = self._car_time_s[:, hosp].min(axis=1) <= drive_limit_s
        else:
            link_cost_s = self.city.free_flow_time_s if link_cost_s is None else link_cost_s
            ids = self.city.node_ids
            car = self.city.travel_times(ids[self._matrix_nodes], ids[self._matrix_nodes[hosp]], link_cost_s=link_cost_s)
            drive_ok = car.min(axis=1) <= drive_limit_s
        zone = self.home_zone_idx
        nz = self.city.n_zones
        elderly = self.age >= elderly_age
        residents = np.bincount(zone, minlength=nz)
        n_eld = np.bincount(zone, weights=elderly, minlength=nz)
        eld_ok = np.bincount(zone, weights=elderly & walk_ok[row], minlength=nz)
        res_ok = np.bincount(zone, weights=drive_ok[row], minlength=nz)
        central = _central_zones(self.city)
        with np.errstate(invalid="ignore", divide="ignore"):
            by_zone = pd.DataFrame({"zone_id": self.city.zone_ids, "central": central, "residents": residents,
                                    "elderly": n_eld.astype(np.int64), "elderly_care_walk_share": eld_ok / n_eld,
                                    "hospital_drive_share": res_ok / residents})
        summary = {}
        for name, sel in (("central", central), ("peripheral", ~central), ("all", np.ones(nz, bool))):
            summary[f"elderly_care_walk_share_{name}"] = _ratio(eld_ok[sel].sum(), n_eld[sel].sum())
            summary[f"hospital_drive_share_{name}"] = _ratio(res_ok[sel].sum(), residents[sel].sum())
        for m in ("elderly_care_walk_share", "hospital_drive_share"):
            summary[f"{m}_gap"] = summary[f"{m}_central"] - summary[f"{m}_peripheral"]
        return Accessibility(by_zone, summary)

    def _row_of(self, node_idx):
        lookup = np.full(self.city.n_nodes, -1, dtype=np.int64)
        lookup[self._matrix_nodes] = np.arange(len(self._matrix_nodes))
        return lookup[np.asarray(node_idx)]

    # marginals ----------------------------------------------------------------------
    def marginals(self) -> pd.DataFrame:
        """Synthesised vs target counts per zone and marginal (age bands, household sizes, workers, students).

        Columns ``zone_id``, ``marginal``, ``target``, ``synthesised``, ``abs_error``.
        Targets are the zone shares times the zone's synthesised residents (persons for
        age bands, workers and students; households for sizes).
        """
        zone = self.home_zone_idx
        nz = self.city.n_zones
        residents = np.bincount(zone, minlength=nz).astype(float)
        rows = []
        band = np.searchsorted([b[2] for b in AGE_BANDS], self.age, side="right")
        zt = self.zone_table
        for a, col in enumerate(AGE_COLUMNS):
            rows.append((col, residents * zt[col].to_numpy(float), np.bincount(zone[band == a], minlength=nz)))
        sizes = np.minimum(self.hh_size, 6)
        hh_mean = zt[list(HOUSEHOLD_COLUMNS)].to_numpy(float) @ np.array(HOUSEHOLD_SIZES)
        for s, col in enumerate(HOUSEHOLD_COLUMNS):
            target = residents / hh_mean * zt[col].to_numpy(float)
            rows.append((col, target, np.bincount(self.hh_zone_idx[sizes == s + 1], minlength=nz)))
        for code, col in ((WORKER, "workers"), (STUDENT, "students")):
            rows.append((col, residents * zt[col].to_numpy(float),
                         np.bincount(zone[self.person_type == code], minlength=nz)))
        frames = [pd.DataFrame({"zone_id": self.city.zone_ids, "marginal": col, "target": t,
                                "synthesised": s.astype(np.int64)}) for col, t, s in rows]
        out = pd.concat(frames, ignore_index=True)
        out["abs_error"] = (out["synthesised"] - out["target"]).abs()
        return out

    # equality and reading back --------------------------------------------------------
    def equals(self, other) -> bool:
        """Whether two populations hold identical arrays, facilities, zone inputs and meta.

        The cities must have the same size; the wall-clock ``meta["timings_s"]`` is ignored.
        """
        if not isinstance(other, Population) or self.city.n_nodes != other.city.n_nodes:
            return False
        names = [*_PERSON_DTYPES, *_HOUSEHOLD_DTYPES, *_ACTIVITY_DTYPES, "act_indptr"]
        pairs = [(getattr(self, k), getattr(other, k)) for k in names]
        if not all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in pairs):
            return False
        a, b = self._car_link_cost_s, other._car_link_cost_s
        if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
            return False
        try:
            pd.testing.assert_frame_equal(self.facilities, other.facilities)
            pd.testing.assert_frame_equal(self.zone_table, other.zone_table)
        except AssertionError:
            return False
        def state(meta):
            return {k: v for k, v in _jsonable(meta).items() if k != "timings_s"}

        return state(self.meta) == state(other.meta)

    @classmethod
    def read(cls, path, city=None, *, prefix="population", load_city_file=False) -> "Population":
        """Load a population from a results file written by :meth:`write`.

        Parameters
        ----------
        path : str or Path
            The HDF5 results file.
        city : twin.City, optional
            The city it was synthesised on; when omitted, ``load_city`` of the stored
            name, then of the stored source, the first with the stored size: an embedded
            city or a synthetic spec (``grid:``, ``ring:``); a network file only with
            ``load_city_file``. Pass ``city`` for other or in-memory cities.
        prefix : str, default "population"
            The prefix the population was written under.
        load_city_file : bool, default False
            Let the reader open the network file the results file names (reading a results
            file opens no other file unless asked).

        Returns
        -------
        Population
            Equal to the one written (:meth:`equals`): person, household and plan arrays
            with their dtypes, facilities, zone inputs, meta and the car link costs of the
            plans; travel-time matrices are recomputed from the city.

        Raises
        ------
        ResultsError
            No population under ``prefix`` (or one written before read-back was
            supported), or a city whose size differs from the stored one.
        """
        from twin.results import open_results

        with open_results(path) as res:
            meta_all = res.meta
            if f"{prefix}_meta" not in meta_all or f"{prefix}_city" not in meta_all:
                raise ResultsError(f"{str(path)!r} holds no population written under prefix {prefix!r} with its "
                                   f"metadata (/meta/{prefix}_meta); write it with Population.write")
            info = meta_all[f"{prefix}_city"]
            city = _city_for(info, city, path, load_city_file)
            persons = res.table(f"/events/{prefix}_persons")
            hh = res.table(f"/events/{prefix}_households")
            acts = res.table(f"/events/{prefix}_activities")
            fac = res.table(f"/events/{prefix}_facilities")
            zones = res.table(f"/events/{prefix}_zones")
            cost_path = f"/network/{prefix}_car_link_cost_s"
            car_cost = np.ascontiguousarray(res.array(cost_path), dtype=np.float64) if cost_path in res.keys() else None
        arr = {k: np.ascontiguousarray(persons[k].to_numpy(), dtype=d) for k, d in _PERSON_DTYPES.items()}
        for k, col in (("hh_size", "size"), ("hh_zone_idx", "zone_idx"), ("hh_node_idx", "home_node_idx"),
                       ("hh_car", "car")):
            arr[k] = np.ascontiguousarray(hh[col].to_numpy(), dtype=_HOUSEHOLD_DTYPES[k])
        for k, col in (("act_type", "type"), ("act_node_idx", "node_idx"), ("act_start_s", "start_s"),
                       ("act_end_s", "end_s"), ("act_mode", "arrival_mode")):
            arr[k] = np.ascontiguousarray(acts[col].to_numpy(), dtype=_ACTIVITY_DTYPES[k])
        n = len(arr["age"])
        person = acts["person"].to_numpy()
        if len(person) and (np.diff(person) < 0).any():
            raise ResultsError(f"{str(path)!r}: /events/{prefix}_activities is not in person order")
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(person, minlength=n), out=indptr[1:])
        facilities = pd.DataFrame({"kind": [FACILITY_KINDS[int(c)] for c in fac["kind"].to_numpy()],
                                   "node_idx": fac["node_idx"].to_numpy().astype(np.int32),
                                   "weight": fac["weight"].to_numpy().astype(np.float64)})
        zt = pd.DataFrame({"zone_id": city.zone_ids,
                           **{c: zones[c].to_numpy().astype(np.float64) for c in ZONE_COLUMNS[1:]}})
        zt.attrs["source"] = str(meta_all.get(f"{prefix}_zone_source", ""))
        nodes = _activity_nodes(city)
        ids = city.node_ids[nodes]
        return cls(city=city, **arr, act_indptr=indptr, facilities=facilities, zone_table=zt,
                   meta=meta_all[f"{prefix}_meta"], _matrix_nodes=nodes,
                   _car_time_s=city.travel_times(ids, ids, link_cost_s=car_cost),
                   _distance_m=city.travel_times(ids, ids, link_cost_s=city.length_m), _car_link_cost_s=car_cost)

    # summary and storage ------------------------------------------------------------
    def summary(self) -> dict:
        """Headline figures: counts, trips per person, mode and purpose shares, bytes per person."""
        t_mode = self.act_mode[self._trip_slots()]
        t_purp = self.act_type[self._trip_slots()]
        n_trips = max(len(t_mode), 1)
        out = {"n_persons": self.n_persons, "n_households": self.n_households, "n_trips": self.n_trips,
               "trips_per_person": self.n_trips / max(self.n_persons, 1),
               "state_bytes_per_person": self.state_nbytes()["total"] / max(self.n_persons, 1),
               "ipf_iterations": self.meta.get("ipf_iterations"), "ipf_max_rel_error": self.meta.get("ipf_max_rel_error")}
        for code, m in enumerate(MODES):
            out[f"mode_share_{m}"] = float((t_mode == code).sum() / n_trips)
        for code, a in enumerate(ACTIVITIES[:-1]):
            out[f"purpose_share_{a}"] = float((t_purp == code).sum() / n_trips)
        return out

    def write(self, writer, *, prefix="population") -> None:
        """Write persons, households, activities, trips, facilities, hourly presence and KPIs.

        Tables ``/events/{prefix}_persons``, ``_households``, ``_activities``, ``_trips``,
        ``_facilities``; series ``/timeseries/{prefix}_present`` (hour x zone, persons)
        with ``time_s``; scalars ``/summary/{prefix}_*``; code tables in ``/meta/{prefix}_codes``.
        Codes (person type, activity, mode, facility kind) are int8 indices into those lists.
        """
        writer.write_meta(**{f"{prefix}_codes": {"person_type": list(PERSON_TYPES), "activity": list(ACTIVITIES),
                                                 "mode": list(MODES), "facility_kind": list(FACILITY_KINDS),
                                                 "sex": ["female", "male"],
                                                 "health_flags": {"chronic": CHRONIC, "elderly_alone": ELDERLY_ALONE}},
                             f"{prefix}_seed": int(self.meta["seed"]),
                             f"{prefix}_zone_source": str(self.zone_table.attrs.get("source", "")),
                             # wall-clock timings stay out of the file: one seed, byte-identical files
                             f"{prefix}_meta": {k: v for k, v in _jsonable(self.meta).items() if k != "timings_s"},
                             f"{prefix}_city": {"name": str(self.city.name), "source": str(self.city.source),
                                                "n_nodes": int(self.city.n_nodes), "n_links": int(self.city.n_links),
                                                "n_zones": int(self.city.n_zones)}})
        zt = self.zone_table
        zone_col = zt["zone_id"].to_numpy()
        writer.write_table(f"/events/{prefix}_zones",
                           {"zone_id": zone_col if zone_col.dtype.kind in "iu" else zone_col.astype(str),
                            **{c: zt[c].to_numpy(np.float64) for c in ZONE_COLUMNS[1:]}},
                           units={"zone_id": "", "persons": "persons", "jobs": "jobs",
                                  **{c: "1" for c in ZONE_COLUMNS[1:] if c not in ("persons", "jobs")}})
        if self._car_link_cost_s is not None:
            writer.write_array(f"/network/{prefix}_car_link_cost_s", self._car_link_cost_s, units="s",
                               attrs={"description": "car link travel times the population's plans were made with"})
        writer.write_table(f"/events/{prefix}_persons", {k: getattr(self, k) for k in _PERSON_DTYPES},
                           units={"age": "year", **{k: "" for k in _PERSON_DTYPES if k != "age"}})
        writer.write_table(f"/events/{prefix}_households",
                           {"size": self.hh_size, "zone_idx": self.hh_zone_idx, "home_node_idx": self.hh_node_idx,
                            "car": self.hh_car}, units={"size": "1", "zone_idx": "", "home_node_idx": "", "car": ""})
        person = np.repeat(np.arange(self.n_persons, dtype=np.int32), np.diff(self.act_indptr))
        writer.write_table(f"/events/{prefix}_activities",
                           {"person": person, "type": self.act_type, "node_idx": self.act_node_idx,
                            "start_s": self.act_start_s, "end_s": self.act_end_s, "arrival_mode": self.act_mode},
                           units={"person": "", "type": "", "node_idx": "", "start_s": "s", "end_s": "s",
                                  "arrival_mode": ""})
        t = self.trips(ids=False)
        writer.write_table(f"/events/{prefix}_trips",
                           {"person": t["person"].to_numpy(), "origin_idx": t["origin_idx"].to_numpy(),
                            "destination_idx": t["destination_idx"].to_numpy(), "depart_s": t["depart_s"].to_numpy(),
                            "arrive_s": t["arrive_s"].to_numpy(), "mode": t["mode"].cat.codes.to_numpy(np.int8),
                            "purpose": t["purpose"].cat.codes.to_numpy(np.int8)},
                           units={"person": "", "origin_idx": "", "destination_idx": "", "depart_s": "s",
                                  "arrive_s": "s", "mode": "", "purpose": ""})
        kind_code = np.array([FACILITY_KINDS.index(k) for k in self.facilities["kind"]], dtype=np.int8)
        writer.write_table(f"/events/{prefix}_facilities",
                           {"kind": kind_code, "node_idx": self.facilities["node_idx"].to_numpy(np.int32),
                            "weight": self.facilities["weight"].to_numpy(np.float64)},
                           units={"kind": "", "node_idx": "", "weight": "1"})
        present = self.present_by_zone()
        writer.write_array(f"/timeseries/{prefix}_present/time_s", present.index.to_numpy(), units="s")
        writer.write_array(f"/timeseries/{prefix}_present/persons", present.to_numpy().astype(np.float32),
                           units="persons", attrs={"time_path": f"/timeseries/{prefix}_present/time_s",
                                                   "columns_are": "zones in network zone order"})
        for name, value in self.summary().items():
            if value is not None:
                unit = "B" if name.endswith("bytes_per_person") else "1"
                writer.write_summary(f"{prefix}_{name}", value, units=unit)
        for name, value in self.accessibility().summary.items():
            writer.write_summary(f"{prefix}_{name}", float(value), units="1")


def _jsonable(value):
    """``value`` with numpy scalars and tuples made plain, for JSON metadata."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return _py(value)


def read_population(path, city=None, *, prefix="population", load_city_file=False) -> "Population":
    """Load a population written by :meth:`Population.write` (see :meth:`Population.read`)."""
    return Population.read(path, city, prefix=prefix, load_city_file=load_city_file)


def _opens_no_file(spec) -> bool:
    """Whether ``load_city(spec)`` makes the city without reading a file: an embedded city's
    name or a synthetic spec (``grid:``, ``ring:``; their size is bounded)."""
    from twin.data.embedded import EMBEDDED_CITIES

    return isinstance(spec, str) and (spec in EMBEDDED_CITIES or spec.startswith(("grid:", "ring:")))


def _city_for(info, city, path, load_city_file=False):
    """The city a stored population belongs to, checked against the stored sizes. A results
    file names its city; a file it names is opened only with ``load_city_file``."""
    want = {k: info.get(k) for k in ("n_nodes", "n_links", "n_zones")}

    def size(c):
        return {"n_nodes": c.n_nodes, "n_links": c.n_links, "n_zones": c.n_zones}

    if city is None:
        from twin.loading import load_city

        specs = [s for s in (info.get("name"), info.get("source")) if load_city_file or _opens_no_file(s)]
        for spec in specs:
            try:
                city = load_city(spec)
            except (TwinError, OSError, ValueError, TypeError):
                continue
            if size(city) == want:
                break
        else:
            ask = "" if load_city_file else " (a network file it names is opened only with load_city_file=True)"
            raise ResultsError(f"{str(path)!r}: cannot load the population's city {info.get('name')!r} (source "
                               f"{info.get('source')!r}) with {want}{ask}; pass city= to read it")
    got = size(city)
    if got != want:
        raise ResultsError(f"{str(path)!r}: the population was made on city {info.get('name')!r} with {want}; the "
                           f"city given has {got}")
    return city


def _ratio(a, b):
    return float(a) / float(b) if b > 0 else float("nan")
