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


def test_hostile_paths_and_outputs_fail_before_simulating(tmp_path, monkeypatch):
    """[reliability] #16 items 5 and 9: a pipe, a device or a folder named as an input file, and an
    --out that is a folder or in a read-only folder, are clear errors before any simulating."""
    import os
    import stat

    import pytest

    from twin.errors import ResultsError, ScenarioError
    from twin.runner import load_scenario, run

    fifo = tmp_path / "trips.csv"
    os.mkfifo(fifo)
    for value, kind in ((str(fifo), "a pipe"), ("/dev/zero", "a device"), (str(tmp_path), "a folder")):
        with pytest.raises(ScenarioError, match=r"\[traffic\] trips = .* is " + kind + "; expected a regular file"):
            load_scenario("hefei_day", overrides=[f"traffic.trips={value}"])
    (tmp_path / "hefei-baohe").mkdir()          # a folder named like the embedded city does not hide it
    monkeypatch.chdir(tmp_path)
    assert load_scenario("hefei_day", overrides=["run.until_s=600"]).city.name == "hefei-baohe"
    with pytest.raises(ResultsError, match="it is a folder"):
        run("hefei_day", out=tmp_path, overwrite=True, overrides=["run.until_s=600"])
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if not os.access(ro, os.W_OK):             # (root may write anyway)
            with pytest.raises(ResultsError, match="not writable"):
                run("hefei_day", out=ro / "x.h5", overrides=["run.until_s=600"])
    finally:
        ro.chmod(stat.S_IRWXU)


def test_a_trips_csv_without_a_column_and_absurd_departures_are_clear_errors(tmp_path):
    """[reliability] #16 items 6 and 7: a trips CSV without depart_s named as such (not a NaN row
    or a KeyError); a departure beyond 1e12 s refused (it would wrap to t = 0 in the engine)."""
    import pytest

    import twin
    from twin.errors import ScenarioError, TwinError
    from twin.runner import load_scenario, run

    no_col = tmp_path / "a.csv"
    no_col.write_text("origin,destination\n8131109677,11027557490\n")
    with pytest.raises(ScenarioError, match="has no column\\(s\\) depart_s; expected origin, destination"):
        run(load_scenario("hefei_day", overrides=["run.until_s=600", f"traffic.trips={no_col}"]))
    with pytest.raises(TwinError, match="expected finite seconds from 0 to 1e\\+12"):
        twin.simulate_traffic(twin.load_city("grid:4x4"), trips={"origin": [0], "destination": [5],
                                                                "depart_s": [9.3e18]}, until_s=3600)


def test_deep_nesting_is_a_clear_error_not_a_recursion_error(tmp_path):
    """[reliability] #16 item 4: 600 levels of TOML arrays or inline tables, in a file or a --set
    value, and a /meta JSON nested as deep, give twin errors."""
    import h5py
    import pytest

    import twin
    from twin.errors import ResultsError, ScenarioError
    from twin.runner import load_scenario, run

    for body in ("[run]\nuntil_s = " + "[" * 600 + "]" * 600, "x = " + "{a=" * 600 + "1" + "}" * 600,
                 "[run]\nuntil_s = " + "[" * 40 + "]" * 40):
        p = tmp_path / "deep.toml"
        p.write_text(body + "\n")
        with pytest.raises(ScenarioError, match="nested more than 32 levels"):
            load_scenario(p)
    with pytest.raises(ScenarioError, match="nested more than 32 levels"):
        load_scenario("hefei_day", overrides=["run.until_s=" + "[" * 600 + "]" * 600])
    out = tmp_path / "r.h5"
    run("hefei_day", out=out, overrides=["run.until_s=600"])
    with h5py.File(out, "r+") as f:
        ds = f["meta"].create_dataset("deep", data="[" * 100000 + "]" * 100000, dtype=h5py.string_dtype())
        ds.attrs["encoding"] = "json"
    with twin.open_results(out) as r, pytest.raises(ResultsError, match="/meta/deep is not valid JSON"):
        r.meta


def test_results_files_that_point_outside_themselves_are_refused(tmp_path):
    """[reliability] #16 item 8: an external link, or a dataset whose storage is another local
    file, would make a reader return another file's bytes; open_results refuses both."""
    import h5py
    import numpy as np
    import pytest

    import twin
    from twin.errors import ResultsError
    from twin.runner import run

    out = tmp_path / "r.h5"
    run("hefei_day", out=out, overrides=["run.until_s=600"])
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(64)))
    ext = tmp_path / "ext.h5"
    ext.write_bytes(out.read_bytes())
    with h5py.File(ext, "r+") as f:
        f["events"].create_dataset("leak", shape=(64,), dtype=np.uint8, external=[(str(secret), 0, 64)])
    with pytest.raises(ResultsError, match="keeps its data in external file"):
        twin.open_results(ext)
    lnk = tmp_path / "lnk.h5"
    lnk.write_bytes(out.read_bytes())
    with h5py.File(lnk, "r+") as f:
        f["events/other"] = h5py.ExternalLink(str(out), "/network")
    with pytest.raises(ResultsError, match="is an external link"):
        twin.open_results(lnk)
    with twin.open_results(out) as r:                 # a plain results file still opens
        assert r.meta["seed"] >= 0


def test_unbounded_numbers_are_refused_with_the_figure(monkeypatch):
    """[reliability] #16 item 3: a billion ambulances, persons or trips, or a 1e12 s horizon, are
    bounded settings; work that would not fit in memory is refused before it starts, with the
    figure (here on a pretend 1 GiB machine)."""
    import pytest

    import twin.preflight
    from twin.errors import ScenarioError
    from twin.runner import load_scenario

    for override, message in (("stations.0.ambulances=1000000000", "ambulances = 1000000000; expected an integer "
                                                                     ">= 0 and <= 10000"),
                              ("run.until_s=1e12", "until_s = 1000000000000.0; expected a finite number > 0 and <="),
                              ("population.persons=1000000000", "persons = 1000000000; expected an integer >= 1"),
                              ("traffic.random_trips=1000000000", "random_trips = 1000000000; expected")):
        with pytest.raises(ScenarioError, match=message):
            load_scenario("hefei_people", overrides=[override])
    with pytest.raises(ScenarioError, match=r"rate_per_million_veh_km = 5000000000.0; expected a finite number >= 0 "
                                            r"and <= 100000"):
        load_scenario("hefei_day", overrides=["crashes.rate_per_million_veh_km=5e9"])
    monkeypatch.setattr(twin.preflight, "physical_memory_bytes", lambda: 1024 ** 3)
    with pytest.raises(ScenarioError, match=r"persons = 2,000,000 .* needs about 2.8 GiB of memory; this machine "
                                            r"has 1.0 GiB"):
        load_scenario("hefei_people", overrides=["population.persons=2000000"])
