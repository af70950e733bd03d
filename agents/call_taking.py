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

    A call is answered once at the centre of its type and, in siloed mode, once more at each
    centre it is transferred to (see :class:`twin.agents.dispatch.DispatchCentre`): the
    queues hold ``(call, centre)`` pairs.

    Parameters
    ----------
    names : sequence of str
        The centres.
    takers : sequence of int or inf
        Call takers of each centre.
    """

    def __init__(self, names, takers):
        self.names = tuple(str(n) for n in names)
        self.capacity = [float(c) for c in takers]
        self.busy = [0] * len(self.names)
        self.waiting = [deque() for _ in self.names]
        self.arrived = {}          # (call, centre) -> arrival time s
        self.answered = {}         # (call, centre) -> answer time s
        self.done = {}             # (call, centre) -> end of the interview s
        self.transfers = set()     # the (call, centre) pairs of transferred calls

    def arrive(self, call_idx, centre, now_s, transfer=False) -> bool:
        """A call reaches ``centre`` now (``transfer``: sent on from another centre); True when
        it is answered at once."""
        k = int(centre)
        key = (int(call_idx), k)
        self.arrived[key] = float(now_s)
        if transfer:
            self.transfers.add(key)
        if self.busy[k] < self.capacity[k]:
            self.busy[k] += 1
            self.answered[key] = float(now_s)
            return True
        self.waiting[k].append(key)
        return False

    def release(self, call_idx, centre, now_s):
        """The call taker of ``call_idx`` at ``centre`` is done with it: the next ``(call,
        centre)`` waiting there (answered now, returned) or None."""
        key = (int(call_idx), int(centre))
        if key not in self.arrived:
            return None
        k = key[1]
        self.done[key] = float(now_s)
        if self.waiting[k]:
            nxt = self.waiting[k].popleft()
            self.answered[nxt] = float(now_s)
            return nxt
        self.busy[k] -= 1
        return None

    def take_waiting(self, now_s) -> list:
        """``(call, centre)`` pairs answered now by call takers that are free while calls wait
        (after a restore with more call takers); none on an unchanged resume."""
        out = []
        for k, q in enumerate(self.waiting):
            while q and self.busy[k] < self.capacity[k]:
                key = q.popleft()
                self.busy[k] += 1
                self.answered[key] = float(now_s)
                out.append(key)
        return out

    # ---------------------------------------------------------------- results
    def _rows(self):
        """Per (call, centre) in call order, then centre: ids, centre index, transferred,
        arrival, answer and end of interview s."""
        keys = sorted(self.arrived)
        calls = np.array([c for c, _ in keys], dtype=np.int64)
        centre = np.array([k for _, k in keys], dtype=np.int32)
        transferred = np.array([key in self.transfers for key in keys], dtype=bool)
        arrive = np.array([self.arrived[key] for key in keys], dtype=np.float64)
        answer = np.array([self.answered.get(key, math.nan) for key in keys], dtype=np.float64)
        done = np.array([self.done.get(key, math.nan) for key in keys], dtype=np.float64)
        return calls, centre, transferred, arrive, answer, done

    def table(self):
        """One row per call at a centre (a transferred call has a row at each): ``call_id``,
        ``centre``, ``transferred`` (the row is a transfer's), ``arrive_s``, ``answer_s`` (NaN
        while waiting), ``wait_s``, ``done_s`` (end of the interview; NaN until then)."""
        import pandas as pd

        calls, centre, transferred, arrive, answer, done = self._rows()
        return pd.DataFrame({"call_id": calls, "centre": np.asarray(self.names, dtype=object)[centre]
                             if len(calls) else np.empty(0, dtype=object), "transferred": transferred,
                             "arrive_s": arrive, "answer_s": answer, "wait_s": answer - arrive, "done_s": done})

    def kpis(self, warmup_s, until_s, answer_target_s=ANSWER_TARGET_S) -> tuple:
        """``(kpis, per-centre table)`` over the calls arriving in ``[warmup_s, until_s)`` (a
        transfer counts at the centre it reaches): mean wait for a call taker of the answered
        calls (s), the share that waited (or still waits), the share answered within
        ``answer_target_s``, the calls still waiting; the transfers and their mean delay (from
        the end of the first interview to the end of the last transfer's, s); and per centre
        the same with its call takers, calls and transfers received."""
        import pandas as pd

        calls, centre, transferred, arrive, answer, done = self._rows()
        first_arrive = {}
        for c, t, tr in zip(calls.tolist(), arrive.tolist(), transferred.tolist()):
            if not tr:
                first_arrive[c] = t
        t0 = np.array([first_arrive.get(c, t) for c, t in zip(calls.tolist(), arrive.tolist())])
        keep = (t0 >= warmup_s) & (t0 < until_s)
        calls, centre, transferred = calls[keep], centre[keep], transferred[keep]
        w, done = (answer - arrive)[keep], done[keep]

        def stats(wait):
            ok = np.isfinite(wait)
            n = len(wait)
            return (float(wait[ok].mean()) if ok.any() else math.nan,
                    float((~ok | (wait > 0)).mean()) if n else math.nan,
                    float((ok & (wait <= answer_target_s)).mean()) if n else math.nan)

        mean, waited, within = stats(w)
        first_done = {c: d for c, d, tr in zip(calls.tolist(), done.tolist(), transferred.tolist()) if not tr}
        last = {}
        for c, d in zip(calls[transferred].tolist(), done[transferred].tolist()):
            last[c] = max(last.get(c, -math.inf), d)
        delay = np.array([d - first_done.get(c, math.nan) for c, d in last.items()])
        delay = delay[np.isfinite(delay)]
        kpis = {"call_taking_wait_mean_s": mean, "call_taking_wait_share": waited,
                "call_taking_answered_in_target_share": within, "call_taking_unanswered": int((~np.isfinite(w)).sum()),
                "calls_transferred": len(last),
                "transfer_delay_mean_s": float(delay.mean()) if len(delay) else math.nan}
        rows = []
        for k, name in enumerate(self.names):
            m = centre == k
            rows.append((name, self.capacity[k], int(m.sum()), int((m & transferred).sum()), *stats(w[m])))
        per = pd.DataFrame(rows, columns=["centre", "call_takers", "calls", "transfers_in", "wait_mean_s",
                                          "wait_share", "answered_in_target_share"])
        return kpis, per

    # ---------------------------------------------------------------- checkpoints
    def snapshot(self) -> dict:
        return {"names": list(self.names), "busy": list(self.busy), "waiting": [[list(key) for key in q]
                                                                              for q in self.waiting],
                "arrived": [[c, k, t] for (c, k), t in sorted(self.arrived.items())],
                "answered": [[c, k, t] for (c, k), t in sorted(self.answered.items())],
                "done": [[c, k, t] for (c, k), t in sorted(self.done.items())],
                "transfers": [list(key) for key in sorted(self.transfers)]}

    def restore(self, state) -> None:
        """Take a snapshot's queues back; the centres must be the snapshot's (by name, in
        order), their call takers may differ (see :meth:`take_waiting`)."""
        from twin.errors import ScenarioError

        names = [str(n) for n in state.get("names", self.names)]
        if names != list(self.names):
            raise ScenarioError(f"checkpoint: the call-taking centres were {', '.join(names)}; this scenario has "
                                f"{', '.join(self.names)} (a what-if from a snapshot keeps the centres; it may "
                                f"change their call takers)")
        self.busy = [int(b) for b in state["busy"]]
        # (a snapshot of an earlier version keyed the queues and answers by call alone)
        self.waiting = [deque((int(x[0]), int(x[1])) if isinstance(x, (list, tuple)) else (int(x), k) for x in q)
                        for k, q in enumerate(state["waiting"])]
        self.arrived = {(int(c), int(k)): float(t) for c, k, t in state["arrived"]}
        centre_of = {c: k for c, k in self.arrived}
        self.answered = {(int(a[0]), int(a[1])) if len(a) == 3 else (int(a[0]), centre_of[int(a[0])]): float(a[-1])
                         for a in state["answered"]}
        self.done = {(int(c), int(k)): float(t) for c, k, t in state.get("done", [])}
        self.transfers = {(int(c), int(k)) for c, k in state.get("transfers", [])}
