"""twin.runner: the run seed and the results-file checks of run()."""

import pytest
from twin_small import SMALL

from twin.errors import ResultsError, ScenarioError
from twin.runner import run


def test_seed_argument_and_out_checks(tmp_path):
    a, b = run(SMALL), run(SMALL, seed=3)
    assert a.seed == b.seed == 3
    assert a.ems.calls["time_s"].equals(b.ems.calls["time_s"])
    assert not run(SMALL, seed=4).ems.calls["time_s"].equals(a.ems.calls["time_s"])
    with pytest.raises(ScenarioError, match=r"run seed = -1; expected an integer >= 0"):
        run(SMALL, seed=-1)
    (tmp_path / "x.h5").write_text("")
    with pytest.raises(ResultsError, match="already exists"):
        run(SMALL, out=tmp_path / "x.h5")
