"""Hospital choice on the shared picture ([dispatch] hospital_choice = "door").

- The expected door wait is exact in expectation: calls at the hospital's own node (no drive),
  one priority, no walk-ins, exponential stays, a queue ward of c beds. Each transport's
  estimate when it leaves the scene, ``(n - c + 1) × mean stay / c`` with n patients in or
  waiting for a bed, is the mean of its offload delay given the ward's state (n - c + 1
  releases of c exponential beds, first come first served). So the mean of the estimates
  equals the mean offload delay; tolerance four standard errors of the difference from 20
  batch means.
- The choice: a near ward whose beds are all taken loses a patient to a far free one exactly
  when the extra drive is shorter than the expected wait, and the record says by how much.
- Siloed centres see the ward as of its last report (every ``[coordination]
  hospital_report_s``); unified ones see it live.
- Against the nearest hospital on the same calls (common random numbers), the door choice
  cuts the time from the scene to an ED bed.
- A call type needing a specialty (a stroke centre) goes past the nearest hospital to one
  offering it; a specialty no hospital offers is an error.
- A call type whose patients need the ICU (known at the scene) goes to a hospital with ICU
  beds and is admitted to its ICU; the expected wait for an ICU bed is, like the door wait,
  the mean of the actual wait (an M/M/c ICU behind an ED with no stay, batch means).
"""

import math

import numpy as np
import pytest
from twin_small import SMALL

from twin.runner import run

POOL = """
[city]
name = "grid:6x6"

[run]
until_s = {until}
seed = 3

[calls]
locations = "centroid"
rate_per_h = {{ "1" = 1.5 }}

[[call_types]]
name = "p1"
priority = 1
on_scene = 0.0
transport_probability = 1.0

[[stations]]
name = "s"
node = 8
ambulances = 30

[[hospitals]]
name = "h"
node = 8
beds = 2
mode = "queue"
length_of_stay = {{ kind = "exponential", mean_s = 3600.0 }}

[service]
return_mode = "instant"
turnout = 0.0
handover = 0.0

[dispatch]
hospital_choice = "door"
"""


def _batch_diff(a, b, t, n=20):
    edges = np.linspace(t.min(), t.max() + 1e-9, n + 1)
    d = np.array([(a - b)[(t >= lo) & (t < hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])])
    return d.mean(), d.std(ddof=1) / math.sqrt(n)


def test_the_expected_door_wait_is_the_mean_offload_delay():
    res = run(POOL.format(until=300 * 86400.0), seed=5)
    calls, ch = res.ems.calls, res.ems.hospital_choices
    assert res.kpis["hospital_past_nearest"] == 0 and np.all(ch["travel_s"] == 0.0)
    c = calls.set_index("call_id").loc[ch["call_id"]]
    off = (c["bed_s"] - c["at_hospital_s"]).to_numpy()
    est = ch["door_wait_s"].to_numpy()
    ok = np.isfinite(off)
    assert ok.sum() > 9000 and (off[ok] > 0).mean() > 0.3            # a busy ward: 1.5 / h on 2 beds of 1 h
    diff, se = _batch_diff(off[ok], est[ok], ch["time_s"].to_numpy()[ok])
    assert abs(diff) < 4 * se and se < 0.05 * off[ok].mean()


TWO = SMALL.replace("until_s = 3600.0", "until_s = 86400.0").replace('''[[hospitals]]
name = "h"
node = 36
beds = 4
''', '''[[hospitals]]
name = "near"
node = 2
beds = 1
mode = "queue"
length_of_stay = { kind = "constant", mean_s = 7200.0 }

[[hospitals]]
name = "far"
node = 36
beds = 1
mode = "queue"
length_of_stay = { kind = "constant", mean_s = 7200.0 }
''').replace("rate_per_h = 4.0", "rate_per_h = 0.3").replace("on_scene = 300.0", "on_scene = 60.0\ntransport_probability = 1.0")


@pytest.mark.parametrize("choice", ["nearest", "door"])
def test_a_full_near_ward_loses_the_patient_when_the_detour_is_shorter_than_the_wait(choice):
    res = run(TWO + f'\n[dispatch]\nhospital_choice = "{choice}"\n', seed=2)
    t = res.ems.hospital_choices
    if choice == "nearest":                  # fixed at the call: no choice at the scene, no KPI
        assert t is None and "hospital_past_nearest" not in res.kpis
        return
    assert len(t) > 3
    nearest, chosen = t["nearest_hospital_idx"].to_numpy(), t["hospital_idx"].to_numpy()
    past = chosen != nearest
    assert past.any() and (~past).any() and res.kpis["hospital_past_nearest"] == past.sum()
    # past the nearest exactly when the detour is shorter than the extra wait expected there
    extra = t["travel_s"].to_numpy() - t["travel_nearest_s"].to_numpy()
    saved = t["door_wait_nearest_s"].to_numpy() - t["door_wait_s"].to_numpy()
    assert np.all(extra[past] < saved[past]) and np.all(extra[~past] == 0.0)
    other = 1 - nearest[~past]               # the far one when the nearest was kept: not better
    assert np.all(other >= 0)
    assert res.kpis["hospital_past_nearest_extra_mean_s"] == pytest.approx(extra[past].mean())


def test_door_choice_cuts_the_scene_to_bed_time_on_the_same_calls():
    base = TWO.replace("rate_per_h = 0.3", "rate_per_h = 0.6").replace("until_s = 86400.0", "until_s = 864000.0")
    a = run(base + '\n[dispatch]\nhospital_choice = "nearest"\n', seed=4)
    b = run(base + '\n[dispatch]\nhospital_choice = "door"\n', seed=4)
    assert np.array_equal(a.ems.calls["time_s"], b.ems.calls["time_s"])
    ca, cb = (r.ems.calls for r in (a, b))
    ta = (ca["bed_s"] - ca["at_hospital_s"]).mean()
    tb = (cb["bed_s"] - cb["at_hospital_s"]).mean()
    assert tb < 0.75 * ta                                         # offload delay
    # scene (arrival of the first unit) to an ED bed, over the patients who got one in both runs
    both = ca["bed_s"].notna() & cb["bed_s"].notna()
    sa, sb = ((c["bed_s"] - c["time_s"] - c["response_s"])[both].mean() for c in (ca, cb))
    assert sb < sa - 600.0


def _status_at(occ, t, side="right"):
    """Patients in or waiting for a bed as of time ``t`` (its last change at or before it; with
    ``side="left"``, before it: a patient arriving at ``t`` itself not yet counted)."""
    i = np.searchsorted(occ["time_s"].to_numpy(), t, side=side) - 1
    return occ["occupied_beds"].to_numpy()[i] + occ["waiting"].to_numpy()[i]


@pytest.mark.parametrize("mode", ["siloed", "unified"])
def test_siloed_centres_choose_on_the_last_bed_report(mode):
    text = POOL.format(until=20 * 86400.0) + f"""
[[agencies]]
name = "120"
call_types = ["p1"]
units = ["als"]

[coordination]
mode = "{mode}"
hospital_report_s = 3600.0
"""
    res = run(text, seed=9)
    ch, occ = res.ems.hospital_choices, res.ems.occupancy
    t = ch["time_s"].to_numpy()
    live = np.array([_status_at(occ, x, "left") for x in t])    # the patient arrives at once (no drive)
    n = live if mode == "unified" else np.array([_status_at(occ, x) for x in np.floor(t / 3600.0) * 3600.0])
    expect = np.where(n < 2, 0.0, (n - 2 + 1) * 3600.0 / 2)
    assert len(t) > 400 and np.allclose(ch["door_wait_s"].to_numpy(), expect)
    assert (mode == "unified") == np.array_equal(n, live)       # the reports are stale at times


def test_a_snapshot_resumes_the_choices_exactly(tmp_path):
    from twin.runner import from_snapshot

    out = tmp_path / "j.h5"
    plain = run("hefei_joint", out=out, snapshot_at_s=[43200.0])
    again = from_snapshot(f"{out}@12:00")
    assert again.kpis == plain.kpis and plain.kpis["hospital_past_nearest"] > 0
    assert again.ems.hospital_choices.equals(plain.ems.hospital_choices)


SPEC = TWO.replace('''name = "far"
node = 36
''', '''name = "far"
node = 36
specialties = ["stroke"]
''').replace('''[[call_types]]
name = "p1"
priority = 1
''', '''[[call_types]]
name = "stroke"
priority = 1
share = 0.5
on_scene = 60.0
transport_probability = 1.0
specialty = "stroke"

[[call_types]]
name = "p1"
priority = 1
share = 0.5
''').replace("rate_per_h = 0.3", "rate_per_h = 1.0")


def test_a_specialty_patient_goes_past_the_nearest_hospital_to_one_offering_it():
    res = run(SPEC, seed=3)
    calls, ch = res.ems.calls, res.ems.hospital_choices
    stroke = calls["type_idx"] == 0
    carried = calls["at_hospital_s"].notna()
    assert (stroke & carried).sum() > 5 and (~stroke & carried).sum() > 5
    assert set(calls.loc[stroke & carried, "hospital_idx"]) == {1}            # all to the stroke centre
    assert set(ch["call_id"]) == set(calls.loc[stroke & carried, "call_id"])  # only they are chosen at the scene
    past = ch["hospital_idx"] != ch["nearest_hospital_idx"]
    assert res.kpis["hospital_past_nearest"] == past.sum() > 0
    extra = (ch["travel_s"] - ch["travel_nearest_s"])[past]
    assert np.all(extra > 0) and res.kpis["hospital_past_nearest_extra_mean_s"] == pytest.approx(extra.mean())


def test_a_specialty_no_hospital_offers_is_an_error():
    from twin.errors import ScenarioError

    with pytest.raises(ScenarioError, match="'burns' is offered by no hospital.*stroke"):
        run(SPEC.replace('specialty = "stroke"', 'specialty = "burns"'), seed=1)


ICU = POOL.replace("beds = 2\nmode = \"queue\"\nlength_of_stay = {{ kind = \"exponential\", mean_s = 3600.0 }}",
                   "beds = 50\nmode = \"queue\"\nlength_of_stay = 0.0\nicu_beds = 2\n"
                   "icu_los = {{ kind = \"exponential\", mean_s = 3600.0 }}").replace(
    "transport_probability = 1.0", "transport_probability = 1.0\nicu = true")


def test_the_expected_icu_wait_is_the_mean_wait_for_an_icu_bed():
    """No ED stay, 50 ED beds: the patient asks for an ICU bed on arrival; the estimate is the
    ED's (0) plus the ICU's, (n - c + 1) x mean ICU stay / c."""
    res = run(ICU.format(until=300 * 86400.0), seed=5)
    ch, stays = res.ems.hospital_choices, res.ems.stays
    assert "icu = true" in ICU and len(ch) > 9000
    mine = stays[stays["call_id"] >= 0].set_index("call_id")
    assert set(mine["pool"]) == {"icu"}                                   # every patient to the ICU
    s = mine.loc[ch["call_id"]]
    wait = (s["bed_s"] - s["request_s"]).to_numpy()
    est = ch["door_wait_s"].to_numpy()
    ok = np.isfinite(wait)
    assert ok.sum() > 9000 and (wait[ok] > 0).mean() > 0.3
    diff, se = _batch_diff(wait[ok], est[ok], ch["time_s"].to_numpy()[ok])
    assert abs(diff) < 4 * se and se < 0.05 * wait[ok].mean()
    # and the ICU is the M/M/2 queue it should be: Erlang C mean wait, lambda 1.5/h, mean stay 1 h
    from twin.queueing import erlang_c

    wq_s = erlang_c(2, 1.5) / (2 * 1.0 - 1.5) * 3600.0          # C(2, 1.5) / (c mu - lambda), in s
    mean, se_w = _batch_diff(wait[ok], np.zeros(ok.sum()), ch["time_s"].to_numpy()[ok])
    assert wq_s == pytest.approx(4628.57, abs=0.01) and abs(mean - wq_s) < 4 * se_w


ICU_TWO = SPEC.replace('specialties = ["stroke"]', 'icu_beds = 4\nicu_los = 36000.0').replace(
    'specialty = "stroke"', "icu = true")


def test_an_icu_patient_goes_past_the_nearest_hospital_to_one_with_icu_beds():
    res = run(ICU_TWO, seed=3)
    calls, ch, stays = res.ems.calls, res.ems.hospital_choices, res.ems.stays
    icu = calls["type_idx"] == 0
    carried = calls["at_hospital_s"].notna()
    assert (icu & carried).sum() > 5 and (~icu & carried).sum() > 5
    assert set(calls.loc[icu & carried, "hospital_idx"]) == {1}             # all to the one with an ICU
    assert set(ch["call_id"]) == set(calls.loc[icu & carried, "call_id"])   # only they are chosen at the scene
    asked = stays.loc[stays["call_id"] >= 0]
    assert set(asked["pool"]) == {"icu"}
    assert set(asked["call_id"]) <= set(calls.loc[icu, "call_id"])          # the others go home after the ED
    assert res.kpis["hospital_past_nearest"] == (ch["hospital_idx"] != ch["nearest_hospital_idx"]).sum() > 0


def test_icu_patients_without_an_icu_are_an_error():
    from twin.errors import ScenarioError

    with pytest.raises(ScenarioError, match="need an ICU bed and no hospital has ICU beds"):
        run(ICU_TWO.replace("icu_beds = 4\n", ""), seed=1)
