"""Spatial access and its equity: cumulative opportunities, two-step floating catchments, Gini and Theil.

The measures a planner of "15-minute life circles" reads, on travel times from the network
(walk or drive, seconds) between demand locations ``i`` (districts, nodes, persons' homes) and
supply locations ``j`` (care centres, clinics):

* **Cumulative opportunities** within a threshold ``T``: ``O_i = Σ_j S_j [t_ij <= T]``.
* **Two-step floating catchment (2SFCA**, Luo & Wang 2003): each supply's ratio to the demand
  in its catchment, ``R_j = S_j / Σ_i P_i w(t_ij)``, then each demand location's accessibility
  ``A_i = Σ_j R_j w(t_ij)``, with ``w = 1`` inside ``T`` and 0 outside. **Enhanced 2SFCA**
  (Luo & Qi 2009) weighs both steps by distance-decay bands, e.g. 1.00 / 0.68 / 0.22 for
  0-5 / 5-10 / 10-15 minutes (their Gaussian-derived weights, cited from memory). Whatever the
  weights, ``Σ_i P_i A_i = Σ_j S_j`` over the supplies that have demand in reach: the measure
  shares out the supply, no more.
* **Equity** of a value over places or people: the Gini coefficient (mean absolute difference
  over twice the mean, no ``n / (n - 1)`` correction, as pysal ``inequality`` computes it), the
  Theil index ``T = mean((x / μ) ln(x / μ))`` with its exact decomposition into between-group
  and within-group parts (central vs peripheral districts), and the gap between two groups'
  means. Weights (persons) make each value count that many times.

pysal's ``access`` and ``inequality`` packages compute the same quantities;
``benchmarks/bench_access.py`` runs them side by side on the same inputs.

Examples
--------
The 2SFCA of three places and two centres (times in minutes, 15-minute catchment):

>>> import numpy as np
>>> t = np.array([[5, 20], [10, 10], [25, 5]]) * 60.0
>>> a, r = two_step_fca([100, 200, 300], [10, 20], t, 900.0)
>>> r.round(6).tolist(), a.round(6).tolist()
([0.033333, 0.04], [0.033333, 0.073333, 0.04])
>>> cumulative_opportunities([10, 20], t, 900.0).tolist()
[10.0, 30.0, 20.0]
>>> round(gini([1, 2, 3, 4, 5]), 6), gini([0, 0, 0, 1])
(0.266667, 0.75)
"""

from __future__ import annotations

import numpy as np

from twin.errors import ScenarioError

__all__ = ["cumulative_opportunities", "two_step_fca", "band_weights", "gini", "theil", "theil_decomposition",
           "group_gap", "LUO_QI_BANDS_S", "LUO_QI_WEIGHTS"]

#: Enhanced 2SFCA travel-time bands, seconds (0-5, 5-10, 10-15 minutes; Luo & Qi 2009).
LUO_QI_BANDS_S = (300.0, 600.0, 900.0)
#: Their weights for those bands (Gaussian-derived; cited from memory).
LUO_QI_WEIGHTS = (1.0, 0.68, 0.22)


def _times(times_s, n_demand, n_supply, where):
    t = np.asarray(times_s, dtype=np.float64)
    if t.shape != (n_demand, n_supply):
        raise ScenarioError(f"{where}: times_s has shape {t.shape}; expected (demand, supply) = "
                            f"({n_demand}, {n_supply})")
    if np.isnan(t).any() or (t < 0).any():
        raise ScenarioError(f"{where}: times_s must be >= 0 (inf where unreachable), without NaN")
    return t


def _amounts(values, what, where):
    v = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(v)) or (v < 0).any():
        raise ScenarioError(f"{where}: {what} must be finite numbers >= 0")
    return v


def band_weights(times_s, bands_s=LUO_QI_BANDS_S, weights=LUO_QI_WEIGHTS):
    """Weight of each travel time: ``weights[k]`` for the first band with ``t <= bands_s[k]``,
    0 beyond the last band (a step distance decay)."""
    b, w = np.asarray(bands_s, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    if b.ndim != 1 or len(b) != len(w) or len(b) < 1 or np.any(np.diff(b) <= 0) or (w < 0).any():
        raise ScenarioError(f"bands_s {list(b)} and weights {list(w)}: expected increasing bands and as many "
                            f"weights >= 0")
    t = np.asarray(times_s, dtype=np.float64)
    k = np.searchsorted(b, t, side="left")
    return np.where(k < len(b), w[np.minimum(k, len(b) - 1)], 0.0)


def cumulative_opportunities(supply, times_s, threshold_s):
    """Supply within ``threshold_s`` of each demand location: ``Σ_j S_j [t_ij <= T]``."""
    s = _amounts(supply, "supply", "cumulative_opportunities")
    t = np.asarray(times_s, dtype=np.float64)
    t = _times(t, t.shape[0] if t.ndim == 2 else -1, len(s), "cumulative_opportunities")
    return ((t <= threshold_s) * s[None, :]).sum(axis=1)


def two_step_fca(demand, supply, times_s, threshold_s=None, *, bands_s=None, weights=None):
    """Two-step floating catchment accessibility (see the module docstring).

    Parameters
    ----------
    demand : array_like, shape (n_demand,)
        Persons (or any demand) at each demand location.
    supply : array_like, shape (n_supply,)
        Places (or staff, doctors) at each supply location.
    times_s : array_like, shape (n_demand, n_supply)
        Travel time, seconds (``inf`` where unreachable).
    threshold_s : float, optional
        The catchment of the plain 2SFCA (weight 1 within, 0 beyond).
    bands_s, weights : sequences, optional
        Instead of ``threshold_s``: the enhanced 2SFCA's distance-decay bands
        (:func:`band_weights`; :data:`LUO_QI_BANDS_S` with :data:`LUO_QI_WEIGHTS` is Luo & Qi's).

    Returns
    -------
    access : ndarray, shape (n_demand,)
        Supply per unit of demand reachable from each demand location.
    ratio : ndarray, shape (n_supply,)
        Each supply's ratio to the weighted demand in its catchment (0 where none is).
    """
    p = _amounts(demand, "demand", "two_step_fca")
    s = _amounts(supply, "supply", "two_step_fca")
    t = _times(times_s, len(p), len(s), "two_step_fca")
    if (threshold_s is None) == (bands_s is None):
        raise ScenarioError("two_step_fca: give threshold_s (2SFCA) or bands_s with weights (enhanced 2SFCA)")
    w = (t <= threshold_s).astype(np.float64) if threshold_s is not None else band_weights(t, bands_s, weights)
    reach = p @ w
    ratio = np.divide(s, reach, out=np.zeros_like(s), where=reach > 0)
    return w @ ratio, ratio


def _weights(values, weights, where):
    x = np.asarray(values, dtype=np.float64).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != x.shape or not np.all(np.isfinite(x)) or not np.all(np.isfinite(w)) or (w < 0).any():
        raise ScenarioError(f"{where}: values and weights must be finite, of equal length, weights >= 0")
    if w.sum() <= 0:
        raise ScenarioError(f"{where}: no weight (no persons)")
    return x, w


def gini(values, weights=None) -> float:
    """Gini coefficient ``Σ_i Σ_j w_i w_j |x_i - x_j| / (2 W² μ)`` (0 when the mean is 0)."""
    x, w = _weights(values, weights, "gini")
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    total, mean = float(w.sum()), float((w * x).sum() / w.sum())
    before = np.cumsum(w) - w
    pairs = 2.0 * float((w * x * (before - (total - before - w))).sum())
    return 0.0 if mean == 0 else pairs / (2.0 * total * total * mean)


def _theil_parts(x, w):
    mu = float((w * x).sum() / w.sum())
    if mu <= 0:
        return 0.0, mu
    r = x / mu
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(r > 0, r * np.log(r), 0.0)
    return float((w * term).sum() / w.sum()), mu


def theil(values, weights=None) -> float:
    """Theil's T index ``Σ w (x/μ) ln(x/μ) / W`` (``0 ln 0 = 0``; values must be >= 0)."""
    x, w = _weights(values, weights, "theil")
    if (x < 0).any():
        raise ScenarioError("theil: values must be >= 0")
    return _theil_parts(x, w)[0]


def theil_decomposition(values, groups, weights=None) -> dict:
    """Theil's T split exactly into ``between`` (the groups' means) and ``within`` (each group's
    own T, weighted by its share of the total): ``{"total", "between", "within"}``."""
    x, w = _weights(values, weights, "theil_decomposition")
    g = np.asarray(groups).ravel()
    if g.shape != x.shape:
        raise ScenarioError("theil_decomposition: one group per value")
    total, mu = _theil_parts(x, w)
    between = within = 0.0
    for k in np.unique(g):
        m = g == k
        t_k, mu_k = _theil_parts(x[m], w[m])
        share = float((w[m] * x[m]).sum() / (w * x).sum()) if mu > 0 else 0.0
        if share > 0:
            between += share * np.log(mu_k / mu)
            within += share * t_k
    return {"total": total, "between": float(between), "within": float(within)}


def group_gap(values, in_group, weights=None) -> float:
    """Mean of the values outside the group minus the mean inside (e.g. peripheral - central)."""
    x, w = _weights(values, weights, "group_gap")
    m = np.asarray(in_group, dtype=bool).ravel()
    if not m.any() or m.all():
        return float("nan")
    return float((w[~m] * x[~m]).sum() / w[~m].sum() - (w[m] * x[m]).sum() / w[m].sum())
