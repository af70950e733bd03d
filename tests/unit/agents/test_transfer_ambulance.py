"""Inter-hospital transfers by ambulance: exact lifecycle, and no patient or call lost."""

import numpy as np
import pytest

from twin.agents.ems import run_ems
from twin.emergency import CallTypeSpec, DispatchSpec, Dist, EmsSpec, HospitalSpec, ServiceSpec, UnitSpec, ZoneSpec
from twin.errors import ScenarioError

# Locations: 0 station, 1 zone, 2 hospital h0 (no ICU), 3 hospital h1 (ICU).
TT = np.array([[0.0, 100.0, 200.0, 400.0],
               [100.0, 0.0, 100.0, 500.0],
               [200.0, 100.0, 0.0, 300.0],
               [400.0, 500.0, 300.0, 0.0]])


def const(s):
    return Dist("constant", s, 0.0)


def spec(n_units=1, icu_beds=1, max_queue=None, rate=1.0, los=const(1000.0), icu_los=const(5000.0)):
    # the ICU length of stay is drawn with the sending hospital's icu_los
    h0 = HospitalSpec("h0", 2, 2, los, "queue", icu_los=icu_los, icu_probability=(1.0, 0.0, 0.0), transfer=True,
                      transfer_by_ambulance=True)
    h1 = HospitalSpec("h1", 3, 2, los, "queue", icu_beds=icu_beds, icu_los=icu_los,
                      icu_probability=(1.0, 0.0, 0.0), transfer=True, transfer_by_ambulance=True)
    return EmsSpec(travel_time_s=TT, zones=(ZoneSpec("z", 1, rate),),
                   call_types=(CallTypeSpec("p1", 1, 1.0, const(0.0), 1.0),),
                   units=tuple(UnitSpec(f"a{i}", 0) for i in range(n_units)), hospitals=(h0, h1),
                   dispatch=DispatchSpec("nearest", (), const(0.0), max_queue),
                   service=ServiceSpec("path", turnout=const(0.0), handover=const(50.0)))


def timeline(res):
    ue = res.unit_events
    return list(zip(ue.time_s, ue.unit_idx, ue.call_id, ue.event))


def test_transfer_lifecycle():
    """The call goes to h0 (nearest), whose ED stay ends at 1200 s with an ICU need; h0 has
    no ICU, so h1's ICU bed is reserved and a transfer (call 1) is dispatched: the ambulance
    drives station -> h0 (200 s), loads the patient (handover 50 s; h0's ED bed is freed),
    drives h0 -> h1 (300 s), where the ICU stay starts, hands over and returns."""
    res = run_ems(spec(), seed=0, until_s=3600.0, calls={"time_s": [0.0], "zone_idx": [0]})
    assert timeline(res) == [
        (0.0, 0, 0, "dispatched"), (0.0, 0, 0, "en_route"), (100.0, 0, 0, "on_scene"),
        (100.0, 0, 0, "transporting"), (200.0, 0, 0, "at_hospital"), (200.0, 0, 0, "handover"),
        (250.0, 0, 0, "available"), (250.0, 0, 0, "returning"), (450.0, 0, 0, "at_station"),
        (1200.0, 0, 1, "dispatched"), (1200.0, 0, 1, "en_route"), (1400.0, 0, 1, "on_scene"),
        (1450.0, 0, 1, "transporting"), (1750.0, 0, 1, "at_hospital"), (1750.0, 0, 1, "handover"),
        (1800.0, 0, 1, "available"), (1800.0, 0, 1, "returning"), (2200.0, 0, 1, "at_station")]
    c = res.calls
    assert c["zone_idx"].tolist() == [0, -1] and c["type_idx"].tolist() == [0, 1]
    assert c["outcome"].tolist() == ["completed", "completed"] and c["priority"].tolist() == [1, 3]
    st = res.stays
    assert st[["call_id", "pool", "hospital_idx", "from_hospital_idx", "request_s", "bed_s", "discharge_s",
               "transferred"]].values.tolist() == [[0, "icu", 1, 0, 1200.0, 1750.0, 6750.0, True]]
    ad = res.admissions
    assert ad[["hospital_idx", "call_id", "arrival_s", "bed_s", "discharge_s"]].values.tolist() == [
        [0, 0, 200.0, 200.0, 1450.0]]
    k = res.kpis
    assert k["n_calls"] == 1 and k["n_transfers_ambulance"] == 1 and k["n_transfers"] == 1
    assert (k["transfer_pickup_mean_s"], k["transfer_time_mean_s"]) == (200.0, 550.0)


@pytest.mark.parametrize("max_queue", [None, 0])
def test_no_patient_or_call_is_lost(max_queue):
    """A busy week with few ICU beds and a loss dispatch (max_queue = 0 loses calls that find
    no unit): every call ends in exactly one terminal state, transfers are never lost, every
    transferred patient gets the reserved bed and leaves it, every ED stay ends."""
    res = run_ems(spec(n_units=2, max_queue=max_queue, rate=1.5, los=Dist("exponential", 1800.0),
                       icu_los=Dist("exponential", 7200.0)), seed=5, until_s=7 * 86400.0)
    c = res.calls
    transfer = c["type_idx"] == 1
    assert transfer.sum() > 20
    assert set(c["outcome"]) <= {"completed", "lost"}
    assert (c.loc[transfer, "outcome"] == "completed").all()
    if max_queue == 0:
        assert (c["outcome"] == "lost").sum() > 0
    st = res.stays
    moved = st[st["transferred"]]
    assert len(moved) == transfer.sum()
    assert moved["bed_s"].notna().all() and moved["discharge_s"].notna().all()
    assert sorted(moved["call_id"]) == sorted(set(moved["call_id"]))
    got_bed = res.admissions["bed_s"].notna()
    assert res.admissions.loc[got_bed, "discharge_s"].notna().all()
    # the transfer's bed time is when its ambulance reached the receiving hospital
    tr = c[transfer].set_index("call_id")
    assert len(tr) == res.kpis["n_transfers_ambulance"] + int((tr["time_s"] >= 7 * 86400.0).sum())


def test_transfer_by_ambulance_needs_transfer_and_ambulances():
    with pytest.raises(ScenarioError, match="transfer_by_ambulance.*transfer = true"):
        EmsSpec(travel_time_s=[[0.0]], hospitals=(HospitalSpec("h", 0, 1, transfer_by_ambulance=True),))
    with pytest.raises(ScenarioError, match="no ambulances"):
        EmsSpec(travel_time_s=[[0.0]], hospitals=(HospitalSpec("h", 0, 1, transfer=True, transfer_by_ambulance=True),
                                                  HospitalSpec("i", 0, 1, icu_beds=1)),
                units=(UnitSpec("f", 0, None, "fire"),))
