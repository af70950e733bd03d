"""The EMS flow's plan: its tables mapped onto an :class:`~twin.emergency.EmsSpec` on the city.

:class:`EmsPlan` validates the tables against the city when the scenario loads (located
errors) and is the :class:`~twin.ports.CallPlan` port: other flows may say that calls can
arise anywhere (every district with nodes then has zones) and register scripted incidents
(their scenes become locations). The spec and layout are made once everything is
registered (:meth:`EmsPlan.seal`, or on first use). The mapping is described in
:mod:`twin.scenarios.ems`.
"""

from __future__ import annotations

import numpy as np

from twin.emergency import (UNIT_KINDS, CallTypeSpec, DispatchSpec, EmsLayout, EmsSpec, HospitalSpec, IncidentSpec,
                            RelocationSpec, ServiceSpec, UnitSpec, ZoneSpec, travel_time_matrix)
from twin.errors import ScenarioError
from twin.scenarios.ems_agencies import dispatch_centres
from twin.graph import scenario_node_index
from twin.spec import where

__all__ = ["EmsPlan", "node_index"]


def node_index(city, node, where_) -> int:
    """City node index of a scenario node id (:func:`twin.graph.scenario_node_index`)."""
    return scenario_node_index(city, node, where_)


def _check_calls_table(groups, label, presence):
    calls = groups["calls"]
    by_rate, by_pop = calls.rate_per_h is not None, calls.population is not None
    if presence is not None:
        if calls.rate_per_1000_per_day is None:
            raise ScenarioError(f"{presence.label} needs {where(label, 'calls')} rate_per_1000_per_day (calls per "
                                f"1,000 persons present per day); add it, or set calls_from_presence = false")
        if by_rate or by_pop:
            key = "rate_per_h" if by_rate else "population"
            raise ScenarioError(f"{where(label, 'calls')} {key} conflicts with {presence.label} (rates come from "
                                f"the persons present); remove {key}, or set calls_from_presence = false")
    elif by_rate == by_pop or (by_pop != (calls.rate_per_1000_per_day is not None)):
        raise ScenarioError(f"{where(label, 'calls')}: give either rate_per_h (a total or a table zone id -> "
                            f"calls/hour) or population (zone id -> residents) with rate_per_1000_per_day")


class _Districts:
    """The city's districts (or one, ``"city"``) with their nodes, and located id lookups."""

    def __init__(self, city):
        if city.n_zones:
            self.names = tuple(str(z) for z in city.zone_ids)
            self.of_node = np.asarray(city.zone_of_node, dtype=np.int64)
        else:
            self.names = ("city",)
            self.of_node = np.zeros(city.n_nodes, dtype=np.int64)
        self.n = len(self.names)
        self.nodes_of = [np.flatnonzero(self.of_node == d) for d in range(self.n)]
        self._index = {n: d for d, n in enumerate(self.names)}
        self.city_name = city.name

    def __call__(self, key, where_) -> int:
        if key not in self._index:
            raise ScenarioError(f"{where_}: unknown zone id {key!r}; city {self.city_name!r} has zones "
                                f"{', '.join(self.names)}")
        return self._index[key]


def _product_rates(groups, dist, label):
    """District base rates (calls/hour) of the product form, as computed before rate tables."""
    calls = groups["calls"]
    rate = np.zeros(dist.n)
    if calls.rate_per_h is not None and not isinstance(calls.rate_per_h, dict):
        counts = np.array([len(n) for n in dist.nodes_of], dtype=np.float64)
        rate = calls.rate_per_h * counts / counts.sum()
    else:
        table = calls.rate_per_h if calls.rate_per_h is not None else calls.population
        key = "rate_per_h" if calls.rate_per_h is not None else "population"
        factor = 1.0 if calls.rate_per_h is not None else calls.rate_per_1000_per_day / 1000.0 / 24.0
        for k, v in table.items():
            rate[dist(k, f"{label}: [calls] {key}.{k}")] = v * factor
    return rate


def _rate_table(groups, dist, label, presence):
    """Rates by hour, district and call type (calls/hour, shape (24, n_d, n_types)) and
    whether the plain product form ``rate_d × hourly_profile × share`` describes them."""
    calls, cts = groups["calls"], groups["call_types"]
    w = np.asarray(calls.hourly_profile, dtype=np.float64)
    profile = np.repeat(w[:, None], dist.n, axis=1)                         # (24, n_d)
    for k, v in (calls.district_profiles or {}).items():
        profile[:, dist(k, f"{label}: [calls] district_profiles.{k}")] = v
    if presence is not None:
        present = presence.present_by_zone().to_numpy(dtype=np.float64)    # (24, n_d)
        base = present * profile * calls.rate_per_1000_per_day / 1000.0 / 24.0
    else:
        base = _product_rates(groups, dist, label)[None, :] * profile
    out = np.empty((24, dist.n, len(cts)))
    for t, c in enumerate(cts):
        at = f"{label}: [call_types.{t}] ('{c.name}')"
        if c.rate_per_h is not None:
            own = np.zeros(dist.n)
            for k, v in c.rate_per_h.items():
                own[dist(k, f"{at} rate_per_h.{k}")] = v
            out[:, :, t] = own[None, :] * profile
        else:
            out[:, :, t] = base * c.share
        for k, v in (c.district_multiplier or {}).items():
            out[:, dist(k, f"{at} district_multiplier.{k}"), t] *= v
    product = not (presence is not None or calls.district_profiles
                   or any(c.rate_per_h is not None or c.district_multiplier for c in cts))
    return out, product


def _units(groups, station_loc):
    units = []
    for s, sloc in zip(groups["stations"], station_loc):
        kinds = {k: getattr(s, k) for k in UNIT_KINDS}
        ambulances = s.ambulances if s.ambulances is not None else (0 if any(kinds.values()) else 1)
        units += [UnitSpec(f"{s.name}-{k + 1}", sloc, s.busy_time) for k in range(ambulances)]
        units += [UnitSpec(f"{s.name}-{kind}-{k + 1}", sloc, s.busy_time, kind)
                  for kind, n in kinds.items() for k in range(n)]
    return units


def _hospitals(groups, hospital_loc):
    return [HospitalSpec(h.name, hloc, h.beds, h.length_of_stay, h.mode, h.walk_in_rate_per_h,
                         ward_beds=h.ward_beds, ward_los=h.ward_los, icu_beds=h.icu_beds, icu_los=h.icu_los,
                         ward_probability=h.ward_probability, icu_probability=h.icu_probability,
                         boarding=h.boarding, diversion=h.diversion, diversion_threshold=h.diversion_threshold,
                         transfer=h.transfer, transfer_by_ambulance=h.transfer_by_ambulance,
                         specialties=tuple(map(str, h.specialties)))
            for h, hloc in zip(groups["hospitals"], hospital_loc)]


def _relocation(groups, station_loc, label):
    st_names = tuple(s.name for s in groups["stations"])
    out = []
    for i, r in enumerate(groups["dispatch"].relocation or ()):
        rows = []
        for n, row in enumerate(r["table"]):
            for name in row:
                if name not in st_names:
                    raise ScenarioError(f"{label}: [dispatch] relocation[{i}].table[{n}]: unknown station {name!r}; "
                                        f"stations: {', '.join(repr(x) for x in st_names)}")
            rows.append(tuple(station_loc[st_names.index(name)] for name in row))
        out.append(RelocationSpec(tuple(r["kinds"]), tuple(rows)))
    return out


def _call_type_spec(c, share):
    return CallTypeSpec(c.name, c.priority, share, c.on_scene, c.transport_probability, specialty=c.specialty,
                        icu=c.icu,
                        **({"requires": c.requires} if c.requires is not None else {}),
                        **({"fallback": c.fallback} if c.fallback is not None else {}))


class EmsPlan:
    """The EMS tables on the city; the :class:`~twin.ports.CallPlan` port.

    Attributes
    ----------
    spec : EmsSpec
    layout : EmsLayout
        Where locations, stations and districts are on the city.
    incident_stream : str or None
        The run stream of the registered incidents' draws.
    """

    def __init__(self, groups, city, label, presence=None):
        self.groups, self.city, self.label = groups, city, label
        run, kpi = groups["run"], groups["kpi"]
        _check_calls_table(groups, label, presence)
        self.dist = _Districts(city)
        self.rate_dht, self.product = _rate_table(groups, self.dist, label, presence)
        self.rate = self.rate_dht.sum(axis=2).mean(axis=0)   # daily mean calls/hour per district
        if self.product:                                      # exactly the old form: keep its numbers
            self.rate = _product_rates(groups, self.dist, label)
        if kpi.warmup_s >= run.until_s:
            raise ScenarioError(f"{label}: [kpi] warmup_s = {kpi.warmup_s}; expected less than [run] until_s = "
                                f"{run.until_s}")
        self.type_names = [c.name for c in groups["call_types"]]
        self.station_nodes = [node_index(city, s.node, f"{label}: [stations.{i}] ('{s.name}')")
                              for i, s in enumerate(groups["stations"])]
        self.hospital_nodes = [node_index(city, h.node, f"{label}: [hospitals.{i}] ('{h.name}')")
                               for i, h in enumerate(groups["hospitals"])]
        st_names = [s.name for s in groups["stations"]]
        for i, n in enumerate(st_names):
            if st_names.count(n) > 1:
                raise ScenarioError(f"{label}: [stations.{i}] name = {n!r}; station names must be unique")
        self.central = self._central()
        self.anywhere = False
        self.incidents = []
        self.incident_stream = None
        self.places = []              # City nodes other flows send units to (rules' posts)
        self._made = None

    def _central(self):
        kpi, city = self.groups["kpi"], self.city
        ids = kpi.central_zones if kpi.central_zones is not None else tuple(city.meta.get("central_zone_ids", ()))
        central = np.zeros(self.dist.n, dtype=bool)
        for z in ids:
            central[self.dist(str(z), f"{self.label}: [kpi] central_zones")] = True
        return central

    # ---- CallPlan
    @property
    def n_zones(self) -> int:
        return self.spec.n_zones

    def calls_anywhere(self) -> None:
        """Calls may arise in any district (traffic crashes): every district with nodes gets zones."""
        self.anywhere = True
        self._made = None

    def call_type_index(self, name, where_) -> int:
        if name not in self.type_names:
            raise ScenarioError(f"{where_} = {name!r}: no such call type; call types: "
                                f"{', '.join(repr(n) for n in self.type_names)}")
        return self.type_names.index(name)

    def check_servable(self, name, where_) -> None:
        g = self.groups["call_types"][self.call_type_index(name, where_)]
        c = _call_type_spec(g, g.share)
        units = _units(self.groups, [0] * len(self.groups["stations"]))
        n_kind = {k: sum(u.kind == k for u in units) for k in UNIT_KINDS}
        fb = dict(c.fallback)
        for kind, n in c.requires:
            if n_kind[kind] + (n_kind[fb[kind]] if kind in fb else 0) < n:
                raise ScenarioError(f"{where_} = {name!r} requires {n} '{kind}' unit(s); the stations have "
                                    f"{n_kind[kind]}")

    def site_index(self, kind, name, where_) -> int:
        names = ([u.name for u in self.spec.units] if kind == "unit" else
                 [g.name for g in self.groups["stations" if kind == "station" else "hospitals"]])
        if name not in names:
            from twin.spec import did_you_mean

            raise ScenarioError(f"{where_}: no {kind} {name!r}; {did_you_mean(name, names)}{kind}s: "
                                f"{', '.join(map(repr, names)) or 'none'}")
        return names.index(name)

    def add_places(self, node_idx) -> None:
        self.places.extend(int(n) for n in node_idx)
        self._made = None

    def add_incidents(self, incidents, stream) -> None:
        self.incidents.extend(incidents)
        self.incident_stream = stream
        self._made = None

    def zone_of_node(self) -> np.ndarray:
        """EMS zone of every city node, -1 for none (``"centroid"``: every node of a district
        belongs to the district's zone)."""
        spec, lay, city = self.spec, self.layout, self.city
        zone_of_node = np.full(city.n_nodes, -1, dtype=np.int64)
        if self.groups["calls"].locations == "centroid":
            zone_of_district = np.full(len(lay.district_names), -1, dtype=np.int64)
            zone_of_district[np.asarray(lay.zone_district_idx, dtype=np.int64)] = np.arange(spec.n_zones)
            d = self.dist.of_node if city.n_zones else np.zeros(city.n_nodes, dtype=np.int64)
            ok = d >= 0
            zone_of_node[ok] = zone_of_district[d[ok]]
        else:
            nodes = np.asarray(lay.location_node_idx, dtype=np.int64)[[z.location_idx for z in spec.zones]]
            zone_of_node[nodes] = np.arange(spec.n_zones)
        return zone_of_node

    # ---- the spec
    def seal(self) -> None:
        """Make the spec and layout now (load-time errors surface here)."""
        _ = self.spec

    @property
    def spec(self) -> EmsSpec:
        if self._made is None:
            self._made = self._make()
        return self._made[0]

    @property
    def layout(self) -> EmsLayout:
        if self._made is None:
            self._made = self._make()
        return self._made[1]

    def _zones(self, loc):
        calls, dist, rate = self.groups["calls"], self.dist, self.rate
        zones, zone_district, zone_rows = [], [], []
        for d in range(dist.n):
            if rate[d] > 0 and len(dist.nodes_of[d]) == 0:
                raise ScenarioError(f"{self.label}: [calls] zone {dist.names[d]!r} has calls but no nodes")
        for d in range(dist.n):
            if (rate[d] <= 0 and not self.anywhere) or len(dist.nodes_of[d]) == 0:
                continue
            members = dist.nodes_of[d]
            if calls.locations == "centroid":
                x, y = self.city.x_m[members], self.city.y_m[members]
                if np.isfinite(x).all() and np.isfinite(y).all():
                    members = members[[int(np.argmin((x - x.mean()) ** 2 + (y - y.mean()) ** 2))]]
                else:
                    members = members[:1]
            for n in members:
                name = dist.names[d] if calls.locations == "centroid" else f"{dist.names[d]}:{self.city.node_ids[n]}"
                zones.append(ZoneSpec(name, loc(n), float(rate[d] / len(members))))
                zone_district.append(d)
                zone_rows.append(self.rate_dht[:, d, :] / len(members))
        return zones, zone_district, zone_rows

    def _make(self):
        groups, label, city = self.groups, self.label, self.city
        loc_of_node = {}

        def loc(node_idx):
            return loc_of_node.setdefault(int(node_idx), len(loc_of_node))

        station_loc = [loc(n) for n in self.station_nodes]
        hospital_loc = [loc(n) for n in self.hospital_nodes]
        zones, zone_district, zone_rows = self._zones(loc)
        incidents = [IncidentSpec(g.name, loc(g.location_idx), g.time_s, g.patients, g.triage, g.call_type,
                                  g.transport_probability) for g in self.incidents]
        for n in self.places:
            loc(n)
        loc_nodes = np.array(sorted(loc_of_node, key=loc_of_node.get), dtype=np.int64)
        svc, dsp, calls = groups["service"], groups["dispatch"], groups["calls"]
        tt = travel_time_matrix(city, city.node_ids[loc_nodes], link_cost_s=city.free_flow_time_s
                                / svc.emergency_speed_factor)
        shares = [c.share for c in groups["call_types"]]
        rate_table = None
        if not self.product:
            rate_table = np.stack(zone_rows, axis=1) if zone_rows else np.zeros((24, 0, len(shares)))
            total = rate_table.sum(axis=(0, 1))
            if total.sum() > 0:                   # the shares the table implies (descriptive)
                shares = [float(x) for x in total / total.sum()]
        kpi = groups["kpi"]
        targets = tuple(kpi.response_target_s) + (None,) * (3 - len(kpi.response_target_s))
        units = tuple(_units(groups, station_loc))
        unit_district = [int(self.dist.of_node[loc_nodes[u.station_idx]]) for u in units]
        centres = dispatch_centres(groups, label, self.dist, zone_district, units, unit_district)
        try:
            spec = EmsSpec(travel_time_s=tt, zones=tuple(zones),
                           call_types=tuple(_call_type_spec(c, sh) for c, sh in zip(groups["call_types"], shares)),
                           units=units, hospitals=tuple(_hospitals(groups, hospital_loc)),
                           dispatch=DispatchSpec(dsp.policy, (), dsp.processing, dsp.max_queue,
                                                 tuple(_relocation(groups, station_loc, label)), dsp.compliance_rate,
                                                 hospital_choice=dsp.hospital_choice, **centres),
                           service=ServiceSpec(svc.mode, svc.busy_time, svc.turnout, svc.handover, svc.return_mode),
                           hourly_profile=tuple(calls.hourly_profile), response_target_s=targets,
                           warmup_s=kpi.warmup_s, rate_table_per_h=rate_table, incidents=tuple(incidents))
        except ScenarioError as exc:
            raise ScenarioError(f"{label}: {exc}") from None
        layout = EmsLayout(location_node_idx=loc_nodes.astype(np.int32), location_node_id=city.node_ids[loc_nodes],
                           zone_district_idx=np.array(zone_district, dtype=np.int32), district_names=self.dist.names,
                           district_central=self.central, station_names=tuple(s.name for s in groups["stations"]),
                           station_location_idx=tuple(station_loc))
        return spec, layout
