"""Run a scenario file: assemble its flows on one clock, run them, write one results file.

A scenario is a TOML file (``tomllib``) of tables. Two belong to the core — ``[city]`` (the
road network) and ``[run]`` (horizon, seed, drain) — and every other table to the flow that
owns it (:data:`twin.scenarios.BUILTIN_FLOWS`; ``twin run --keys`` lists every key with
its description and units):

* EMS (:mod:`twin.scenarios.ems`): ``[kpi]``, ``[calls]``, ``[[call_types]]``,
  ``[[stations]]``, ``[[hospitals]]``, ``[dispatch]``, ``[service]``;
* traffic (:mod:`twin.scenarios.traffic`): ``[traffic]``;
* population (:mod:`twin.scenarios.population`): ``[population]``;
* crashes (:mod:`twin.scenarios.crashes`): ``[crashes]``;
* incidents (:mod:`twin.scenarios.incidents`): ``[[incidents]]``.

:func:`load_scenario` validates the tables, loads the city and *plans* the active flows
(load-time checks with located errors; the EMS spec, the population); :func:`run` builds a
:class:`twin.flows.Simulation` of them on one clock with one stream registry and returns a
:class:`RunResult`; :func:`write_run` writes ``/meta``, ``/network`` and then each flow's
section. Randomness: the run seed spawns the flows' streams in flow order
(:data:`RUN_STREAMS`), so a run with and without traffic sees the same calls and per-call
dice (common random numbers), and adding a flow changes no earlier stream.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from twin.errors import ResultsError, ScenarioError, TwinError
from twin.flows import PlanContext, Simulation, flow_tables, plan_flows, stream_names
from twin.scenarios import BUILTIN_FLOWS
from twin import spec as _spec
from twin.spec import Table, dump_toml, override_list, parse_tables, resolved_data, setting, table_fields
from twin.streams import StreamRegistry

__all__ = ["run", "load_scenario", "Scenario", "RunResult", "builtin_scenarios", "scenario_fields",
           "scenario_tables", "apply_overrides", "dump_toml", "write_run", "format_kpis", "RUN_STREAMS"]

logger = logging.getLogger(__name__)

#: Stream names of a scenario with the built-in flows, in registry order.
RUN_STREAMS = stream_names(BUILTIN_FLOWS)


@dataclass(frozen=True)
class CityGroup:
    """``[city]``: the road network."""

    name: str = setting("hefei-baohe", "str", "embedded city name, network file (relative to the scenario file) "
                                              "or synthetic spec such as 'grid:6x6'")


@dataclass(frozen=True)
class RunGroup:
    """``[run]``: horizon and seed."""

    until_s: float = setting(86400.0, "float", "calls arrive on [0, until_s), seconds", minimum=0.0, strict=True)
    seed: int = setting(0, "int", "run seed (>= 0); twin run --seed overrides it", minimum=0)
    drain: bool = setting(True, "bool", "keep running after until_s until every call has ended")
    description: str = setting("", "str", "free text shown by twin run")


CORE_TABLES = (Table("city", CityGroup), Table("run", RunGroup))


def scenario_tables(flows=BUILTIN_FLOWS) -> tuple:
    """Every table a scenario with these flows may hold: the core's, then each flow's."""
    return flow_tables(CORE_TABLES, flows)


def apply_overrides(data: dict, overrides, source="scenario", flows=BUILTIN_FLOWS) -> dict:
    """Dotted ``key=value`` overrides of a scenario dict with these flows' tables (a copy;
    see :func:`twin.spec.apply_overrides`).

    Examples
    --------
    >>> apply_overrides({"run": {"seed": 1}}, ["run.seed=3", "run.until_s=3600"])["run"]
    {'seed': 3, 'until_s': 3600.0}
    """
    return _spec.apply_overrides(data, overrides, scenario_tables(flows), source)


def scenario_fields(flows=BUILTIN_FLOWS) -> dict:
    """Every scenario key, ``"table.key" -> description`` (for docs and ``twin run --keys``)."""
    return table_fields(scenario_tables(flows))


@dataclass(frozen=True, eq=False)
class Scenario:
    """A validated scenario on its city with its flows planned, ready to run.

    Attributes: ``name`` (file stem or ``"scenario"``), ``source`` (label in messages),
    ``path`` (the file, or None), ``text`` (as given), ``overrides``, ``data`` (the resolved
    scenario; :attr:`resolved_text` is its TOML), ``groups`` (table name -> validated group),
    ``city``, ``flows`` (the active flow classes, in dependency order), ``plans`` (flow name
    -> plan, made for ``seed``), ``all_flows`` (the flows it was loaded with).
    """

    name: str
    source: str
    path: Path | None
    text: str
    overrides: tuple
    data: dict
    groups: dict
    city: object = field(repr=False)
    flows: tuple = field(repr=False)
    plans: dict = field(repr=False)
    all_flows: tuple = field(default=BUILTIN_FLOWS, repr=False)
    seed: int = 0

    @property
    def resolved_text(self) -> str:
        return dump_toml(self.data)

    @property
    def run_group(self) -> RunGroup:
        return self.groups["run"]

    @property
    def traffic(self):
        """The ``[traffic]`` group, or None."""
        return self.groups.get("traffic")

    @property
    def stream_names(self) -> tuple:
        return stream_names(self.all_flows)

    # the built-in flows' plans, by their usual names
    @property
    def ems(self):
        return self.plans["ems"].spec

    @property
    def layout(self):
        return self.plans["ems"].layout

    @property
    def population(self):
        p = self.plans.get("population")
        return None if p is None else p.population

    def replanned(self, seed) -> "Scenario":
        """The same scenario planned for another run seed (plans that do not depend on it reused)."""
        if seed == self.seed:
            return self
        ctx = PlanContext(groups=dict(self.groups), city=self.city, source=self.source, path=self.path, seed=seed,
                          streams=StreamRegistry(seed, self.stream_names), previous=self.plans)
        flows, plans = plan_flows(self.all_flows, ctx)
        return dataclasses.replace(self, flows=flows, plans=plans, seed=seed, groups=ctx.groups)


def builtin_scenarios() -> list:
    """Names of the built-in scenarios (``scenarios/*.toml``), sorted."""
    root = resources.files("twin.scenarios")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def _read_source(spec):
    """(name, source label, path or None, text) of a path, a built-in name or TOML text."""
    if isinstance(spec, Path) or (isinstance(spec, str) and "\n" not in spec):
        path = Path(spec)
        if path.is_file():
            try:
                return path.stem, path.name, path, path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ScenarioError(f"cannot read scenario file {str(path)!r}: {exc}") from None
        name = path.name[:-5] if path.name.endswith(".toml") else path.name
        if str(spec) == path.name or str(spec) == name:
            res = resources.files("twin.scenarios").joinpath(f"{name}.toml")
            if res.is_file():
                return name, f"{name}.toml", None, res.read_text(encoding="utf-8")
        raise ScenarioError(f"no scenario file {str(spec)!r} and no built-in scenario of that name; built-in "
                            f"scenarios: {', '.join(builtin_scenarios())}")
    if isinstance(spec, str):
        return "scenario", "<scenario text>", None, spec
    raise TypeError(f"expected a scenario path, built-in name, TOML text or dict; got {type(spec).__name__}")


def load_scenario(spec, *, overrides=None, flows=None) -> Scenario:
    """Read, override and validate a scenario, load its city and plan its flows.

    Parameters
    ----------
    spec : str, pathlib.Path, dict or Scenario
        A TOML file, a built-in scenario name (``"hefei_day"``, see
        :func:`builtin_scenarios`; used when no such file exists), TOML text, a parsed dict,
        or a :class:`Scenario` (re-resolved with ``overrides``).
    overrides : sequence of str or dict, optional
        Dotted ``key=value`` overrides (see :func:`twin.spec.apply_overrides`).
    flows : sequence of flow classes, optional
        The flows a scenario may use (default :data:`twin.scenarios.BUILTIN_FLOWS`; add your
        own after them, so no earlier stream changes).

    Raises
    ------
    ScenarioError
        Malformed TOML, unknown tables or keys, bad values, unknown node or zone ids — each
        message names the file, the table and the key, what was found and what is accepted.
    """
    from twin.loading import load_city

    if isinstance(spec, Scenario):
        name, source, path, text, raw = spec.name, spec.source, spec.path, spec.text, spec.data
        overrides = tuple(spec.overrides) + tuple(override_list(overrides))
        flows = spec.all_flows if flows is None else flows
    elif isinstance(spec, dict):
        name, source, path, text, raw = "scenario", "<scenario dict>", None, dump_toml(spec), spec
    else:
        name, source, path, text = _read_source(spec)
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    flows = tuple(BUILTIN_FLOWS if flows is None else flows)
    tables = scenario_tables(flows)
    overrides = tuple(override_list(overrides))
    data = _spec.apply_overrides(raw, overrides, tables, source) if overrides else raw
    label = source + (" (with --set overrides)" if overrides else "")
    renamed = {k: v for f in flows for k, v in f.renamed.items()}
    groups = parse_tables(data, label, tables, renamed)
    city_name = groups["city"].name
    if path is not None and (path.parent / city_name).is_file():
        city_name = str(path.parent / city_name)
    try:
        city = load_city(city_name)
    except TwinError as exc:
        raise ScenarioError(f"{label}: [city] name = {groups['city'].name!r}: {exc}") from None
    seed = groups["run"].seed
    ctx = PlanContext(groups=groups, city=city, source=label, path=path, seed=seed,
                      streams=StreamRegistry(seed, stream_names(flows)))
    active, plans = plan_flows(flows, ctx)
    return Scenario(name=name, source=source, path=path, text=text, overrides=overrides,
                    data=resolved_data(groups), groups=groups, city=city, flows=active, plans=plans,
                    all_flows=flows, seed=seed)


@dataclass(frozen=True, eq=False)
class RunResult:
    """What :func:`run` returns: ``scenario`` (planned for this seed), ``seed``, ``kpis``
    (every flow's, in flow order), ``flows`` (flow name -> :class:`twin.flows.FlowResult`),
    ``path`` (the results file, when written) and ``wall_s`` (wall-clock seconds).

    A flow's named results read as attributes: ``result.ems`` (the EMS records),
    ``result.districts``, ``result.traffic`` (the coupled traffic, or None),
    ``result.population``, ``result.crash_exposure``, ``result.unit_legs`` ...
    """

    scenario: Scenario
    seed: int
    kpis: dict
    flows: dict
    path: Path | None
    wall_s: float

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        for r in self.__dict__["flows"].values():
            if name in r.values:
                return r.values[name]
        return None

    def report_lines(self) -> list:
        """Each flow's report lines in flow-list order, a blank line between sections."""
        order = [f.name for f in self.scenario.all_flows]
        lines = []
        for name in sorted(self.flows, key=order.index):
            if self.flows[name].lines:
                lines += ([""] if lines else []) + list(self.flows[name].lines)
        return lines


def format_kpis(result: RunResult) -> str:
    """The KPI report ``twin run`` prints (every flow's lines)."""
    return "\n".join(result.report_lines()) + "\n"


def run(spec_or_path, *, seed=None, out=None, overrides=None, progress=None, overwrite=False,
        flows=None) -> RunResult:
    """Run a scenario and optionally write its results file.

    ``spec_or_path``, ``overrides`` and ``flows`` are what :func:`load_scenario` takes (or a
    loaded :class:`Scenario`); ``seed`` defaults to ``[run] seed``; ``out`` is the HDF5
    results file (:func:`write_run`; an existing one is an error unless ``overwrite``, and
    its folder must exist, both checked before simulating); ``progress(done_s, total_s)``
    is called after each simulated hour.

    Examples
    --------
    >>> res = run("hefei_day", overrides=["run.until_s=3600", "traffic.random_trips=500"])
    >>> res.kpis["n_calls"] > 0, res.traffic is not None
    (True, True)
    """
    scenario = spec_or_path
    if overrides or flows is not None or not isinstance(spec_or_path, Scenario):
        scenario = load_scenario(spec_or_path, overrides=overrides, flows=flows)
    seed = scenario.run_group.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ScenarioError(f"run seed = {seed!r}; expected an integer >= 0")
    seed = int(seed)
    if out is not None:
        out = Path(out)
        if out.exists() and not overwrite:
            raise ResultsError(f"results file {str(out)!r} already exists; pass overwrite=True (--overwrite)")
        if not out.parent.is_dir():
            raise ResultsError(f"cannot write results to {str(out)!r}: folder {str(out.parent)!r} does not exist")
    t0 = time.perf_counter()
    scenario = scenario.replanned(seed)
    rg = scenario.run_group
    results = Simulation(scenario, seed=seed, until_s=rg.until_s, drain=rg.drain).run(progress=progress)
    kpis = {}
    for r in results.values():
        kpis.update(r.kpis)
    ems = results.get("ems")
    if ems is not None:                      # the EMS KPIs first, as they always were
        kpis = {**ems.kpis, **kpis}
    result = RunResult(scenario=scenario, seed=seed, kpis=kpis, flows=results, path=None,
                       wall_s=time.perf_counter() - t0)
    if out is not None:
        write_run(out, result, overwrite=overwrite)
        result = dataclasses.replace(result, path=out)
    return result


def _versions():
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for pkg in ("numpy", "numba", "simpy", "mesa", "h5py", "pandas"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:  # pragma: no cover
            pass
    return out


def write_run(path, result: RunResult, *, overwrite=False) -> Path:
    """Write a run to one HDF5 results file (``<path>.partial``, renamed on a clean close).

    ``/meta`` holds the resolved scenario TOML (``scenario``), the text as given
    (``scenario_original``), the overrides, seed, stream names, city, horizon, package
    versions and each flow's entries; ``/network`` the city (:func:`twin.graph.write_network`);
    then each flow's section, in flow order.
    """
    from twin.graph import write_network
    from twin.results import ResultsWriter

    sc = result.scenario
    meta = {"command": "run", "scenario_name": sc.name, "scenario_source": sc.source, "scenario": sc.resolved_text,
            "scenario_original": sc.text, "overrides": list(sc.overrides), "seed": int(result.seed),
            "streams": list(sc.stream_names), "city": sc.city.name, "until_s": float(sc.run_group.until_s),
            "flows": [f.name for f in sc.flows], "versions": _versions()}
    for r in result.flows.values():
        meta.update(r.meta)
    with ResultsWriter(path, meta=meta, overwrite=overwrite) as writer:
        write_network(writer, sc.city)
        for r in result.flows.values():
            if r.write is not None:
                r.write(writer)
    logger.info("wrote %s", path)
    return Path(path)
