"""Checkpoints and resume ([state] #21, first part): kill -9 at a checkpoint or while writing,
resume, and get the uninterrupted run's results exactly; bad checkpoints are clear errors.

The crash is a real SIGKILL of a `twin run` subprocess (TWIN_FAULT_KILL makes the process kill
itself right after a chosen checkpoint, or with the results file half written): no sleeps, no
cleanup. Results are compared dataset by dataset outside /meta (tests/scenarios/digest.py).
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from twin.errors import ScenarioError
from twin.runner import resume, run

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scenarios"))
from digest import digests  # noqa: E402

DAY = 86400.0
SCENARIO = """
[city]
name = "hefei-baohe"

[run]
until_s = 3456000.0        # 40 days
seed = 3
drain = false

[population]
persons = 4000
calls_from_presence = false
traffic_from_cars = false

[epidemic]
r0 = 3.0

[[epidemic_seeds]]
zone = "5"
persons = 5

[[interventions]]
kind = "health_code"
start_day = 12
"""


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    (d / "epi.toml").write_text(SCENARIO)
    run(d / "epi.toml", out=d / "plain.h5")
    return d


def _twin(args, env=None):
    code = "import sys; from twin.cli import main; raise SystemExit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_checkpointing_does_not_change_the_results(case):
    run(case / "epi.toml", out=case / "ck.h5", checkpoint_every_s=5 * DAY)
    assert digests(case / "ck.h5") == digests(case / "plain.h5")
    assert not Path(str(case / "ck.h5") + ".partial").exists()


@pytest.mark.parametrize("kill", ["checkpoint:432000", "checkpoint:1296000", "checkpoint:2592000",
                                  "checkpoint:3024000", "writing"])
def test_kill_9_then_resume_gives_the_uninterrupted_results(case, kill):
    out = case / f"k_{kill.replace(':', '_')}.h5"
    p = _twin(["run", str(case / "epi.toml"), "--out", str(out), "--checkpoint-every", "5d", "-q"],
              env={"TWIN_FAULT_KILL": kill})
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    partial = Path(str(out) + ".partial")
    assert partial.exists() and not out.exists()
    with h5py.File(partial, "r") as f:
        t = f["checkpoints/state"].attrs["time_s"]
    assert t == (3024000.0 if kill == "writing" else float(kill.split(":")[1]))
    p = _twin(["run", "--resume", str(partial)])
    assert p.returncode == 0, p.stderr[-2000:]
    assert digests(out) == digests(case / "plain.h5") and not partial.exists()


def test_resume_in_process_and_a_checkpoint_written_by_the_resumed_run(case):
    out = case / "inproc.h5"

    class Stop(Exception):
        pass

    def stop(done_s, total_s):
        if done_s >= 23 * DAY:
            raise Stop

    with pytest.raises(Stop):
        run(case / "epi.toml", out=out, checkpoint_every_s=10 * DAY, progress=stop)
    res = resume(Path(str(out) + ".partial"))
    assert res.path == out.resolve() or res.path == out
    assert digests(out) == digests(case / "plain.h5")


def test_bad_checkpoints_are_clear_errors(case, tmp_path):
    with pytest.raises(ScenarioError, match="no such file"):
        resume(tmp_path / "none.h5.partial")
    junk = tmp_path / "junk.h5.partial"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(ScenarioError, match="not a readable HDF5 checkpoint"):
        resume(junk)
    with pytest.raises(ScenarioError, match="not a twin checkpoint"):
        resume(case / "plain.h5")
    out = case / "v.h5"
    p = _twin(["run", str(case / "epi.toml"), "--out", str(out), "--checkpoint-every", "10d", "-q"],
              env={"TWIN_FAULT_KILL": "checkpoint:864000"})
    assert p.returncode == -signal.SIGKILL
    partial = Path(str(out) + ".partial")
    for damage, message in ((lambda f: f["meta"].attrs.__setitem__("checkpoint_version", 99), "version 99"),
                            (lambda f: f["checkpoints/state"].__delitem__("epidemic"),
                             "state of flow 'epidemic' is missing")):
        copy = tmp_path / "damaged.h5.partial"
        copy.write_bytes(partial.read_bytes())
        with h5py.File(copy, "r+") as f:
            damage(f)
        with pytest.raises(ScenarioError, match=message):
            resume(copy)


def test_checkpoints_need_a_results_file_and_a_positive_period(tmp_path):
    with pytest.raises(ScenarioError, match="checkpoints and snapshots need a results file"):
        run("hefei_day", checkpoint_every_s=3600.0)
    with pytest.raises(ScenarioError, match="expected a duration > 0"):
        run("hefei_day", out=tmp_path / "d.h5", checkpoint_every_s=0.0)


def test_from_snapshot_equals_the_run_and_a_changed_scenario_differs_only_after(case):
    from twin.runner import from_snapshot

    out = case / "snap.h5"
    p = _twin(["run", str(case / "epi.toml"), "--out", str(out), "--checkpoint-every", "10d", "-q"],
              env={"TWIN_FAULT_KILL": "checkpoint:1728000"})          # day 20
    assert p.returncode == -signal.SIGKILL
    partial = Path(str(out) + ".partial")
    plain = run(case / "epi.toml").epidemic.daily
    same = from_snapshot(partial).epidemic.daily
    assert same.equals(plain)
    changed = from_snapshot(partial, overrides=["interventions.0.start_day=20", "interventions.0.test_share=1.0",
                                                "interventions.0.trace_share=1.0"]).epidemic.daily
    assert changed.iloc[:20].equals(plain.iloc[:20])                     # before the snapshot: the same
    assert not changed.iloc[20:].equals(plain.iloc[20:])
    assert changed["quarantined"].iloc[25] > plain["quarantined"].iloc[25]
    # the rates and the beds of the changed scenario hold from the snapshot on
    hot = from_snapshot(partial, overrides=["epidemic.r0=6.0"]).epidemic.daily
    assert hot.iloc[:20].equals(plain.iloc[:20])
    assert hot["new_infections"].iloc[20:].sum() > plain["new_infections"].iloc[20:].sum()
    with pytest.raises(ScenarioError, match="flows"):
        from_snapshot(partial, scenario="hefei_day")


def test_a_restored_bed_pool_takes_the_new_scenarios_size():
    """from_snapshot with more or fewer beds: the beds in use at the snapshot stay taken (until
    their release times), the rest of the new pool is free; an unchanged pool is kept as saved."""
    import numpy as np

    from twin.scenarios.epidemic import _resized_pool

    saved = np.array([-np.inf, 25.0, 19.0, 31.0, -np.inf])          # release days; now is day 20
    assert _resized_pool(saved, 5, 20.0) is saved
    np.testing.assert_array_equal(_resized_pool(saved, 4, 20.0), [25.0, 31.0, -np.inf, -np.inf])
    np.testing.assert_array_equal(_resized_pool(saved, 1, 20.0), [25.0, 31.0])   # patients keep their beds
    assert len(_resized_pool(saved, 8, 20.0)) == 8


# ---- the built-in city scenarios: EMS units and hospitals, traffic with units as vehicles,
# crash calls, incidents, move-up, the population ------------------------------------------
#: Five kill times over each built-in city scenario's run: at checkpoints (hour marks) in the night,
#: the morning rush, midday and the evening, and while the results file is being written.
CITY_KILLS = [("hefei_rush", "checkpoint:3600"), ("hefei_rush", "checkpoint:25200"),       # before the rush
              ("hefei_rush", "checkpoint:28800"),                                          # the peak, the bus crash
              ("hefei_rush", "checkpoint:39600"), ("hefei_rush", "writing")]
for _name, _times in (("hefei_day", (10800, 28800, 43200, 72000)), ("hefei_people", (7200, 32400, 50400, 79200)),
                      ("hefei_eldercare", (18000, 36000, 50400, 75600)),
                      ("hefei_flood", (28800, 39600, 54000, 72000))):  # flood: before, rising, deep, receding
    CITY_KILLS += [(_name, f"checkpoint:{t}") for t in _times] + [(_name, "writing")]


@pytest.fixture(scope="module")
def city_plain(tmp_path_factory):
    d = tmp_path_factory.mktemp("city")
    return d, {name: digests(run(name, out=d / f"{name}.h5").path) for name in ("hefei_rush", "hefei_day",
                                                                                 "hefei_people", "hefei_eldercare",
                                                                                 "hefei_flood")}


@pytest.mark.parametrize("name,kill", CITY_KILLS)
def test_city_scenarios_kill_9_then_resume_give_the_uninterrupted_results(city_plain, name, kill):
    d, plain = city_plain
    out = d / f"{name}_{kill.replace(':', '_')}.h5"
    p = _twin(["run", name, "--out", str(out), "--checkpoint-every", "1h", "-q"], env={"TWIN_FAULT_KILL": kill})
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    partial = Path(str(out) + ".partial")
    p = _twin(["run", "--resume", str(partial)])
    assert p.returncode == 0, p.stderr[-2000:]
    assert digests(out) == plain[name] and not partial.exists()


def _named_unit_events(result):
    ue = result.ems.unit_events.copy()
    ue["unit"] = result.ems.units["name"].to_numpy()[ue.unit_idx]
    return ue.drop(columns="unit_idx")


def test_city_what_if_from_0800_changes_only_what_follows(city_plain):
    from twin.runner import from_snapshot

    d, _ = city_plain
    out = d / "rush_snap.h5"
    p = _twin(["run", "hefei_rush", "--out", str(out), "--checkpoint-every", "1h", "-q"],
              env={"TWIN_FAULT_KILL": "checkpoint:28800"})                 # 08:00, the bus crash
    assert p.returncode == -signal.SIGKILL
    partial = Path(str(out) + ".partial")
    plain = run("hefei_rush")
    same = from_snapshot(partial)
    assert same.ems.unit_events.equals(plain.ems.unit_events) and same.kpis == plain.kpis
    more = from_snapshot(partial, overrides=["stations.0.ambulances=4"])     # two more ambulances from 08:00
    a, b = _named_unit_events(plain), _named_unit_events(more)
    before_a, before_b = a[a.time_s < 28800].reset_index(drop=True), b[b.time_s < 28800].reset_index(drop=True)
    assert before_a.equals(before_b) and len(before_a) > 100
    assert not a[a.time_s >= 28800].reset_index(drop=True).equals(b[b.time_s >= 28800].reset_index(drop=True))
    assert more.kpis["response_p1_mean_s"] < plain.kpis["response_p1_mean_s"]
    assert {"central-3", "central-4"} <= set(b.unit)


def test_a_snapshot_unit_the_scenario_lacks_is_a_clear_error(city_plain):
    from twin.runner import from_snapshot

    d, _ = city_plain
    out = d / "day_snap.h5"
    p = _twin(["run", "hefei_day", "--out", str(out), "--checkpoint-every", "6h", "-q"],
              env={"TWIN_FAULT_KILL": "checkpoint:21600"})
    assert p.returncode == -signal.SIGKILL
    with pytest.raises(ScenarioError, match="unit 'north-1' .* is not in this scenario"):
        from_snapshot(Path(str(out) + ".partial"), overrides=["stations.1.name=airport"])


def test_snapshots_kept_in_the_results_file_start_what_ifs(city_plain, tmp_path):
    from twin.runner import from_snapshot

    d, plain = city_plain
    out = tmp_path / "kept.h5"
    p = _twin(["run", "hefei_rush", "--out", str(out), "--snapshot-at", "06:00,08:00", "-q"])
    assert p.returncode == 0, p.stderr[-2000:]
    with h5py.File(out, "r") as f:
        assert sorted(f["checkpoints"]) == ["21600", "28800"]
        assert f["checkpoints/28800"].attrs["time_s"] == 28800.0
    kept = digests(out)
    assert {k: v for k, v in kept.items() if not k.startswith("/checkpoints")} == plain["hefei_rush"]
    # the same run again keeps byte-identical snapshots (no wall-clock figures in a state)
    p = _twin(["run", "hefei_rush", "--out", str(tmp_path / "again.h5"), "--snapshot-at", "06:00,08:00", "-q"])
    assert digests(tmp_path / "again.h5") == kept
    p = _twin(["run", "--start-from", f"{out}@08:00", "--out", str(tmp_path / "from8.h5"), "-q"])
    assert p.returncode == 0, p.stderr[-2000:]
    assert digests(tmp_path / "from8.h5") == plain["hefei_rush"]
    for at, message in (("", "give the time, e.g. .*@06:00; snapshots at 06:00, 08:00"),
                        ("@07:00", "no snapshot at 07:00; this file has 06:00, 08:00"),
                        ("@7x", "time '7x'; expected HH:MM")):
        with pytest.raises(ScenarioError, match=message):
            from_snapshot(f"{out}{at}")


def test_damaged_snapshots_name_what_is_wrong(case, tmp_path):
    out = case / "dmg.h5"
    p = _twin(["run", str(case / "epi.toml"), "--out", str(out), "--checkpoint-every", "10d", "-q"],
              env={"TWIN_FAULT_KILL": "checkpoint:864000"})
    assert p.returncode == -signal.SIGKILL
    partial = Path(str(out) + ".partial")
    copy = tmp_path / "nostream.h5.partial"
    copy.write_bytes(partial.read_bytes())
    with h5py.File(copy, "r+") as f:                                # a random stream's state gone
        values = json.loads(f["checkpoints/state/epidemic/_values"].asstr()[()])
        del values["rng"], f["checkpoints/state/epidemic/_values"]
        f["checkpoints/state/epidemic/_values"] = json.dumps(values)
    with pytest.raises(ScenarioError, match="the state of flow 'epidemic' has no 'rng'"):
        resume(copy)
    cut = tmp_path / "cut.h5.partial"
    data = partial.read_bytes()
    cut.write_bytes(data[:len(data) // 2])                          # a truncated file
    with pytest.raises(ScenarioError, match="truncated or damaged|damaged"):
        resume(cut)


def test_a_what_if_from_1100_takes_the_deeper_flood_from_then_on(city_plain, tmp_path):
    from twin.runner import from_snapshot

    d, plain_digests = city_plain
    plain = run("hefei_flood", out=tmp_path / "flood.h5", snapshot_at_s=[39600.0])          # 11:00
    assert {k: v for k, v in digests(tmp_path / "flood.h5").items()
            if not k.startswith("/checkpoints")} == plain_digests["hefei_flood"]
    deep = from_snapshot(f"{tmp_path / 'flood.h5'}@11:00",
                         overrides=["hazards.0.depth_mm=[0.0, 250.0, 900.0, 900.0, 0.0]"])   # 14:00 and 18:00 deeper
    a, b = plain.ems.unit_events, deep.ems.unit_events
    assert a[a.time_s < 39600].reset_index(drop=True).equals(b[b.time_s < 39600].reset_index(drop=True))
    assert deep.traffic.kpis["vht_veh_h"] != plain.traffic.kpis["vht_veh_h"]     # the new closures apply


BOARDING = ["hospitals.0.ward_beds=1", "hospitals.0.ward_probability=[0.9, 0.9, 0.9]", "hospitals.0.boarding=true",
            "hospitals.0.walk_in_rate_per_h=3.0"]            # north-ed: patients board in the ED for its one ward bed


def test_patients_boarding_in_the_ed_are_part_of_the_state(tmp_path):
    plain = digests(run("hefei_day", out=tmp_path / "plain.h5", overrides=BOARDING).path)
    out = tmp_path / "board.h5"
    sets = [a for s in BOARDING for a in ("--set", s)]
    p = _twin(["run", "hefei_day", *sets, "--out", str(out), "--checkpoint-every", "1h", "-q"],
              env={"TWIN_FAULT_KILL": "checkpoint:64800"})
    assert p.returncode == -signal.SIGKILL
    partial = Path(str(out) + ".partial")
    with h5py.File(partial, "r") as f:
        assert len(json.loads(f["checkpoints/state/ems/_values"].asstr()[()])["hospitals"][0]["boarding"]) > 3
    assert _twin(["run", "--resume", str(partial)]).returncode == 0
    assert digests(out) == plain


TRANSFERS = ["hospitals.0.icu_beds=1", "hospitals.0.icu_probability=[0.9, 0.9, 0.9]", "hospitals.0.transfer=true",
             "hospitals.0.transfer_by_ambulance=true", "hospitals.1.icu_beds=30", "hospitals.0.walk_in_rate_per_h=4.0"]


def test_transfers_by_ambulance_under_way_are_part_of_the_state(tmp_path):
    """Snapshots every 5 min from 06:00 to 07:00 of a day with many ICU transfers by ambulance: each step of a
    transfer (a patient holding its ED bed for the ambulance, the receiving ICU bed reserved,
    the ambulance on its way or carrying the patient) is met, and the runs from the snapshots
    that hold them give the uninterrupted run's results."""
    from twin.checkpoint import read_checkpoint
    from twin.runner import from_snapshot

    plain = digests(run("hefei_day", out=tmp_path / "plain.h5", overrides=TRANSFERS).path)
    times = [6 * 3600.0 + 300.0 * k for k in range(12)]
    run("hefei_day", out=tmp_path / "snap.h5", overrides=TRANSFERS, snapshot_at_s=times)
    chosen, met = [], set()
    for t in times:
        ems = read_checkpoint(f"{tmp_path / 'snap.h5'}@{t:.0f}")[2]["ems"]
        steps = {"reserved" for _, _, _, row, _ in ems["transfers"] if row >= 0}
        steps |= {"waiting in the ED" for h in ems["hospitals"] if h["transferring"]}
        steps |= {f"ambulance at step {u['serve']['at']}" for u in ems["units"]
                  if u["serve"] and u["serve"]["kind"] == "transfer"}
        if steps - met:
            chosen.append(t)
            met |= steps
    assert {"reserved", "waiting in the ED", "ambulance at step 1", "ambulance at step 3"} <= met, met
    for t in chosen:
        res = from_snapshot(f"{tmp_path / 'snap.h5'}@{t:.0f}", out=tmp_path / f"from{t:.0f}.h5")
        assert digests(res.path) == plain, t


def test_a_moment_that_cannot_be_written_is_skipped_with_a_warning(tmp_path, caplog, monkeypatch):
    import twin.agents.ems_state as ems_state
    from twin.errors import CheckpointNotNow

    plain = digests(run("hefei_day", out=tmp_path / "plain.h5").path)
    take = ems_state.model_snapshot

    def refuse_at_noon(model, pending):
        if model.env.now == 43200.0:
            raise CheckpointNotNow("the test's moment cannot be written to a checkpoint yet")
        return take(model, pending)

    monkeypatch.setattr(ems_state, "model_snapshot", refuse_at_noon)
    with caplog.at_level("WARNING", logger="twin.flows"):
        run("hefei_day", out=tmp_path / "ck.h5", checkpoint_every_s=3600.0)
    assert "skipped: the test's moment cannot be written" in caplog.text
    assert digests(tmp_path / "ck.h5") == plain


def test_a_snapshot_between_two_syncs_is_taken_before_every_event_at_its_time(city_plain, tmp_path):
    """07:59:30 then 08:00: the traffic's sync for 08:00 was scheduled before the 08:00 snapshot
    (at 07:59); the snapshot still comes first, and a run from it equals the uninterrupted one."""
    from twin.runner import from_snapshot

    d, plain = city_plain
    run("hefei_rush", out=tmp_path / "two.h5", snapshot_at_s=[28770.0, 28800.0])
    from_snapshot(f"{tmp_path / 'two.h5'}@08:00", out=tmp_path / "from8.h5")
    assert digests(tmp_path / "from8.h5") == plain["hefei_rush"]
    for t in ("07:59:30", "08:00"):                      # a path with @ in it is read as a path
        from_snapshot(f"{tmp_path / 'two.h5'}@{t}")
    odd = tmp_path / "a@b.h5.partial"
    with pytest.raises(ScenarioError, match="no such file"):
        from_snapshot(odd)
    with pytest.raises(ScenarioError, match="--snapshot-at 0 s: expected times after the start"):
        run("hefei_rush", out=tmp_path / "zero.h5", snapshot_at_s=[0.0])
    with pytest.raises(ScenarioError, match="patients in ED beds; this scenario gives it 2"):
        from_snapshot(f"{tmp_path / 'two.h5'}@08:00", overrides=["hospitals.0.beds=2"])


EPI_SHORT = ["population.persons=20000", "run.until_s=2592000"]     # hefei_epidemic, 30 days of 20,000 persons


@pytest.mark.parametrize("kill", ["checkpoint:864000", "checkpoint:1728000", "writing"])
def test_the_builtin_epidemic_with_its_ems_and_shared_beds_resumes(tmp_path, kill):
    plain = digests(run("hefei_epidemic", out=tmp_path / "plain.h5", overrides=EPI_SHORT).path)
    out = tmp_path / "epi.h5"
    sets = [a for s in EPI_SHORT for a in ("--set", s)]
    p = _twin(["run", "hefei_epidemic", *sets, "--out", str(out), "--checkpoint-every", "5d", "-q"],
              env={"TWIN_FAULT_KILL": kill})
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    assert _twin(["run", "--resume", str(out) + ".partial"]).returncode == 0
    assert digests(out) == plain
