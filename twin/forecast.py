"""Rolling-horizon forecasts: ensembles run on from the city's state now ([forecast]).

``twin forecast SCENARIO --from run.h5@06:00 --horizons 3h,6h,24h -n 40`` answers "from the
city as it is at 06:00, what happens in the next 3, 6, 24 hours: where, how likely, how bad?"
Every member starts from the same snapshot (:mod:`twin.checkpoint`); each goes on with

- its own dice: every random generator in the state is re-seeded from the member's seed
  (``SeedSequence(seed, spawn_key=(member, crc32(path in the state)))``,
  :func:`twin.checkpoint.fork_generators`) and each flow with a
  ``fork`` step draws again what it drew up front for the time ahead (the EMS: the calls still
  to come, :func:`twin.agents.ems_forecast.fork_calls`);
- its own uncertain inputs (:class:`Perturbation`): the call rates times a lognormal factor
  (median 1, log-sd ``call_rate_sigma`` = 0.2), each polygon flood's depth timeline times a
  lognormal factor (median 1, log-sd ``hazard_depth_sigma`` = 0.25; the depths already
  reached stay as they were), or a member's overrides from a hazard ensemble file; the
  traffic's trips not yet departed times a lognormal demand factor (median 1, log-sd
  ``demand_sigma`` = 0.1: thinned or copied, :func:`twin.traffic_fork.scale_demand`), and the
  share of drivers re-routing on live times shifted on the logit scale (normal, sd
  ``reroute_sigma`` = 0.5; a behaviour share). The sds are assumptions, not fitted.

Member 0 is the control: the snapshot's own dice and scenario, so it is the uninterrupted run
(bit for bit). The members run here or on Dask (``dask=True``), each a task named by its seed.

Products, per horizon ``h`` (the window ``[t0, t0 + h)``):

- fans: P10, P50, P90 over the members of each KPI (:data:`twin.agents.ems_forecast.KPIS`);
- risk: per district and harm (:data:`HARMS`: a P1 call beyond its response target, and what
  the flows tell through :meth:`twin.flows.Flow.harms`: hospital full, roads cut off from
  every hospital, people in water, shelter full), the probability over the members that it
  strikes there, and its risk class of five (:data:`RISK_CLASSES`, upper probability bounds
  :data:`RISK_THRESHOLDS`, configurable).

Before the members run, the call-rate factors are fitted to the calls observed so far
(:func:`fit_call_rate`: importance resampling of the lognormal prior by the Poisson likelihood
of the count; the snapshot's own calls or a CSV call log) and, given hourly link counts, the
demand factors to the counts (:func:`fit_demand`: an ensemble adjustment Kalman filter),
unless ``assimilate=False``.
:mod:`twin.forecast_verify` scores forecasts against synthetic truths held out (CRPS and
90 % coverage, :mod:`twin.scores`).

Horizons past the scenario's end (``run.until_s``) are cut there (the result says so).
Not yet: the evacuation's compliance as a member's behaviour (its cars are planned up front),
and walk-in patients drawn again.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np

from twin.errors import ScenarioError

__all__ = ["forecast", "Perturbation", "ForecastResult", "HARMS", "RISK_CLASSES", "RISK_THRESHOLDS",
           "RISK_COLOURS", "DEFAULT_HORIZONS_S"]

DEFAULT_HORIZONS_S = (3 * 3600.0, 6 * 3600.0, 24 * 3600.0, 48 * 3600.0)
#: Five risk classes, lowest first, and the probabilities that bound them from above (the last
#: class takes the rest). Assumed, not from a standard: change them with ``risk_thresholds``.
RISK_CLASSES = ("very low", "low", "moderate", "high", "very high")
RISK_THRESHOLDS = (0.05, 0.2, 0.4, 0.6)
#: The harms a forecast maps (a flow adds those it can tell: :meth:`twin.flows.Flow.harms`).
#: p1_late: a P1 call waited beyond its response target; hospital_full: a hospital's beds all
#: taken; roads_cut_off: a node with no open route to any hospital; people_in_water: persons
#: present where the water reaches an injury band; shelter_full: a shelter's places all taken.
HARMS = {"p1_late": "P1 beyond target", "hospital_full": "hospital full", "roads_cut_off": "cut off from hospitals",
         "people_in_water": "people in water", "shelter_full": "shelter full"}
RISK_COLOURS = ("#2e7d32", "#1565c0", "#f9a825", "#ef6c00", "#c62828")   # green, blue, yellow, orange, red


@dataclass(frozen=True)
class Perturbation:
    """What is uncertain in a member, and how (each factor lognormal with median 1)."""

    call_rate_sigma: float = 0.2          # log-sd of the call-rate factor
    hazard_depth_sigma: float = 0.25      # log-sd of each polygon flood's depth factor
    demand_sigma: float = 0.1             # log-sd of the traffic demand factor (trips not yet departed)
    reroute_sigma: float = 0.5            # sd of the re-routing share's shift on the logit scale

    def __post_init__(self):
        for k in ("call_rate_sigma", "hazard_depth_sigma", "demand_sigma", "reroute_sigma"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and 0.0 <= v < 3.0):
                raise ScenarioError(f"forecast: {k} = {v!r}; expected a {'logit' if k == 'reroute_sigma' else 'log'}"
                                    f"-sd from 0 to 3")


@dataclass
class ForecastResult:
    """A forecast's members and products (times in seconds, KPIs in their named units)."""

    t0_s: float
    horizons_s: list
    kpi_names: list
    kpis: np.ndarray                 # (members, horizons, kpis)
    zones: list                      # district names
    p1_late: np.ndarray              # (members, horizons, zones) bool
    members: list = field(default_factory=list)     # per member: {"seed", "call_rate", "overrides"}
    cut: list = field(default_factory=list)          # requested horizons (s) cut at the scenario's end
    risk_thresholds: tuple = RISK_THRESHOLDS
    zone_map: tuple = None           # (x_m, y_m, district index) of each call zone's place, for maps
    district_calls: np.ndarray = None   # (members, horizons, zones) calls in each window
    fit: dict = None                 # the call-rate assimilation (:func:`fit_call_rate`), or None
    harms: dict = None               # harm name -> (members, horizons, zones) bool; "p1_late" first
    observed: dict = None            # the report of an observed state the forecast started from, or None
    count_fit: dict = None           # the GEH fit of observed link counts (:func:`link_count_fit`), or None
    demand_fit: dict = None          # the link counts assimilated into the demand (:func:`fit_demand`), or None
    city: object = field(default=None, repr=False)   # the scenario's city: the file gets its network and
                                                     # the risk per link (twin render --layer risk)

    def fans(self) -> dict:
        """``{kpi: array (3, horizons)}``: P10, P50, P90 over the members (NaN members left out)."""
        out = {}
        for j, k in enumerate(self.kpi_names):
            v = self.kpis[:, :, j]
            out[k] = np.array([[np.nanpercentile(v[:, h], q) if np.isfinite(v[:, h]).any() else math.nan
                                for h in range(v.shape[1])] for q in (10, 50, 90)])
        return out

    def harm_names(self) -> list:
        return list(self.harms) if self.harms else ["p1_late"]

    def risk(self, harm="p1_late") -> tuple:
        """``(probability, level)`` per horizon and district: the share of members struck by
        ``harm`` there (default: a P1 call beyond its target), and its class index into
        :data:`RISK_CLASSES` (0 very low .. 4 very high)."""
        if harm not in self.harm_names():
            raise ScenarioError(f"forecast: no harm {harm!r}; this forecast has {', '.join(self.harm_names())}")
        p = (self.harms[harm] if self.harms else self.p1_late).mean(axis=0)
        return p, np.searchsorted(np.asarray(self.risk_thresholds), p, side="right")

    def lines(self) -> list:
        """Report lines: the fans, then the districts at moderate risk or above."""
        hs = [_hm(h) for h in self.horizons_s]
        out = [f"forecast from {_hm(self.t0_s)}, {len(self.kpis)} members"
               + (" (member 0 the control)" if self.members and self.members[0].get("control") else "")
               + (f"; horizons {', '.join(f'+{c / 3600:g} h' for c in self.cut)} cut to the scenario's end, "
                  f"+{self.horizons_s[-1] / 3600:g} h" if self.cut else "")]
        if self.observed:
            o = self.observed
            out.append(f"  from an observed state: {len(o.get('units_moved', []))} units moved, "
                       f"{len(o.get('hospitals_changed', []))} hospitals changed, {len(o.get('calls_added', []))} "
                       f"calls added" + (f"; link speeds: {o['links_compared']} compared, mean absolute error "
                                         f"{o['link_speed_mae_kmh']:.1f} km/h, {o['links_off_10kmh']} off by over "
                                         f"10 km/h" if o.get("links_compared") else ""))
        if self.count_fit:
            c = self.count_fit
            out.append(f"  link counts to {_hm(self.t0_s)}: {c['sites']} site-hours, GEH mean {c['geh_mean']:.2f}, "
                       f"{100 * c['geh_under_5_share']:.0f} % under 5" if c["sites"] else
                       f"  link counts: none in a full hour before {_hm(self.t0_s)}")
        if self.demand_fit:
            f = self.demand_fit
            out.append(f"  traffic demand from {f['sites']} counted site-hours: factor {f['posterior'][1]:.2f} "
                       f"[{f['posterior'][0]:.2f}, {f['posterior'][2]:.2f}] (prior {f['prior'][1]:.2f} "
                       f"[{f['prior'][0]:.2f}, {f['prior'][2]:.2f}], P50 [P5, P95]); GEH mean "
                       f"{f['geh_mean_before']:.2f} -> {f['geh_mean_after']:.2f} at the posterior's P50")
        if self.fit:
            f = self.fit
            out.append(f"  call rate from the calls {_hm(f['from_s'])}-{_hm(f['to_s'])}: {f['observed']} observed, "
                       f"{f['expected']:.1f} expected -> factor {f['posterior'][1]:.2f} "
                       f"[{f['posterior'][0]:.2f}, {f['posterior'][2]:.2f}] (prior {f['prior'][1]:.2f} "
                       f"[{f['prior'][0]:.2f}, {f['prior'][2]:.2f}], P50 [P5, P95]; effective sample "
                       f"{f['ess']:.0f} of {f['particles']})")
        out.append(f"  {'P10 / P50 / P90':<26}" + "".join(f"{'+' + h:>22}" for h in hs))
        for k, f in self.fans().items():
            out.append(f"  {k:<26}" + "".join(f"{_num(f[0, i]) + ' / ' + _num(f[1, i]) + ' / ' + _num(f[2, i]):>22}"
                                               for i in range(len(hs))))
        for harm in self.harm_names():
            p, lv = self.risk(harm)
            rows = [z for z in range(len(self.zones)) if harm == "p1_late" or p[:, z].max() > 0]
            out.append(f"  {HARMS.get(harm, harm)}, probability by district (risk class)"
                       + (":" if rows else ": none struck in any member"))
            for z in rows:
                out.append(f"    {self.zones[z]:<12}" + "".join(
                    f"{f'{100 * p[i, z]:.0f} % ({RISK_CLASSES[lv[i, z]]})':>22}" for i in range(len(hs))))
        return out

    def write(self, path, *, overwrite=False) -> None:
        """A results file with ``/forecast`` (layout in docs/results-format.md), written whole
        (``<path>.partial``, then renamed) so that ``twin plot`` and pandas read it."""
        from twin.results import ResultsWriter

        meta = {"kind": "forecast", "forecast_t0_s": self.t0_s, "forecast_members": len(self.kpis),
                "forecast_kpis": list(self.kpi_names), "forecast_districts": list(self.zones),
                "forecast_risk_classes": list(RISK_CLASSES), "forecast_risk_colours": list(RISK_COLOURS),
                "forecast_risk_thresholds": list(self.risk_thresholds), "forecast_cut_s": list(self.cut),
                "forecast_harms": self.harm_names(), "forecast_harm_titles": [HARMS.get(h, h) for h in self.harm_names()],
                "forecast_member_factors": [[m["member"], m["call_rate"], m.get("demand", 1.0),
                                             m.get("reroute_logit", 0.0), "; ".join(m["overrides"])]
                                            for m in self.members]}
        if self.fit:
            meta["forecast_call_rate_fit"] = dict(self.fit)
        if self.observed:
            meta["forecast_observed_state"] = dict(self.observed)
        if self.demand_fit:
            meta["forecast_demand_fit"] = dict(self.demand_fit)
        if self.count_fit:
            meta["forecast_link_count_fit"] = {k: v for k, v in self.count_fit.items()
                                               if not (isinstance(v, float) and not math.isfinite(v))}
        with ResultsWriter(path, meta=meta, overwrite=overwrite) as w:
            w.write_array("/forecast/horizons_s", np.asarray(self.horizons_s, dtype=np.float64), units="s")
            fans = self.fans()
            for j, k in enumerate(self.kpi_names):
                unit = _unit(k)
                w.write_array(f"/forecast/members/{k}", self.kpis[:, :, j], units=unit,
                              attrs={"axes": "member, horizon"})
                w.write_array(f"/forecast/fans/{k}", fans[k], units=unit, attrs={"axes": "P10 P50 P90, horizon"})
            for harm in self.harm_names():
                struck = self.harms[harm] if self.harms else self.p1_late
                w.write_array(f"/forecast/members/{harm}", np.asarray(struck).astype(np.int8), units="1",
                              attrs={"axes": "member, horizon, district", "harm": HARMS.get(harm, harm)})
                p, lv = self.risk(harm)
                w.write_array(f"/forecast/risk/{harm}_probability", p, units="1", attrs={"axes": "horizon, district"})
                w.write_array(f"/forecast/risk/{harm}_level", lv.astype(np.int8), units="1",
                              attrs={"axes": "horizon, district", "classes": ", ".join(RISK_CLASSES)})
            if self.district_calls is not None:
                w.write_array("/forecast/members/district_calls", np.asarray(self.district_calls, dtype=np.int64),
                              units="1", attrs={"axes": "member, horizon, district"})
            if self.city is not None:
                self._write_links(w)
            if self.zone_map is not None:
                x, y, d = self.zone_map
                w.write_array("/forecast/map/zone_x_m", np.asarray(x, dtype=np.float64), units="m")
                w.write_array("/forecast/map/zone_y_m", np.asarray(y, dtype=np.float64), units="m")
                w.write_array("/forecast/map/zone_district_idx", np.asarray(d, dtype=np.int32), units="1")

    def _write_links(self, w) -> None:
        """``/network`` and ``/timeseries/forecast_risk_links``: per horizon (``time_s`` = t0 +
        horizon) and link, each harm's class and the highest of them (``risk_level``) in the
        district of the link's start node (NaN: no district)."""
        from twin.graph import write_network

        city = self.city
        write_network(w, city)
        link_d = node_districts(city, self.zones)[np.asarray(city.link_from_idx)]
        levels = {h: self.risk(h)[1] for h in self.harm_names()}
        per = {f"{h}_level": np.where(link_d >= 0, lv[:, np.maximum(link_d, 0)], np.nan).astype(np.float32)
               for h, lv in levels.items()}
        per["risk_level"] = np.fmax.reduce(np.stack(list(per.values())), axis=0)     # NaN only where all are
        app = w.series_appender("forecast_risk_links", {k: (city.n_links, "1") for k in per})
        for i, h in enumerate(self.horizons_s):
            app.append(float(self.t0_s + h), **{k: v[i] for k, v in per.items()})


def node_districts(city, district_names) -> np.ndarray:
    """The district index (into ``district_names``, the EMS's districts) of each city node: its
    city zone's, matched by id; -1 for a node in no zone or in a zone that is no district."""
    names = {str(n): i for i, n in enumerate(district_names)}
    of_zone = np.array([names.get(str(z), -1) for z in np.asarray(city.zone_ids)] + [-1], dtype=np.int64)
    return of_zone[np.asarray(city.zone_of_node)]            # zone -1 picks the trailing -1


def _unit(kpi):
    return "min" if kpi.endswith("_min") else "1"


def _hm(t):
    m = int(round(t / 60.0))
    return f"{m // 60:02d}:{m % 60:02d}"


def _num(x):
    return "-" if not np.isfinite(x) else f"{x:.3g}"


def run_member(snapshot, scenario_text, overrides, seed, member, factors, horizons_s, forked=None) -> dict:
    """One member (a top-level function, so Dask can ship it): its KPIs per horizon, its late
    P1 calls and its calls per district. ``factors``: the flows' fork factors
    (``{"call_rate", "demand", "reroute_logit"}``; a number is the call rate alone). ``forked``
    (default: ``member != 0``): on its own dice, else on the snapshot's (the control)."""
    from twin.checkpoint import read_checkpoint
    from twin.flows import Simulation
    from twin.runner import load_scenario

    meta, t0, states = read_checkpoint(snapshot)
    run_seed = int(meta["seed"])
    sc = load_scenario(scenario_text, overrides=list(overrides)).replanned(run_seed)
    rg = sc.run_group
    forked = member != 0 if forked is None else bool(forked)
    factors = {"call_rate": float(factors)} if isinstance(factors, (int, float)) else dict(factors)
    fork = None if not forked else {**{k: float(v) for k, v in factors.items()}, "seed": int(seed), "member": int(member)}
    sim = Simulation(sc, seed=run_seed, until_s=rg.until_s, drain=rg.drain, start_s=t0)
    return member_products(sim, sim.run(state=states, fork=fork), t0, horizons_s)


def member_products(sim, results, t0_s, horizons_s) -> dict:
    """What a run (``sim`` after ``results = sim.run(...)``) tells over the windows ``[t0, t0 + h)``:
    the EMS's KPIs and calls per district, and every harm per district (``p1_late`` from the
    calls; the others from the flows' :meth:`~twin.flows.Flow.harms`, a district struck when
    one of its nodes is)."""
    from twin.agents.ems_forecast import KPIS, horizon_products

    ems = results["ems"].values["ems"]
    layout = sim.ctx.plan(next(f for f in sim.flows if f.name == "ems")).layout
    n_d = len(layout.district_names)
    kpis, late, counts = horizon_products(ems, t0_s, horizons_s, float(ems.spec.response_target_s[0]),
                                          layout.zone_district_idx, n_d)
    city, xy = sim.ctx.city, None
    if city is not None and city.has_coordinates:
        loc = np.asarray(layout.location_node_idx, dtype=np.int64)[[z.location_idx for z in ems.spec.zones]]
        xy = [city.x_m[loc].tolist(), city.y_m[loc].tolist()]
    harms = {"p1_late": late}
    if city is not None:
        node_d = node_districts(city, layout.district_names)
        windows = [(float(t0_s), float(t0_s + h)) for h in horizons_s]
        for f in sim.flows:
            for name, struck in f.harms(sim.ctx, results[f.name], windows).items():
                hit = harms.setdefault(name, np.zeros((len(windows), n_d), dtype=bool))
                for i in range(len(windows)):
                    d = node_d[np.asarray(struck[i], dtype=bool)]
                    hit[i, np.unique(d[d >= 0])] = True
    return {"kpis": [[k[n] for n in KPIS] for k in kpis], "late": late.tolist(), "calls": counts.tolist(),
            "harms": {k: np.asarray(v).tolist() for k, v in harms.items()},
            "zones": [str(n) for n in layout.district_names],
            "map": None if xy is None else [*xy, np.asarray(layout.zone_district_idx).tolist()]}


def member_plan(scenario, members, seed, perturbation, *, control=True, call_rates=None, hazard_members=None) -> list:
    """Per member ``{"seed", "member", "call_rate", "demand", "reroute_logit", "overrides",
    "control"}``. With ``control``,
    member 0 is the control (no factors, the snapshot's dice). The others' factors come from
    ``SeedSequence(seed)`` child ``member`` (the same whatever the number of members);
    ``call_rates`` (one per perturbed member, e.g. drawn from the assimilated posterior by
    :func:`fit_call_rate`) replace their call-rate factors; ``hazard_members`` (lists of
    overrides, :func:`read_hazard_ensemble`) replace their flood-depth factors, perturbed
    member ``j`` taking hazard member ``j mod len(hazard_members)``."""
    plan = ([{"seed": int(seed), "member": 0, "call_rate": 1.0, "demand": 1.0, "reroute_logit": 0.0, "overrides": [],
              "control": True}] if control else [])
    floods = [(i, g) for i, g in enumerate(scenario.groups.get("hazards") or [])
              if getattr(g, "kind", "") == "flood" and getattr(g, "depth_mm", ())]
    for j, m in enumerate(range(1 if control else 0, members)):
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(m),)))
        rate = float(np.exp(rng.normal(0.0, perturbation.call_rate_sigma)))
        if call_rates is not None:
            rate = float(call_rates[j])
        over = []
        for i, g in floods:
            f = float(np.exp(rng.normal(0.0, perturbation.hazard_depth_sigma)))
            over.append(f"hazards.{i}.depth_mm=[{', '.join(repr(round(d * f, 3)) for d in g.depth_mm)}]")
        if hazard_members:
            over = list(hazard_members[j % len(hazard_members)])
        demand = float(np.exp(rng.normal(0.0, perturbation.demand_sigma)))      # drawn after the others: they
        shift = float(rng.normal(0.0, perturbation.reroute_sigma))              # stay what they were
        plan.append({"seed": int(seed), "member": m, "call_rate": rate, "demand": demand, "reroute_logit": shift,
                     "overrides": over, "control": False})
    return plan


def read_hazard_ensemble(path, scenario=None) -> list:
    """The members of a hazard forecast ensemble: a TOML file with one ``[[members]]`` table
    per member, each ``set = ["hazards.0.depth_mm=[...]", ...]`` (overrides of the scenario's
    ``[[hazards]]`` only) and an optional ``name``. Returns the lists of overrides; with
    ``scenario`` (text or name), each member is loaded once so that a bad one is named."""
    import tomllib

    from twin.runner import load_scenario

    where_ = f"hazard ensemble {str(path)!r}"
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ScenarioError(f"{where_}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where_}: not valid TOML ({exc})") from None
    members = doc.get("members")
    if not isinstance(members, list) or not members:
        raise ScenarioError(f"{where_}: expected [[members]] tables, each with set = [\"hazards.0.depth_mm=[...]\"]")
    out = []
    for i, m in enumerate(members):
        at = f"{where_} member {i}" + (f" ({m.get('name')!r})" if isinstance(m, dict) and m.get("name") else "")
        sets = m.get("set") if isinstance(m, dict) else None
        if not isinstance(sets, list) or not sets or not all(isinstance(x, str) for x in sets):
            raise ScenarioError(f"{at}: expected set = a list of KEY=VALUE strings")
        bad = [x for x in sets if not x.strip().startswith("hazards.")]
        if bad:
            raise ScenarioError(f"{at}: {bad[0]!r} is not a [[hazards]] setting; a hazard member sets hazards.N.* only")
        if scenario is not None:
            try:
                load_scenario(scenario, overrides=list(sets))
            except ScenarioError as exc:
                raise ScenarioError(f"{at}: {exc}") from None
        out.append(list(sets))
    return out


def read_link_counts(path) -> list:
    """Hourly link counts from a CSV with columns ``from_node``, ``to_node`` (the city's node
    ids), ``hour`` (0-23: the hour starting then, or ``HH:MM`` at a full hour) and ``count``
    (vehicles leaving the link in that hour). Returns ``[(from_id, to_id, hour, count), ...]``."""
    import csv

    where_ = f"link counts {str(path)!r}"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ScenarioError(f"{where_}: cannot read ({exc})") from None
    out = []
    for i, r in enumerate(rows, start=2):
        missing = [k for k in ("from_node", "to_node", "hour", "count") if r.get(k) in (None, "")]
        if missing:
            raise ScenarioError(f"{where_} line {i}: no {missing[0]}; expected columns from_node, to_node, hour, count")
        h = str(r["hour"]).strip()
        try:
            hour = int(h.split(":")[0]) if ":" in h and h.endswith(":00") else int(h)
            count = float(r["count"])
        except ValueError:
            raise ScenarioError(f"{where_} line {i}: hour {r['hour']!r}, count {r['count']!r}; expected an hour "
                                f"0-23 (or HH:00) and a count of vehicles") from None
        if not (0 <= hour and math.isfinite(count) and count >= 0):
            raise ScenarioError(f"{where_} line {i}: hour {hour}, count {count}; expected hour >= 0 and count >= 0")
        out.append((r["from_node"].strip(), r["to_node"].strip(), hour, count))
    return out


def count_sites(states, city, t0_s, counts, dt_s=1.0) -> list:
    """Per observed count (:func:`read_link_counts`) of an hour ended by ``t0_s``: ``(from_id,
    to_id, hour, modelled, counted)``, the modelled count being the twin's outflow of that link
    in that hour (the snapshot's traffic series, vehicles). The traffic (ticks of ``dt_s``) is
    synchronised to the clock every ``sync_s``, so at ``t0_s`` it has simulated up to the last
    synchronisation before: the hour it has not finished is scaled up by the share simulated
    (e.g. 60/59 with a 60 s sync at a full hour)."""
    import inspect

    from twin.traffic_engine import TrafficEngine

    tr = states.get("traffic") or {}
    if "engine_out_outflow" not in tr:
        raise ScenarioError("link counts: the snapshot has no traffic to compare them with")
    flow = np.asarray(tr["engine_out_outflow"], dtype=np.float64).reshape(-1, city.n_links)
    reached_s = float(np.asarray(tr["engine_out_counters"])[4]) * float(dt_s)
    interval = float(inspect.signature(TrafficEngine).parameters["interval_s"].default)
    per_h = int(round(3600.0 / interval))
    ids = {str(v): i for i, v in enumerate(np.asarray(city.node_ids).tolist())}
    first = {}
    for k, (a, b) in enumerate(zip(np.asarray(city.link_from_idx).tolist(), np.asarray(city.link_to_idx).tolist())):
        first.setdefault((a, b), k)
    sites = []
    for fr, to, hour, c in counts:
        if fr not in ids or to not in ids or (ids[fr], ids[to]) not in first:
            raise ScenarioError(f"link counts: no link from node {fr} to node {to} in {city.name}")
        if (hour + 1) * 3600.0 > t0_s + 1e-6:
            continue
        covered = min(3600.0, reached_s - hour * 3600.0)
        if covered < 1800.0:
            continue                                  # (not reached: a snapshot off the traffic's clock)
        m = float(flow[hour * per_h:(hour + 1) * per_h, first[(ids[fr], ids[to])]].sum()) * 3600.0 / covered
        sites.append((fr, to, hour, m, float(c)))
    return sites


def _geh(m, c):
    m, c = np.asarray(m, dtype=np.float64), np.asarray(c, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m + c > 0, np.sqrt(2.0 * (m - c) ** 2 / np.where(m + c > 0, m + c, 1.0)), 0.0)


def link_count_fit(states, city, t0_s, counts, dt_s=1.0) -> dict:
    """GEH of the twin's hourly link outflows up to ``t0_s`` (the snapshot's traffic series)
    against observed ``counts`` (:func:`read_link_counts`): per site
    ``GEH = sqrt(2 (M - C)^2 / (M + C))`` (M modelled, C counted, vehicles per hour); a fit
    is usually called good where GEH < 5 at 85 % of sites. Hours not ended by ``t0_s`` are
    left out; ``dt_s``: the traffic's tick (:func:`count_sites`)."""
    return _geh_report(count_sites(states, city, t0_s, counts, dt_s))


def _geh_report(sites) -> dict:
    """:func:`link_count_fit`'s report of :func:`count_sites`' rows."""
    g = _geh([x[3] for x in sites], [x[4] for x in sites])
    worst = sorted(zip(sites, g.tolist()), key=lambda x: -x[1])[:3]
    return {"sites": len(sites), "geh_mean": float(g.mean()) if len(g) else math.nan,
            "geh_under_5_share": float((g < 5).mean()) if len(g) else math.nan,
            "worst": [[fr, to, hour, round(m, 1), c, round(geh, 2)] for (fr, to, hour, m, c), geh in worst]}


#: Relative error of a link count as a measure of the demand (counting and the twin's routes;
#: an assumption): a count's error variance is ``C + (COUNT_REL_SD C)^2`` (Poisson plus relative).
COUNT_REL_SD = 0.1


def fit_demand(sites, factors) -> tuple:
    """Assimilate link counts into the members' demand factors: ``(factors, fit)``.

    The observed quantity of a member with demand factor ``f`` is ``f M`` at each site-hour
    (``M`` the twin's count so far: the past demand scaled, a linear observation operator; a
    congested link's count grows less than its demand, so congested sites pull ``f`` low). The
    ensemble adjustment Kalman filter (:func:`twin.assimilate.eakf_update`) updates the factors
    with each count ``C`` of error variance ``max(1, C + (0.1 C)^2)`` (:data:`COUNT_REL_SD`);
    with this linear operator the posterior mean and variance are the exact linear-Gaussian ones
    of the prior ensemble's moments. Sites where the twin counted nothing are left out.
    ``fit``: the sites used, prior and posterior P5/P50/P95, and the GEH with the posterior
    median's demand."""
    from twin.assimilate import eakf_update

    f0 = np.asarray(factors, dtype=np.float64)
    use = [x for x in sites if x[3] > 0]
    if len(f0) < 2 or not use:
        return f0, None
    m = np.array([x[3] for x in use])
    c = np.array([x[4] for x in use])
    r = np.maximum(1.0, c + (COUNT_REL_SD * c) ** 2)
    post = np.maximum(eakf_update(f0, c, r, obs_operator=m[:, None]), 0.0)
    q = lambda a: [float(v) for v in np.percentile(a, [5, 50, 95])]      # noqa: E731
    p = q(post)
    return post, {"sites": len(use), "left_out": len(sites) - len(use), "prior": q(f0), "posterior": p,
                  "geh_mean_before": float(_geh(m, c).mean()), "geh_mean_after": float(_geh(p[1] * m, c).mean()),
                  "method": "ensemble adjustment Kalman filter, counts = factor x the twin's counts so far"}


def observed_call_times(states, t0_s) -> np.ndarray:
    """Times (s) of the calls in a snapshot's EMS state (taken at ``t0_s``) that came from the
    scenario's own call rates (not crashes, floods or transfers) and had arrived by then."""
    ems = states.get("ems") or {}
    if "calls_time_s" not in ems:
        return np.empty(0)
    t = np.asarray(ems["calls_time_s"], dtype=np.float64)[:int(ems.get("first_calls", 0))]
    return t[t < float(t0_s)]


def read_call_log(path) -> np.ndarray:
    """Call times (s after the run's midnight) from a CSV call log with a ``time`` column
    (``HH:MM`` or ``HH:MM:SS``) or a ``time_s`` column (seconds). One row per call; list the
    calls that arise from the population's rates (leave out crash and flood-casualty calls)."""
    import csv

    from twin.units import parse_clock_s

    rows, out = [], []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ScenarioError(f"call log {str(path)!r}: cannot read ({exc})") from None
    for i, r in enumerate(rows, start=2):
        raw = r.get("time_s") if r.get("time_s") not in (None, "") else r.get("time")
        if raw in (None, ""):
            raise ScenarioError(f"call log {str(path)!r} line {i}: no time; expected a 'time' (HH:MM) or 'time_s' column")
        try:
            t = float(raw) if r.get("time_s") not in (None, "") else parse_clock_s(str(raw).strip())
        except ValueError:
            raise ScenarioError(f"call log {str(path)!r} line {i}: time {raw!r}; expected HH:MM[:SS] or seconds") from None
        if not (math.isfinite(t) and t >= 0):
            raise ScenarioError(f"call log {str(path)!r} line {i}: time {raw!r}; expected a time >= 0")
        out.append(t)
    return np.sort(np.asarray(out, dtype=np.float64))


def fit_call_rate(spec, times_s, from_s, to_s, sigma, seed, n, particles=4000) -> tuple:
    """Assimilate the calls observed in ``[from_s, to_s)`` into the call-rate factor: ``(factors,
    fit)``, ``n`` factors drawn from the posterior and a summary.

    Importance resampling (a particle filter's step): ``particles`` factors ``f`` from the prior
    (lognormal, median 1, log-sd ``sigma``) are weighted by the Poisson likelihood of the count
    observed, ``N ~ Poisson(f * E)`` with ``E`` the scenario's expected calls in the window
    (:func:`twin.agents.ems_forecast.expected_calls`), and ``n`` are drawn by systematic
    resampling. ``fit``: observed, expected, prior and posterior P5/P50/P95 of the factor, and
    the effective sample size of the weights."""
    from twin.agents.ems_forecast import expected_calls
    from twin.assimilate import effective_size, normalised_weights, poisson_log_likelihood, systematic_resample

    t = np.asarray(times_s, dtype=np.float64)
    obs = int(((t >= from_s) & (t < to_s)).sum())
    lam = float(expected_calls(spec, from_s, to_s).sum())
    if not lam > 0:
        raise ScenarioError(f"call-rate fit: the scenario expects no calls from {_hm(from_s)} to {_hm(to_s)} "
                            f"({obs} observed); run the forecast without assimilation (--no-assimilation)")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0x0CA11,)))
    logf = rng.normal(0.0, sigma, int(particles))
    w = normalised_weights(poisson_log_likelihood(np.exp(logf) * lam, obs))
    factors = np.exp(logf[rng.permutation(systematic_resample(w, rng, n))])
    order = np.argsort(logf)
    cum = np.cumsum(w[order])
    post = [float(np.exp(logf[order][min(np.searchsorted(cum, q), len(cum) - 1)])) for q in (0.05, 0.5, 0.95)]
    prior = [float(np.exp(sigma * z)) for z in (-1.6448536269514722, 0.0, 1.6448536269514722)]
    return factors, {"from_s": float(from_s), "to_s": float(to_s), "observed": obs, "expected": lam,
                     "prior": prior, "posterior": post, "ess": effective_size(w), "particles": int(particles),
                     "method": "importance resampling, Poisson likelihood"}


def forecast(snapshot, *, scenario=None, overrides=None, members=40, horizons_s=DEFAULT_HORIZONS_S, seed=0,
             perturbation=None, risk_thresholds=RISK_THRESHOLDS, assimilate=True, observed_calls=None,
             control=True, hazard_ensemble=None, observed_counts=None, dask=False, workers=None,
             progress=None) -> ForecastResult:
    """Run ``members`` members from ``snapshot`` (``run.h5@06:00`` or a ``.partial``) for
    ``horizons_s`` (seconds after the snapshot) and summarise them (:class:`ForecastResult`).

    ``snapshot`` may also be an observed state (``state.json``, :mod:`twin.observed`: units'
    status, beds, open calls, link speeds): the twin's state is made to agree with it first
    (the report is in the result). ``scenario`` (default: the snapshot's) and ``overrides``
    apply to every member (a newer hazard forecast, another policy); ``seed`` seeds the members' dice and factors.
    ``assimilate``: the members' call-rate factors are drawn from their posterior given the
    calls observed from the run's start to the snapshot (:func:`fit_call_rate`): the
    snapshot's own calls, or ``observed_calls`` (call times in s, or a CSV call log,
    :func:`read_call_log`). ``control``: member 0 is the control (the uninterrupted run);
    without it every member is perturbed (for verification against a truth whose snapshot
    this is). ``hazard_ensemble`` (a TOML file, :func:`read_hazard_ensemble`, or lists of
    overrides): the hazard forecast's members, taken in turn by the perturbed members instead
    of the flood-depth factors. ``observed_counts`` (a CSV, :func:`read_link_counts`): hourly
    link counts whose fit to the twin's traffic so far is reported (GEH, :func:`link_count_fit`)
    and, with ``assimilate``, assimilated into the members' demand factors (:func:`fit_demand`).
    ``progress(done, total)`` after each member."""
    if isinstance(members, bool) or not isinstance(members, (int, np.integer)) or members < 1:
        raise ScenarioError(f"forecast: {members!r} members; expected a whole number >= 1")
    hs = [float(h) for h in horizons_s]
    if not hs or any(not h > 0 for h in hs) or hs != sorted(hs):
        raise ScenarioError(f"forecast: horizons {', '.join(f'{h / 3600:g}h' for h in hs) or 'none'}; expected ascending "
                            f"durations > 0 (e.g. 3h,6h,24h)")
    th = tuple(float(x) for x in risk_thresholds)
    if len(th) != len(RISK_CLASSES) - 1 or list(th) != sorted(th) or not all(0 < x < 1 for x in th):
        raise ScenarioError(f"forecast: risk thresholds {list(risk_thresholds)}; expected {len(RISK_CLASSES) - 1} "
                            f"ascending probabilities between 0 and 1")
    pert = perturbation if perturbation is not None else Perturbation()
    tmp, observed = None, None
    if str(snapshot).lower().endswith(".json"):          # an observed state: made into a checkpoint first
        tmp = tempfile.mkdtemp(prefix="twin-forecast-")
        snapshot, observed = _observed_checkpoint(snapshot, scenario, overrides, tmp)
    try:
        counts = read_link_counts(observed_counts) if observed_counts is not None else None
        return _forecast(snapshot, scenario, overrides, members, hs, seed, pert, th, assimilate, observed_calls,
                         control, hazard_ensemble, dask, workers, progress, observed, counts)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _observed_checkpoint(path, scenario, overrides, folder):
    """A checkpoint file in ``folder`` of the twin's state made to agree with the observed state
    at ``path`` (:func:`twin.observed.load_observed`), and the load's report (units moved,
    hospitals changed, calls added, the link-speed fit)."""
    from pathlib import Path

    from twin.checkpoint import write_checkpoint
    from twin.observed import load_observed

    sc, seed, t, states, report = load_observed(path, scenario, overrides=overrides)
    meta = {"scenario": sc.resolved_text, "scenario_name": sc.name, "seed": int(seed), "out": str(path),
            "flows": [f.name for f in sc.flows], "streams": list(sc.stream_names),
            "until_s": float(sc.run_group.until_s), "checkpoint_every_s": 0.0, "snapshot_at_s": []}
    return str(write_checkpoint(Path(folder) / "observed.partial", meta=meta, time_s=t, states=states)), report


def _forecast(snapshot, scenario, overrides, members, hs, seed, pert, th, assimilate, observed_calls, control,
              hazard_ensemble, dask, workers, progress, observed, counts=None):
    from twin.checkpoint import read_checkpoint
    from twin.ensemble import map_runs
    from twin.runner import load_scenario

    meta, t0, states = read_checkpoint(snapshot)
    text = meta["scenario"] if scenario is None else scenario
    sc = load_scenario(text, overrides=list(overrides or []))
    if "ems" not in [f.name for f in sc.flows]:
        raise ScenarioError("forecast: the scenario has no EMS (stations and hospitals); the forecast's products "
                            "are the EMS's for now")
    end = sc.run_group.until_s
    if not end - t0 > 0:
        raise ScenarioError(f"forecast: the snapshot is at {_hm(t0)}, at or after the scenario's end {_hm(end)}; "
                            f"there is nothing to forecast")
    cut = [h for h in hs if t0 + h > end]
    hs = sorted({min(h, end - t0) for h in hs})
    rates, fit = None, None
    n_perturbed = int(members) - (1 if control else 0)
    if observed_calls is not None and not (assimilate and t0 > 0):
        raise ScenarioError("forecast: a call log to assimilate needs a snapshot after the start and assimilation on")
    if assimilate and n_perturbed > 0 and t0 > 0:
        if observed_calls is None:
            times = observed_call_times(states, t0)
        elif isinstance(observed_calls, (str, bytes)) or hasattr(observed_calls, "__fspath__"):
            times = read_call_log(observed_calls)
        else:
            times = np.asarray(observed_calls, dtype=np.float64)
        ems_spec = _ems_spec(sc, int(meta["seed"]))
        rates, fit = fit_call_rate(ems_spec, times, 0.0, t0, pert.call_rate_sigma, seed, n_perturbed)
    dt = float(getattr(sc.groups.get("traffic"), "dt_s", 1.0))
    sites = count_sites(states, sc.city, t0, counts, dt) if counts is not None else None
    count_fit = _geh_report(sites) if sites is not None else None
    hz = None
    if hazard_ensemble is not None:
        hz = (read_hazard_ensemble(hazard_ensemble, sc.resolved_text)
              if isinstance(hazard_ensemble, (str, bytes)) or hasattr(hazard_ensemble, "__fspath__")
              else [list(m) for m in hazard_ensemble])
    plan = member_plan(sc, int(members), seed, pert, control=control, call_rates=rates, hazard_members=hz)
    demand_fit = None
    if sites is not None and assimilate:
        moved = [p for p in plan if not p["control"]]
        post, demand_fit = fit_demand(sites, [p["demand"] for p in moved])
        for p, f in zip(moved, post):
            p["demand"] = float(f)
    text = sc.resolved_text
    keys = ("call_rate", "demand", "reroute_logit")
    tasks = [(str(snapshot), text, list(overrides or []) + p["overrides"], p["seed"], p["member"],
              {k: p[k] for k in keys}, hs, not p["control"]) for p in plan]
    done = [0]

    def on_result(i, row):
        done[0] += 1
        if progress is not None:
            progress(done[0], len(tasks))
    rows = map_runs(tasks, dask, on_result=on_result, workers=workers, fn=run_member)
    from twin.agents.ems_forecast import KPIS

    return ForecastResult(t0_s=t0, horizons_s=hs, kpi_names=list(KPIS),
                          kpis=np.array([r["kpis"] for r in rows], dtype=np.float64),
                          zones=rows[0]["zones"], p1_late=np.array([r["late"] for r in rows], dtype=bool),
                          members=[{k: p[k] for k in ("member", *keys, "overrides", "control")} for p in plan],
                          cut=cut, risk_thresholds=th, zone_map=rows[0]["map"],
                          district_calls=np.array([r["calls"] for r in rows], dtype=np.int64), fit=fit,
                          harms=_harm_arrays(rows), city=sc.city, observed=observed, count_fit=count_fit,
                          demand_fit=demand_fit)


def _harm_arrays(rows) -> dict:
    """``{harm: (members, horizons, districts) bool}``: a harm a member's flows did not report
    struck nowhere in it."""
    names = list(dict.fromkeys(k for r in rows for k in r["harms"]))
    shape = np.shape(rows[0]["late"])
    return {k: np.array([r["harms"].get(k, np.zeros(shape, dtype=bool)) for r in rows], dtype=bool) for k in names}


def _ems_spec(scenario, seed):
    """The EMS spec of ``scenario`` as a run with ``seed`` plans it (rates per zone, profile)."""
    return scenario.replanned(seed).plans["ems"].spec
