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
from dataclasses import dataclass
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from twin.errors import ResultsError, ScenarioError
from twin.flows import Simulation, stream_names
from twin.scenario import (Scenario, apply_overrides, builtin_scenarios, load_scenario, scenario_fields,
                           scenario_tables)
from twin.scenarios import BUILTIN_FLOWS
from twin.spec import dump_toml, input_files

__all__ = ["run", "resume", "from_snapshot", "load_scenario", "Scenario", "RunResult", "builtin_scenarios", "scenario_fields",
           "scenario_tables", "apply_overrides", "dump_toml", "write_run", "format_kpis", "RUN_STREAMS"]

logger = logging.getLogger(__name__)

#: Stream names of a scenario with the built-in flows, in registry order.
RUN_STREAMS = stream_names(BUILTIN_FLOWS)


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
        if any(name in f.result_names for f in self.__dict__["scenario"].all_flows):
            return None                       # a declared result of a flow that did not run
        raise AttributeError(f"RunResult has no attribute {name!r}; flows' results: "
                             f"{sorted(n for f in self.__dict__['scenario'].all_flows for n in f.result_names)}")

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
        flows=None, checkpoint_every_s=None, snapshot_at_s=()) -> RunResult:
    """Run a scenario and optionally write its results file.

    ``spec_or_path``, ``overrides`` and ``flows`` are what :func:`load_scenario` takes (or a
    loaded :class:`Scenario`); ``seed`` defaults to ``[run] seed``; ``out`` is the HDF5
    results file (:func:`write_run`; an existing one is an error unless ``overwrite``, and
    its folder must exist, both checked before simulating); ``progress(done_s, total_s)``
    is called after each simulated hour. With ``checkpoint_every_s`` (needs ``out``), the run
    keeps its latest checkpoint in ``<out>.partial`` (:mod:`twin.checkpoint`) until the results
    file is written; :func:`resume` continues from it. ``snapshot_at_s`` (needs ``out``) keeps the
    state at those times in the results file's ``/checkpoints`` (``from_snapshot("run.h5@08:00")``).

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
        from twin.results import check_out_path

        check_out_path(out, overwrite=overwrite)
    t0 = time.perf_counter()
    scenario = scenario.replanned(seed)
    rg = scenario.run_group
    sim = Simulation(scenario, seed=seed, until_s=rg.until_s, drain=rg.drain)
    snapshot_at_s = tuple(float(t) for t in snapshot_at_s)
    on_checkpoint = None
    if checkpoint_every_s is not None or snapshot_at_s:
        if out is None:
            raise ScenarioError("checkpoints and snapshots need a results file: give --out (the checkpoint is "
                                "<out>.partial; snapshots go into <out>)")
        if checkpoint_every_s is not None and not checkpoint_every_s > 0:
            raise ScenarioError(f"--checkpoint-every = {checkpoint_every_s!r} s; expected a duration > 0")
        Path(str(out) + ".snapshots").unlink(missing_ok=True)
        on_checkpoint = _checkpoint_writer(scenario, seed, out, checkpoint_every_s, snapshot_at_s)
    results = sim.run(progress=progress, checkpoint_every_s=checkpoint_every_s, on_checkpoint=on_checkpoint,
                      snapshot_at_s=snapshot_at_s)
    return _finish(scenario, seed, results, t0, out, overwrite, checkpointed=on_checkpoint is not None)


def _checkpoint_writer(scenario, seed, out, every_s, snapshot_at_s=()):
    from twin.checkpoint import checkpoint_writer

    meta = {"scenario": scenario.resolved_text, "scenario_name": scenario.name, "seed": int(seed),
            "out": str(Path(out).resolve()), "flows": [f.name for f in scenario.flows],
            "streams": list(scenario.stream_names), "until_s": float(scenario.run_group.until_s),
            "checkpoint_every_s": float(every_s or 0.0), "snapshot_at_s": list(snapshot_at_s)}
    return checkpoint_writer(out, meta, every_s, snapshot_at_s, lambda t: _fault("checkpoint", t))


def _fault(where, time_s=None):
    """Fault injection for the crash tests: ``TWIN_FAULT_KILL=checkpoint:<time_s>`` kills this
    process with SIGKILL right after that checkpoint, ``TWIN_FAULT_KILL=writing`` while the
    results file is half written (as ``kill -9`` would; nothing is cleaned up)."""
    spec = os.environ.get("TWIN_FAULT_KILL")
    if not spec:
        return
    kind, _, at = spec.partition(":")
    if kind == where and (where != "checkpoint" or abs(float(at) - float(time_s)) < 1e-6):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def resume(partial, *, progress=None, overwrite=False) -> RunResult:
    """Continue a run from the checkpoint in ``partial`` (``<out>.partial`` of a run with
    ``checkpoint_every_s``) to its end, writing the results file it would have written: the
    same results as the uninterrupted run (same seed, same scenario), checkpointing as it goes."""
    from twin.checkpoint import read_checkpoint

    meta, time_s, states = read_checkpoint(partial)
    scenario = load_scenario(meta["scenario"])
    if list(scenario.stream_names) != list(meta["streams"]) or [f.name for f in scenario.flows] != meta["flows"]:
        raise ScenarioError(f"--resume {str(partial)!r}: the checkpoint's flows and streams ({meta['flows']}) are "
                            f"not those this twin builds for its scenario ({[f.name for f in scenario.flows]})")
    seed, out = int(meta["seed"]), Path(meta["out"])
    t0 = time.perf_counter()
    scenario = scenario.replanned(seed)
    rg = scenario.run_group
    every = float(meta.get("checkpoint_every_s", 0.0)) or None
    at = tuple(meta.get("snapshot_at_s", ()))
    sim = Simulation(scenario, seed=seed, until_s=rg.until_s, drain=rg.drain, start_s=time_s)
    results = sim.run(progress=progress, state=states, checkpoint_every_s=every, snapshot_at_s=at,
                      on_checkpoint=_checkpoint_writer(scenario, seed, out, every, at) if every or at else None)
    return _finish(scenario, seed, results, t0, out, True, checkpointed=True)


def from_snapshot(snapshot, *, scenario=None, overrides=None, out=None, overwrite=False, progress=None) -> RunResult:
    """Run from a saved state on: a checkpoint ``snapshot`` (``run.h5@08:00``, a ``.partial`` file,
    or an observed state ``.json``: :mod:`twin.observed`) with ``scenario`` (default: its own) and
    ``overrides`` from that time on, the seam of what-ifs from now. With the checkpoint's scenario
    the run equals the uninterrupted one; a changed scenario (another policy, more units) changes
    only what happens after the snapshot's time. The flows must be the checkpoint's."""
    from twin.checkpoint import read_checkpoint

    t0 = time.perf_counter()
    if str(snapshot).lower().endswith(".json"):           # an observed state (twin.observed)
        from twin.observed import load_observed

        sc, seed, time_s, states, _ = load_observed(snapshot, scenario, overrides=overrides)
        return _finish(sc, seed, Simulation(sc, seed=seed, until_s=sc.run_group.until_s, drain=sc.run_group.drain,
                                            start_s=time_s).run(progress=progress, state=states), t0, out, overwrite)
    meta, time_s, states = read_checkpoint(snapshot)
    sc = load_scenario(meta["scenario"] if scenario is None else scenario, overrides=overrides)
    if [f.name for f in sc.flows] != meta["flows"]:
        raise ScenarioError(f"from_snapshot: the scenario's flows {[f.name for f in sc.flows]} are not the "
                            f"snapshot's {meta['flows']}")
    if not time_s < sc.run_group.until_s:
        raise ScenarioError(f"from_snapshot: the snapshot is at {time_s:.0f} s, not before the scenario's until_s "
                            f"{sc.run_group.until_s:.0f} s")
    seed = int(meta["seed"])
    sc = sc.replanned(seed)
    rg = sc.run_group
    results = Simulation(sc, seed=seed, until_s=rg.until_s, drain=rg.drain, start_s=time_s).run(
        progress=progress, state=states)
    return _finish(sc, seed, results, t0, out, overwrite)


def _finish(scenario, seed, results, t0, out, overwrite, *, checkpointed=False):
    kpis = {}
    for r in results.values():
        kpis.update(r.kpis)
    ems = results.get("ems")
    if ems is not None:                      # the EMS KPIs first, as they always were
        kpis = {**ems.kpis, **kpis}
    result = RunResult(scenario=scenario, seed=seed, kpis=kpis, flows=results, path=None,
                       wall_s=time.perf_counter() - t0)
    if out is not None:
        out = Path(out)
        if checkpointed:
            # the checkpoint stays in <out>.partial until the results file is complete
            from twin.checkpoint import copy_snapshots

            tmp = Path(str(out) + ".final")
            write_run(tmp, result, overwrite=True, _during=lambda w: (_fault("writing"), copy_snapshots(
                str(out) + ".snapshots", w._file)))
            if out.exists() and not overwrite:
                raise ResultsError(f"results file {str(out)!r} appeared while running; results kept in {str(tmp)!r}")
            os.replace(tmp, out)
            Path(str(out) + ".partial").unlink(missing_ok=True)
            Path(str(out) + ".snapshots").unlink(missing_ok=True)
        else:
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


def write_run(path, result: RunResult, *, overwrite=False, _during=None) -> Path:
    """Write a run to one HDF5 results file (``<path>.partial``, renamed on a clean close).

    ``/meta`` holds the resolved scenario TOML (``scenario``; file names made absolute), the text
    as given (``scenario_original``), the overrides, seed, stream names, city, horizon, package
    versions, the input files read (``inputs``: each path setting's absolute path and SHA-256)
    and each flow's entries; ``/network`` the city (:func:`twin.graph.write_network`);
    then each flow's section, in flow order.
    """
    from twin.graph import write_network
    from twin.results import ResultsWriter

    sc = result.scenario
    meta = {"command": "run", "scenario_name": sc.name, "scenario_source": sc.source, "scenario": sc.resolved_text,
            "scenario_original": sc.text, "overrides": list(sc.overrides), "seed": int(result.seed),
            "streams": list(sc.stream_names), "city": sc.city.name, "until_s": float(sc.run_group.until_s),
            "flows": [f.name for f in sc.flows], "versions": _versions(), "inputs": input_files(sc.groups)}
    for r in result.flows.values():
        meta.update(r.meta)
    with ResultsWriter(path, meta=meta, overwrite=overwrite) as writer:
        write_network(writer, sc.city)
        if _during is not None:
            _during(writer)
        for r in result.flows.values():
            if r.write is not None:
                r.write(writer)
    logger.info("wrote %s", path)
    return Path(path)
