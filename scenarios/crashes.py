"""The crashes flow: ``[crashes]``, emergency calls from the coupled traffic's exposure.

With ``call_type`` naming a call type (usually of ``share = 0``), crash calls arise from
the traffic's vehicle-km: at every synchronisation, each EMS zone gets
``Poisson(rate_per_million_veh_km × vehicle-km driven on its links since the last sync /
1e6)`` calls in the next sync period (:class:`CrashCalls`; a link belongs to its tail node's
zone, and with crash calls every district with nodes has zones). The default rate,
:data:`CRASH_RATE_PER_MILLION_VEH_KM` = 0.37, is the US injury-crash rate (NHTSA, Traffic
Safety Facts 2019; the figure is quoted from memory, see the constant). Its random draws come
from the ``crashes`` stream. Without coupled traffic there is no exposure and no crash call.

Ports: needs :class:`~twin.ports.CallPlan` / :class:`~twin.ports.CallIntake` (the EMS) and
uses :class:`~twin.ports.Exposure` (the traffic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.flows import Flow, FlowResult
from twin.ports import CallIntake, CallPlan, Exposure
from twin.spec import Table, setting, where

__all__ = ["CrashesGroup", "CrashFlow", "CrashCalls", "CRASH_RATE_PER_MILLION_VEH_KM", "link_zone_index"]

#: Default injury-crash rate per million vehicle-km: NHTSA, *Traffic Safety Facts 2019*
#: (DOT HS 813 141, 2021), 1,916,000 police-reported injury crashes over 3,262 billion
#: vehicle-miles travelled in the USA, i.e. 59 per 100 million vehicle-miles = 0.59 per
#: million vehicle-miles = 0.37 per million vehicle-km (figures from memory, to check against
#: the report). An order of magnitude, not a local calibration: override it with
#: ``[crashes] rate_per_million_veh_km``.
CRASH_RATE_PER_MILLION_VEH_KM = 0.37


@dataclass(frozen=True)
class CrashesGroup:
    """``[crashes]``: traffic-crash calls from the coupled traffic (optional table)."""

    call_type: str = setting("", "str", "call type of traffic crashes arising from the coupled traffic's exposure "
                                        "(empty: none)")
    rate_per_million_veh_km: float = setting(CRASH_RATE_PER_MILLION_VEH_KM, "float",
                                             "crash calls per million vehicle-km driven (default: US injury "
                                             "crashes, NHTSA 2019; at most 100,000)",
                                             minimum=0.0, maximum=100_000.0)


class CrashCalls:
    """Traffic-crash calls from the coupled traffic's exposure, zone by zone.

    Parameters
    ----------
    exposure : twin.ports.Exposure
        ``link_exits()`` and ``length_m`` of the traffic.
    intake : twin.ports.CallIntake
        Where the calls go (``add_calls``).
    link_zone_idx : ndarray of int, shape (n_links,)
        EMS zone of each link (its tail node's zone), -1 for none.
    n_zones : int
    type_idx : int
        The call type of the crash calls.
    rate_per_million_veh_km : float
        Crash calls per million vehicle-km (default :data:`CRASH_RATE_PER_MILLION_VEH_KM`).
    rng : numpy.random.Generator
        The ``crashes`` stream (counts, times and each call's dice).
    until_s : float
        Calls arrive before this time (the run's ``until_s``).

    Notes
    -----
    At every synchronisation at time ``t`` the vehicle-km driven on each zone's links since
    the previous one, ``x_z`` (links' vehicle exits × length, as the traffic's
    ``vkt_veh_km`` KPI counts them), give ``Poisson(rate × x_z / 1e6)`` crash calls in zone
    ``z``, placed uniformly in the next period ``[t, t + sync_s)`` (a one-period lag: the
    exposure is known only at its end), truncated at ``until_s``. The rows of
    :attr:`exposure` (``start_s, end_s, zone_idx, veh_km, expected_calls, n_calls``) record
    every period and zone with exposure; ``expected_calls`` is 0 for a period whose calls
    would fall after ``until_s``.
    """

    COLUMNS = ["start_s", "end_s", "zone_idx", "veh_km", "expected_calls", "n_calls"]

    def __init__(self, exposure, intake, link_zone_idx, n_zones, type_idx, rate_per_million_veh_km, rng, until_s):
        self.exposure_port, self.intake = exposure, intake
        self.length_km = np.asarray(exposure.length_m) / 1000.0
        self.link_zone_idx = np.asarray(link_zone_idx, dtype=np.int64)
        self._has_zone = self.link_zone_idx >= 0
        self.n_zones = int(n_zones)
        self.type_idx = int(type_idx)
        self.rate = float(rate_per_million_veh_km)
        self.rng = rng
        self.until_s = float(until_s)
        self._prev = np.zeros(len(self.link_zone_idx))
        self._t_prev = 0.0
        self.exposure = []

    def on_sync(self, now_s, next_sync_s):
        total = self.exposure_port.link_exits()
        veh_km = (total - self._prev) * self.length_km
        self._prev = total
        x = np.bincount(self.link_zone_idx[self._has_zone], weights=veh_km[self._has_zone], minlength=self.n_zones)
        t0, t1 = now_s, min(now_s + next_sync_s, self.until_s)
        mean = self.rate * x / 1e6 if t1 > t0 else np.zeros_like(x)
        counts = self.rng.poisson(mean)
        for z in np.flatnonzero(x > 0):
            self.exposure.append((self._t_prev, now_s, int(z), float(x[z]), float(mean[z]), int(counts[z])))
        self._t_prev = now_s
        n = int(counts.sum())
        if n:
            times = self.rng.uniform(t0, t1, size=n)
            zones = np.repeat(np.arange(self.n_zones), counts)
            order = np.argsort(times, kind="stable")
            self.intake.add_calls(times[order], zones[order], np.full(n, self.type_idx), self.rng)

    def table(self):
        """The exposure rows as a DataFrame."""
        import pandas as pd

        t = pd.DataFrame(self.exposure, columns=self.COLUMNS)
        return t.astype({"start_s": np.float64, "end_s": np.float64, "zone_idx": np.int32, "veh_km": np.float64,
                         "expected_calls": np.float64, "n_calls": np.int64})


def link_zone_index(city, call_plan) -> np.ndarray:
    """EMS zone of every link of the city (its tail node's zone), -1 for none."""
    return call_plan.zone_of_node()[np.asarray(city.link_from_idx, dtype=np.int64)]


_UNITS = {"start_s": "s", "end_s": "s", "zone_idx": "", "veh_km": "veh*km", "expected_calls": "1", "n_calls": "1"}


class CrashFlow(Flow):
    """Crash calls from the vehicle-km the traffic drives, zone by zone."""

    name = "crashes"
    tables = (Table("crashes", CrashesGroup, optional=True),)
    renamed = {"traffic.crash_call_type": "crashes.call_type",
               "traffic.crash_rate_per_million_veh_km": "crashes.rate_per_million_veh_km"}
    streams = ("crashes",)
    result_names = ("crash_exposure",)
    needs = (CallPlan,)
    uses = (Exposure,)

    def active(self, ctx):
        g = ctx.groups.get("crashes")
        return g is not None and bool(g.call_type)

    def plan(self, ctx):
        g, plan = ctx.groups["crashes"], ctx.port(CallPlan)
        at = f"{where(ctx.source, 'crashes')} call_type"
        plan.call_type_index(g.call_type, at)
        plan.check_servable(g.call_type, at)
        plan.calls_anywhere()
        return plan

    def build(self, ctx):
        self.calls = None
        exposure, intake = ctx.port(Exposure), ctx.port(CallIntake)
        if exposure is None:
            return
        g, plan = ctx.groups["crashes"], ctx.plan(self)
        self.calls = CrashCalls(exposure, intake, link_zone_index(ctx.city, plan), plan.n_zones,
                                plan.call_type_index(g.call_type, "[crashes] call_type"),
                                g.rate_per_million_veh_km, ctx.streams.generator("crashes"), ctx.until_s)

    checkpoints = True

    def start(self, ctx):
        if self.calls is not None:
            ctx.port(Exposure).on_sync(self.calls.on_sync)

    def snapshot(self, ctx):
        from twin.checkpoint import generator_state

        c = self.calls
        if c is None:
            return {}
        return {"rng": generator_state(c.rng), "prev": c._prev, "t_prev": float(c._t_prev),
                "exposure": [list(r) for r in c.exposure]}

    def restore(self, ctx, state, time_s):
        from twin.checkpoint import set_generator_state

        c = self.calls
        if c is None:
            return
        set_generator_state(c.rng, state["rng"])
        c._prev, c._t_prev = np.array(state["prev"]), float(state["t_prev"])
        c.exposure = [(float(a), float(b), int(z), float(x), float(m), int(n)) for a, b, z, x, m, n in state["exposure"]]
        self.start(ctx)

    def finish(self, ctx):
        if self.calls is None:
            return FlowResult(self.name, values={"crash_exposure": None})
        table = self.calls.table()
        kpis = dict(n_crash_calls=int(table["n_calls"].sum()), crash_exposure_veh_km=float(table["veh_km"].sum()),
                    crash_expected_calls=float(table["expected_calls"].sum()))
        line = (f"{'traffic-crash calls':<34} {kpis['n_crash_calls']}  (expected "
                f"{kpis['crash_expected_calls']:.2f} from {kpis['crash_exposure_veh_km']:,.0f} veh-km)")

        def write(writer):
            writer.write_table("/events/ems_crash_exposure", {k: table[k].to_numpy() for k in CrashCalls.COLUMNS},
                               units=_UNITS)
            for name, unit in (("n_crash_calls", "1"), ("crash_exposure_veh_km", "veh*km"),
                               ("crash_expected_calls", "1")):
                writer.write_summary(f"ems_{name}", kpis[name], units=unit)

        return FlowResult(self.name, kpis=kpis, values={"crash_exposure": table}, lines=[line], write=write)
