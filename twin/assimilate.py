"""Data assimilation for forecasts: an ensemble adjustment Kalman filter and importance resampling.

Before a forecast, what was observed up to its start (calls counted per hour, link counts or
speeds) updates the uncertain parts of the members: their rates (continuous) and, where the
state is discrete, which members go on.

- :func:`eakf_update`: the ensemble adjustment Kalman filter (Anderson 2001, *Mon. Wea. Rev.*
  129, 2884-2903), observations processed one at a time. For each observation ``y`` with error
  variance ``r`` and the members' predicted values ``hx`` (mean ``m``, variance ``v``), the
  observed quantity's ensemble is shifted and shrunk to the exact Gaussian posterior,
  ``v_a = 1 / (1/v + 1/r)``, ``m_a = v_a (m/v + y/r)``, ``hx_a = m_a + sqrt(v_a/v) (hx - m)``,
  and every state variable moves by its regression on ``hx``. Deterministic: no perturbed
  observations, so the posterior mean and variance are those of the linear-Gaussian update of
  the prior ensemble's moments (a prior N(10, 4) observed as 12 with variance 1 gives
  N(11.6, 0.8)).
- :func:`importance_weights` and :func:`systematic_resample`: a particle filter's step for the
  discrete state (which members' futures stay plausible): Gaussian likelihood weights, then
  systematic resampling (Kitagawa 1996), whose counts differ from ``n w_i`` by less than one.

Both are plain numpy (the ensembles are tens to thousands of members, not a hot loop).
"""

from __future__ import annotations

import numpy as np

from twin.errors import ScenarioError

__all__ = ["eakf_update", "importance_weights", "normalised_weights", "systematic_resample", "effective_size",
           "poisson_log_likelihood"]


def eakf_update(ensemble, observations, obs_variance, obs_operator=None) -> np.ndarray:
    """The ensemble after assimilating ``observations`` (ensemble adjustment Kalman filter).

    Parameters
    ----------
    ensemble : array (members, n_state) or (members,)
        Prior members (at least 2).
    observations : array (n_obs,) or float
        Observed values.
    obs_variance : array (n_obs,) or float
        Their error variances (> 0), in the observations' units squared.
    obs_operator : array (n_obs, n_state), callable, or None
        The observed quantity of a member: a matrix (``H @ x``), a function of the whole
        ensemble returning (members, n_obs), or None (the state itself is observed, n_obs =
        n_state).

    Returns
    -------
    The posterior ensemble, same shape as ``ensemble``.
    """
    x = np.array(ensemble, dtype=np.float64)
    flat = x.ndim == 1
    if flat:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2:
        raise ScenarioError(f"eakf_update: ensemble of shape {np.shape(ensemble)}; expected (members >= 2, n_state)")
    y = np.atleast_1d(np.asarray(observations, dtype=np.float64))
    r = np.broadcast_to(np.asarray(obs_variance, dtype=np.float64), y.shape)
    if not (np.all(np.isfinite(y)) and np.all(r > 0)):
        raise ScenarioError("eakf_update: observations must be finite and their variances > 0")
    if obs_operator is None:
        if len(y) != x.shape[1]:
            raise ScenarioError(f"eakf_update: {len(y)} observations of a state with {x.shape[1]} variables; "
                                f"give obs_operator")
        predict = lambda ens: ens                  # noqa: E731
    elif callable(obs_operator):
        predict = obs_operator
    else:
        h = np.asarray(obs_operator, dtype=np.float64).reshape(len(y), x.shape[1])
        predict = lambda ens: ens @ h.T            # noqa: E731
    for k in range(len(y)):                        # serial: each observation sees the previous updates
        hx = np.asarray(predict(x), dtype=np.float64).reshape(x.shape[0], -1)[:, k]
        m, v = hx.mean(), hx.var(ddof=1)
        if not v > 0:
            continue                               # the members agree: nothing to adjust
        va = 1.0 / (1.0 / v + 1.0 / r[k])
        ma = va * (m / v + y[k] / r[k])
        dy = ma + np.sqrt(va / v) * (hx - m) - hx
        cov = (x - x.mean(axis=0)).T @ (hx - m) / (x.shape[0] - 1)
        x += np.outer(dy, cov / v)
    return x[:, 0] if flat else x


def importance_weights(predicted, observations, obs_variance) -> np.ndarray:
    """Normalised Gaussian likelihood weights of members whose predicted observations are
    ``predicted`` (members, n_obs); computed in logs, so far-off members underflow to 0 only
    relative to the best one."""
    p = np.asarray(predicted, dtype=np.float64)
    p = p.reshape(p.shape[0], -1)
    y = np.atleast_1d(np.asarray(observations, dtype=np.float64))
    r = np.broadcast_to(np.asarray(obs_variance, dtype=np.float64), y.shape)
    if p.shape[1] != len(y) or not np.all(r > 0):
        raise ScenarioError(f"importance_weights: predictions of shape {p.shape} for {len(y)} observations "
                            f"(variances > 0)")
    return normalised_weights(-0.5 * (((p - y) ** 2) / r).sum(axis=1))


def normalised_weights(log_weights) -> np.ndarray:
    """Weights summing to 1 from log weights (shifted by their maximum first, so that nothing
    underflows but what is negligible beside the best)."""
    lw = np.asarray(log_weights, dtype=np.float64)
    if lw.ndim != 1 or not len(lw) or np.isnan(lw).any() or not np.isfinite(lw.max()):
        raise ScenarioError("normalised_weights: expected a vector of log weights, at least one finite")
    w = np.exp(lw - lw.max())
    return w / w.sum()


def poisson_log_likelihood(expected, observed) -> np.ndarray:
    """Per member, ``log P(observed | Poisson(expected))`` summed over the observed counts, less
    the ``log(observed!)`` terms that all members share. ``expected``: (members,) for one
    count or (members, n_obs); ``observed``: one count or n_obs counts."""
    lam = np.asarray(expected, dtype=np.float64)
    lam = lam[:, None] if lam.ndim == 1 else lam
    k = np.atleast_1d(np.asarray(observed, dtype=np.float64))
    if lam.ndim != 2 or k.ndim != 1 or lam.shape[1] != len(k) or np.any(lam < 0) or np.any(k < 0):
        raise ScenarioError(f"poisson_log_likelihood: expected counts of shape {np.shape(expected)} for "
                            f"{len(k)} observed counts (all >= 0)")
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(k > 0, k * np.log(lam), 0.0) - lam
    return term.sum(axis=1)


def systematic_resample(weights, rng, n=None) -> np.ndarray:
    """``n`` (default: as many as weights) indices after systematic resampling (one uniform draw
    from ``rng``): index ``i`` appears ``floor(n w_i)`` or ``ceil(n w_i)`` times, in ascending
    order."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or not len(w) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
        raise ScenarioError("systematic_resample: weights must be a non-negative vector summing to 1")
    n = len(w) if n is None else int(n)
    points = (rng.random() + np.arange(n)) / n
    cum = np.cumsum(w)
    cum[-1] = 1.0
    return np.searchsorted(cum, points, side="right")


def effective_size(weights) -> float:
    """Kish's effective sample size ``1 / sum(w^2)`` of normalised weights."""
    w = np.asarray(weights, dtype=np.float64)
    return float(1.0 / np.sum(w * w))
