"""
A new part of the city in twenty lines: a flow that counts calls per hour
=========================================================================

A *flow* owns its scenario table, its random stream, its processes and its results; it
meets the other flows only through ports (:mod:`twin.ports`). This one listens to the
EMS's call intake and counts calls per hour. Add it after the built-in flows (so no
earlier random stream changes), switch it on with its own ``[call_count]`` table, run, and
read its table back from the results file.

Run it with ``python scenarios/gallery_new_flow.py`` (writes ``new_flow.h5`` in the
current folder, or in ``TWIN_GALLERY_OUT``).
"""

# %%
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import twin
from twin.flows import Flow, FlowResult
from twin.ports import CallIntake
from twin.runner import run
from twin.scenarios import BUILTIN_FLOWS
from twin.spec import Table, setting


@dataclass(frozen=True)
class CallCountGroup:
    """``[call_count]``: count calls per period."""

    period_s: float = setting(3600.0, "float", "counting period, seconds", minimum=0.0, strict=True)


class CallCountFlow(Flow):
    name = "call_count"
    tables = (Table("call_count", CallCountGroup, optional=True),)
    uses = (CallIntake,)

    def build(self, ctx):
        self.period_s = ctx.groups["call_count"].period_s
        self.counts = np.zeros(int(np.ceil(ctx.until_s / self.period_s)), dtype=np.int64)

    def start(self, ctx):
        ctx.port(CallIntake).on_call(self.heard)

    def heard(self, call_idx, time_s, priority):
        self.counts[min(int(time_s // self.period_s), len(self.counts) - 1)] += 1

    def finish(self, ctx):
        counts, period = self.counts, self.period_s
        return FlowResult(self.name, lines=[f"calls per hour: {counts.tolist()}"],
                          write=lambda w: w.write_table("/events/call_count",
                                                        {"start_s": np.arange(len(counts)) * period,
                                                         "calls": counts}, units={"start_s": "s", "calls": "1"}))


# %%
# Run the morning of hefei_day with the new flow on.
out = Path(os.environ.get("TWIN_GALLERY_OUT", ".")) / "new_flow.h5"
res = run("hefei_day", flows=BUILTIN_FLOWS + (CallCountFlow,), out=out, overwrite=True,
          overrides=["run.until_s=21600", "traffic.random_trips=1000", "call_count.period_s=3600"])
print("\n".join(res.flows["call_count"].lines))

# %%
# Read the flow's table back.
with twin.open_results(out) as r:
    print(r.table("/events/call_count"))
