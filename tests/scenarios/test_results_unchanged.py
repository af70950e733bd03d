"""The built-in scenarios' results files are pinned, dataset by dataset (outside ``/meta``).

``builtin_digests.json`` holds the SHA-256 of every dataset (dtype, shape, bytes and
attributes) of ``twin run <name> --out x.h5`` for the full built-in scenarios, made on the
commit before the flows redesign (142b5d5). A refactor must leave them all unchanged; a
commit that changes results on purpose regenerates them with
``python tests/scenarios/digest.py`` and says why. Why stored digests rather than re-running
the old commit in CI: the guard then holds for every later commit too, at the cost of three
runs (about 30 s), and needs no second install. The runs are child processes with numpy's
AVX-512 loops off (``digest.run_portable``), so x86-64 machines with and without AVX-512 agree.
Caveat: the digests pin bytes, so they assume the pinned numpy/numba of ``constraints.txt`` on
x86-64; another platform (e.g. aarch64) may differ in the last bit of a transcendental
function and then fails here first.
"""

import json

import pytest

from twin_digest import DIGESTS, SCENARIOS, compare, digests, run_portable

EXPECTED = json.loads(DIGESTS.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_builtin_results_file_is_unchanged(name, tmp_path):
    out = tmp_path / f"{name}.h5"
    run_portable(name, out)
    diff = compare(EXPECTED[name], digests(out))
    assert not diff, f"{name}: results differ from the pinned digests: " + "; ".join(diff[:20])
