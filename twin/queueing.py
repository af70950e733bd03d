"""Closed forms of the classical Markovian queues used to validate beds and fleets.

Erlang's loss formula (M/M/c/c, and M/G/c/c by insensitivity), Erlang's delay formula
(M/M/c with an infinite FCFS queue) and the quantities derived from them. Every function
is exact (no approximation) and numerically stable for thousands of servers: the Erlang B
recursion never forms ``a**c`` or ``c!``.

References
----------
A. K. Erlang (1917); L. Kleinrock, *Queueing Systems* vol. 1 (1975), §3.6 and §3.10;
R. C. Larson and A. R. Odoni, *Urban Operations Research* (1981), §4.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "erlang_b",
    "erlang_c",
    "loss_mean_busy",
    "loss_utilisation",
    "loss_state_probabilities",
    "mmc_mean_wait",
    "mmc_mean_queue_length",
    "mmc_wait_exceeds_probability",
    "mmc_state_probabilities",
]


def _check(c, a, *, need_stable=False):
    if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 0:
        raise ValueError(f"number of servers c = {c!r}; expected an integer >= 0")
    if isinstance(a, bool) or not isinstance(a, numbers.Real) or not (math.isfinite(a) and a >= 0):
        raise ValueError(f"offered load a = {a!r}; expected a finite number >= 0 erlangs")
    if need_stable and not a < c:
        raise ValueError(f"offered load a = {a!r} erlangs with c = {c} servers; a queue with infinite "
                         f"waiting room is stable only for a < c")
    return int(c), float(a)


def erlang_b(c, a) -> float:
    """Blocking probability of the loss system M/M/c/c (Erlang's B formula).

    Parameters
    ----------
    c : int
        Number of servers (beds, units), ``>= 0``.
    a : float
        Offered load in erlangs: arrival rate × mean service time, ``>= 0``.

    Returns
    -------
    float
        ``B(c, a) = (a^c / c!) / sum_{k=0..c} a^k / k!``, the probability that an arriving
        customer finds every server busy and is lost. ``B(0, a) = 1``.

    Raises
    ------
    ValueError
        ``c`` is not an integer >= 0, or ``a`` is negative or not finite.

    Notes
    -----
    Computed with the stable recursion ``B(0) = 1``, ``B(k) = a B(k-1) / (k + a B(k-1))``.
    By insensitivity the formula holds for any service-time distribution with the same
    mean (M/G/c/c).

    Examples
    --------
    >>> round(erlang_b(2, 1.0), 6)
    0.2
    >>> erlang_b(0, 3.0)
    1.0
    """
    c, a = _check(c, a)
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c, a) -> float:
    """Probability that an arrival waits in M/M/c (Erlang's C formula).

    Parameters
    ----------
    c : int
        Number of servers, ``>= 1``.
    a : float
        Offered load in erlangs, ``0 <= a < c``.

    Returns
    -------
    float
        ``C(c, a) = c B / (c - a (1 - B))`` with ``B = erlang_b(c, a)``; by PASTA also the
        long-run fraction of time all servers are busy.

    Raises
    ------
    ValueError
        ``c`` is not an integer >= 1, or the queue is unstable (``a >= c``).

    Examples
    --------
    >>> round(erlang_c(1, 0.5), 6)
    0.5
    >>> round(erlang_c(2, 1.0), 6)
    0.333333
    """
    c, a = _check(c, a, need_stable=True)
    b = erlang_b(c, a)
    return c * b / (c - a * (1.0 - b))


def mmc_mean_wait(c, a, mean_service) -> float:
    """Mean time in queue (before service) in M/M/c with FCFS and infinite waiting room.

    Parameters
    ----------
    c : int
        Number of servers, ``>= 1``.
    a : float
        Offered load in erlangs, ``0 <= a < c``.
    mean_service : float
        Mean service time ``1/mu``, ``> 0``, in any time unit; the result is in the same unit.

    Returns
    -------
    float
        ``W_q = C(c, a) · mean_service / (c - a)``.

    Examples
    --------
    >>> round(mmc_mean_wait(1, 0.5, 10.0), 6)   # M/M/1: rho/(1-rho) · 1/mu
    10.0
    """
    if not (isinstance(mean_service, numbers.Real) and math.isfinite(mean_service) and mean_service > 0):
        raise ValueError(f"mean_service = {mean_service!r}; expected a finite number > 0")
    c, a = _check(c, a, need_stable=True)
    return erlang_c(c, a) * float(mean_service) / (c - a)


def mmc_mean_queue_length(c, a) -> float:
    """Mean number waiting in M/M/c: ``L_q = C(c, a) · a / (c - a)`` (Little: ``λ W_q``)."""
    c, a = _check(c, a, need_stable=True)
    return erlang_c(c, a) * a / (c - a)


def mmc_wait_exceeds_probability(c, a, t, mean_service) -> float:
    """``P(W_q > t) = C(c, a) · exp(-(c - a) t / mean_service)`` in M/M/c FCFS, ``t >= 0``."""
    if not (isinstance(t, numbers.Real) and t >= 0):
        raise ValueError(f"t = {t!r}; expected a number >= 0 in the unit of mean_service")
    mmc_mean_wait(c, a, mean_service)  # validates c, a and mean_service
    return erlang_c(c, a) * math.exp(-(c - a) * float(t) / float(mean_service))


def loss_mean_busy(c, a) -> float:
    """Mean number of busy servers in M/G/c/c: the carried load ``a (1 - B(c, a))``."""
    c, a = _check(c, a)
    return a * (1.0 - erlang_b(c, a))


def loss_utilisation(c, a) -> float:
    """Mean fraction of servers busy in M/G/c/c: ``a (1 - B(c, a)) / c`` (``c >= 1``)."""
    c, a = _check(c, a)
    if c == 0:
        raise ValueError("loss_utilisation needs c >= 1 servers")
    return loss_mean_busy(c, a) / c


def loss_state_probabilities(c, a) -> np.ndarray:
    """Stationary distribution of the number busy in M/G/c/c (truncated Poisson).

    Returns
    -------
    ndarray of float64, shape (c + 1,)
        ``p[k] ∝ a^k / k!`` for ``k = 0..c``; ``p[c] = erlang_b(c, a)``.
    """
    c, a = _check(c, a)
    logw = np.array([k * math.log(a) - math.lgamma(k + 1) if a > 0 else (0.0 if k == 0 else -np.inf)
                     for k in range(c + 1)])
    w = np.exp(logw - logw.max())
    return w / w.sum()


def mmc_state_probabilities(c, a, k_max) -> np.ndarray:
    """Stationary probabilities of ``0..k_max`` customers in M/M/c (in service plus waiting).

    ``p[k] = p[c'] · (a/c)^(k - c')`` above ``c' = c``; the rest is the truncated Poisson
    scaled so that the infinite sum is 1. Entries beyond ``k_max`` are not returned.
    """
    c, a = _check(c, a, need_stable=True)
    if c == 0:
        raise ValueError("an M/M/c queue needs c >= 1 servers")
    head = loss_state_probabilities(c, a)          # normalised over 0..c
    rho = a / c
    scale = 1.0 / (1.0 - head[c] + head[c] / (1.0 - rho))
    out = np.empty(int(k_max) + 1)
    for k in range(int(k_max) + 1):
        out[k] = head[k] * scale if k <= c else head[c] * scale * rho ** (k - c)
    return out
