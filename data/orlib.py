"""Reader of OR-Library p-median instances (Beasley 1985; ``pmed1.txt`` ... ``pmed40.txt``).

The format: a first line ``n e p`` (nodes, edges, medians), then ``e`` lines ``i j cost`` of an
undirected graph on nodes ``1..n``. When an edge appears more than once the **last** cost
given is the one used (the OR-Library convention); all-pairs shortest paths then complete the
``n x n`` cost matrix, every node both a demand point and a candidate site.

Examples
--------
>>> import io
>>> cost, p = read_orlib_pmed(io.StringIO("3 3 1\\n1 2 5\\n2 3 4\\n1 2 7\\n"))
>>> p, cost[0].tolist()
(1, [0.0, 7.0, 11.0])
"""

from __future__ import annotations

import io
import os

import numpy as np

from twin.errors import NetworkError

__all__ = ["read_orlib_pmed"]


def _lines(source):
    if isinstance(source, io.IOBase) or hasattr(source, "read"):
        return source.read().split("\n"), "<stream>"
    path = os.fspath(source)
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().split("\n"), path
    except FileNotFoundError:
        raise NetworkError(f"{path}: no such OR-Library file") from None
    except UnicodeDecodeError:
        raise NetworkError(f"{path}: not a text file (expected OR-Library 'n e p' then 'i j cost' lines)") from None


def _ints(line, k, where):
    parts = line.split()
    if len(parts) != k:
        raise NetworkError(f"{where}: {line.strip()!r}; expected {k} numbers")
    try:
        return [int(v) for v in parts]
    except ValueError:
        raise NetworkError(f"{where}: {line.strip()!r}; expected integers") from None


def read_orlib_pmed(source):
    """Read an OR-Library p-median instance.

    Parameters
    ----------
    source : path or text stream

    Returns
    -------
    cost : ndarray of float64, shape (n, n)
        Shortest-path costs between nodes (node ``k`` of the file is row and column ``k - 1``);
        ``inf`` between nodes the graph does not connect.
    p : int
        The number of medians.

    Raises
    ------
    NetworkError
        A missing file, a malformed line (named by line number), a node outside ``1..n``, a
        negative cost, or fewer edge lines than the header promises.
    """
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import shortest_path

    lines, where = _lines(source)
    body = [(k + 1, ln) for k, ln in enumerate(lines) if ln.strip()]
    if not body:
        raise NetworkError(f"{where}: empty file; expected a first line 'n e p'")
    n, e, p = _ints(body[0][1], 3, f"{where}, line {body[0][0]}")
    if n < 1 or e < 0 or not 1 <= p <= n:
        raise NetworkError(f"{where}, line {body[0][0]}: n = {n}, e = {e}, p = {p}; expected n >= 1, e >= 0, 1 <= p <= n")
    if len(body) - 1 < e:
        raise NetworkError(f"{where}: {len(body) - 1} edge lines; the header promises e = {e}")
    last = {}
    for lineno, ln in body[1:e + 1]:
        i, j, c = _ints(ln, 3, f"{where}, line {lineno}")
        if not (1 <= i <= n and 1 <= j <= n):
            raise NetworkError(f"{where}, line {lineno}: edge {i}-{j}; expected nodes in 1..{n}")
        if c < 0:
            raise NetworkError(f"{where}, line {lineno}: cost {c}; expected a cost >= 0")
        last[(min(i, j), max(i, j))] = c          # the last cost of an edge wins
    keys = np.array(list(last.keys()), dtype=np.int64).reshape(-1, 2) - 1
    a, b = keys[:, 0], keys[:, 1]
    c = np.array(list(last.values()), dtype=np.float64)
    # zero-cost edges must survive the sparse graph: shift by a tiny amount and undo after
    graph = coo_array((c + 1e-300, (a, b)), shape=(n, n)).tocsr()
    cost = shortest_path(graph, method="D", directed=False)
    cost[np.isfinite(cost)] = np.round(cost[np.isfinite(cost)], 9)
    return cost, int(p)
