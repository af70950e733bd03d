"""Simulation-optimisation of a scenario's resources: exact models propose, the simulation decides.

A study (:func:`optimise`) takes a scenario and one decision — ``stations``, ``fleet``,
``beds`` or ``stock`` (:mod:`twin.optimise_plans` says how each is modelled) — and asks whether
the optimum on a static matrix is still best once traffic, queues, travel to hospitals and the
busy fleet are simulated:

1. The scenario's current plan runs ``replications`` times on the replication seeds
   (:func:`twin.streams.replication_seeds`). These runs give what the models need: the busy
   fraction ``q`` (MEXCLP) is the mean unit utilisation, the hospitals' arrival rates (beds)
   and, for stock, the demand scenarios (twice as many runs: the first half to fit, the
   second half to evaluate out of sample).
2. The model's optimum and its best neighbours under the model (one site swapped, one vehicle
   or bed moved) are proposed; for stock, the SAA optimum, the per-site newsvendor and the
   mean-value plan.
3. Each proposed plan runs on the *same* seeds (common random numbers): every plan meets the
   same calls and dice, so paired differences isolate the plan. (Stock does not change the
   runs: each plan's cost is computed on the evaluation runs' demand.)
4. Ranking and selection: the plan with the best mean of the ranking KPI is selected, and
   every other plan is compared with it by the paired difference over the replications (the
   replications where the KPI is defined for every plan), with a two-sided Student t interval
   at family confidence ``confidence``, Bonferroni-adjusted over the ``K - 1`` comparisons. A
   plan whose interval excludes 0 is *worse*; one whose interval contains 0 is *tied* with
   the best at this number of replications (more would be needed to tell them apart). This
   is a simple, conservative screen in the spirit of multiple comparisons with the best (Hsu
   1984), not Hsu's procedure: because the best is picked from the same data, the intervals
   are not exact joint intervals, and a "worse" verdict is the one to rely on.

Resumable: with ``store``, every replication's KPIs are appended to a JSON-lines file as it
ends (one line per (plan, replication), flushed and fsynced; the first line identifies the
study). Run the same study again with the same store and it continues where it stopped; a
torn last line (a kill mid-write) is dropped. Each record line is a JSON object ``{plan,
describe, replication, seed, kpis: {...}}`` (NaN written as ``NaN``); :attr:`StudyResult.runs`
is the same as a flat table.
"""

from __future__ import annotations

import dataclasses

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.errors import OptimisationError
from twin.optimise_plans import (COSTS, DECISIONS, MODELS, POOLS, Plan, StockItem, congested_link_costs,
                                 current_plan, demand_from_run, plan_scenario_data, pool_hospitals, propose_plans,
                                 stock_demand)
from twin.streams import replication_seeds

__all__ = ["DECISIONS", "MODELS", "COSTS", "POOLS", "Plan", "StockItem", "StudyResult", "optimise", "rank_plans",
           "default_kpi"]

logger = logging.getLogger(__name__)

STORE_VERSION = 1


@dataclass(eq=False)
class StudyResult:
    """What a study found.

    Attributes
    ----------
    decide : str
    plans : list of Plan
        The current plan first, then the proposals.
    runs : pandas.DataFrame
        One row per (plan, replication): ``plan``, ``replication``, ``seed`` and every KPI
        (for stock: ``stock_cost`` and ``stock_shortage_units`` on the evaluation runs).
    ranking : pandas.DataFrame
        Per plan (best first): ``mean``, ``half_width``, ``diff`` (plan − best),
        ``diff_half_width``, ``verdict`` (``best``, ``tied`` or ``worse``), ``model_objective``,
        ``note`` and ``plan_detail`` (:meth:`Plan.describe`).
    chosen : Plan
    chosen_toml : str
        The scenario with the chosen plan, as TOML (stock: a ``[[stock]]`` list of
        ``hospital, node, item, units``, which no flow reads yet).
    kpi : str
    maximise : bool
    confidence : float
    model_info : dict
        What the model assumed (``q``, ``standard_s``, sites, solve time, MILP gap ...).
    """

    decide: str
    plans: list
    runs: object
    ranking: object
    chosen: Plan
    chosen_toml: str
    kpi: str
    maximise: bool
    confidence: float
    model_info: dict


# ---- the store ---------------------------------------------------------------------------------

class _Store:
    """Append-only JSON lines: a header identifying the study, then one line per (plan, replication)."""

    def __init__(self, path, key, header):
        self.path = None if path is None else Path(path)
        self.done = {}
        if self.path is None:
            return
        if self.path.is_dir() or not self.path.parent.is_dir():
            raise OptimisationError(f"study store {self.path}: expected a file in an existing folder")
        if self.path.exists() and self.path.stat().st_size > 0:
            self._read(key)
        else:                                          # new, or emptied by a kill before its header landed
            self.path.write_bytes(b"")
            self._append(dict(header, study=key, version=STORE_VERSION))

    def _read(self, key):
        raw = self.path.read_bytes()
        good = raw.rfind(b"\n") + 1                    # everything after the last newline is a torn write
        if good < len(raw):
            logger.warning("%s: dropping a torn last line (a run killed while writing)", self.path)
            with open(self.path, "r+b") as fh:
                fh.truncate(good)
        rows = []
        for n, ln in enumerate(raw[:good].split(b"\n"), start=1):
            if not ln.strip():
                continue
            try:
                rows.append(json.loads(ln))
            except json.JSONDecodeError:
                rows.append(None)
            ok = isinstance(rows[-1], dict) and (n == 1 or {"plan", "replication", "describe", "kpis"} <= rows[-1].keys())
            if not ok:
                raise OptimisationError(f"{self.path}, line {n}: not a study record; the file is not a study store, "
                                        f"or was edited")
        if not rows or rows[0].get("study") != key or rows[0].get("version") != STORE_VERSION:
            raise OptimisationError(f"{self.path} holds another study (a different scenario, decision, model, "
                                    f"options, replications or seed); give another --study path or remove it")
        for r in rows[1:]:
            self.done[(r["plan"], r["replication"])] = r

    def _append(self, record):
        if self.path is None:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, allow_nan=True) + "\n")     # KPIs keep their run order
            fh.flush()
            os.fsync(fh.fileno())

    def add(self, plan, describe, replication, seed, kpis):
        rec = {"plan": plan, "describe": describe, "replication": replication, "seed": seed, "kpis": kpis}
        self.done[(plan, replication)] = rec
        self._append(rec)


def _file_digest(path):
    """``path`` and the SHA-256 of its bytes: a study on another file is another study."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise OptimisationError(f"demand from {path}: cannot read it ({exc.strerror})") from None
    return f"{Path(path).resolve()} sha256:{hashlib.sha256(data).hexdigest()}"


def _study_key(scenario, decide, model, options):
    text = json.dumps({"scenario": scenario.resolved_text, "decide": decide, "model": model, **options},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _evaluate(plans, datas, seeds, store, dask, progress, total):
    """Every (plan, replication) not in the store yet, stored as it ends."""
    from twin.ensemble import map_runs
    from twin.spec import dump_toml

    tasks, which = [], []
    for plan, data in zip(plans, datas):
        text = dump_toml(data)
        for r, s in enumerate(seeds):
            if (plan.name, r) in store.done:
                stored = store.done[(plan.name, r)]
                if stored.get("describe") != plan.describe():
                    raise OptimisationError(f"the study store's plan '{plan.name}' was {stored.get('describe')}, "
                                            f"now {plan.describe()}; the study changed: use another --study path")
                continue
            tasks.append((text, (), s))
            which.append((plan, r, s))

    def on_result(i, row):
        plan, r, s = which[i]
        store.add(plan.name, plan.describe(), r, s, row)
        if progress is not None:
            progress(len(store.done), total)

    map_runs(tasks, dask, on_result=on_result)


def _runs_frame(store, plans, seeds):
    import pandas as pd

    rows = []
    for plan in plans:
        for r, s in enumerate(seeds):
            rec = store.done[(plan.name, r)]
            rows.append({"plan": plan.name, "replication": r, "seed": s, **rec["kpis"]})
    return pd.DataFrame(rows)


# ---- ranking and selection -----------------------------------------------------------------------

def rank_plans(runs, kpi, *, maximise=False, confidence=0.95):
    """Multiple comparisons with the best on common random numbers (see the module docstring).

    ``runs`` has one row per (plan, replication) with column ``kpi``; the plans are ranked by
    their mean, and each is compared with the best by the paired difference over the
    replications (Bonferroni over ``K - 1`` comparisons). Only replications where the KPI is
    defined (not NaN) for every plan count, so means and differences stay paired; ``n`` says
    how many. Returns a DataFrame indexed by plan.
    """
    import pandas as pd
    from scipy import stats

    if kpi not in runs.columns:
        known = sorted(c for c in runs.columns if c not in ("plan", "replication", "seed"))
        raise OptimisationError(f"rank KPI {kpi!r} is not a KPI of these runs; known: {', '.join(known)}")
    wide = runs.pivot(index="replication", columns="plan", values=kpi)
    order = list(dict.fromkeys(runs["plan"]))
    wide = wide[order].dropna()                    # pairs need every plan's value: complete replications only
    r, k = len(wide), len(order)
    if r == 0:
        raise OptimisationError(f"rank KPI {kpi!r} is undefined (NaN) in every replication of some plan; "
                                f"rank by another KPI")
    means = wide.mean()
    best = means.idxmax() if maximise else means.idxmin()
    t_one = stats.t.ppf(0.5 + confidence / 2, r - 1) if r > 1 else math.nan
    t_fam = stats.t.ppf(1 - (1 - confidence) / (2 * max(k - 1, 1)), r - 1) if r > 1 else math.nan
    rows = []
    for name in order:
        col = wide[name]
        d = col - wide[best]
        half = t_one * col.std(ddof=1) / math.sqrt(r) if r > 1 else math.nan
        dhalf = t_fam * d.std(ddof=1) / math.sqrt(r) if r > 1 else math.nan
        if name == best:
            verdict = "best"
        elif r > 1 and abs(d.mean()) > dhalf:
            verdict = "worse"
        else:
            verdict = "tied"
        rows.append(dict(plan=name, mean=col.mean(), half_width=half, diff=d.mean(), diff_half_width=dhalf,
                         verdict=verdict, n=r))
    out = pd.DataFrame(rows).set_index("plan")
    return out.sort_values("mean", ascending=not maximise, kind="stable")


# ---- the study -----------------------------------------------------------------------------------

def default_kpi(decide) -> str:
    """The ranking KPI a decision uses unless told: mean response time, or the stock plan's cost."""
    return {"stock": "stock_cost", "care": "eldercare_within_walk_share_80"}.get(decide, "response_mean_s")


def _maximise_default(kpi):
    return any(w in kpi for w in ("within", "coverage", "covered", "survival"))


def _check_study(decide, model, replications, plans, costs, confidence, items):
    if decide not in DECISIONS:
        raise OptimisationError(f"decide = {decide!r}; expected one of {', '.join(DECISIONS)}")
    if model not in MODELS:
        raise OptimisationError(f"model = {model!r}; expected one of {', '.join(MODELS)}")
    if costs not in COSTS:
        raise OptimisationError(f"costs = {costs!r}; expected one of {', '.join(COSTS)}")
    for name, v, lo in (("replications", replications, 2), ("plans", plans, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise OptimisationError(f"{name} = {v!r}; expected an integer >= {lo}")
    if not 0.0 < confidence < 1.0:
        raise OptimisationError(f"confidence = {confidence!r}; expected a level in (0, 1)")
    if decide == "stock":
        if not items:
            raise OptimisationError("decide = stock: no stock items; give at least one StockItem")
        names = [it.name for it in items]
        if len(set(names)) != len(names):
            raise OptimisationError(f"stock items: names must be unique; found {names}")


def optimise(spec, decide, *, model="p-median", replications=10, seed=0, plans=4, overrides=None, sites=None,
             standard_s=None, candidates=None, keep=(), costs="free-flow", at_s=8 * 3600.0, items=(StockItem(),),
             pool="ed", demand_from=None, kpi=None, maximise=None, confidence=0.95, store=None, dask=False, progress=None,
             care_places=None, peripheral_weight=2.0) -> StudyResult:
    """Propose plans for ``decide`` with an exact model, simulate them on common random numbers,
    rank them with intervals, and return the chosen plan (see the module docstring).

    Parameters
    ----------
    spec : scenario (file, built-in name, text, dict or Scenario)
    decide : ``"stations"``, ``"fleet"``, ``"beds"``, ``"stock"`` or ``"care"`` (new elderly-care
        centres: :mod:`twin.optimise_care`)
    model : one of :data:`MODELS` (stations; fleet always uses the MEXCLP)
    replications : int
        Replications per plan, >= 2 (stock runs twice as many: half to fit, half to evaluate).
    plans : int
        The optimum and ``plans - 1`` neighbours (the current plan is always added).
    sites : int, optional
        Station sites for the p-median, p-center and MCLP (default: as many as the scenario has).
    standard_s : float, optional
        Coverage standard for the LSCP, MCLP and MEXCLP, travel seconds (default: the P1 target
        less the mean turnout).
    candidates, keep : sequences of node ids
        Candidate sites (default: every node) and existing sites that must stay open.
    costs, at_s : ``"free-flow"`` (zones weighted by the day's mean calls), or ``"congested"``:
        the simulated link times over ``[at_s, at_s + 1 h)`` (seconds from the scenario's start)
        price the travel, and the calls of the clock hour holding ``at_s`` weigh the zones.
    items : sequence of StockItem
        What the ``stock`` decision stocks.
    pool : ``"ed"``, ``"ward"`` or ``"icu"``
        The beds a ``beds`` decision splits (between the hospitals that have the pool).
    demand_from : path, optional
        A results file of a run on the same city: the siting models weigh the nodes where its
        calls arose (:func:`twin.optimise_plans.demand_from_run`) instead of the zones' rates.
    kpi, maximise : the ranking KPI (default :func:`default_kpi`) and its sense (default:
        minimise, or maximise for shares such as ``response_p1_within_target``).
    confidence : float
        Family confidence of the comparisons with the best.
    store : path, optional
        JSON-lines store; the study resumes from it.
    dask : bool or str
        Run replications on Dask (see :func:`twin.ensemble.replicate`).
    progress : callable(done, total), optional
        Called as each replication ends.
    care_places, peripheral_weight : ``care`` only: places of each new centre (default the
        existing centres' mean) and the weight of an 80+ resident outside the central district
        (default 2) in the covering model.

    Raises
    ------
    OptimisationError
        A bad option (named), or a study store that holds another study.
    InfeasibleError
        The model has no feasible plan (e.g. no site covers a zone within the standard).
    """
    from twin.runner import load_scenario
    from twin.spec import dump_toml

    _check_study(decide, model, replications, plans, costs, confidence, items)
    if pool not in POOLS:
        raise OptimisationError(f"pool = {pool!r}; expected one of {', '.join(POOLS)}")
    scenario = load_scenario(spec, overrides=overrides)
    kpi = default_kpi(decide) if kpi is None else kpi
    maximise = _maximise_default(kpi) if maximise is None else bool(maximise)
    n_base = 2 * replications if decide == "stock" else replications
    seeds = replication_seeds(seed, n_base)
    options = dict(replications=replications, seed=seed, plans=plans, sites=sites, standard_s=standard_s,
                   candidates=None if candidates is None else list(candidates), keep=list(keep), costs=costs,
                   at_s=at_s if costs == "congested" else None,
                   items=[vars(it) for it in items] if decide == "stock" else None,
                   pool=pool if decide == "beds" else None,
                   care=dict(places=care_places, peripheral_weight=peripheral_weight) if decide == "care" else None,
                   demand_from=None if demand_from is None else _file_digest(demand_from))
    used = {"fleet": "mexclp", "beds": "erlang-b", "stock": "saa", "care": "mclp"}.get(decide, model)      # the model really used
    st = _Store(store, _study_key(scenario, decide, used, options),
                {"scenario": scenario.name, "decide": decide, "model": used, **options})
    current = current_plan(scenario, decide, items, pool)
    total = n_base + (0 if decide == "stock" else replications * plans)
    _evaluate([current], [scenario.data], seeds, st, dask, progress, total)
    base = _runs_frame(st, [current], seeds)
    if decide != "stock" and kpi not in base.columns:         # say so before running the proposals
        rank_plans(base, kpi)
    if decide == "stock":
        return _stock_study(scenario, current, base, items, replications, seeds, kpi, maximise, confidence)
    q = float(np.clip(base["unit_utilisation_mean"].mean(), 0.0, 0.95)) if "unit_utilisation_mean" in base else 0.5
    rates = _pool_rates(scenario, base, pool) if decide == "beds" else None
    hour = int(at_s // 3600) if costs == "congested" else None
    link_cost = congested_link_costs(scenario, at_s, seeds[0]) if costs == "congested" and decide != "beds" else None
    demand = None if demand_from is None or decide == "beds" else demand_from_run(demand_from, scenario.city, hour)
    if decide == "care":
        from twin.optimise_care import care_plans

        proposed, info, price = care_plans(scenario, plans, sites=sites, places=care_places,
                                           peripheral_weight=peripheral_weight, candidates=candidates)
    else:
        proposed, info, price = propose_plans(scenario, decide, model=model, n_plans=plans, sites=sites,
                                              standard_s=standard_s, q=q, candidates=candidates, keep=keep,
                                              bed_rates_per_h=rates, link_cost_s=link_cost, costs=costs,
                                              hour=hour, pool=pool, demand=demand)
    same = [p.name for p in proposed if p.key() == current.key()]
    current = dataclasses.replace(current, model_objective=price(current),
                                  note=f"= {same[0]}" if same else current.note)
    proposed = [p for p in proposed if p.key() != current.key()]
    info["q_from_current_plan"] = q
    all_plans = [current] + proposed
    datas = [scenario.data] + [plan_scenario_data(scenario.data, p) for p in proposed]
    _evaluate(proposed, datas[1:], seeds, st, dask, progress, n_base + len(proposed) * replications)
    runs = _runs_frame(st, all_plans, seeds)
    ranking = _ranking(runs, all_plans, kpi, maximise, confidence)
    chosen = next(p for p in all_plans if p.name == ranking.index[0])
    return StudyResult(decide, all_plans, runs, ranking, chosen, dump_toml(datas[all_plans.index(chosen)]), kpi,
                       maximise, confidence, info)


def _ranking(runs, all_plans, kpi, maximise, confidence):
    ranking = rank_plans(runs, kpi, maximise=maximise, confidence=confidence)
    by_name = {p.name: p for p in all_plans}
    ranking["model_objective"] = [by_name[n].model_objective for n in ranking.index]
    ranking["note"] = [by_name[n].note for n in ranking.index]
    ranking["plan_detail"] = [by_name[n].describe() for n in ranking.index]
    return ranking


def _stock_study(scenario, current, base, items, replications, seeds, kpi, maximise, confidence):
    """Fit the stock plans on the first half of the base runs, evaluate every plan on the second half."""
    import pandas as pd

    from twin.optimise_plans import _stock_plans, stock_plan_costs

    names = [h["name"] for h in scenario.data.get("hospitals", [])]
    demand = stock_demand(base, names, items)
    fit, test = demand[:replications], demand[replications:]
    proposed, info, ship = _stock_plans(scenario, items, fit)
    zero = np.zeros((len(names), len(items)))
    current = Plan("current", stock=current.stock, model_objective=float(stock_plan_costs(zero, fit, items, ship).mean()),
                   note="no stock")
    all_plans = [current] + proposed
    rows = []
    for plan in all_plans:
        x = np.array([u for _, _, u in plan.stock]).reshape(len(names), len(items))
        cost = stock_plan_costs(x, test, items, ship)
        short = np.maximum(test - x[None], 0).sum(axis=(1, 2))        # before moves: what each ED lacks itself
        for r in range(replications):
            rows.append({"plan": plan.name, "replication": r, "seed": seeds[replications + r],
                         "stock_cost": float(cost[r]), "stock_units": float(x.sum()),
                         "stock_local_shortage_units": float(short[r])})
    runs = pd.DataFrame(rows)
    ranking = _ranking(runs, all_plans, kpi, maximise, confidence)
    chosen = next(p for p in all_plans if p.name == ranking.index[0])
    info["fit_seeds"], info["evaluation_seeds"] = replications, replications
    return StudyResult("stock", all_plans, runs, ranking, chosen, _stock_toml(scenario, chosen), kpi, maximise,
                       confidence, info)


def _stock_toml(scenario, plan):
    from twin.spec import dump_toml

    node = {h["name"]: h["node"] for h in scenario.data["hospitals"]}
    return dump_toml({"stock": [{"hospital": h, "node": node[h], "item": item, "units": float(u)}
                                for h, item, u in plan.stock]})


def _pool_rates(scenario, base, pool):
    """Arrivals per hour at each hospital's ``pool`` in the current plan's runs (mean over the
    replications): ED arrivals, or patients leaving the ED for the ward or ICU."""
    horizon_h = float((base["window_end_s"] - base["window_start_s"]).mean()) / 3600.0     # the KPI window
    suffix = "arrivals" if pool == "ed" else f"{pool}_requests"
    cols = [f"hospital_{n}_{suffix}" for _, n in pool_hospitals(scenario, pool)]
    missing = [c for c in cols if c not in base]
    if missing:
        raise OptimisationError(f"the runs carry no KPI {missing[0]!r}; decide = beds needs each hospital's arrivals")
    return np.array([base[c].mean() / horizon_h for c in cols])
