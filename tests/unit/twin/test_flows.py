"""The flows contract: a new flow joins the clock, the scenario file and the results file
without editing any existing flow or the core (STYLE §15)."""

import json
from dataclasses import dataclass

import h5py
import numpy as np
import pytest

from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult, flow_order
from twin.ports import CallIntake, CallPlan, LiveTravel, Presence
from twin.runner import RUN_STREAMS, load_scenario, run
from twin.scenarios import BUILTIN_FLOWS
from twin.spec import Table, setting

TINY = ["run.until_s=14400", "traffic.random_trips=0"]


@dataclass(frozen=True)
class CallCountGroup:
    """``[call_count]``: count calls per period (a toy flow's table)."""

    period_s: float = setting(3600.0, "float", "counting period, seconds", minimum=0.0, strict=True)


class CallCountFlow(Flow):
    """Counts the calls reaching dispatch per period through the call-intake port."""

    name = "call_count"
    tables = (Table("call_count", CallCountGroup, optional=True),)
    streams = ("call_count",)
    uses = (CallIntake,)
    result_names = ("call_log",)

    def build(self, ctx):
        self.period_s = ctx.groups["call_count"].period_s
        self.counts = np.zeros(int(np.ceil(ctx.until_s / self.period_s)) + 1, dtype=np.int64)
        self.log = []

    def start(self, ctx):
        ctx.port(CallIntake).on_call(self._heard)

    def _heard(self, call_idx, time_s, priority):
        self.log.append((call_idx, time_s))
        k = min(int(time_s // self.period_s), len(self.counts) - 1)
        self.counts[k] += 1

    def finish(self, ctx):
        counts, period = self.counts, self.period_s

        def write(writer):
            writer.write_table("/events/call_count", {"start_s": np.arange(len(counts)) * period, "calls": counts},
                               units={"start_s": "s", "calls": "1"})

        return FlowResult(self.name, kpis={"call_count_total": int(counts.sum())}, values={"call_log": self.log},
                          lines=[f"{'calls counted':<34} {int(counts.sum())}"], write=write)


FLOWS = BUILTIN_FLOWS + (CallCountFlow,)


def test_a_toy_flow_is_activated_by_its_table_and_writes_its_table(tmp_path):
    out = tmp_path / "run.h5"
    res = run("hefei_day", flows=FLOWS, overrides=TINY + ["call_count.period_s=1800"], out=out)
    calls = res.ems.calls
    # it heard every call as it reached dispatch, at its call time
    assert res.kpis["call_count_total"] == len(calls) == len(res.call_log)
    np.testing.assert_allclose(sorted(t for _, t in res.call_log), np.sort(calls["time_s"].to_numpy()))
    want = np.bincount((calls["time_s"].to_numpy() // 1800).astype(int), minlength=9)
    with h5py.File(out, "r") as f:
        got = f["/events/call_count"]["calls"]
        np.testing.assert_array_equal(got, want[:len(got)])
        assert json.loads(f["/meta/streams"][()])[-1] == "call_count"
    assert "calls counted" in "\n".join(res.report_lines())


def test_without_its_table_the_toy_flow_stays_out_and_changes_nothing():
    a = run("hefei_day", flows=FLOWS, overrides=TINY)
    b = run("hefei_day", overrides=TINY)
    assert "call_count" not in a.flows and "call_count_total" not in a.kpis and a.call_log is None
    with pytest.raises(AttributeError, match="no attribute 'call_logg'"):
        a.call_logg
    assert a.ems.calls.equals(b.ems.calls)
    # with it, the EMS draws are unchanged too: its stream comes after every built-in one
    c = run("hefei_day", flows=FLOWS, overrides=TINY + ["call_count.period_s=900"])
    assert c.ems.calls.equals(b.ems.calls)


def test_its_table_is_unknown_without_the_flow():
    with pytest.raises(ScenarioError, match="unknown table 'call_count'.*accepted tables"):
        load_scenario("hefei_day", overrides=["call_count.period_s=60"])


def test_streams_follow_the_flow_list_and_new_flows_come_last():
    assert RUN_STREAMS == ("calls", "dispatch", "service", "hospital", "agents", "traffic_demand", "traffic",
                           "population", "crashes", "incidents", "hazards", "evacuation", "eldercare_need", "eldercare",
                           "epidemic_contacts", "epidemic", "epidemic_calls", "epidemic_control", "requests")
    sc = load_scenario("hefei_day", flows=FLOWS)
    assert sc.stream_names == RUN_STREAMS + ("call_count",)


def test_dependency_order_puts_providers_first():
    names = [f.name for f in flow_order(FLOWS)]
    assert names.index("population") < names.index("ems") and names.index("traffic") < names.index("ems")
    assert names.index("ems") < names.index("crashes") and names.index("ems") < names.index("call_count")


def test_a_needed_port_nobody_provides_and_a_cycle_are_errors():
    class Needy(Flow):
        name = "needy"
        needs = (Presence,)

    with pytest.raises(ScenarioError, match="needs port Presence, which no flow provides"):
        flow_order([Needy])

    class A(Flow):
        name, provides, uses = "a", (CallPlan,), (LiveTravel,)

    class B(Flow):
        name, provides, uses = "b", (LiveTravel,), (CallPlan,)

    with pytest.raises(ScenarioError, match="cycle"):
        flow_order([A, B])


def test_a_flow_that_cannot_checkpoint_is_named_before_running(tmp_path):
    with pytest.raises(ScenarioError, match="flow\\(s\\) call_count cannot write their state yet"):
        run("hefei_day", out=tmp_path / "c.h5", checkpoint_every_s=3600.0, flows=FLOWS,
            overrides=TINY + ["call_count.period_s=600"])
