"""The one-page run report ([planner] #15): key figures in display units, the map and the
charts the run has data for, embedded PNGs that are not blank, and the CLI."""

import base64
import io
import re

import numpy as np
import pytest

from twin.runner import run

pytest.importorskip("matplotlib")


def _images(text):
    import imageio.v3 as iio

    out = []
    for alt, data in re.findall(r"<img alt='([^']*)' src='data:image/png;base64,([^']+)'", text):
        img = iio.imread(io.BytesIO(base64.b64decode(data)))
        out.append((alt, img))
    return out


def _not_blank(img):
    rgb = np.asarray(img)[..., :3].reshape(-1, 3)
    return len(np.unique(rgb, axis=0)) > 20 and (rgb.min(axis=1) < 200).mean() > 0.01


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "day.h5"
    run("hefei_day", out=out, overrides=["run.until_s=7200", "traffic.window_start_s=0", "traffic.window_s=3600",
                                         "traffic.random_trips=1500"])
    return out


def test_report_of_an_emergency_and_traffic_run(day, offscreen, tmp_path):
    from twin.viz.report import write_report

    out = write_report(day, tmp_path / "r.html")
    text = out.read_text()
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    assert "<h1>hefei_day</h1>" in text and "emergency response" in text and "traffic" in text
    figures = text.split("<h2>Pictures</h2>")[0]
    assert "ems_response_mean (min)" in figures and "window_start" not in figures
    images = _images(text)
    alts = [a for a, _ in images]
    assert alts[0] == "congestion at the busiest interval" and "response times" in alts
    assert all(_not_blank(img) for _, img in images)
    assert "src='http" not in text                       # one file: nothing fetched from outside


def test_report_of_an_epidemic_has_its_chart_and_no_map(tmp_path):
    from twin.cli import main

    res = tmp_path / "epi.h5"
    run("hefei_epidemic", out=res, overrides=["population.persons=3000", "run.until_s=2592000", "epidemic.r0=3.0"])
    assert main(["report", str(res)]) == 0
    text = (tmp_path / "epi_report.html").read_text()
    alts = [a for a, img in _images(text) if _not_blank(img)]
    assert "epidemic" in alts and "congestion at the busiest interval" not in alts
    assert "epidemic_attack_rate (%)" in text
    assert main(["report", str(res), "--out", str(tmp_path / "r.pdf")]) == 2
