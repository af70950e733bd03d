"""The EMS flow: calls, dispatch, units and hospitals (an event flow).

Its tables are in :mod:`twin.scenarios.ems_tables`. At load time the flow maps them onto an
:class:`~twin.emergency.EmsSpec` and its :class:`~twin.emergency.EmsLayout` on the city;
at run time it builds a :class:`twin.agents.ems.CityModel` on the shared clock.

Mapping (fidelity)
------------------
*Locations* are city nodes: stations first, then hospitals, then call locations, then the
scenes other flows register (incidents), each node once. The static travel-time matrix is
the least free-flow time between them divided by ``service.emergency_speed_factor`` per
link. *Call locations*: with ``locations = "nodes"`` (default) a district's calls are spread
over all of its nodes with equal weight (one EMS zone per node, rate = district rate / number
of nodes); with ``"centroid"`` they all come from one node per district, the node nearest
the mean coordinate of the district's nodes (its lowest-index node when the city has no
coordinates). A city without districts is one district, ``"city"``. A district rate is
``rate_per_h`` (a table by zone id, or one total split in proportion to the districts' node
counts) or ``population / 1000 × rate_per_1000_per_day / 24`` per hour; districts without an
entry get no calls, and no zones, unless another flow says calls may arise anywhere (crash
calls: then every district with nodes has zones). Every district rate is multiplied by
``hourly_profile[h]`` in hour ``h`` of the day (so a profile averaging 1 keeps the daily
total), or by its own ``district_profiles[d][h]``. A call type takes ``share`` of a
district's rate, times its ``district_multiplier[d]`` (default 1), unless it gives its own
``rate_per_h`` (zone id -> calls/hour, times the district's profile). Any of these, or
calls from presence, builds the per-(hour, zone, type) table ``EmsSpec.rate_table_per_h``
(each cell its own Poisson process); otherwise the spec keeps the product form and its
random draws.

*Calls from presence* (a :class:`~twin.ports.Presence` port, e.g. ``[population]
calls_from_presence``): in hour ``h`` district ``d`` gets ``r / 1000 / 24 × P[h, d] ×
w[h]`` calls per hour, ``P`` the persons present, ``r`` the ``[calls]
rate_per_1000_per_day`` (required; ``rate_per_h`` and ``population`` must then be absent),
``w`` the ``hourly_profile`` (or the district's ``district_profiles`` entry), so the shift
within the day between districts is kept; the zones' ``arrival_rate_per_h`` is then the
daily mean (descriptive). The run's hour 0 is taken as midnight.

*Move-up.* ``[dispatch] relocation = [{kinds = ["als", "bls"], table = [["central"],
["central", "north"], ...]}]`` is a compliance table by station name: row ``n - 1`` lists
the stations ``n`` available units should occupy (see :class:`twin.emergency.RelocationSpec`).
Each station's ``ambulances`` become ALS units ``<station>-1``, ``<station>-2`` ... and its
``als``, ``bls``, ``fire`` and ``police`` counts units ``<station>-<kind>-1`` ... of those
kinds (a station with no count at all has one ambulance). A call type's ``requires = {fire =
2, als = 1}`` names the units it needs and ``fallback = {als = "bls"}`` the substitutes
(defaults: one ALS, ``als -> bls``). A call type that the stations' units cannot serve is an
error at load time.

The hospital a call goes to is fixed on static times, unless a hospital has ``diversion =
true``: then it is chosen when the transport leaves the scene, on the current times,
skipping hospitals on diversion. With ``[dispatch] hospital_choice = "door"`` it is always
chosen then, by the least travel time plus the expected wait for an ED bed (beds taken,
patients waiting and ambulances already on their way there: ``(n - beds + 1) × mean stay /
beds`` once ``n`` reaches the beds, a full loss ward only when every one is); siloed
``[coordination]`` centres see the beds as of the hospitals' last report (``hospital_report_s``,
every 30 min by default, an assumption), a unified centre live. Each choice is a row of
``/events/ems_hospital_choices``; KPIs ``hospital_past_nearest`` (transports taken past the
nearest hospital), ``_share``, ``_extra_mean_s`` (the extra travel) and ``scene_to_bed_mean_s``
/ ``_p90_s``. A call type with a ``specialty`` (``"stroke"``, ``"trauma"`` ...) takes its
patients, chosen at the scene, only to hospitals whose ``specialties`` list it (any hospital
when none of those is in service and reachable); ``hospital_past_nearest`` then counts those
taken past a nearer hospital without it. A call type with ``icu = true`` (major trauma ...)
has patients known at the scene to need an ICU bed: they go, in the same way, only to
hospitals with ICU beds, the door choice adds the expected wait for an ICU bed (``(n - c + 1)
× mean ICU stay / c``, n counting ICU beds taken, ED patients boarding for one and ICU
patients on their way; ICU patients still in an ED are not seen), and after the ED they need
the ICU (not the priority's ward / ICU probabilities). With
a :class:`~twin.ports.LiveTravel` port (coupled traffic) travel times come from it; else they
are the static matrix.

Ports: provides :class:`~twin.ports.CallPlan` (plan time) and
:class:`~twin.ports.CallIntake` (run time); uses :class:`~twin.ports.Presence` and
:class:`~twin.ports.LiveTravel`. Streams: :data:`twin.emergency.STREAMS` (calls, dispatch,
service, hospital, agents).
"""

from __future__ import annotations

import math

import numpy as np

from twin.emergency import STREAMS
from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.ports import (CallIntake, CallOutcome, CallPlan, Exposure, FacilityControl, HospitalBeds, InpatientBeds,
                        LiveTravel, Presence)
from twin.scenarios.ems_plan import EmsPlan
from twin.scenarios.ems_tables import EMS_TABLES, CallTypeGroup
from twin.units import fmt_min as _fmt_min, fmt_pct as _fmt_pct

__all__ = ["EmsFlow", "EmsPlan"]


class _Beds:
    """The plan-time :class:`~twin.ports.HospitalBeds` of the ``[[hospitals]]``."""

    def __init__(self, hospitals):
        self.hospitals = hospitals

    def beds(self):
        return {"ward": int(sum(h.ward_beds or 0 for h in self.hospitals)),
                "icu": int(sum(h.icu_beds or 0 for h in self.hospitals))}


class _Inpatients:
    """The run-time :class:`~twin.ports.InpatientBeds` of the hospitals' ward and ICU pools."""

    def __init__(self, model):
        self.model = model

    def _pools(self, pool):
        return [(h, h.pools[pool]) for h in self.model.hospitals if pool in h.pools]

    def in_use(self, pool):
        return int(sum(p[1] for _, p in self._pools(pool)))

    def admit(self, pool, stay_s, tag):
        free = [(p[4] - p[1], -h.hospital_idx, h) for h, p in self._pools(pool) if p[1] < p[4]]
        if not free:
            return False
        max(free, key=lambda f: f[:2])[2].start_stay(int(tag), pool, float(stay_s), -1)
        return True


class _Intake:
    """:class:`~twin.ports.CallIntake` on a built model."""

    def __init__(self, model, zone_district):
        self.model = model
        self.clock = model.env
        self.result = None
        self.zone_district = zone_district

    def add_calls(self, time_s, zone_idx, type_idx, rng):
        return self.model.add_calls(time_s, zone_idx, type_idx, rng)

    def on_call(self, callback) -> None:
        self.model.call_listeners.append(callback)

    def describe(self, call_idx):
        calls = self.model.calls
        t, z = int(calls.type_idx[call_idx]), int(calls.zone_idx[call_idx])
        return (t if t < self.model.n_call_types else -1), (int(self.zone_district[z]) if z >= 0 else -1)

    def withdraw_unreceived(self, first, stop) -> int:
        from twin.agents.ems_forecast import withdraw_unreceived

        return withdraw_unreceived(self.model, first, stop)

    def incidents(self):
        return None if self.result is None else self.result.incidents

    def response_times_s(self, call_idx):
        import numpy as np

        if self.result is None:
            raise RuntimeError("CallOutcome.response_times_s: the EMS flow has not finished")  # a flow-order bug
        calls = self.result.calls.set_index("call_id")
        return calls["response_s"].reindex(np.asarray(call_idx)).to_numpy(np.float64)


class _Facilities:
    """The run-time :class:`~twin.ports.FacilityControl`: stations and hospitals out of service.

    A station out of service sends its units' home to the nearest station in service (travel
    time now, from the station; none reachable: they stay): idle units drive there at once,
    busy ones after their call. Back in service, their home is their own station again. A
    hospital out of service takes no new ambulance patients and sends its ED patients (in bed
    or waiting for one) and its walk-ins to the nearest hospital in service
    (:meth:`twin.agents.hospital.Hospital.evacuate`; patients past their ED stay, boarding or
    in a ward or ICU bed, stay).
    """

    def __init__(self, model, layout):
        self.model, self.layout = model, layout
        self.stations_out = set()
        self.home = {u.unit_idx: u.spec.station_idx for u in model.units}

    def sites(self):
        loc = self.layout.location_node_idx
        return ([("station", i, n, int(loc[s])) for i, (n, s) in
                 enumerate(zip(self.layout.station_names, self.layout.station_location_idx))]
                + [("hospital", k, h.spec.name, int(loc[h.spec.location_idx])) for k, h in enumerate(self.model.hospitals)])

    def status(self, kind, index):
        h = self.model.hospitals[index]
        beds = h.spec.beds
        return {"occupancy": h.occupied / beds if beds > 0 else 1.0, "waiting": float(h.waiting)}

    def divert(self, index, on):
        h = self.model.hospitals[index]
        h.forced_diversion = None if on is None else bool(on)
        self.model.any_diversion = True
        h._check_diversion()

    def post(self, kind, node_idx):
        from twin.emergency import UNIT_KINDS

        model = self.model
        loc = int(np.flatnonzero(np.asarray(self.layout.location_node_idx) == int(node_idx))[0])
        idle = model.idle_units(UNIT_KINDS.index(kind))
        if not idle:
            return -1
        tt = np.asarray(model.travel.time_s([u.location_idx for u in idle], loc), dtype=np.float64)
        u = idle[int(np.argmin(tt))]
        u.posted = True
        model.posted_log.append([u.unit_idx, loc, model.env.now, np.nan])
        u.move_to(loc)
        return u.unit_idx

    def unit_name(self, unit):
        return self.model.units[unit].spec.name

    def recall(self, unit):
        model = self.model
        u = model.units[unit]
        if not u.posted:
            return
        u.posted = False
        for row in model.posted_log:
            if row[0] == unit and row[3] != row[3]:
                row[3] = model.env.now
        u.move_to(u.station_idx)
        model.dispatch.retry()

    def add_beds(self, index, beds):
        self.model.hospitals[index].add_beds(int(beds))

    def restation(self, unit, station):
        u = self.model.units[unit]
        self.home[u.unit_idx] = u.spec.station_idx if station is None else self.layout.station_location_idx[station]
        self._rehome(u)

    def _rehome(self, u):
        """Send unit ``u`` to its home, or to the station in service nearest it."""
        model, locs = self.model, self.layout.station_location_idx
        home = self.home[u.unit_idx]
        if home not in locs:
            return
        if locs.index(home) in self.stations_out:
            ok = [locs[j] for j in range(len(locs)) if j not in self.stations_out]
            tt = [model.travel.time_s(home, j) for j in ok]
            base = ok[int(np.argmin(tt))] if ok and np.isfinite(tt).any() else home
        else:
            base = home
        if base != u.station_idx:
            u.station_idx = base
            if u.idle:
                u.move_to(base)

    def set_in_service(self, kind, index, in_service):
        model = self.model
        if kind == "hospital":
            h = model.hospitals[index]
            h.out_of_service = not in_service
            model.any_out_of_service = True
            if not in_service:
                dry = [o for o in model.hospitals if not o.out_of_service]
                t = [model.travel.time_s(h.spec.location_idx, o.spec.location_idx) for o in dry]
                if dry and np.isfinite(t).any():
                    h.evacuate(dry[int(np.argmin(t))])
            return
        (self.stations_out.discard if in_service else self.stations_out.add)(index)
        for u in model.units:
            self._rehome(u)


class EmsFlow(Flow):
    """Emergency response: calls from where people are, dispatch, units, hospitals."""

    name = "ems"
    tables = EMS_TABLES
    streams = STREAMS
    result_names = ("ems", "districts", "header")
    provides = (CallPlan, CallIntake, FacilityControl, CallOutcome, HospitalBeds, InpatientBeds)
    uses = (Presence, LiveTravel, Exposure)

    def active(self, ctx):
        # a city without stations and hospitals has no emergency medical service to simulate
        return bool(ctx.groups.get("stations") or ctx.groups.get("hospitals"))

    def plan(self, ctx):
        groups = ctx.groups
        if not groups["call_types"]:
            groups["call_types"] = [CallTypeGroup(name="emergency")]
        plan = EmsPlan(groups, ctx.city, ctx.source, ctx.port(Presence))
        ctx.provide(CallPlan, plan)
        ctx.provide(HospitalBeds, _Beds(tuple(groups["hospitals"])))
        return plan

    def build(self, ctx):
        from twin.agents.ems import CityModel

        plan = ctx.plan(self)
        spec, layout = plan.spec, plan.layout
        live = ctx.port(LiveTravel)
        svc = ctx.groups["service"]
        travel = None
        if live is not None:
            travel = live.provider(layout.location_node_idx, emergency_speed_factor=svc.emergency_speed_factor,
                                   queue_delay_share=svc.queue_delay_share)
        streams = {name: ctx.streams.generator(name) for name in STREAMS}
        incident_rng = ctx.streams.generator(plan.incident_stream) if plan.incident_stream else None
        self.travel = travel
        self.model = CityModel(spec, seed=ctx.seed, until_s=ctx.until_s, travel=travel, env=ctx.clock,
                               streams=streams, incident_rng=incident_rng, start=False)
        self.intake = _Intake(self.model, layout.zone_district_idx)
        ctx.provide(CallIntake, self.intake)
        ctx.provide(CallOutcome, self.intake)
        self.facilities = _Facilities(self.model, plan.layout)
        ctx.provide(FacilityControl, self.facilities)
        ctx.provide(InpatientBeds, _Inpatients(self.model))

    checkpoints = True

    def start(self, ctx):
        self.model.start()
        self._listen(ctx)

    def _listen(self, ctx):
        exposure = ctx.port(Exposure)
        if exposure is not None:            # closures come and go: queued calls get another chance each sync
            exposure.on_sync(lambda now_s, next_s: self.model.dispatch.retry())

    def snapshot(self, ctx):
        from twin.agents.ems_state import model_snapshot

        out = model_snapshot(self.model, ctx.pending)
        out["location_node_id"] = np.asarray(ctx.plan(self).layout.location_node_id)
        out["stations_out"] = sorted(self.facilities.stations_out)
        out["homes"] = [[u, h] for u, h in sorted(self.facilities.home.items()) if h != self.model.units[u].spec.station_idx]
        return out

    def restore(self, ctx, state, time_s):
        from twin.agents.ems_state import model_restore

        saved, now = np.asarray(state["location_node_id"]), np.asarray(ctx.plan(self).layout.location_node_id)
        if not np.array_equal(saved, now):
            raise ScenarioError(f"checkpoint: the EMS places (stations, hospitals, call locations: {len(saved)} "
                                f"nodes) differ from this scenario's ({len(now)}); a what-if from a snapshot keeps "
                                f"the stations' and hospitals' places and the districts' calls")
        model_restore(self.model, state, ctx.wakeup)
        self.facilities.stations_out = {int(i) for i in state["stations_out"]}
        for u, h in state.get("homes", []):      # units a rule re-stationed
            self.facilities.home[int(u)] = int(h)
        if state.get("dispatch_now"):          # calls an observed state added: idle units take them now
            self.model.dispatch.retry()
        self._listen(ctx)

    def harms(self, ctx, result, windows):
        """``hospital_full``: at a hospital's node, its ED beds all taken at some time in the window."""
        if ctx.city is None:
            return {}
        ems, layout = result.values["ems"], ctx.plan(self).layout
        occ, beds = ems.occupancy, ems.hospitals.set_index("hospital_idx")["beds"]
        out = np.zeros((len(windows), ctx.city.n_nodes), dtype=bool)
        for k, h in enumerate(ems.spec.hospitals):
            cap = float(beds.get(k, np.inf))
            if not np.isfinite(cap) or cap <= 0:
                continue
            rows = occ[occ["hospital_idx"] == k]
            t, full = rows["time_s"].to_numpy(np.float64), rows["occupied_beds"].to_numpy() >= cap
            node = int(layout.location_node_idx[h.location_idx])
            for i, (a, b) in enumerate(windows):
                j = np.searchsorted(t, a, side="right") - 1          # the value holding at a
                out[i, node] |= bool((j >= 0 and full[j]) or full[(t >= a) & (t < b)].any())
        return {"hospital_full": out}

    def fork(self, ctx, rng, factors):
        from twin.agents.ems_forecast import fork_calls

        fork_calls(self.model, rng, float(factors.get("call_rate", 1.0)))

    def finish(self, ctx):
        from twin.agents.ems import ems_result

        plan = ctx.plan(self)
        ems = ems_result(self.model, float(ctx.clock.now))
        self.intake.result = ems
        districts, gap = ems.district_kpis(plan.layout)
        kpis = dict(ems.kpis)
        hosp = ems.hospitals
        n_arr, n_blk = int(hosp["arrivals"].sum()), int(hosp["blocked"].sum())
        n_uns = kpis["n_lost"] + kpis["n_open"]
        kpis.update(n_blocked=n_blk, blocking=n_blk / n_arr if n_arr else math.nan, n_unserved=n_uns,
                    unserved_share=n_uns / kpis["n_calls"] if kpis["n_calls"] else math.nan)
        kpis.update(gap)
        if plan.spec.dispatch.agencies:      # coordination: each district's response, for paired comparisons
            for _, row in districts.iterrows():
                if row["n_calls"] > 0:
                    kpis[f"district_{row['name']}_response_mean_s"] = float(row["response_mean_s"])
        days = ctx.until_s / 86400.0
        lines = _report(kpis, ems, districts, days)
        moved = [m for h in self.model.hospitals for m in h.transfers_out]
        if moved:                          # only when a hospital was evacuated: other runs' KPIs stay as they were
            kpis["hospital_patients_evacuated"] = float(len(moved))
            lines.insert(len(lines) - len(_district_lines(kpis, districts)),
                         f"{'patients moved (hospital closed)':<34} {len(moved)}  "
                         f"({sum(1 for m in moved if m[3])} from a bed, {sum(1 for m in moved if not m[3])} waiting)")

        def write(writer):
            ems.write(writer, layout=plan.layout)

        header = f"{plan.spec.n_units} units, {plan.spec.n_hospitals} hospitals"
        return FlowResult(self.name, kpis=kpis, lines=lines, write=write,
                          values={"ems": ems, "districts": districts, "header": header})


def _hospital_lines(k, ems):
    lines = [f"{'hospital blocking':<34} {_fmt_pct(k['blocking'])}  ({k['n_blocked']} of "
             f"{int(ems.hospitals['arrivals'].sum())} arrivals)"]
    if math.isfinite(k.get("offload_delay_mean_s", math.nan)):
        lines.append(f"{'ambulance offload delay':<34} mean {_fmt_min(k['offload_delay_mean_s'])}, p90 "
                     f"{_fmt_min(k['offload_delay_p90_s'])}, {k['offload_unit_h']:.1f} unit-hours waiting for a bed")
    if "hospital_past_nearest" in k:
        extra = k["hospital_past_nearest_extra_mean_s"]
        lines.append(f"{'hospital chosen at the scene':<34} {int(k['hospital_past_nearest'])} transports past the nearest "
                     f"({_fmt_pct(k['hospital_past_nearest_share'])})"
                     + (f", {extra / 60:+.1f} min of travel each" if math.isfinite(extra) else "")
                     + f"; scene to ED bed mean {_fmt_min(k['scene_to_bed_mean_s'])}, p90 "
                     f"{_fmt_min(k['scene_to_bed_p90_s'])}")
    for _, h in ems.hospitals.iterrows():
        lines.append(f"  {h['name']:<32} {h['beds']} beds, mean occupied {h['occupancy_mean']:.1f}, "
                     f"blocking {_fmt_pct(h['blocking'])}")
    if "boarding_mean_s" in k:                  # patient flow or diversion
        lines += [f"{'ED boarding':<34} mean {_fmt_min(k['boarding_mean_s'])}, p90 {_fmt_min(k['boarding_p90_s'])}"
                  f"  ({k['n_boarded']} patients boarded)",
                  f"{'diversion':<34} {k['diversion_h']:.1f} h  ({k['n_diverted']} transports diverted)",
                  f"{'inter-hospital transfers':<34} {k['n_transfers']}"
                  + (f"  ({k['n_transfers_ambulance']} by ambulance, pick-up mean "
                     f"{_fmt_min(k['transfer_pickup_mean_s'])})" if "n_transfers_ambulance" in k else ""),
                  f"{'ward/ICU blocked':<34} {k['n_inpatient_blocked']}"]
    return lines


#: Above this many districts ``twin run`` prints the slowest and fastest halves of it, not every row.
MAX_DISTRICT_ROWS = 20


def _district_lines(k, districts):
    gm = k["equity_gap_response_mean_s"]
    if math.isfinite(gm):
        lines = [f"{'equity gap, peripheral - central':<34} mean {gm / 60:+.1f} min, p90 "
                 f"{k['equity_gap_response_p90_s'] / 60:+.1f} min, within target "
                 f"{100 * k['equity_gap_within_target'] + 0.0:+.1f} pp"]
    else:
        lines = [f"{'equity gap, peripheral - central':<34} - (no central or no peripheral calls)"]
    lines += ["", f"  {'district':<10} {'central':>7} {'calls':>6} {'mean':>9} {'p90':>9} {'in target':>10}"]
    shown = districts
    if len(districts) > MAX_DISTRICT_ROWS:                # a large city: the extremes, not hundreds of rows
        ranked = districts[districts["n_calls"] > 0].sort_values("response_mean_s", ascending=False, kind="stable")
        k = MAX_DISTRICT_ROWS // 2
        shown = ranked.head(k) if len(ranked) <= 2 * k else ranked.iloc[list(range(k)) + list(range(len(ranked) - k,
                                                                                                   len(ranked)))]
    for i, (_, d) in enumerate(shown.iterrows()):
        if shown is not districts and i == MAX_DISTRICT_ROWS // 2 and len(shown) > i:
            lines.append(f"  {'...':<10} {len(districts) - len(shown)} more districts: the full table is "
                         f"/summary/ems_districts in the results file (--out), or --format csv")
        lines.append(f"  {d['name']:<10} {'yes' if d['central'] else '':>7} {d['n_calls']:>6} "
                     f"{_fmt_min(d['response_mean_s']):>9} {_fmt_min(d['response_p90_s']):>9} "
                     f"{_fmt_pct(d['within_target']):>10}")
    if shown is not districts:
        lines.insert(len(lines) - len(shown) - 1, f"  {len(districts)} districts: the {MAX_DISTRICT_ROWS // 2} slowest "
                                                   f"and the {MAX_DISTRICT_ROWS // 2} fastest by mean response")
    return lines


def _report(k, ems, districts, days):
    """The KPI lines ``twin run`` prints for the EMS."""
    lines = [f"{'calls':<34} {k['n_calls']:,}  ({k['n_calls'] / days:,.0f}/day; lost {k['n_lost']}, "
             f"open {k['n_open']})",
             f"{'response time mean':<34} {_fmt_min(k['response_mean_s'])}",
             f"{'response time p90':<34} {_fmt_min(k['response_p90_s'])}"]
    for p in (1, 2, 3):
        if f"response_p{p}_within_target" in k:
            lab = f"P{p} within {k[f'response_p{p}_target_s'] / 60:g} min"
            lines.append(f"{lab:<34} {_fmt_pct(k[f'response_p{p}_within_target'])}  "
                         f"({k[f'response_p{p}_n']} calls, mean {_fmt_min(k[f'response_p{p}_mean_s'])})")
    lines += [f"{'unit utilisation (mean)':<34} {_fmt_pct(k['unit_utilisation_mean'])}",
              f"{'dispatch wait (share waiting)':<34} {_fmt_pct(k['dispatch_wait_share'])}"]
    if ems.call_centres is not None:
        lines.append(f"{'call taking (wait)':<34} mean {_fmt_min(k['call_taking_wait_mean_s'])}, "
                     f"{_fmt_pct(k['call_taking_wait_share'])} waited, {_fmt_pct(k['call_taking_answered_in_target_share'])}"
                     f" answered within 20 s")
        for r in ems.call_centres.itertuples():
            takers = "unlimited" if not math.isfinite(r.call_takers) else f"{r.call_takers:g}"
            lines.append(f"{'  centre ' + r.centre:<34} {r.calls:,} calls, {takers} call takers, mean wait "
                         f"{_fmt_min(r.wait_mean_s)}, {_fmt_pct(r.answered_in_target_share)} within 20 s")
        if k.get("calls_transferred"):
            lines.append(f"{'calls transferred':<34} {k['calls_transferred']:,}, mean delay "
                         f"{_fmt_min(k['transfer_delay_mean_s'])} (to the other centres' units)")
        if k.get("full_set_calls"):
            lines.append(f"{'full set on scene (joint calls)':<34} mean {_fmt_min(k['full_set_mean_s'])}, p90 "
                         f"{_fmt_min(k['full_set_p90_s'])}  ({k['full_set_calls']:,} calls needing several units, "
                         f"{k['full_set_unreached']:,} not reached)")
        if "cross_border_units" in k:
            aid = (f"; mutual aid asked {k['mutual_aid_requests']:,} times, {k['mutual_aid_units']:,} units sent"
                   if "mutual_aid_requests" in k else "")
            lines.append(f"{'units sent across a border':<34} {k['cross_border_units']:,} "
                         f"({_fmt_pct(k['cross_border_share'])} of units sent){aid}")
        if ems.agency_response is not None:
            for r in ems.agency_response.itertuples():
                lines.append(f"{'  agency ' + r.agency + ' first on scene':<34} mean {_fmt_min(r.on_scene_mean_s)}, "
                             f"p90 {_fmt_min(r.on_scene_p90_s)}  ({r.reached:,} of {r.calls:,} calls; {r.unit_kinds})")
    lines += _hospital_lines(k, ems)
    if "relocation_orders" in k:
        lines.append(f"{'move-up relocations':<34} {k['relocation_moves']} moves "
                     f"({k['relocation_refused']} refused, {k['relocation_diverted']} diverted to calls), "
                     f"driving {k['relocation_driving_s'] / 3600:.1f} h")
    return lines + _district_lines(k, districts)
