"""Flows on one clock: the contract a part of the city implements, and the simulation that runs them.

A *flow* (STYLE §15) owns one part of the city's dynamics — population, traffic, EMS,
crashes, incidents; later hazards or an epidemic. It declares

* ``tables``: the scenario tables it owns (:class:`twin.spec.Table`), and ``renamed``
  keys that moved into them;
* ``streams``: its random stream names, appended to the run's
  :class:`~twin.streams.StreamRegistry` in flow order;
* ``provides`` / ``needs`` / ``uses``: the ports (:mod:`twin.ports`) it offers, requires and
  may use when offered. Flows never import each other; they meet through ports;

and implements the steps

* ``active(ctx)``: whether this scenario uses it (default: one of its tables is present);
* ``plan(ctx)``: load-time validation on the city (located :class:`ScenarioError` s) and
  whatever the run needs that does not change during it (a spec, a population); may
  ``ctx.provide`` plan-time ports. The plan is what ``Scenario.plans[name]`` holds;
* ``build(ctx)``: allocate the run's state (arrays, agents) and provide run-time ports;
* ``start(ctx)``: register processes on the shared clock ``ctx.clock`` (event flows) or a
  block advance (array flows: advance to ``t`` before any other event at ``t`` reads them);
* ``finish(ctx) -> FlowResult``: tables, KPIs with units, the results-file section, report
  lines;
* ``snapshot(ctx) -> dict`` / ``restore(ctx, state, time_s)`` (flows with ``checkpoints =
  True``): the run-time state as plain data at a checkpoint (before any event at that time),
  and its return into a freshly built flow in place of ``start`` (:mod:`twin.checkpoint`).
  What ``build`` re-creates from the seed (dice drawn up front) need not be in the state.
  A process waiting on a timeout stores ``ctx.pending(event)`` and, restored, yields
  ``ctx.wakeup(entry)``: the restored events keep the clock's tie-break order. Every pending
  event must belong to some flow's state, or the snapshot is an error naming it.

Flows run in *dependency order*: a flow comes after every flow that provides a port it
needs or uses, ties broken by the order of the flow list (which also fixes the stream
order). :class:`Simulation` owns the clock (one :class:`simpy.Environment`, seconds from
the start), builds the stream registry and the active flows, starts them in that order, runs
and finishes. The core names no flow.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from twin.errors import CheckpointNotNow, ScenarioError

__all__ = ["Flow", "FlowResult", "PlanContext", "RunContext", "Simulation", "flow_order", "plan_flows",
           "stream_names", "flow_tables"]

logger = logging.getLogger(__name__)


class Flow:
    """Base of a flow: class attributes declare it, methods are its steps (see the module
    docstring). Subclasses override what they need; the defaults do nothing."""

    name: str = ""
    tables: tuple = ()
    renamed: dict = {}
    streams: tuple = ()
    provides: tuple = ()
    needs: tuple = ()
    uses: tuple = ()
    #: Names of the values its FlowResult may hold (``RunResult.<name>`` is None when the
    #: flow did not run or did not produce it; an undeclared name is an AttributeError).
    result_names: tuple = ()
    #: Whether the flow can write its run-time state at a checkpoint and resume from it.
    checkpoints: bool = False

    def active(self, ctx: "PlanContext") -> bool:
        return any(ctx.groups.get(t.name) not in (None, []) for t in self.tables)

    def plan(self, ctx: "PlanContext"):
        return None

    def build(self, ctx: "RunContext") -> None:
        pass

    def start(self, ctx: "RunContext") -> None:
        pass

    def finish(self, ctx: "RunContext") -> "FlowResult":
        return FlowResult(self.name)

    def snapshot(self, ctx: "RunContext") -> dict:
        """The run-time state as plain data (flows with ``checkpoints = True``)."""
        return {}

    def restore(self, ctx: "RunContext", state: dict, time_s: float) -> None:
        """Take ``state`` back at clock ``time_s`` and register the processes (instead of ``start``)."""

    def fork(self, ctx: "RunContext", rng, factors: dict) -> None:
        """After a restore, go on as another forecast member (:mod:`twin.forecast`): the random
        generators in the state are re-seeded already; draw again with ``rng`` what the build
        drew up front for the time ahead, scaled by ``factors`` (e.g. ``call_rate``)."""

    def harms(self, ctx: "RunContext", result: "FlowResult", windows) -> dict:
        """For a forecast member (:mod:`twin.forecast`), after ``finish``: ``{harm name: bool
        array (windows, city nodes)}``, where each harm struck in each window ``(a_s, b_s)``
        (e.g. ``"hospital_full"`` at a hospital's node). ``result`` is this flow's own."""
        return {}

    def __repr__(self):
        return f"<flow {self.name}>"


@dataclass
class FlowResult:
    """What a flow's ``finish`` returns.

    Attributes
    ----------
    name : str
        The flow's name.
    kpis : dict
        KPIs (units in the names), merged into ``RunResult.kpis`` in flow order.
    values : dict
        Named results (tables, result objects), readable as ``RunResult.<name>``.
    lines : list of str
        Report lines, ``twin run`` prints them in flow order (a section each).
    meta : dict
        Entries for the results file's ``/meta``.
    write : callable(writer) or None
        Writes the flow's section of the results file.
    """

    name: str
    kpis: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    lines: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    write: object = None


def _ports_of(flow, attr):
    return tuple(getattr(flow, attr) or ())


def flow_order(flows) -> list:
    """The flows in dependency order: providers before the flows that need or use their
    ports, ties by list position. A cycle or a needed port nobody provides is an error."""
    flows = list(flows)
    names = [f.name for f in flows]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup or not all(names):
        raise ScenarioError(f"flow names must be unique and non-empty; found {names}")
    providers = {}
    for f in flows:
        for p in _ports_of(f, "provides"):
            providers.setdefault(p, []).append(f)
    for f in flows:
        for p in _ports_of(f, "needs"):
            if p not in providers:
                raise ScenarioError(f"flow {f.name!r} needs port {p.__name__}, which no flow provides "
                                    f"(flows: {', '.join(names)})")
    deps = {f.name: {g.name for p in _ports_of(f, "needs") + _ports_of(f, "uses") for g in providers.get(p, ())
                     if g is not f} for f in flows}
    done, out = set(), []
    while len(out) < len(flows):
        ready = [f for f in flows if f.name not in done and deps[f.name] <= done]
        if not ready:
            left = [f.name for f in flows if f.name not in done]
            raise ScenarioError(f"flows {left} depend on each other's ports in a cycle")
        out.append(ready[0])
        done.add(ready[0].name)
    return out


def stream_names(flows) -> tuple:
    """The run's stream names: each flow's ``streams`` in flow-list order."""
    return tuple(s for f in flows for s in f.streams)


def flow_tables(core_tables, flows) -> tuple:
    """Every scenario table: the core's first, then each flow's in flow-list order."""
    return tuple(core_tables) + tuple(t for f in flows for t in f.tables)


class _Ports:
    """Ports offered so far: port type -> the object that implements it."""

    def __init__(self):
        self._ports = {}

    def provide(self, port, impl) -> None:
        if port in self._ports:
            raise ScenarioError(f"port {port.__name__} is provided twice")
        self._ports[port] = impl

    def port(self, port, default=None):
        """The object offering ``port``, or ``default`` when no active flow offers it."""
        return self._ports.get(port, default)

    def has(self, port) -> bool:
        return port in self._ports


@dataclass(eq=False)
class PlanContext(_Ports):
    """What ``Flow.active`` and ``Flow.plan`` see at load time.

    Attributes
    ----------
    groups : dict
        Table name -> validated group (lists for arrays, None for absent optional tables).
    city : twin.graph.City
    source : str
        Label for messages (the file name, with "(with --set overrides)").
    path : pathlib.Path or None
        The scenario file (relative paths in it resolve against its folder).
    seed : int
        The run seed the plans are made for.
    streams : twin.streams.StreamRegistry
        The run's streams (a plan may draw, e.g. a population synthesised on its stream).
    previous : dict
        Plans of an earlier planning of the same scenario (flow name -> plan), which a flow
        may reuse when they do not depend on what changed (the seed).
    """

    groups: dict
    city: object
    source: str
    path: object
    seed: int
    streams: object
    previous: dict = field(default_factory=dict)

    def __post_init__(self):
        _Ports.__init__(self)


@dataclass(eq=False)
class RunContext(_Ports):
    """What ``Flow.build``, ``start`` and ``finish`` see: the clock, streams, plans, ports.

    Attributes
    ----------
    clock : simpy.Environment
        The one clock, float seconds from the start of the scenario.
    streams : twin.streams.StreamRegistry
    scenario : object
        The loaded scenario (``groups``, ``city``, ``plans``, ``source``, ``path``).
    seed : int
    until_s : float
        The run's horizon: calls and arrivals on ``[0, until_s)``.
    """

    clock: object
    streams: object
    scenario: object
    seed: int
    until_s: float

    def __post_init__(self):
        _Ports.__init__(self)
        self._pending = None          # at a snapshot: id(event) -> [time_s, priority, order]
        self._claimed = set()
        self._wakeups = []            # at a restore: (order, event, time_s, priority)

    @property
    def groups(self) -> dict:
        return self.scenario.groups

    # ---- checkpoints: the clock's pending events as data ---------------------------------
    def pending(self, event) -> list:
        """At a snapshot: ``[time_s, priority, order]`` of the clock event ``event`` (a timeout a
        flow's process waits on), which :meth:`wakeup` turns back into an event at a restore.
        ``order`` is the clock's tie-break order among events at equal times and priorities."""
        if self._pending is None:
            raise RuntimeError("RunContext.pending: only during a snapshot")
        entry = self._pending.get(id(event))
        if entry is None:
            raise ScenarioError(f"checkpoint: {event!r} is not a pending clock event")
        self._claimed.add(id(event))
        return list(entry)

    def wakeup(self, entry) -> object:
        """At a restore: an event that fires at the time, priority and tie-break order of a
        :meth:`pending` entry, among every other restored event (scheduled once every flow
        has restored: a process made now may yield it at once)."""
        import simpy

        time_s, priority, order = float(entry[0]), int(entry[1]), int(entry[2])
        if not time_s >= self.clock.now:
            raise ScenarioError(f"checkpoint: a pending event at {time_s} s is before the checkpoint's time "
                                f"{self.clock.now} s")
        ev = simpy.Event(self.clock)
        self._wakeups.append((order, len(self._wakeups), ev, time_s, priority))
        return ev

    @property
    def city(self):
        return self.scenario.city

    def plan(self, flow):
        return self.scenario.plans.get(flow.name)


def plan_flows(flows, ctx: PlanContext) -> tuple:
    """Plan the active flows (classes) in dependency order; returns ``(active flow classes,
    plans by name)``. A plan with a ``seal()`` method is sealed once every flow is planned
    (flows planned later may have registered things with it through a port)."""
    active, plans = [], {}
    for cls in flow_order(flows):
        f = cls()
        if f.active(ctx):
            plans[f.name] = f.plan(ctx)
            active.append(cls)
    for plan in plans.values():
        if hasattr(plan, "seal"):
            plan.seal()
    return tuple(active), plans


def _dead(event) -> bool:
    """Whether a pending event changes nothing when it fires: nobody waits on it (an interrupted
    wait), or only conditions already decided (the timeout of ``request | timeout`` once the
    request was granted). A checkpoint leaves such events out."""
    import simpy

    return all(isinstance(getattr(cb, "__self__", None), simpy.events.Condition) and cb.__self__.triggered
               for cb in event.callbacks or ())


class Simulation:
    """One run of a scenario's active flows on one clock.

    Parameters
    ----------
    scenario : object
        A loaded scenario with ``flows`` (the active flow classes in dependency order), ``plans``,
        ``groups``, ``city``.
    seed : int
        The run seed (its streams: :class:`~twin.streams.StreamRegistry` of
        ``scenario.stream_names``).
    until_s : float
        Calls and arrivals on ``[0, until_s)``.
    drain : bool
        After ``until_s``, run on until the clock has no event left.
    """

    def __init__(self, scenario, *, seed, until_s, drain=True, start_s=0.0):
        import simpy

        from twin.streams import StreamRegistry

        self.scenario = scenario
        self.flows = tuple(cls() for cls in scenario.flows)     # fresh flow objects: one run's state
        self.ctx = RunContext(clock=simpy.Environment(initial_time=float(start_s)),
                              streams=StreamRegistry(seed, scenario.stream_names),
                              scenario=scenario, seed=seed, until_s=float(until_s))
        self.drain = bool(drain)
        self._ckpt_event = None

    def check_checkpoints(self) -> None:
        """A ScenarioError naming the active flows that cannot write their state yet."""
        no = [f.name for f in self.flows if not f.checkpoints]
        if no:
            yes = [f.name for f in self.flows if f.checkpoints]
            raise ScenarioError(f"checkpoints: flow(s) {', '.join(no)} cannot write their state yet; checkpoints "
                                f"and --resume work for scenarios whose flows all can "
                                f"({', '.join(yes) or 'none here'}; e.g. population and epidemic)")

    def snapshot(self) -> dict:
        """Every flow's state now: ``flow name -> dict``. Every event pending on the clock must
        belong to a flow's state (``ctx.pending``); one that does not is an error naming it."""
        import simpy

        ctx, env = self.ctx, self.ctx.clock
        stop = simpy.core.StopSimulation.callback
        if any(isinstance(ev, simpy.events.Initialize) for _, _, _, ev in env._queue):
            raise CheckpointNotNow("a process made at this time has not started yet")
        ctx._pending = {id(ev): (t, prio, eid) for t, prio, eid, ev in env._queue}
        ctx._claimed = set()
        try:
            states = {f.name: f.snapshot(ctx) for f in self.flows}
            left = [ev for _, _, _, ev in env._queue
                    if id(ev) not in ctx._claimed and ev is not self._ckpt_event and stop not in (ev.callbacks or ())
                    and not _dead(ev)]
        finally:
            ctx._pending = None
        if left:
            waiting = sorted({getattr(getattr(cb, "__self__", None), "name", None) or repr(cb)
                              for ev in left for cb in ev.callbacks or ()})
            raise ScenarioError(f"checkpoint at {env.now:.0f} s: {len(left)} pending clock event(s) belong to no flow's "
                                f"state (waiting: {', '.join(waiting[:5])}); this run cannot be checkpointed")
        return states

    def _schedule_wakeups(self) -> None:
        """Schedule the restored events in their original tie-break order."""
        env = self.ctx.clock
        for _, _, ev, time_s, priority in sorted(self.ctx._wakeups, key=lambda w: w[:2]):
            ev._ok, ev._value = True, None
            env.schedule(ev, priority, time_s - env.now)
        self.ctx._wakeups = []

    def _checkpointer(self, every_s, at_s, callback):
        """At every multiple of ``every_s`` (None: none) and at each time of ``at_s`` before
        ``until_s``, before any other event then: ``callback(time_s, states)``."""
        import simpy

        env, until = self.ctx.clock, self.ctx.until_s
        at = sorted(float(t) for t in at_s if env.now < float(t) < until)
        k = int(env.now // every_s) + 1 if every_s else 0
        while True:
            t = min(k * every_s if every_s and k * every_s < until else math.inf, at[0] if at else math.inf)
            if t == math.inf:
                return
            ev = self._ckpt_event = simpy.Event(env)
            ev._ok, ev._value = True, None
            env.schedule(ev, simpy.core.URGENT - 1, t - env.now)     # before any other event then, urgent ones too
            yield ev
            try:
                states = self.snapshot()
            except CheckpointNotNow as exc:              # the previous checkpoint stays; the run goes on
                logger.warning("checkpoint at %.0f s skipped: %s", env.now, exc)
                states = None
            if states is not None:
                callback(env.now, states)
            while every_s and k * every_s <= t:
                k += 1
            while at and at[0] <= t:
                at.pop(0)

    def run(self, progress=None, *, checkpoint_every_s=None, on_checkpoint=None, state=None, snapshot_at_s=(),
            fork=None) -> dict:
        """Build, start, run and finish every flow; returns ``flow name -> FlowResult``.

        ``progress(done_s, total_s)`` is called after every simulated hour up to ``until_s``
        (running in hour steps does not change the event order). With ``checkpoint_every_s``,
        ``on_checkpoint(time_s, states)`` gets every flow's state at each multiple of it before
        ``until_s`` (before any other event at that time). ``state`` (flow name -> dict, taken
        at the clock's start time) restores the flows instead of starting them. ``snapshot_at_s``:
        further times for ``on_checkpoint`` (snapshots kept in the results file). ``fork``
        (with ``state``: ``{"seed", "member", ...factors}``) makes the restored run a forecast
        member on its own dice (:func:`twin.checkpoint.fork_generators`, then each flow's ``fork``).
        """
        ctx = self.ctx
        if fork is not None and state is not None:
            from twin.checkpoint import fork_generators

            state = fork_generators(state, fork["seed"], fork["member"])
        if checkpoint_every_s is not None or state is not None or len(snapshot_at_s):
            self.check_checkpoints()
        for f in self.flows:
            f.build(ctx)
        for f in self.flows:
            if state is None:
                f.start(ctx)
            else:
                if f.name not in state:
                    raise ScenarioError(f"resume: the checkpoint has no state of flow {f.name!r}")
                try:
                    f.restore(ctx, state[f.name], ctx.clock.now)
                except ScenarioError:
                    raise
                except (KeyError, IndexError, ValueError, TypeError) as exc:
                    what = f"has no {exc.args[0]!r}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
                    raise ScenarioError(f"checkpoint: the state of flow {f.name!r} {what} (damaged, or written by "
                                        f"another version of twin?)") from None
        if checkpoint_every_s is not None or len(snapshot_at_s):
            every = float(checkpoint_every_s) if checkpoint_every_s is not None else None
            ctx.clock.process(self._checkpointer(every, snapshot_at_s, on_checkpoint))
        if fork is not None and state is not None:
            from twin.checkpoint import member_seed

            factors = {k: v for k, v in fork.items() if k not in ("seed", "member")}
            for f in self.flows:
                f.fork(ctx, np.random.default_rng(member_seed(fork["seed"], fork["member"], f.name)), factors)
        if state is not None:       # after every process made at the restore (they may wait on them)
            self._schedule_wakeups()
        env, until = ctx.clock, ctx.until_s
        logger.info("simulation: flows %s until %.0f s", ", ".join(f.name for f in self.flows), until)
        if progress is not None:
            t = env.now
            while t < until:
                t = min(t + 3600.0, until)
                env.run(until=t)
                progress(t, until)
        else:
            env.run(until=until)
        if self.drain:
            env.run()
        results = {}
        for f in self.flows:
            r = f.finish(ctx)
            results[f.name] = dataclasses.replace(r, name=f.name) if r.name != f.name else r
        return results
