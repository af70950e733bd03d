"""Call takers: the staff of the dispatch centres that answer calls before they are processed.

A scenario with ``[[agencies]]`` (:mod:`twin.scenarios.ems_tables`) gives each call type a
centre and each centre a number of call takers. A call arriving at a centre is answered at
once by a free call taker, or waits for one in arrival order (first come, first served: the
priority is not known before the call is answered); the call taker stays with it for its
processing time (the call interview, :attr:`twin.emergency.DispatchSpec.processing` or its
agency's own) and then takes the next waiting call. A centre is thus an M/G/c queue in front
of dispatch; with ``[coordination] mode = "unified"`` every agency's calls share one centre
with all the call takers (pooling), in ``"siloed"`` mode each agency answers its own.

Calls without a centre go straight to processing, as they always did: inter-hospital
transfers, a scripted incident's patients (the incident is reported once; its patients are
not separate calls to answer), calls added from an observed state, and every call where no
agency is declared. ``math.inf`` call takers is a centre
that never makes a call wait.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

__all__ = ["CallTakers", "ANSWER_TARGET_S"]

#: The answering target of the "answered in target" share, seconds: NENA's call answering
#: standard asks for 95 % of emergency calls answered within 20 s (NENA-STA-020; from memory).
ANSWER_TARGET_S = 20.0


class CallTakers:
    """The call takers of the centres, their queues and when each call was answered.

    Parameters
    ----------
    names : sequence of str
        The centres.
    takers : sequence of int or inf
        Call takers of each centre.
    centre_of_type : sequence of int
        The centre of each call type (index into ``names``).
    """

    def __init__(self, names, takers, centre_of_type):
        self.names = tuple(str(n) for n in names)
        self.capacity = [float(c) for c in takers]
        self.centre_of_type = np.asarray(centre_of_type, dtype=np.int64)
        self.busy = [0] * len(self.names)
        self.waiting = [deque() for _ in self.names]
        self.arrived = {}          # call -> (centre, arrival time s)
        self.answered = {}         # call -> answer time s

    def centre(self, type_idx) -> int:
        """The centre of a call type, or -1 (no centre: a transfer's pseudo-type)."""
        t = int(type_idx)
        return int(self.centre_of_type[t]) if 0 <= t < len(self.centre_of_type) else -1

    def arrive(self, call_idx, type_idx, now_s) -> bool:
        """A call reaches its centre now; True when it is answered at once (or has no centre)."""
        k = self.centre(type_idx)
        if k < 0:
            return True
        self.arrived[int(call_idx)] = (k, float(now_s))
        if self.busy[k] < self.capacity[k]:
            self.busy[k] += 1
            self.answered[int(call_idx)] = float(now_s)
            return True
        self.waiting[k].append(int(call_idx))
        return False

    def release(self, call_idx, now_s):
        """The call taker of ``call_idx`` is done with it: the next call waiting at that centre
        (answered now, returned) or None."""
        k = self.arrived.get(int(call_idx), (-1, 0.0))[0]
        if k < 0:
            return None
        if self.waiting[k]:
            nxt = self.waiting[k].popleft()
            self.answered[nxt] = float(now_s)
            return nxt
        self.busy[k] -= 1
        return None

    def take_waiting(self, now_s) -> list:
        """Calls answered now by call takers that are free while calls wait (after a restore
        with more call takers); none on an unchanged resume."""
        out = []
        for k, q in enumerate(self.waiting):
            while q and self.busy[k] < self.capacity[k]:
                c = q.popleft()
                self.busy[k] += 1
                self.answered[c] = float(now_s)
                out.append(c)
        return out

    def is_waiting(self, call_idx) -> bool:
        c = int(call_idx)
        return c in self.arrived and c not in self.answered

    # ---------------------------------------------------------------- results
    def _rows(self):
        """Per call that reached a centre, in call order: ids, centre index, arrival and answer s."""
        calls = np.array(sorted(self.arrived), dtype=np.int64)
        centre = np.array([self.arrived[c][0] for c in calls.tolist()], dtype=np.int32)
        arrive = np.array([self.arrived[c][1] for c in calls.tolist()], dtype=np.float64)
        answer = np.array([self.answered.get(c, math.nan) for c in calls.tolist()], dtype=np.float64)
        return calls, centre, arrive, answer

    def table(self):
        """One row per call that reached a centre: ``call_id``, ``centre``, ``arrive_s``,
        ``answer_s`` (NaN while waiting), ``wait_s``."""
        import pandas as pd

        calls, centre, arrive, answer = self._rows()
        return pd.DataFrame({"call_id": calls, "centre": np.asarray(self.names, dtype=object)[centre]
                             if len(calls) else np.empty(0, dtype=object), "arrive_s": arrive,
                             "answer_s": answer, "wait_s": answer - arrive})

    def kpis(self, warmup_s, until_s, answer_target_s=ANSWER_TARGET_S) -> tuple:
        """``(kpis, per-centre table)`` over the calls arriving in ``[warmup_s, until_s)``: mean
        wait for a call taker of the answered calls (s), the share that waited (or still
        waits), the share answered within ``answer_target_s``, the calls still waiting, and per
        centre the same with its call takers and calls."""
        import pandas as pd

        _, centre, arrive, answer = self._rows()
        keep = (arrive >= warmup_s) & (arrive < until_s)
        centre, w = centre[keep], (answer - arrive)[keep]
        done = np.isfinite(w)

        def stats(wait):
            ok = np.isfinite(wait)
            n = len(wait)
            return (float(wait[ok].mean()) if ok.any() else math.nan,
                    float((~ok | (wait > 0)).mean()) if n else math.nan,
                    float((ok & (wait <= answer_target_s)).mean()) if n else math.nan)

        mean, waited, within = stats(w)
        kpis = {"call_taking_wait_mean_s": mean, "call_taking_wait_share": waited,
                "call_taking_answered_in_target_share": within, "call_taking_unanswered": int((~done).sum())}
        rows = []
        for k, name in enumerate(self.names):
            m = centre == k
            rows.append((name, self.capacity[k], int(m.sum()), *stats(w[m])))
        per = pd.DataFrame(rows, columns=["centre", "call_takers", "calls", "wait_mean_s", "wait_share",
                                          "answered_in_target_share"])
        return kpis, per

    # ---------------------------------------------------------------- checkpoints
    def snapshot(self) -> dict:
        return {"names": list(self.names), "busy": list(self.busy), "waiting": [list(q) for q in self.waiting],
                "arrived": [[c, k, t] for c, (k, t) in sorted(self.arrived.items())],
                "answered": [[c, t] for c, t in sorted(self.answered.items())]}

    def restore(self, state) -> None:
        """Take a snapshot's queues back; the centres must be the snapshot's (by name, in
        order), their call takers may differ (see :meth:`free_takers`)."""
        from twin.errors import ScenarioError

        names = [str(n) for n in state.get("names", self.names)]
        if names != list(self.names):
            raise ScenarioError(f"checkpoint: the call-taking centres were {', '.join(names)}; this scenario has "
                                f"{', '.join(self.names)} (a what-if from a snapshot keeps the centres; it may "
                                f"change their call takers)")
        self.busy = [int(b) for b in state["busy"]]
        self.waiting = [deque(int(c) for c in q) for q in state["waiting"]]
        self.arrived = {int(c): (int(k), float(t)) for c, k, t in state["arrived"]}
        self.answered = {int(c): float(t) for c, t in state["answered"]}
