"""Evacuees, shelters and flooded facilities on the map (twin render of a flood run)."""

import numpy as np
import pytest

FLOODED = """
[traffic]
random_trips = 300

[[hazards]]
name = "strip"
crs = "city"
polygon = [[900.0, -100.0], [1100.0, -100.0], [1100.0, 3000.0], [900.0, 3000.0]]
times_s = [1800.0, 3600.0, 7200.0, 10800.0]
depth_mm = [0.0, 200.0, 400.0, 0.0]

[evacuation]
zones = [1]
warning_s = 1800.0
compliance = 0.9
walk_share = 0.2
persons = { "1" = 2000 }

[[shelters]]
name = "east"
node = 18
capacity = 3000
"""


@pytest.fixture(scope="module")
def flood_run(tmp_path_factory):
    from twin_small import SMALL

    from twin.runner import run

    out = tmp_path_factory.mktemp("evac") / "f.h5"
    res = run(SMALL.replace("until_s = 3600.0", "until_s = 10800.0") + FLOODED, seed=2, out=out)
    return out, res


def test_shelter_labels_and_evacuees_follow_the_results(flood_run):
    from twin.results import open_results
    from twin.viz.overlays import _evacuation_marks, _out_of_service

    out, res = flood_run
    with open_results(out) as f:
        nodes = f.table("/network/nodes")
        cars, walkers = f.table("/events/evacuation_cars"), f.table("/events/evacuation_walkers")
        t_occ, occ = f.series("/timeseries/evacuation_shelters/occupancy_persons")
        assert occ[-1].sum() == pytest.approx(res.kpis["evacuation_persons_sheltered"])
        t = 2700.0
        shelters, evacuees = _evacuation_marks(f, nodes, t)
        assert shelters["labels"] == [f"Sh east {occ[t_occ <= t][-1][0]:,.0f}"]
        on_way = lambda e: int(((e["shelter_idx"] >= 0) & (e["depart_s"] <= t) & ~(e["arrive_s"] <= t)).sum())  # noqa
        assert (evacuees["n_cars"], evacuees["n_walk"]) == (on_way(cars), on_way(walkers)) and on_way(walkers) > 0
        assert len(evacuees["x"]) == on_way(cars) + on_way(walkers)
        # the hospital at node 36 stands in the strip's water from 1:30 to 2:20
        assert _out_of_service(f, "hospital", 6000.0)("h") == " (flooded)"
        assert _out_of_service(f, "hospital", 9000.0)("h") == ""


def test_a_flood_movie_between_two_times(flood_run, tmp_path, capsys):
    import imageio.v3 as iio

    from twin.cli import main

    out, _ = flood_run
    gif = tmp_path / "f.gif"
    assert main(["render", str(out), "--layer", "flood-depth", "--time", "0:40", "--until", "1:10", "--size",
                 "320x240", "--out", str(gif)]) == 0
    frames = iio.imread(gif, index=None)
    assert frames.shape[0] == 3 and np.ptp(frames) > 0          # 0:40-0:50, 0:50-1:00, 1:00-1:10
    assert "render: 3 of 3 frames done" in capsys.readouterr().err   # progress, off a terminal
