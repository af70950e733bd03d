"""The incidents flow: ``[[incidents]]``, scripted mass-casualty incidents.

Each table is one incident (:class:`twin.emergency.IncidentSpec`)::

    [[incidents]]
    name = "bus crash"
    node = 123                     # city node id
    time_s = 30600                 # 08:30
    patients = 25
    triage = { "1" = 0.2, "2" = 0.3, "3" = 0.5 }    # or [0.2, 0.3, 0.5]; omitted: the call type's priority
    call_type = "trauma"           # optional: the first call type
    transport_probability = 1.0    # optional: every patient is transported

At ``time_s`` its ``patients`` calls (one per patient, priorities drawn from ``triage``)
reach the dispatch centre from ``node``; each takes the call type's units and on-scene
time. Their draws come from the ``incidents`` stream (the last of the built-in streams). The
patients are left out of the routine call KPIs; ``twin run`` prints one line per incident
and the results file gets ``/events/ems_incidents`` (written with the EMS records).

Ports: needs :class:`~twin.ports.CallPlan` (the scenes become EMS locations) and
:class:`~twin.ports.CallIntake` (the incidents' outcome after the run).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from twin.emergency import IncidentSpec
from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.ports import CallIntake, CallPlan
from twin.graph import scenario_node_index
from twin.spec import Table, setting, where
from twin.units import fmt_min as _fmt_min

__all__ = ["IncidentGroup", "IncidentFlow"]

_TRIAGE = 'shares of priorities 1, 2, 3: a table {"1" = ..., "2" = ..., "3" = ...} or a list of 3'


def _triage(value, where_):
    if isinstance(value, dict):
        keys = {str(k).upper().removeprefix("P"): v for k, v in value.items()}
        for k in keys:
            if k not in ("1", "2", "3"):
                raise ScenarioError(f"{where_}: unknown priority {k!r}; expected {_TRIAGE}")
        value = [keys.get(str(p), 0.0) for p in (1, 2, 3)]
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ScenarioError(f"{where_} = {value!r}; expected {_TRIAGE}")
    for v in value:
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            raise ScenarioError(f"{where_} = {value!r}; expected {_TRIAGE}, each a number >= 0 (found {v!r})")
    return tuple(float(v) for v in value)


@dataclass(frozen=True)
class IncidentGroup:
    """``[[incidents]]``: a scripted mass-casualty incident (see :class:`twin.emergency.IncidentSpec`)."""

    name: str = setting("", "str", "incident name")
    node: object = setting(None, "node", "city node id where it happens")
    time_s: float = setting(0.0, "float", "when the patients' calls arrive, seconds from the start (< run.until_s)",
                            minimum=0.0)
    patients: int = setting(1, "int", "number of patients, one call each", minimum=1)
    triage: tuple | None = setting(None, "triage", "shares of priorities 1, 2, 3 among the patients, summing to 1: "
                                                   "{\"1\" = 0.2, \"2\" = 0.3, \"3\" = 0.5} or [0.2, 0.3, 0.5] "
                                                   "(omit: the call type's priority)", convert=_triage,
                                   subkeys="create")
    call_type: str = setting("", "str", "call type whose units and on-scene time the patients take (default: the "
                                        "first call type)")
    transport_probability: float = setting(1.0, "float", "probability a patient is taken to hospital (default 1: "
                                                         "all)", minimum=0.0, maximum=1.0)


class IncidentFlow(Flow):
    """Mass-casualty incidents at scripted times and places."""

    name = "incidents"
    tables = (Table("incidents", IncidentGroup, array=True, required=(("node", "the city node id"),)),)
    streams = ("incidents",)
    needs = (CallPlan,)
    uses = (CallIntake,)

    checkpoints = True            # planned before the run: the EMS flow holds the patients' calls

    def plan(self, ctx):
        plan, until = ctx.port(CallPlan), ctx.groups["run"].until_s
        specs = []
        for i, g in enumerate(ctx.groups["incidents"]):
            at = f"{where(ctx.source, 'incidents', i, g.name)}"
            if g.time_s >= until:
                raise ScenarioError(f"{at} time_s = {g.time_s:g}; expected a time before [run] until_s = {until:g}")
            if g.call_type:
                plan.call_type_index(g.call_type, f"{at} call_type")
            specs.append(IncidentSpec(g.name, scenario_node_index(ctx.city, g.node, at), g.time_s, g.patients, g.triage,
                                      g.call_type or None, g.transport_probability))
        plan.add_incidents(specs, "incidents")
        return tuple(specs)

    def finish(self, ctx):
        table = ctx.port(CallIntake).incidents()
        lines = []
        for _, r in (table.iterrows() if table is not None else ()):
            lab = f"incident {r['name']!r}"
            lines.append(f"{lab[:34]:<34} {r['patients']} patients (P1 {r['n_p1']}, P2 {r['n_p2']}, P3 "
                         f"{r['n_p3']}) at {r['time_s'] / 3600:.2f} h: last on scene +{_fmt_min(r['last_on_scene_s'])}, "
                         f"scene clear +{_fmt_min(r['scene_clear_s'])}, last at hospital "
                         f"+{_fmt_min(r['last_at_hospital_s'])}, {r['n_hospitals_used']} hospital(s)"
                         + (f" ({r['hospitals'].replace(';', ', ')})" if r['hospitals'] else ""))
        return FlowResult(self.name, lines=lines)
