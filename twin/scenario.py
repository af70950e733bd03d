"""Scenarios: the core tables ``[city]`` and ``[run]``, loading, validation and planning.

:func:`load_scenario` reads a scenario (a file, a built-in name, TOML text or a dict),
applies ``--set`` overrides, validates every table (the core's and each flow's, one toolkit:
:mod:`twin.spec`), loads the city and *plans* the active flows in dependency order
(load-time checks with located errors; e.g. the EMS spec, the population). The result is a
:class:`Scenario`, which :func:`twin.runner.run` turns into a simulation. This module sits
on the runner's floor: it assembles the built-in flows (:data:`twin.scenarios.BUILTIN_FLOWS`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from twin import spec as _spec
from twin.errors import ScenarioError, TwinError
from twin.flows import PlanContext, flow_tables, plan_flows, stream_names
from twin.scenarios import BUILTIN_FLOWS
from twin.spec import Table, dump_toml, override_list, parse_tables, resolved_data, setting, table_fields
from twin.streams import StreamRegistry

__all__ = ["Scenario", "load_scenario", "builtin_scenarios", "scenario_tables", "scenario_fields",
           "apply_overrides", "CityGroup", "RunGroup", "CORE_TABLES"]


#: The longest run: 10 years of simulated time (a bound, so 1e12 is an error, not a 3 TiB array).
MAX_UNTIL_S = 10 * 365.25 * 86400.0


@dataclass(frozen=True)
class CityGroup:
    """``[city]``: the road network."""

    name: str = setting("hefei-baohe", "str", "embedded city name, network file (relative to the scenario file) "
                                              "or synthetic spec such as 'grid:6x6'", path=True)


@dataclass(frozen=True)
class RunGroup:
    """``[run]``: horizon and seed."""

    until_s: float = setting(86400.0, "float", "calls arrive on [0, until_s), seconds (at most 10 years)",
                             minimum=0.0, strict=True, maximum=MAX_UNTIL_S)
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
        raw = _spec.parse_toml(text, source)
    flows = tuple(BUILTIN_FLOWS if flows is None else flows)
    tables = scenario_tables(flows)
    overrides = tuple(override_list(overrides))
    data = _spec.apply_overrides(raw, overrides, tables, source) if overrides else raw
    label = source + (" (with --set overrides)" if overrides else "")
    renamed = {k: v for f in flows for k, v in f.renamed.items()}
    groups = parse_tables(data, label, tables, renamed)
    if path is not None:                   # file names mean files beside the scenario, wherever it is run
        groups = _spec.resolve_paths(groups, path.parent)
    _spec.check_input_files(groups, label)   # no pipes, devices or folders: they hang or fill memory
    try:
        city = load_city(groups["city"].name)
    except TwinError as exc:
        raise ScenarioError(f"{label}: [city] name = {groups['city'].name!r}: {exc}") from None
    seed = groups["run"].seed
    ctx = PlanContext(groups=groups, city=city, source=label, path=path, seed=seed,
                      streams=StreamRegistry(seed, stream_names(flows)))
    active, plans = plan_flows(flows, ctx)
    return Scenario(name=name, source=source, path=path, text=text, overrides=overrides,
                    data=resolved_data(groups), groups=groups, city=city, flows=active, plans=plans,
                    all_flows=flows, seed=seed)


