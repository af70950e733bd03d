"""What the traffic engine keeps between kernel calls and grows in place (:class:`KernelSetupMixin`
of :class:`~twin.traffic_engine.TrafficEngine`): the kernel's departure set-up, the emergency
vehicles, and the per-vehicle arrays as views of buffers that double.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KernelSetupMixin"]


class KernelSetupMixin:
    """Set-up kept while the arrays it comes from are the same objects, and amortised growth."""

    def _setup_key(self):
        return (self.state["status"], self.veh_class, self.dl_order, self.dep_link_indptr)

    def _departure_setup(self) -> dict:
        """The kernel's ``n_routable, ev_list, link_dep_scan`` (:func:`~twin.kernels.traffic.departure_setup`),
        kept while the arrays they come from are the same objects: whatever changes vehicles
        from Python (insertion, cancelling, holding, re-routing before departure, a restore)
        replaces one of them, or keeps the set-up up to date itself (:meth:`insert_vehicle`)."""
        key = self._setup_key()
        kept = getattr(self, "_setup", None)
        if kept is None or kept[1] != self.emergency_priority or any(a is not b for a, b in zip(kept[0], key)):
            n, ev, scan = self.K.departure_setup(key[0], key[1], self.emergency_priority, key[3])
            kept = self._setup = (key, self.emergency_priority, dict(n_routable=int(n), ev_list=ev, link_dep_scan=scan))
        return kept[2]

    def _emergency_vehicles(self) -> np.ndarray:
        """Indices of the emergency vehicles (any status), kept while ``veh_class`` is the same object."""
        kept = getattr(self, "_evs", None)
        if kept is None or kept[0] is not self.veh_class:
            kept = self._evs = (self.veh_class, np.flatnonzero(self.veh_class != 0))
        return kept[1]

    def _grow1(self, key, arr, value, at=None):
        """``arr`` with ``value`` appended (or inserted at index ``at``), as a view of a buffer that
        doubles when full: appending is amortised O(1), inserting moves the tail only (an array
        that is not such a view, e.g. replaced by a restore, is copied once)."""
        if not hasattr(self, "_buffers"):
            self._buffers = {}
        buf, n = self._buffers.get(key), len(arr)
        if (buf is None or arr.base is not buf or buf.dtype != arr.dtype or len(buf) <= n
                or arr.ctypes.data != buf.ctypes.data):
            buf = np.empty(max(16, 2 * n), dtype=arr.dtype)
            buf[:n] = arr
            self._buffers[key] = buf
        if at is None:
            buf[n] = value
        else:
            self.K.insert_at(buf, n, int(at), value)
        return buf[:n + 1]
