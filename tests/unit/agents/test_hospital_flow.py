"""Hospital patient flow: ED -> ward / ICU with boarding, diversion, transfers, TOML keys.

Exact timelines (STYLE §14) use constant times; the analytic check (ICU as Erlang's loss
system behind an ED) states its setup and interval in its docstring.
"""

import math

import numpy as np
import pytest
from scipy import stats

from twin.agents.ems import CityModel, run_ems, run_replications
from twin.agents.ems_assembly import _flow_tables
from twin.emergency import (CallTypeSpec, DispatchSpec, Dist, EmsSpec, HospitalSpec, ServiceSpec, UnitSpec,
                            ZoneSpec, time_average)
from twin.errors import ScenarioError
from twin.queueing import erlang_b
from twin.runner import load_scenario

C = lambda s: Dist("constant", s, 0.0)  # noqa: E731


def _drive(spec, admissions, until_s=1.0):
    """A model with no calls; ``admissions`` = [(time_s, call_id, priority)] brought to hospital 0."""
    model = CityModel(spec, seed=0, until_s=until_s)
    hosp = model.hospitals[0]

    def source():
        for t, cid, prio in admissions:
            yield model.env.timeout(t - model.env.now)
            hosp.admit(cid, 0.5, prio)

    model.env.process(source())
    model.run(drain=True)
    return model


def test_boarding_timeline_patient_waits_in_ed_for_a_ward_bed():
    """ED 2 beds (100 s), ward 1 bed (500 s), everyone admitted to the ward. Patient 1 ends
    the ED stay at 110 s, finds the ward bed taken until 600 s and boards in the ED (keeping
    the ED bed) for 490 s."""
    spec = EmsSpec(travel_time_s=np.zeros((1, 1)),
                   hospitals=(HospitalSpec("h", 0, 2, C(100.0), "queue", ward_beds=1, ward_los=C(500.0),
                                           ward_probability=(1.0, 1.0, 1.0)),))
    model = _drive(spec, [(0.0, 0, 1), (10.0, 1, 1)])
    h = model.hospitals[0]
    # ED: (call_id, arrival_s, bed_s, discharge_s, blocked); the ED bed is freed when the ward bed is granted
    assert h.admissions == [[0, 0.0, 0.0, 100.0, False], [1, 10.0, 10.0, 600.0, False]]
    assert [tuple(r) for r in h.stays] == [(0, "ward", 0, 0, 100.0, 100.0, 600.0, False, False),
                                          (1, "ward", 0, 0, 110.0, 600.0, 1100.0, False, False)]
    assert h.pools["ward"][3] == [(0.0, 0, 0), (100.0, 1, 0), (110.0, 1, 1), (600.0, 0, 1), (600.0, 1, 0),
                                  (1100.0, 0, 0)]
    assert h.series == [(0.0, 0, 0), (0.0, 0, 1), (0.0, 1, 0), (10.0, 1, 1), (10.0, 2, 0), (100.0, 1, 0),
                        (600.0, 0, 0)]
    kpis, stays, *_, flow, _ = _flow_tables(model, 0.0, 1200.0)
    assert stays["boarding_s"].tolist() == [0.0, 490.0]
    assert kpis["boarding_mean_s"] == 245.0 and kpis["n_boarded"] == 1
    assert flow.loc[0, "ward_admissions"] == 2 and flow.loc[0, "ward_blocked"] == 0


def test_without_boarding_a_full_ward_blocks_and_frees_the_ed_bed():
    spec = EmsSpec(travel_time_s=np.zeros((1, 1)),
                   hospitals=(HospitalSpec("h", 0, 2, C(100.0), "queue", ward_beds=1, ward_los=C(500.0),
                                           ward_probability=(1.0, 1.0, 1.0), boarding=False),))
    h = _drive(spec, [(0.0, 0, 1), (10.0, 1, 1)]).hospitals[0]
    assert h.admissions[1] == [1, 10.0, 10.0, 110.0, False]
    row = h.stays[1]
    assert row[:5] == [1, "ward", 0, 0, 110.0] and math.isnan(row[5]) and row[7] is True


def two_hospital_spec(**a_opts):
    """Station 0, zone 1, hospital A at 2 (200 s from the zone), B at 3 (500 s)."""
    tt = np.array([[0.0, 300.0, 400.0, 700.0],
                   [300.0, 0.0, 200.0, 500.0],
                   [400.0, 200.0, 0.0, 600.0],
                   [700.0, 500.0, 600.0, 0.0]])
    return EmsSpec(travel_time_s=tt, zones=(ZoneSpec("z", 1, 1.0),),
                   call_types=(CallTypeSpec("p1", 1, 1.0, C(600.0), 1.0),),
                   units=(UnitSpec("a", 0), UnitSpec("b", 0)),
                   hospitals=(HospitalSpec("A", 2, 1, C(10000.0), "queue", **a_opts),
                              HospitalSpec("B", 3, 5, C(10000.0), "queue")),
                   dispatch=DispatchSpec("nearest", (), C(0.0), None),
                   service=ServiceSpec("path", turnout=C(0.0), handover=C(300.0), return_mode="instant"))


def test_diversion_sends_the_next_transport_to_the_other_hospital():
    """A (nearer) has one ED bed: call 0 takes it at 1100 s and A goes on diversion until
    11100 s; call 1 leaves the scene at 1900 s and goes to B (a diverted transport)."""
    calls = {"time_s": [0.0, 1000.0], "zone_idx": [0, 0]}
    res = run_ems(two_hospital_spec(diversion=True), seed=0, until_s=3600.0, calls=calls)
    ev = [(t, c, e) for t, c, e in zip(res.unit_events.time_s, res.unit_events.call_id, res.unit_events.event)
          if e in ("transporting", "at_hospital")]
    assert ev == [(900.0, 0, "transporting"), (1100.0, 0, "at_hospital"), (1900.0, 1, "transporting"),
                  (2400.0, 1, "at_hospital")]
    assert res.calls.hospital_idx.tolist() == [0, 1]
    assert res.diverted.values.tolist() == [[1, 1900.0, 0, 1]]
    assert res.diversion_periods.values.tolist()[0][:2] == [0, 1100.0]
    assert res.diversion_periods.values.tolist()[0][2] == 11100.0
    assert res.kpis["n_diverted"] == 1
    flow = res.hospital_flow
    assert flow.diversion_h.tolist() == pytest.approx([(3600.0 - 1100.0) / 3600.0, 0.0])
    assert flow.diverted_from.tolist() == [1, 0] and flow.diverted_to.tolist() == [0, 1]
    # the same calls without diversion: both to A (the second waits for its bed)
    plain = run_ems(two_hospital_spec(), seed=0, until_s=3600.0, calls=calls)
    assert plain.calls.hospital_idx.tolist() == [0, 0]
    assert plain.stays is None and "n_diverted" not in plain.kpis


def test_diversion_threshold_and_all_on_diversion_fallback():
    spec = two_hospital_spec(diversion=True)
    both = EmsSpec(**{**spec.__dict__, "hospitals": (spec.hospitals[0],
                                                      HospitalSpec("B", 3, 1, C(10000.0), "queue",
                                                                   diversion=True))})
    calls = {"time_s": [0.0, 0.0, 1000.0], "zone_idx": [0, 0, 0]}
    three = EmsSpec(**{**both.__dict__, "units": both.units + (UnitSpec("c", 0),)})
    res = run_ems(three, seed=0, until_s=3600.0, calls=calls)
    # calls 0 and 1 leave the scene together at 900 s: both to A (not yet on diversion; call 1
    # waits for A's bed); call 2 leaves at 1900 s with A on diversion and B free: to B
    assert res.calls.hospital_idx.tolist() == [0, 0, 1]
    with pytest.raises(ScenarioError, match=r"diversion_threshold.*expected an occupied share of beds in \(0, 1\]"):
        two_hospital_spec(diversion=True, diversion_threshold=1.5)


def test_icu_transfer_to_the_nearest_hospital_with_a_free_icu_bed():
    """Hospital 0 has no ICU and transfers; hospital 1 (far) and 2 (near) have one ICU bed."""
    tt = np.array([[0.0, 900.0, 100.0], [900.0, 0.0, 800.0], [100.0, 800.0, 0.0]])
    hs = (HospitalSpec("h", 0, 3, C(100.0), "queue", icu_probability=(1.0, 0.0, 0.0), transfer=True),
          HospitalSpec("far", 1, 1, C(100.0), "queue", icu_beds=1, icu_los=C(1000.0)),
          HospitalSpec("near", 2, 1, C(100.0), "queue", icu_beds=1, icu_los=C(1000.0)))
    model = _drive(EmsSpec(travel_time_s=tt, hospitals=hs), [(0.0, 0, 1), (0.0, 1, 1), (0.0, 2, 1)])
    kpis, stays, *_ = _flow_tables(model, 0.0, 5000.0)
    got = stays[["call_id", "hospital_idx", "from_hospital_idx", "request_s", "bed_s", "blocked", "transferred"]]
    # patients 0 and 1 fill the near and then the far ICU; patient 2 finds none and is blocked
    assert got.fillna(-1.0).values.tolist() == [[0, 2, 0, 100.0, 100.0, False, True],
                                                [1, 1, 0, 100.0, 100.0, False, True],
                                                [2, 0, 0, 100.0, -1.0, True, False]]
    assert kpis["n_transfers"] == 2
    assert model.hospitals[0].admissions[0][3] == 100.0     # the ED bed is freed at once


@pytest.mark.parametrize("boarding", [True, False])
def test_littles_law_on_ward_and_icu_pools(boarding):
    """On a drained run the time integral of occupied ward / ICU beds equals the sum of the
    stays (Little's law, sample-path form: L·T = Σ W), exactly up to rounding."""
    spec = EmsSpec(travel_time_s=np.zeros((1, 1)),
                   hospitals=(HospitalSpec("h", 0, 4, Dist("exponential", 3600.0), "queue", 6.0,
                                           ward_beds=3, ward_los=Dist("exponential", 4 * 3600.0),
                                           icu_beds=1, icu_los=Dist("lognormal", 6 * 3600.0, 0.8),
                                           ward_probability=(0.0, 0.0, 0.5), icu_probability=(0.0, 0.0, 0.2),
                                           boarding=boarding),))
    res = run_ems(spec, seed=4, until_s=5 * 86400.0)
    occ, st = res.pool_occupancy, res.stays
    for pool in ("ward", "icu"):
        o = occ[occ.pool == pool]
        s = st[(st.pool == pool) & st.bed_s.notna()]
        assert len(s) > 20
        area = time_average(o.time_s.to_numpy(), o.occupied_beds.to_numpy(), 0.0, res.end_s, integral=True)
        assert area == pytest.approx(float((s.discharge_s - s.bed_s).sum()), rel=1e-9)
    assert (st.blocked.sum() > 0) == (not boarding)


def test_icu_behind_the_ed_is_erlang_loss_system():
    """Walk-ins, Poisson 4/day, into an ED of 30 beds (queue mode, exponential 1 h stay,
    offered 1/6 erlang, so practically never full). By Burke's theorem the ED's departure
    stream of an M/M/30 queue is Poisson at 4/day. Every patient needs the ICU (P3 row =
    walk-ins), 5 beds, exponential 1-day stay, no boarding: an M/M/5/5 loss system at
    a = 4 erlangs, blocking B(5, 4) = 0.19907. R = 20 replications of 300 days (~1 200 ICU
    requests each) after a 20-day warm-up; Bonferroni-free 99.9 % t interval on the mean
    blocking, which must also be narrower than 12 % of B.
    """
    spec = EmsSpec(travel_time_s=np.zeros((1, 1)), warmup_s=20 * 86400.0,
                   hospitals=(HospitalSpec("h", 0, 30, Dist("exponential", 3600.0), "queue", 4.0 / 24.0,
                                           icu_beds=5, icu_los=Dist("exponential", 86400.0),
                                           icu_probability=(0.0, 0.0, 1.0), boarding=False),))
    runs = run_replications(spec, seed=7, n_replications=20, until_s=320 * 86400.0)
    b = []
    for r in runs:
        f = r.hospital_flow.iloc[0]
        b.append(f.icu_blocked / (f.icu_blocked + f.icu_admissions))
    x = np.asarray(b)
    half = stats.t.ppf(1 - 0.001 / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    exact = erlang_b(5, 4.0)
    assert abs(x.mean() - exact) <= half, (x.mean(), half, exact)
    assert half <= 0.12 * exact


def test_spec_errors_are_clear():
    with pytest.raises(ScenarioError, match=r"ward_probability: ward admissions given but no ward_beds"):
        EmsSpec(travel_time_s=np.zeros((1, 1)),
                hospitals=(HospitalSpec("h", 0, 1, ward_probability=(0.5, 0, 0)),))
    with pytest.raises(ScenarioError, match=r"icu_probability: ICU admissions given but no icu_beds"):
        EmsSpec(travel_time_s=np.zeros((1, 1)), hospitals=(HospitalSpec("h", 0, 1, icu_probability=(0.5, 0, 0)),))
    with pytest.raises(ScenarioError, match=r"ward_probability\[0\] \+ icu_probability\[0\] = 1.5; expected <= 1"):
        EmsSpec(travel_time_s=np.zeros((1, 1)),
                hospitals=(HospitalSpec("h", 0, 1, ward_beds=1, icu_beds=1, ward_probability=(0.8, 0, 0),
                                        icu_probability=(0.7, 0, 0)),))
    with pytest.raises(ScenarioError, match=r"ward_beds.*found -1"):
        EmsSpec(travel_time_s=np.zeros((1, 1)), hospitals=(HospitalSpec("h", 0, 1, ward_beds=-1),))


TOML = """
[city]
name = "grid:6x6"

[run]
until_s = 3600.0
seed = 3

[calls]
rate_per_h = 4.0

[[call_types]]
name = "p1"
priority = 1
on_scene = 300.0
transport_probability = 1.0

[[stations]]
name = "corner"
node = 1
ambulances = 2

[[hospitals]]
name = "h"
node = 36
beds = 1
length_of_stay = 3600.0
mode = "queue"
ward_beds = 2
ward_los = {kind = "exponential", mean_s = 7200}
icu_beds = 1
icu_los = 10000.0
ward_probability = [0.3, 0.5, 0.5]
icu_probability = [0.6, 0.1, 0.0]
diversion = true
diversion_threshold = 1.0

[[hospitals]]
name = "g"
node = 6
beds = 3
"""


def test_toml_keys_map_onto_the_spec_and_run(tmp_path):
    sc = load_scenario(TOML)
    h = sc.ems.hospitals[0]
    assert (h.ward_beds, h.icu_beds, h.diversion, h.diversion_threshold, h.transfer, h.boarding) == \
        (2, 1, True, 1.0, False, True)
    assert h.ward_los == Dist("exponential", 7200.0) and h.icu_los == Dist("constant", 10000.0, 0.0)
    assert h.ward_probability == (0.3, 0.5, 0.5) and h.icu_probability == (0.6, 0.1, 0.0)
    assert not sc.ems.hospitals[1].has_flow
    res = run_ems(sc.ems, seed=1, until_s=3600.0)
    assert {"boarding_mean_s", "n_diverted", "diversion_h", "n_transfers"} <= set(res.kpis)
    from twin.results import ResultsWriter
    with ResultsWriter(tmp_path / "r.h5") as w:
        res.write(w, layout=sc.layout)
    with pytest.raises(ScenarioError, match=r"diversion_threshold = 0.0; expected a finite number > 0"):
        load_scenario(TOML.replace("diversion_threshold = 1.0", "diversion_threshold = 0.0"))
    with pytest.raises(ScenarioError, match=r"unknown key 'icu_bed'.*did you mean 'icu_beds'"):
        load_scenario(TOML.replace("icu_beds = 1", "icu_bed = 1"))
    with pytest.raises(ScenarioError, match=r"icu_probability = \[0.6\]; expected a list of 3 numbers"):
        load_scenario(TOML.replace("icu_probability = [0.6, 0.1, 0.0]", "icu_probability = [0.6]"))


def test_all_hospitals_on_diversion_falls_back_to_the_nearest():
    spec = two_hospital_spec(diversion=True)
    both = EmsSpec(**{**spec.__dict__, "hospitals": (spec.hospitals[0], HospitalSpec("B", 3, 1, diversion=True))})
    model = CityModel(both, seed=0, until_s=1.0)
    model.hospitals[0].on_diversion = True
    assert model.choose_hospital(0, 1) == 1 and model.diverted == [(0, 0.0, 0, 1)]
    model.hospitals[1].on_diversion = True
    assert model.choose_hospital(0, 1) == 0 and len(model.diverted) == 1


def test_offload_delay_is_the_crews_wait_for_a_bed(tmp_path):
    """hefei_rush's queue ED keeps crews waiting with no patient blocked: the offload KPIs are
    the ambulance patients' waits for a bed in the admissions table."""
    import numpy as np

    from twin.results import open_results
    from twin.runner import run

    res = run("hefei_rush", out=tmp_path / "r.h5")
    k = res.kpis
    with open_results(tmp_path / "r.h5") as f:
        adm = f.table("/events/ems_admissions")
        calls = f.table("/events/ems_calls")
    inwin = set(calls.loc[(calls["call_s"] >= k["window_start_s"]) & (calls["call_s"] < k["window_end_s"])
                          & (calls["zone_idx"] >= 0), "call_id"])
    amb = adm[adm["call_id"].isin(inwin) & adm["bed_s"].notna()]
    wait = (amb["bed_s"] - amb["arrival_s"]).to_numpy()
    assert k["blocking"] == 0.0 and wait.max() > 600.0
    assert k["offload_delay_mean_s"] == pytest.approx(wait.mean())
    assert k["offload_delay_p90_s"] == pytest.approx(np.percentile(wait, 90))
    assert k["offload_unit_h"] == pytest.approx(wait.sum() / 3600.0)
