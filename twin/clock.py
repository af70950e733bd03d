"""The clock's one extension: a timeout that fires before ordinary events at its time.

Array flows advance in blocks (STYLE §6): before any other event at a shared time ``t``
reads their state, they run their kernel up to ``t``. :class:`UrgentTimeout` is how a
flow's synchronisation process gets there first: a :class:`simpy.Timeout` scheduled at
SimPy's ``URGENT`` priority (the priority SimPy gives a process's ``Initialize``), so at equal
times it is processed before every ``NORMAL`` event; ties among urgent events are FIFO.
"""

from __future__ import annotations

import simpy
from simpy.events import URGENT

__all__ = ["UrgentTimeout"]


class UrgentTimeout(simpy.Timeout):
    """``env.timeout(delay_s)`` at ``URGENT`` priority (seconds, >= 0).

    It subclasses SimPy's :class:`~simpy.events.Timeout` the way SimPy's own event types do
    (``Initialize``: set the outcome, then ``env.schedule`` with a priority), changing only
    the priority.
    """

    def __init__(self, env, delay_s, value=None):
        if delay_s < 0:
            raise ValueError(f"UrgentTimeout: delay_s = {delay_s!r}; expected >= 0 seconds")
        simpy.events.Event.__init__(self, env)
        self._delay = delay_s
        self._ok = True
        self._value = value
        env.schedule(self, URGENT, delay_s)
