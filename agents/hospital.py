"""Hospital wards as Mesa agents owning a SimPy bed resource.

A ward has ``beds`` beds (a :class:`simpy.Resource`). A patient arrives by ambulance or
walks in (a Poisson stream of the ward's own). In a *loss* ward a patient who finds every
bed occupied is blocked (turned away and counted), as in Erlang's loss system; in a
*queue* ward patients wait FCFS for a bed, and an ambulance waits with its patient
(offload delay). A patient holds the bed for a length of stay drawn from the ward's
distribution by inverse transform of a pre-drawn uniform.
"""

from __future__ import annotations

import math

import mesa
import numpy as np
import simpy

from twin.emergency import HospitalSpec

__all__ = ["Hospital"]


class Hospital(mesa.Agent):
    """A ward: beds, admissions record and occupancy step series.

    Parameters
    ----------
    model : CityModel
        Owns the clock ``model.env``.
    hospital_idx : int
        Index of the ward in ``spec.hospitals``.
    spec : HospitalSpec

    Attributes
    ----------
    beds : simpy.Resource
        Capacity ``spec.beds`` (at least 1 for SimPy; a 0-bed loss ward blocks everyone).
    occupied, waiting : int
        Beds in use and patients waiting for one (queue wards).
    """

    def __init__(self, model, hospital_idx: int, spec: HospitalSpec):
        super().__init__(model)
        self.env = model.env
        self.hospital_idx = hospital_idx
        self.spec = spec
        self.beds = simpy.Resource(self.env, capacity=max(1, spec.beds))
        self.occupied = 0
        self.waiting = 0
        # admissions: (call_id, arrival_s, bed_s, discharge_s, blocked)
        self.admissions = []
        self.series = [(0.0, 0, 0)]

    def _record(self):
        self.series.append((self.env.now, self.occupied, self.waiting))

    def admit(self, call_id: int, u_los: float) -> simpy.Event:
        """Bring a patient to the ward now; returns an event that fires when the patient
        has a bed (value ``True``) or is blocked (value ``False``, loss wards)."""
        granted = self.env.event()
        self.env.process(self._stay(call_id, u_los, granted))
        return granted

    def _stay(self, call_id, u_los, granted):
        env = self.env
        row = [call_id, env.now, math.nan, math.nan, False]
        self.admissions.append(row)
        if self.spec.mode == "loss" and self.occupied >= self.spec.beds:
            row[4] = True
            granted.succeed(False)
            return
        with self.beds.request() as req:
            self.waiting += 1
            self._record()
            yield req
            self.waiting -= 1
            self.occupied += 1
            row[2] = env.now
            self._record()
            granted.succeed(True)
            yield env.timeout(float(self.spec.length_of_stay.ppf(u_los)))
            self.occupied -= 1
            row[3] = env.now
        self._record()

    def walk_in_source(self, arrivals_s: np.ndarray, u_los: np.ndarray):
        """SimPy process admitting pre-drawn walk-in patients at ``arrivals_s``."""
        env = self.env
        for t, u in zip(arrivals_s, u_los):
            yield env.timeout(t - env.now)
            self.admit(-1, u)
