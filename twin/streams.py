"""One registry of named random streams per run (STYLE §10).

The run seed is a :class:`numpy.random.SeedSequence`; stream ``i`` of the registry is its
child ``i`` — exactly ``SeedSequence(seed).spawn(n)[i]`` for any ``n > i`` — built without
spawning, so asking for one stream touches no other. Flows append their stream names in
flow order (new flows last), so adding a flow never changes an earlier stream, and two
scenarios run with one seed share every stream they both have (common random numbers).
"""

from __future__ import annotations

import numpy as np

from twin.errors import ScenarioError

__all__ = ["StreamRegistry", "replication_seeds"]


class StreamRegistry:
    """Named, independent streams of one run seed.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        The run seed (``>= 0``) or a replication's child sequence.
    names : sequence of str
        Stream names in registry order (unique).

    Examples
    --------
    >>> reg = StreamRegistry(1, ["calls", "traffic"])
    >>> reg.index("traffic"), reg.generator("calls").integers(10) == reg.generator("calls").integers(10)
    (1, np.True_)
    """

    def __init__(self, seed, names):
        self.root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.names = tuple(names)
        dup = sorted({n for n in self.names if self.names.count(n) > 1})
        if dup:
            raise ScenarioError(f"random streams {dup} are declared by more than one flow; stream names must be "
                                f"unique (registry: {', '.join(self.names)})")

    def index(self, name) -> int:
        """Position of stream ``name`` in the registry."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ScenarioError(f"no random stream {name!r}; the registry has {', '.join(self.names)}") from None

    def sequence(self, name) -> np.random.SeedSequence:
        """The stream's :class:`~numpy.random.SeedSequence` (child ``index(name)`` of the seed)."""
        r = self.root
        return np.random.SeedSequence(r.entropy, spawn_key=tuple(r.spawn_key) + (self.index(name),),
                                      pool_size=r.pool_size)

    def generator(self, name) -> np.random.Generator:
        """A fresh generator of the stream (the same draws every call)."""
        return np.random.default_rng(self.sequence(name))

    def int_seed(self, name) -> int:
        """The stream as one integer seed (its first 32-bit state word), for components that
        take an ``int`` seed."""
        return int(self.sequence(name).generate_state(1, dtype=np.uint32)[0])


#: Most replications of one ensemble (a study of a million runs is a mistyped -n, not a plan:
#: making its seeds alone took minutes).
MAX_REPLICATIONS = 100_000


def replication_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent run seeds spawned from ``seed``: the one replication derivation of the project.

    Replication ``i`` runs with the first 32-bit state word of child ``i`` of
    ``numpy.random.SeedSequence(seed)``, so it is the same whatever ``n`` is, and two scenarios
    replicated with one seed see the same streams, replication by replication (common random numbers).
    :func:`twin.ensemble.replicate` and :func:`twin.agents.ems.run_replications` both use it.

    Examples
    --------
    >>> replication_seeds(7, 3)[:2] == replication_seeds(7, 2)
    True
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_REPLICATIONS:
        raise ScenarioError(f"replications = {n!r}; expected an integer >= 1 and <= {MAX_REPLICATIONS:,} "
                            f"(MAX_REPLICATIONS)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ScenarioError(f"replication seed = {seed!r}; expected an integer >= 0")
    children = np.random.SeedSequence(int(seed)).spawn(int(n))
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]
