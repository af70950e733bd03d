"""One KPI vocabulary ([planner] #15 item 4): display units in replicate / compare, constants left out."""

import math

import pytest

from twin.cli import main
from twin.kpi_display import format_value, is_constant, kpi_display

SHORT = ["run.until_s=1800", "traffic.random_trips=300", "traffic.window_start_s=0", "traffic.window_s=1800"]


@pytest.mark.parametrize("name, want", [
    ("response_mean_s", ("response_mean", "min", 1 / 60)),
    ("lost_share", ("lost_share", "%", 100.0)),
    ("response_p1_within_target", ("response_p1_within_target", "%", 100.0)),
    ("epidemic_attack_rate", ("epidemic_attack_rate", "%", 100.0)),
    ("offload_unit_h", ("offload_unit", "h", 1.0)),
    ("traffic_mean_speed_mps", ("traffic_mean_speed", "km/h", 3.6)),
    ("n_calls", ("n_calls", "", 1.0)),
    ("traffic_congestion_index", ("traffic_congestion_index", "", 1.0)),
])
def test_display_units_by_name(name, want):
    label, unit, factor = kpi_display(name)
    assert (label, unit) == want[:2] and factor == pytest.approx(want[2])


def test_constants_and_formats():
    assert is_constant("window_start_s") and is_constant("ems_window_end_s") and is_constant("response_p2_target_s") and is_constant("epidemic_icu_beds")
    assert not is_constant("response_mean_s") and not is_constant("n_calls")
    assert format_value(3.14159, "min") == "3.14" and format_value(12.345, "%") == "12.3"
    assert format_value(11710.0, "") == "11,710" and format_value(math.nan, "min") == "-"


def test_replicate_and_compare_print_display_units_without_constants(capsys):
    assert main(["replicate", "hefei_day", "-n", "2", "-q"] + [f"--set={o}" for o in SHORT]) == 0
    out = capsys.readouterr().out
    assert "response_mean (min)" in out and "lost_share (%)" in out
    assert "window_start" not in out and "target" not in out.split("(minutes")[0].replace("within_target", "")
    assert "response_mean_s" not in out
    assert main(["compare", "hefei_day", "--set-b", "hospitals.0.beds=2", "-n", "2", "-q"]
                + [f"--set-a={o}" for o in SHORT] + [f"--set-b={o}" for o in SHORT]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("response_mean (min)"))
    a, b = (float(x) for x in row.split()[2:4])
    assert 0.5 < a < 30 and 0.5 < b < 30          # minutes, not seconds
