"""Time distributions of the EMS spec, and the small parsing helpers of the spec machinery.

- :class:`Dist`, a non-negative service/stay/processing-time distribution (constant,
  exponential, lognormal, gamma or a discrete empirical table) sampled by inverse transform
  from pre-drawn uniforms, so a call keeps its dice whatever unit serves it (common random
  numbers across policies);
- ``_fail``, ``_number``, ``_integer``, ``_choice``, ``_check_keys`` and ``_build``: the
  checks that turn a plain dict (a TOML table) into a frozen group with a clear
  :class:`~twin.errors.ScenarioError` (what, where, what was found, what is accepted).

Re-exported by :mod:`twin.emergency`, where the rest of the EMS spec lives.
"""

from __future__ import annotations

import difflib
import math
import numbers
from dataclasses import dataclass, fields

import numpy as np
from scipy.special import gammaincinv, ndtri

from twin.errors import ScenarioError

__all__ = ["Dist", "DIST_KINDS"]

#: Accepted distribution kinds (re-exported as :data:`twin.emergency.DIST_KINDS`).
DIST_KINDS = ("constant", "exponential", "lognormal", "gamma", "empirical")


# --------------------------------------------------------------------------------------
# parsing helpers

def _fail(where, msg):
    raise ScenarioError(f"{where}: {msg}")


def _number(value, where, *, minimum=0.0, strict=False, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        _fail(where, f"found {value!r}; expected a finite number {'>' if strict else '>='} {minimum:g}")
    if value < minimum or (strict and value == minimum):
        _fail(where, f"found {value!r}; expected a number {'>' if strict else '>='} {minimum:g}")
    return float(value)


def _integer(value, where, *, minimum=0, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(where, f"found {value!r}; expected an integer >= {minimum}")
    if value < minimum or (maximum is not None and value > maximum):
        rng = f"in {minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        _fail(where, f"found {value!r}; expected an integer {rng}")
    return int(value)


def _choice(value, where, accepted):
    if value not in accepted:
        _fail(where, f"found {value!r}; expected one of {', '.join(repr(a) for a in accepted)}")
    return value


def _check_keys(data, cls, where):
    if not isinstance(data, dict):
        _fail(where, f"found {type(data).__name__} {data!r}; expected a table (dict) of {cls.__name__} fields")
    names = [f.name for f in fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ScenarioError(f"unknown key '{key}' in {where}; {hint}accepted keys: {', '.join(names)}")


def _build(cls, data, where, **converters):
    """Build a frozen group from a dict: unknown keys are errors; converters parse fields."""
    _check_keys(data, cls, where)
    kwargs = {}
    for key, value in data.items():
        conv = converters.get(key)
        kwargs[key] = conv(value, f"{where}.{key}") if conv else value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a missing required key
        raise ScenarioError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------------------
# distributions

@dataclass(frozen=True)
class Dist:
    """A non-negative time distribution, sampled by inverse transform.

    Attributes
    ----------
    kind : str
        One of :data:`DIST_KINDS`.
    mean_s : float
        Mean in seconds, ``>= 0`` (``> 0`` except for ``constant``). For ``empirical`` it is
        the table's weighted mean, computed (any value given is replaced).
    cv : float
        Coefficient of variation (standard deviation / mean), ``> 0`` for ``lognormal`` and
        ``gamma``; ignored (1) for ``exponential`` and (0) for ``constant``; the table's own
        for ``empirical`` (computed).
    values_s : tuple of float
        ``empirical`` only: the table of observed values, seconds (``>= 0``, finite, any
        order, repeats allowed).
    weights : tuple of float
        ``empirical`` only: a weight ``>= 0`` per value (relative frequencies, summing to
        more than 0); empty for equal weights.

    Notes
    -----
    ``empirical`` is *discrete*, without interpolation: the values are sorted (stably) and
    ``ppf(u)`` is the smallest value ``x_k`` whose cumulative normalised weight exceeds
    ``u``, ``x_k`` with ``W_{k-1} <= u < W_k``. A sample takes only the table's values,
    with their weights as probabilities, so its mean is exactly the table's weighted mean
    and its quantiles are the table's (a length-of-stay table from records, reproduced as
    recorded).

    Examples
    --------
    >>> Dist("exponential", 60.0).ppf([0.5]).round(3)
    array([41.589])
    >>> Dist.parse(30, "x").kind
    'constant'
    >>> d = Dist.parse({"kind": "empirical", "values_s": [600, 60, 300], "weights": [1, 2, 1]}, "x")
    >>> d.mean_s, d.ppf([0.0, 0.49, 0.5, 0.74, 0.75, 0.999]).tolist()
    (255.0, [60.0, 60.0, 300.0, 300.0, 600.0, 600.0])
    """

    kind: str
    mean_s: float
    cv: float = 1.0
    values_s: tuple = ()
    weights: tuple = ()

    def __post_init__(self):
        _choice(self.kind, "distribution kind", DIST_KINDS)
        if self.kind == "empirical":
            self._init_empirical()
            return
        if self.values_s or self.weights:
            _fail(f"{self.kind} distribution", "values_s and weights belong to kind = 'empirical'")
        _number(self.mean_s, f"{self.kind} distribution mean_s", strict=self.kind != "constant")
        if self.kind in ("lognormal", "gamma"):
            _number(self.cv, f"{self.kind} distribution cv", strict=True)

    def _init_empirical(self):
        where = "empirical distribution"
        vals = self.values_s
        if isinstance(vals, (str, bytes)) or not isinstance(vals, (list, tuple, np.ndarray)) or len(vals) == 0:
            _fail(f"{where} values_s", f"found {vals!r}; expected a non-empty list of seconds >= 0")
        vals = tuple(_number(v, f"{where} values_s[{k}]") for k, v in enumerate(vals))
        w = self.weights
        if w is None or (isinstance(w, (list, tuple, np.ndarray)) and len(w) == 0):
            w = (1.0,) * len(vals)
        if isinstance(w, (str, bytes)) or not isinstance(w, (list, tuple, np.ndarray)) or len(w) != len(vals):
            _fail(f"{where} weights", f"found {w!r}; expected {len(vals)} weights >= 0 (one per value), or none")
        w = tuple(_number(x, f"{where} weights[{k}]") for k, x in enumerate(w))
        total = math.fsum(w)
        if not total > 0:
            _fail(f"{where} weights", f"found {list(w)}; expected weights >= 0 with a positive sum")
        order = np.argsort(np.asarray(vals), kind="stable")
        sorted_v = np.asarray(vals, dtype=np.float64)[order]
        p = np.asarray(w, dtype=np.float64)[order] / total
        cum = np.cumsum(p)
        cum[-1] = 1.0
        mean = float(np.dot(p, sorted_v))
        var = float(np.dot(p, (sorted_v - mean) ** 2))
        object.__setattr__(self, "values_s", vals)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "mean_s", mean)
        object.__setattr__(self, "cv", math.sqrt(var) / mean if mean > 0 else 0.0)
        object.__setattr__(self, "_table", (sorted_v, cum))

    @classmethod
    def empirical(cls, values_s, weights=()) -> "Dist":
        """An ``empirical`` distribution of a table of values (seconds) and optional weights."""
        return cls("empirical", 0.0, 0.0, tuple(values_s), tuple(weights))

    @classmethod
    def parse(cls, value, where):
        """A :class:`Dist` from a number (a constant, in seconds) or a table.

        A table has ``kind`` and ``mean_s`` and, for lognormal and gamma, ``cv``; an
        ``empirical`` table has ``values_s`` and optional ``weights`` instead.
        """
        if isinstance(value, Dist):
            return value
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return cls("constant", _number(value, where), 0.0)
        if not isinstance(value, dict):
            _fail(where, f"found {value!r}; expected a number of seconds or a table "
                         f"{{kind = ..., mean_s = ..., cv = ...}} with kind in {', '.join(DIST_KINDS)} "
                         f"(empirical: {{kind = 'empirical', values_s = [...], weights = [...]}})")
        _check_keys(value, cls, where)
        if value.get("kind") == "empirical":
            extra = sorted(k for k in value if k not in ("kind", "values_s", "weights"))
            if extra or "values_s" not in value:
                _fail(where, f"an empirical distribution table takes 'values_s' (seconds) and optional "
                             f"'weights' (its mean is the table's); found keys {sorted(value)}")
            try:
                return cls.empirical(_seq(value["values_s"], f"{where}.values_s"),
                                     _seq(value.get("weights", ()), f"{where}.weights"))
            except ScenarioError as exc:
                raise ScenarioError(f"{where}: {exc}") from None
        if "kind" not in value or "mean_s" not in value:
            _fail(where, f"a distribution table needs 'kind' and 'mean_s'; found keys {sorted(value)}")
        try:
            return cls(value["kind"], value["mean_s"], value.get("cv", 1.0), value.get("values_s", ()),
                       value.get("weights", ()))
        except ScenarioError as exc:
            raise ScenarioError(f"{where}: {exc}") from None

    def plain(self):
        """The TOML value :meth:`parse` reads back into this distribution."""
        if self.kind == "constant":
            return self.mean_s
        if self.kind == "empirical":
            return {"kind": "empirical", "values_s": list(self.values_s), "weights": list(self.weights)}
        d = {"kind": self.kind, "mean_s": self.mean_s}
        if self.kind in ("lognormal", "gamma"):
            d["cv"] = self.cv
        return d

    @property
    def is_zero(self) -> bool:
        return self.kind == "constant" and self.mean_s == 0.0

    def ppf(self, u):
        """Quantiles at probabilities ``u`` in ``[0, 1)``, in seconds (ndarray of float64)."""
        u = np.asarray(u, dtype=np.float64)
        m = self.mean_s
        if self.kind == "constant":
            return np.full(u.shape, m)
        if self.kind == "exponential":
            return -m * np.log1p(-u)
        if self.kind == "lognormal":
            s2 = math.log1p(self.cv ** 2)
            return np.exp(math.log(m) - 0.5 * s2 + math.sqrt(s2) * ndtri(u))
        if self.kind == "empirical":
            vals, cum = self._table
            k = np.searchsorted(cum, u, side="right")
            return vals[np.minimum(k, len(vals) - 1)]
        shape = 1.0 / self.cv ** 2                               # gamma
        return gammaincinv(shape, u) * (m / shape)


def _seq(value, where):
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        _fail(where, f"found {value!r}; expected a list of numbers")
    return tuple(value)
