"""twin.data.orlib: the OR-Library p-median format, the last-cost rule, and located errors."""

import io

import numpy as np
import pytest

from twin.data.orlib import read_orlib_pmed
from twin.errors import NetworkError


def test_last_cost_wins_and_shortest_paths_complete_the_matrix():
    cost, p = read_orlib_pmed(io.StringIO("4 4 2\n1 2 5\n2 3 4\n1 2 1\n3 4 0\n"))
    assert p == 2
    np.testing.assert_array_equal(cost, [[0, 1, 5, 5], [1, 0, 4, 4], [5, 4, 0, 0], [5, 4, 0, 0]])


def test_disconnected_nodes_are_inf():
    cost, _ = read_orlib_pmed(io.StringIO("3 1 1\n1 2 3\n"))
    assert np.isinf(cost[0, 2]) and cost[0, 1] == 3


@pytest.mark.parametrize("text,match", [
    ("", r"empty file"),
    ("3 1\n", r"line 1: '3 1'; expected 3 numbers"),
    ("3 2 1\n1 2 3\n", r"1 edge lines; the header promises e = 2"),
    ("3 1 1\n1 4 3\n", r"line 2: edge 1-4; expected nodes in 1..3"),
    ("3 1 1\n1 2 x\n", r"line 2: '1 2 x'; expected integers"),
    ("3 1 1\n1 2 -3\n", r"line 2: cost -3; expected a cost >= 0"),
    ("3 1 5\n1 2 3\n", r"p = 5; expected n >= 1, e >= 0, 1 <= p <= n"),
])
def test_bad_files_name_the_line(text, match):
    with pytest.raises(NetworkError, match=match):
        read_orlib_pmed(io.StringIO(text))


def test_missing_file(tmp_path):
    with pytest.raises(NetworkError, match="no such OR-Library file"):
        read_orlib_pmed(tmp_path / "pmed99.txt")
