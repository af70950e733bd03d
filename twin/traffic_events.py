"""Network events of the traffic engine: closures, reopenings, capacity and speed changes of links
at a time, given up front (``events=``) or scheduled during the run (the mixin of
:class:`twin.traffic_engine.TrafficEngine`)."""

from __future__ import annotations

import logging
import math

import numpy as np

from twin.errors import DemandError
from twin.traffic_inputs import link_arrays

__all__ = ["NetworkEventsMixin"]

# log records keep the engine's logger name
logger = logging.getLogger("twin.traffic")


class NetworkEventsMixin:
    """Scheduling and applying network events; needs the engine's link arrays, ``events``,
    ``event_ptr`` and ``_reroute``."""

    def schedule_event(self, time_s, action, links, capacity_veh_per_h=None, free_speed_mps=None) -> None:
        """Add a network event during the run (``action`` ``"close"``, ``"open"``, ``"capacity"``
        with ``capacity_veh_per_h`` or ``"speed"`` with ``free_speed_mps``, on link indices
        ``links`` at ``time_s`` >= now); it applies at the first tick at or after ``time_s``,
        after the events already scheduled for that time.

        Raises
        ------
        DemandError
            An unknown action, a time before now, a link index out of range, or a capacity
            that is not > 0 for ``"capacity"``.
        """
        t = float(time_s)
        if not (math.isfinite(t) and t >= self.now_s - 1e-9):
            raise DemandError(f"event at time_s = {time_s!r}: expected a time >= now ({self.now_s:g} s)")
        if action not in ("close", "open", "capacity", "speed"):
            raise DemandError(f"event action = {action!r}; expected one of ['close', 'open', 'capacity', 'speed']")
        idx = np.atleast_1d(np.asarray(links, dtype=np.int64))
        if idx.size == 0 or idx.min() < 0 or idx.max() >= self.city.n_links:
            raise DemandError(f"event links {idx.tolist()[:5]}: expected link indices 0..{self.city.n_links - 1}")
        cap = None
        if action in ("capacity", "speed"):
            value, what = ((capacity_veh_per_h, "capacity_veh_per_h") if action == "capacity"
                           else (free_speed_mps, "free_speed_mps"))
            cap = float(value) if value is not None else math.nan
            if not (math.isfinite(cap) and cap > 0):
                raise DemandError(f"{action} event: {what} = {value!r}; expected > 0")
        pos = self.event_ptr
        while pos < len(self.events) and self.events[pos][0] <= t:
            pos += 1
        self.events.insert(pos, (t, action, idx, cap))

    def _apply_events(self, k):
        dt = self.params.dt_s
        changed_open = False
        reopened = False
        while self.event_ptr < len(self.events) and self.events[self.event_ptr][0] / dt <= k + 1e-9:
            t, action, links, cap = self.events[self.event_ptr]
            self.event_ptr += 1
            if action == "close":
                self.link_open[links] = False
                changed_open = True
            elif action == "open":
                self.link_open[links] = True
                changed_open = True
                reopened = True
            elif action == "speed":
                # vehicles entering from now on take the new time; those on the link keep theirs
                # (hole times and storage keep the nominal free speed's fundamental diagram)
                self.ff_time_s[links] = self.city.length_m[links] / cap
                self.ff_steps[links] = np.maximum(1, np.rint(self.ff_time_s[links] / dt)).astype(np.int32)
            else:
                # a new capacity is a new fundamental diagram: new hole time and storage
                # need (the ring, sized at the start, bounds the storage)
                self.capacity_veh_per_h[links] = cap
                la = link_arrays(self.city, dt, self.capacity_veh_per_h, links)
                self.cap_per_step[links] = la["cap_per_step"]
                self.hole_steps[links] = la["hole_steps"]
                short = la["storage"] > self.ring_cap[links] - 2
                if short.any():
                    logger.warning("t=%.0f s: links %s cannot store what their new capacity needs; storage "
                                   "kept at their ring size", t, links[short].tolist()[:10])
                self.storage[links] = np.minimum(la["storage"], self.ring_cap[links] - 2)
            logger.info("t=%.0f s: %s links %s%s", t, action, links.tolist()[:10],
                        "" if cap is None else f" to {cap:g} {'m/s' if action == 'speed' else 'veh/h'}")
        if changed_open:
            # after a reopening everyone reconsiders (switching only to a faster route)
            self._reroute(share=1.0 if reopened else 0.0, not_started=reopened)
