"""Larson's hypercube queueing model of a fleet of distinguishable units, solved exactly.

``N`` response units and ``J`` demand atoms. Calls arrive at atom ``j`` as a Poisson
process of rate ``λ_j``. A call is assigned to the first idle unit on the atom's fixed
preference list. Unit ``n`` stays busy for an exponential time of rate ``μ_n`` that does
not depend on where it went (travel is part of the service time), then is idle again at
its home location ("instant return"). When no listed unit is idle the call is either lost
(the *loss* variant) or joins one FCFS queue served by whichever unit frees first (the
*queue* variant, which needs complete preference lists).

The state is the set of busy units, a bit vector ``B`` of ``2^N`` values. This module
builds the sparse generator of that chain and solves the global balance equations
``π Q = 0, Σ π = 1`` directly (``scipy.sparse.linalg.spsolve``). It returns unit
workloads ``ρ_n``, the fraction ``f_nj`` of all dispatches that send unit ``n`` to atom
``j``, and the mean travel time ``Σ f_nj τ_nj`` for a travel-time matrix ``τ``.

Notes
-----
Queue variant. States with ``k >= 1`` waiting calls have every unit busy; the queue
length is a birth-death chain with rates ``λ = Σ λ_j`` up and ``M = Σ μ_n`` down. The cut
between ``{all busy, k = 0}`` and ``{k >= 1}`` gives ``λ π(F, 0) = M π(F, 1)``, so the
balance equations of the ``2^N`` binary states are exactly those of the loss variant and

``π_Q(B) = π_L(B) / Z``,  ``π_Q(F, k) = π_L(F) r^k / Z``,  ``Z = 1 - π_L(F) + π_L(F)/(1 - r)``

with ``r = λ / M < 1``. A queued call is for atom ``j`` with probability ``λ_j / λ`` and
is served by the unit that frees first, ``n`` with probability ``μ_n / M``, which starts
from its home (instant return), so its travel time is ``τ_nj``. This is exact; Larson
and Odoni's book instead approximate queued calls' travel times, so their mean travel
time for the queue variant can differ slightly from the value here.

Source: R. C. Larson, "A hypercube queuing model for facility location and redistricting
in urban emergency services", *Computers & Operations Research* 1 (1974) 67-95; R. C.
Larson and A. R. Odoni, *Urban Operations Research* (1981), §5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

__all__ = ["HypercubeSolution", "solve_hypercube", "first_idle_unit"]

#: Largest fleet the direct solver accepts (2^16 states is about 1 s).
MAX_UNITS = 16


@dataclass(frozen=True)
class HypercubeSolution:
    """Steady state of the hypercube model (all arrays read-only).

    Attributes
    ----------
    variant : str
        ``"loss"`` or ``"queue"``.
    state_probabilities : ndarray of float64, shape (2**N,)
        ``π(B)`` of each binary state, bit ``n`` of the index set when unit ``n`` is busy.
        In the queue variant the all-busy entry holds only the states with no one waiting.
    workload : ndarray of float64, shape (N,)
        ``ρ_n``, the long-run fraction of time unit ``n`` is busy.
    dispatch_fraction : ndarray of float64, shape (N, J)
        ``f_nj``, the fraction of all dispatches that send unit ``n`` to atom ``j``
        (sums to 1; served calls only in the loss variant).
    dispatch_rate : ndarray of float64, shape (N, J)
        Long-run rate of dispatches of unit ``n`` to atom ``j``, in calls per unit time of
        the given rates.
    prob_all_busy : float
        Fraction of calls that find no listed unit idle: lost (loss) or queued (queue).
        With complete lists this is also the fraction of time all units are busy.
    mean_queue_length : float
        Mean number of calls waiting (0 in the loss variant).
    mean_wait : float
        Mean wait of a call before dispatch, over all calls, in the time unit of the rates
        (0 in the loss variant).
    mean_travel_time : float
        ``Σ f_nj τ_nj`` in the unit of ``travel_time`` (NaN when none was given).
    """

    variant: str
    state_probabilities: np.ndarray
    workload: np.ndarray
    dispatch_fraction: np.ndarray
    dispatch_rate: np.ndarray
    prob_all_busy: float
    mean_queue_length: float
    mean_wait: float
    mean_travel_time: float


def _check_inputs(arrival_rates, service_rates, preference_lists, variant, travel_time):
    lam = np.asarray(arrival_rates, dtype=np.float64)
    mu = np.asarray(service_rates, dtype=np.float64)
    if lam.ndim != 1 or len(lam) == 0 or not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError(f"arrival_rates = {arrival_rates!r}; expected a 1-D array of finite rates >= 0, "
                         f"one per atom")
    if mu.ndim != 1 or len(mu) == 0 or not np.all(np.isfinite(mu)) or np.any(mu <= 0):
        raise ValueError(f"service_rates = {service_rates!r}; expected a 1-D array of finite rates > 0, "
                         f"one per unit")
    n_units, n_atoms = len(mu), len(lam)
    if n_units > MAX_UNITS:
        raise ValueError(f"{n_units} units; the exact solver accepts at most {MAX_UNITS} (2^N states)")
    if variant not in ("loss", "queue"):
        raise ValueError(f"variant = {variant!r}; expected 'loss' or 'queue'")
    if len(preference_lists) != n_atoms:
        raise ValueError(f"{len(preference_lists)} preference lists for {n_atoms} atoms; expected one per atom")
    prefs = []
    for j, p in enumerate(preference_lists):
        p = [int(u) for u in p]
        if len(set(p)) != len(p) or any(not 0 <= u < n_units for u in p) or not p:
            raise ValueError(f"preference list of atom {j} = {p}; expected distinct unit indices in "
                             f"0..{n_units - 1}")
        if variant == "queue" and len(p) != n_units:
            raise ValueError(f"preference list of atom {j} has {len(p)} of {n_units} units; the queue "
                             f"variant needs complete lists (every unit, in order of preference)")
        prefs.append(p)
    tau = None
    if travel_time is not None:
        tau = np.asarray(travel_time, dtype=np.float64)
        if tau.shape != (n_units, n_atoms):
            raise ValueError(f"travel_time has shape {tau.shape}; expected ({n_units}, {n_atoms}) (unit x atom)")
    return lam, mu, prefs, tau


def first_idle_unit(states, preference_list):
    """Unit each state dispatches for an atom: the first idle unit on its preference list.

    Parameters
    ----------
    states : ndarray of int64
        Bit vectors of busy units.
    preference_list : sequence of int
        Unit indices in order of preference.

    Returns
    -------
    ndarray of int64, same shape as ``states``
        The unit index, or ``-1`` where every listed unit is busy.
    """
    states = np.asarray(states, dtype=np.int64)
    out = np.full(states.shape, -1, dtype=np.int64)
    for unit in reversed(list(preference_list)):
        out = np.where(((states >> unit) & 1) == 0, unit, out)
    return out


def solve_hypercube(arrival_rates, service_rates, preference_lists, *, variant="loss",
                    travel_time=None) -> HypercubeSolution:
    """Solve the hypercube model exactly from its ``2^N`` balance equations.

    Parameters
    ----------
    arrival_rates : array-like of float, shape (J,)
        Poisson call rate ``λ_j`` of each atom (any time unit, the same as ``service_rates``).
    service_rates : array-like of float, shape (N,)
        Service rate ``μ_n = 1 / mean busy time`` of each unit.
    preference_lists : sequence of J sequences of int
        ``preference_lists[j]`` lists unit indices in dispatch order for atom ``j``. The loss
        variant accepts partial lists (a call finding all listed units busy is lost).
    variant : {"loss", "queue"}
        Lost calls, or one infinite FCFS queue (needs ``λ < Σ μ_n`` and complete lists).
    travel_time : array-like of float, shape (N, J), optional
        Travel time ``τ_nj`` from unit ``n``'s home to atom ``j``, for the mean travel time.

    Returns
    -------
    HypercubeSolution

    Raises
    ------
    ValueError
        Bad rates, lists or shapes, more than :data:`MAX_UNITS` units, or an unstable queue.

    Examples
    --------
    Two identical units and one atom: the number busy is Erlang's loss distribution.

    >>> s = solve_hypercube([1.0], [1.0, 1.0], [[0, 1]])
    >>> round(s.prob_all_busy, 6)      # erlang_b(2, 1.0)
    0.2
    >>> [round(float(x), 6) for x in s.workload]    # unit 0 is first choice
    [0.5, 0.3]
    """
    lam, mu, prefs, tau = _check_inputs(arrival_rates, service_rates, preference_lists, variant, travel_time)
    n_units, n_atoms = len(mu), len(lam)
    n_states = 1 << n_units
    states = np.arange(n_states, dtype=np.int64)
    lam_total, mu_total = float(lam.sum()), float(mu.sum())
    if variant == "queue" and not lam_total < mu_total:
        raise ValueError(f"total arrival rate {lam_total} >= total service rate {mu_total}; the queue "
                         f"variant is stable only for λ < Σ μ_n")

    first = np.stack([first_idle_unit(states, p) for p in prefs])            # (J, 2^N)
    rows, cols, vals = [], [], []
    for j in range(n_atoms):
        ok = first[j] >= 0
        rows.append(states[ok])
        cols.append(states[ok] | (np.int64(1) << first[j][ok]))
        vals.append(np.full(int(ok.sum()), lam[j]))
    for n in range(n_units):
        busy = ((states >> n) & 1) == 1
        rows.append(states[busy])
        cols.append(states[busy] & ~(np.int64(1) << n))
        vals.append(np.full(int(busy.sum()), mu[n]))
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    q = sp.coo_matrix((vals, (rows, cols)), shape=(n_states, n_states)).tocsr()
    out_rate = np.asarray(q.sum(axis=1)).ravel()
    q = q - sp.diags(out_rate)
    # π Q = 0 with Σ π = 1: transpose and replace the last equation (redundant) by the sum.
    a = q.T.tolil()
    a[n_states - 1, :] = np.ones(n_states)
    rhs = np.zeros(n_states)
    rhs[-1] = 1.0
    pi = spsolve(a.tocsc(), rhs)
    pi = np.clip(pi, 0.0, None)
    pi /= pi.sum()

    full = n_states - 1
    busy_bits = ((states[:, None] >> np.arange(n_units)) & 1).astype(np.float64)   # (2^N, N)
    rate = np.zeros((n_units, n_atoms))
    for j in range(n_atoms):
        ok = first[j] >= 0
        np.add.at(rate[:, j], first[j][ok], lam[j] * pi[ok])
    if variant == "loss":
        workload = busy_bits.T @ pi
        p_none = float(sum(lam[j] * pi[first[j] < 0].sum() for j in range(n_atoms)) / lam_total)
        lq = wq = 0.0
    else:
        r = lam_total / mu_total
        z = 1.0 - pi[full] + pi[full] / (1.0 - r)
        pi = pi / z
        rate = rate / z
        tail = pi[full] * r / (1.0 - r)                 # P(k >= 1 waiting)
        workload = busy_bits.T @ pi + tail
        p_none = pi[full] + tail                         # PASTA: P(all busy) at arrival
        rate = rate + p_none * lam_total * np.outer(mu / mu_total, lam / lam_total)
        lq = pi[full] * r / (1.0 - r) ** 2
        wq = lq / lam_total if lam_total > 0 else 0.0
    total = rate.sum()
    frac = rate / total if total > 0 else np.zeros_like(rate)
    mtt = float((frac * tau).sum()) if tau is not None else math.nan
    for arr in (pi, workload, frac, rate):
        arr.setflags(write=False)
    return HypercubeSolution(variant=variant, state_probabilities=pi, workload=workload, dispatch_fraction=frac,
                             dispatch_rate=rate, prob_all_busy=float(p_none), mean_queue_length=float(lq),
                             mean_wait=float(wq), mean_travel_time=mtt)
