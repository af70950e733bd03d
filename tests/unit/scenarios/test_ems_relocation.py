"""Scenario keys of move-up, transfers by ambulance, and their KPIs in the table and the file."""

import h5py
import numpy as np
import pytest

from twin.errors import ScenarioError
from twin.runner import format_kpis, load_scenario, run

TABLE = '[{kinds = ["als"], table = [["central"], ["central", "north"], ["central", "north", "south"], ' \
        '["central", "central", "north", "south"], ["central", "central", "north", "north", "south"], ' \
        '["central", "central", "north", "north", "south", "south"]]}]'
OVER = ["run.until_s=21600", "traffic.random_trips=0", f"dispatch.relocation={TABLE}"]


def test_relocation_keys_resolve_to_station_locations():
    sc = load_scenario("hefei_day", overrides=OVER + ["dispatch.compliance_rate=0.8"])
    rel = sc.ems.dispatch.relocation
    st = dict(zip(sc.layout.station_names, sc.layout.station_location_idx))
    assert rel[0].kinds == ("als",) and rel[0].table[1] == (st["central"], st["north"])
    assert sc.ems.dispatch.compliance_rate == 0.8
    # the resolved scenario round-trips
    assert load_scenario(sc.resolved_text).ems.dispatch.relocation == rel


def test_run_prints_and_writes_relocation_and_assignments(tmp_path):
    out = tmp_path / "r.h5"
    res = run("hefei_day", seed=4, out=out, overrides=OVER)
    k = res.kpis
    assert k["relocation_orders"] > 0 and k["relocation_driving_s"] > 0
    text = format_kpis(res)
    assert "move-up relocations" in text
    with h5py.File(out, "r") as f:
        assert f["/summary/ems_relocation_moves"][()] == k["relocation_moves"]
        rel = f["/events/ems_relocations"][()]
        assert int((rel["time_s"] < 21600.0).sum()) == k["relocation_orders"]     # KPIs: orders before until_s
        assert rel["driven_s"][rel["obeyed"]].sum() >= k["relocation_driving_s"]
        asg = f["/events/ems_assignments"][()]
        assert len(asg) == len(res.ems.assignments)
        np.testing.assert_array_equal(asg["unit_idx"], res.ems.assignments["unit_idx"].to_numpy())


def test_unknown_station_in_the_table_is_named():
    bad = '[{table = [["central"], ["central", "east"]]}]'
    with pytest.raises(ScenarioError, match=r"relocation\[0\]\.table\[1\]: unknown station 'east'; stations: "
                                            r"'central', 'north', 'south'"):
        load_scenario("hefei_day", overrides=[f"dispatch.relocation={bad}"])
    with pytest.raises(ScenarioError, match=r"relocation\[0\] = .*expected a table|relocation\[0\]\.kinds"):
        load_scenario("hefei_day", overrides=['dispatch.relocation=[{kinds = ["ems"], table = [["central"]]}]'])


def test_transfer_by_ambulance_and_flow_kpis_are_printed():
    over = ["run.until_s=43200", "traffic.random_trips=0", "hospitals.0.icu_beds=2",
            "hospitals.0.icu_probability=[0.5, 0.2, 0.0]", "hospitals.0.transfer=true",
            "hospitals.1.icu_probability=[0.5, 0.2, 0.0]", "hospitals.1.transfer=true",
            "hospitals.1.transfer_by_ambulance=true", "hospitals.1.length_of_stay=1800"]
    res = run("hefei_day", seed=1, overrides=over)
    text = format_kpis(res)
    assert "ED boarding" in text and "diversion" in text and "by ambulance" in text
    assert res.kpis["n_transfers_ambulance"] > 0
