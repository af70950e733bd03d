"""Scores of probabilistic forecasts: CRPS and interval coverage.

- :func:`crps_ensemble`: the continuous ranked probability score of an ensemble forecast,
  ``E|X - y| - E|X - X'| / 2`` over the ensemble's empirical distribution (Gneiting and
  Raftery 2007, *J. Amer. Statist. Assoc.* 102, 359-378, eq. 21), in the forecast quantity's
  units; 0 for a perfect, sharp forecast. Computed from the sorted members in O(m log m).
  ``fair=True`` divides the spread term by ``m (m - 1)`` instead of ``m^2`` (Ferro 2014), so
  that ensembles of different sizes compare without bias.
- :func:`crps_gaussian`: the closed form for a normal forecast ``N(mu, sigma^2)``,
  ``sigma (z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi))`` with ``z = (y - mu) / sigma``;
  0.233695 sigma at ``y = mu``.
- :func:`interval_coverage`: the share of cases whose truth lies inside the central interval of
  the members (e.g. 90 %: between the 5th and 95th percentiles).

How to read them: CRPS generalises the absolute error (a one-member forecast's CRPS is its
absolute error), so smaller is better and it carries units; a 90 % interval that is honest
covers the truth in about 90 % of cases (far fewer: too sharp, over-confident; nearly all:
too wide).
"""

from __future__ import annotations

import math

import numpy as np

from twin.errors import ScenarioError

__all__ = ["crps_ensemble", "crps_gaussian", "interval_coverage", "central_interval"]


def crps_ensemble(members, truth, fair: bool = False):
    """CRPS of ensemble forecasts.

    ``members``: (..., m) the members of each forecast (the last axis); ``truth``: (...) the
    observed values. NaN members are an error (a member that failed is not a forecast). Returns
    an array of shape (...) (a float for one forecast)."""
    x = np.sort(np.asarray(members, dtype=np.float64), axis=-1)
    y = np.asarray(truth, dtype=np.float64)
    if x.shape[-1] < 1 or np.isnan(x).any():
        raise ScenarioError(f"crps_ensemble: members of shape {np.shape(members)}, with NaN or none")
    if x.shape[:-1] != y.shape:
        raise ScenarioError(f"crps_ensemble: members {x.shape} and truth {y.shape} do not match (members on the last axis)")
    m = x.shape[-1]
    abs_err = np.abs(x - y[..., None]).mean(axis=-1)
    # sum_{i,j} |x_i - x_j| = 2 sum_i (2 i - m - 1) x_(i), i = 1..m over the sorted members
    spread = 2.0 * (x * (2.0 * np.arange(1, m + 1) - m - 1)).sum(axis=-1)
    denom = m * (m - 1) if fair and m > 1 else m * m
    out = abs_err - 0.5 * spread / denom
    return float(out) if out.ndim == 0 else out


def crps_gaussian(mu, sigma, truth):
    """CRPS of the normal forecast ``N(mu, sigma^2)`` at ``truth`` (closed form; ``sigma > 0``)."""
    mu, sigma, y = (np.asarray(a, dtype=np.float64) for a in (mu, sigma, truth))
    if np.any(sigma <= 0):
        raise ScenarioError("crps_gaussian: sigma must be > 0")
    z = (y - mu) / sigma
    phi = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    cdf = 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
    out = sigma * (z * (2.0 * cdf - 1.0) + 2.0 * phi - 1.0 / math.sqrt(math.pi))
    return float(out) if out.ndim == 0 else out


def _erf(x):
    from scipy.special import erf

    return erf(x)


def central_interval(members, level: float = 0.9):
    """``(low, high)``: the central ``level`` interval of each forecast's members (last axis),
    by linear interpolation between order statistics (numpy's default percentile)."""
    if not 0.0 < level < 1.0:
        raise ScenarioError(f"central_interval: level {level}; expected between 0 and 1 (e.g. 0.9)")
    x = np.asarray(members, dtype=np.float64)
    a = 100.0 * (1.0 - level) / 2.0
    return np.percentile(x, a, axis=-1), np.percentile(x, 100.0 - a, axis=-1)


def interval_coverage(members, truth, level: float = 0.9) -> float:
    """Share of forecasts (all but the last axis of ``members``) whose truth lies in the central
    ``level`` interval of their members (ends included)."""
    lo, hi = central_interval(members, level)
    y = np.asarray(truth, dtype=np.float64)
    if lo.shape != y.shape:
        raise ScenarioError(f"interval_coverage: members {np.shape(members)} and truth {y.shape} do not match")
    return float(np.mean((y >= lo) & (y <= hi)))
