"""EMS result assembly: the tables and KPIs of a finished :class:`twin.agents.ems.CityModel`.

:func:`ems_result` turns the model's records (call table, unit events, assignments,
hospital stays, move-up orders, incidents) into an :class:`~twin.emergency.EmsResult`
over the KPI window ``[spec.warmup_s, model.until_s)``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from twin.emergency import OUTCOMES, UNIT_EVENTS, EmsResult, response_summary, time_average

__all__ = ["ems_result"]

AVAILABLE, TRANSPORTING = UNIT_EVENTS.index("available"), UNIT_EVENTS.index("transporting")
COMPLETED, LOST = OUTCOMES.index("completed"), OUTCOMES.index("lost")


def _calls_frame(calls):
    outcome = np.asarray(OUTCOMES, dtype=object)[calls.outcome]
    return pd.DataFrame({
        "call_id": np.arange(len(calls), dtype=np.int64), "time_s": calls.time_s, "zone_idx": calls.zone_idx,
        "type_idx": calls.type_idx, "priority": calls.priority, "ready_s": calls.ready_s,
        "dispatched_s": calls.dispatched_s, "unit_idx": calls.unit_idx, "travel_s": calls.travel_s,
        "on_scene_s": calls.on_scene_at_s, "transport": calls.transport, "hospital_idx": calls.hospital_idx,
        "at_hospital_s": calls.at_hospital_s, "bed_s": calls.bed_s, "available_s": calls.available_s,
        "outcome": outcome, "n_units": calls.n_units, "location_idx": calls.location_idx,
        "wait_s": calls.dispatched_s - calls.ready_s,
        "response_s": calls.on_scene_at_s - calls.time_s})


def _assignments_frame(model):
    """Every unit sent, in call order (then dispatch order): one row per assignment."""
    cols = ["call_id", "unit_idx", "slot", "dispatched_s", "on_scene_s", "available_s"]
    a = np.array(model.assignments, dtype=np.float64).reshape(-1, 6)
    a = a[np.argsort(a[:, 0], kind="stable")]
    frame = pd.DataFrame(a, columns=cols)
    for name, dtype in (("call_id", np.int64), ("unit_idx", np.int32), ("slot", np.int16)):
        frame[name] = frame[name].astype(dtype)
    return frame


def _overlap(a, b, start, end):
    return np.clip(np.minimum(b, end) - np.maximum(a, start), 0.0, None)


def _kpis_and_tables(model, start, end):
    spec, calls = model.spec, model.calls
    span = end - start
    kpis = {"window_start_s": start, "window_end_s": end}
    inwin = (calls.time_s >= start) & (calls.time_s < end) & (calls.zone_idx >= 0)   # no transfers, incidents
    n = int(inwin.sum())
    kpis["n_calls"] = n
    kpis["n_lost"] = int(np.sum(inwin & (calls.outcome == LOST)))
    kpis["n_open"] = int(np.sum(inwin & (calls.outcome == 0)))
    kpis["lost_share"] = kpis["n_lost"] / n if n else math.nan
    resp = calls.on_scene_at_s - calls.time_s
    for key, val in response_summary(resp[inwin]).items():
        kpis[f"response_{key}"] = val
    for p in (1, 2, 3):
        sel = inwin & (calls.priority == p)
        if not sel.any():
            continue
        for key, val in response_summary(resp[sel], spec.response_target_s[p - 1]).items():
            kpis[f"response_p{p}_{key}"] = val
    served = inwin & ~np.isnan(calls.dispatched_s)
    wait = (calls.dispatched_s - calls.ready_s)[served]
    kpis["dispatch_wait_mean_s"] = float(wait.mean()) if len(wait) else math.nan
    kpis["dispatch_wait_share"] = float(np.mean(wait > 0)) if len(wait) else math.nan
    qs = np.array(model.dispatch.queue_series, dtype=np.float64)
    kpis["dispatch_queue_mean"] = time_average(qs[:, 0], qs[:, 1], start, end)
    # offload delay: a crew waits at the hospital with its patient until a bed is free (queue wards)
    carried = inwin & ~np.isnan(calls.at_hospital_s) & ~np.isnan(calls.bed_s)
    off = (calls.bed_s - calls.at_hospital_s)[carried]
    kpis["offload_delay_mean_s"] = float(off.mean()) if len(off) else math.nan
    kpis["offload_delay_p90_s"] = _p90(off)
    kpis["offload_unit_h"] = float(off.sum()) / 3600.0
    if model.door_choice or model.any_diversion or any(model.needs):
        kpis.update(_choice_kpis(model, calls, inwin))

    asg = _assignments_frame(model)
    a_unit = asg["unit_idx"].to_numpy(np.int64)
    a_disp, a_free = asg["dispatched_s"].to_numpy(), asg["available_s"].to_numpy()
    busy = _overlap(a_disp, np.where(np.isnan(a_free), np.inf, a_free), start, end)   # still busy: to the end
    busy_s = np.bincount(a_unit, weights=busy, minlength=spec.n_units)
    disp_in = (a_disp >= start) & (a_disp < end)
    n_disp = np.bincount(a_unit[disp_in], minlength=spec.n_units)
    units = pd.DataFrame({"unit_idx": np.arange(spec.n_units), "name": [u.name for u in spec.units],
                          "kind": [u.kind for u in spec.units],
                          "station_idx": [u.station_idx for u in spec.units], "n_dispatches": n_disp,
                          "busy_s": busy_s, "utilisation": busy_s / span})
    kpis["unit_utilisation_mean"] = float(units["utilisation"].mean()) if spec.n_units else math.nan

    adm_rows, occ_rows, hosp_rows = [], [], []
    for h in model.hospitals:
        for call_id, arr, bed, dis, blocked in h.admissions:
            adm_rows.append((h.hospital_idx, call_id, arr, bed, dis, blocked))
        s = np.array(h.series, dtype=np.float64)
        occ_rows.append(pd.DataFrame({"time_s": s[:, 0], "hospital_idx": h.hospital_idx,
                                      "occupied_beds": s[:, 1].astype(np.int64), "waiting": s[:, 2].astype(np.int64)}))
        a = np.array([r[1:5] for r in h.admissions], dtype=np.float64).reshape(-1, 4)
        arr_in = (a[:, 0] >= start) & (a[:, 0] < end)
        n_arr = int(arr_in.sum())
        n_blk = int(np.sum(arr_in & (a[:, 3] > 0)))
        got = arr_in & ~np.isnan(a[:, 1])
        occ = time_average(s[:, 0], s[:, 1], start, end)
        row = {"hospital_idx": h.hospital_idx, "name": h.spec.name, "beds": h.spec.beds, "arrivals": n_arr,
               "blocked": n_blk, "blocking": n_blk / n_arr if n_arr else math.nan, "occupancy_mean": occ,
               "occupancy_max": int(s[:, 1].max()), "utilisation": occ / h.spec.beds if h.spec.beds else math.nan,
               "bed_wait_mean_s": float(np.mean(a[got, 1] - a[got, 0])) if got.any() else math.nan,
               "waiting_mean": time_average(s[:, 0], s[:, 2], start, end)}
        hosp_rows.append(row)
        for key in ("arrivals", "blocked", "blocking", "occupancy_mean", "utilisation", "bed_wait_mean_s"):
            kpis[f"hospital_{h.spec.name}_{key}"] = row[key]
    admissions = pd.DataFrame(adm_rows, columns=["hospital_idx", "call_id", "arrival_s", "bed_s", "discharge_s",
                                                 "blocked"])
    occupancy = (pd.concat(occ_rows, ignore_index=True) if occ_rows else
                 pd.DataFrame(columns=["time_s", "hospital_idx", "occupied_beds", "waiting"]))
    hospitals = pd.DataFrame(hosp_rows, columns=["hospital_idx", "name", "beds", "arrivals", "blocked", "blocking",
                                                 "occupancy_mean", "occupancy_max", "utilisation", "bed_wait_mean_s",
                                                 "waiting_mean"])
    return kpis, units, admissions, occupancy, hospitals, asg


STAY_COLUMNS = ["call_id", "pool", "hospital_idx", "from_hospital_idx", "request_s", "bed_s", "discharge_s",
                "blocked", "transferred"]


#: The hospital choices' table (:attr:`twin.emergency.EmsResult.hospital_choices`).
CHOICE_COLUMNS = ["call_id", "time_s", "nearest_hospital_idx", "hospital_idx", "travel_nearest_s", "travel_s",
                  "door_wait_nearest_s", "door_wait_s"]


def _choice_kpis(model, calls, inwin):
    """Hospitals chosen at the scene (door choice or diversion): transports taken past the
    nearest hospital, the extra travel it cost them, and the time from leaving the scene to
    an ED bed (travel + offload delay; transports that got a bed)."""
    ch = np.array([r for r in model.hospital_choices if inwin[r[0]]], dtype=np.float64).reshape(-1, 8)
    past = ch[:, 2] != ch[:, 3]
    extra = ch[past, 5] - ch[past, 4]
    bed = calls.bed_s[ch[:, 0].astype(np.int64)] - ch[:, 1]
    bed = bed[np.isfinite(bed)]
    return {"hospital_past_nearest": float(past.sum()),
            "hospital_past_nearest_share": float(past.mean()) if len(ch) else math.nan,
            "hospital_past_nearest_extra_mean_s": float(extra.mean()) if len(extra) else math.nan,
            "scene_to_bed_mean_s": float(bed.mean()) if len(bed) else math.nan,
            "scene_to_bed_p90_s": _p90(bed)}


def _p90(x):
    return float(np.percentile(x, 90)) if len(x) else math.nan


def _flow_tables(model, start, end):
    """Patient-flow and diversion KPIs and tables (only for specs that use them)."""
    kpis = {}
    rows = [r for h in model.hospitals for r in h.stays]
    stays = pd.DataFrame(rows, columns=STAY_COLUMNS)
    stays = stays.sort_values(["request_s", "call_id", "hospital_idx"], kind="stable").reset_index(drop=True)
    stays["boarding_s"] = stays["bed_s"] - stays["request_s"]
    inwin = (stays["request_s"] >= start) & (stays["request_s"] < end)
    # boarding of the EMS's own patients (call ids >= -1: calls and walk-ins; other flows' patients
    # put into beds through InpatientBeds carry ids below -1 and never board)
    board = stays[inwin & ~stays["transferred"] & stays["bed_s"].notna() & (stays["call_id"] >= -1)]
    occ_rows, per_div, hrows = [], [], []
    dv = pd.DataFrame(model.diverted, columns=["call_id", "time_s", "nearest_hospital_idx", "hospital_idx"])
    dv = dv.astype({"call_id": np.int64, "time_s": np.float64, "nearest_hospital_idx": np.int32,
                    "hospital_idx": np.int32})
    dv_in = dv[(dv["time_s"] >= start) & (dv["time_s"] < end)]
    for h in model.hospitals:
        i = h.hospital_idx
        log = np.array(h.diversion_log, dtype=np.float64)
        on_t = log[:, 0]
        div_s = time_average(on_t, log[:, 1], start, end, integral=True)
        for (t0, on), nxt in zip(h.diversion_log, h.diversion_log[1:] + [(math.nan, None)]):
            if on:
                per_div.append((i, t0, nxt[0]))
        row = {"hospital_idx": i, "name": h.spec.name,
               "ward_beds": -1 if h.spec.ward_beds is None else h.spec.ward_beds,
               "icu_beds": -1 if h.spec.icu_beds is None else h.spec.icu_beds}
        mine = stays[inwin & (stays["hospital_idx"] == i)]
        for name in ("ward", "icu"):
            pm = mine[mine["pool"] == name]
            row[f"{name}_admissions"] = int((pm["bed_s"].notna()).sum())
            row[f"{name}_blocked"] = int(pm["blocked"].sum())
            pool = h.pools.get(name)
            if pool is not None:
                ps = np.array(pool[3], dtype=np.float64)
                occ_rows.append(pd.DataFrame({"time_s": ps[:, 0], "hospital_idx": i, "pool": name,
                                              "occupied_beds": ps[:, 1].astype(np.int64),
                                              "boarding": ps[:, 2].astype(np.int64)}))
                row[f"{name}_occupancy_mean"] = time_average(ps[:, 0], ps[:, 1], start, end)
            else:
                row[f"{name}_occupancy_mean"] = math.nan
        b = board[board["hospital_idx"] == i]["boarding_s"].to_numpy(np.float64)
        row.update(n_boarded=int(np.sum(b > 0)), boarding_mean_s=float(b.mean()) if len(b) else math.nan,
                   boarding_p90_s=_p90(b), diversion_h=div_s / 3600.0,
                   diverted_from=int((dv_in["nearest_hospital_idx"] == i).sum()),
                   diverted_to=int((dv_in["hospital_idx"] == i).sum()),
                   transfers_out=int((inwin & stays["transferred"] & (stays["from_hospital_idx"] == i)).sum()),
                   transfers_in=int((inwin & stays["transferred"] & (stays["hospital_idx"] == i)).sum()))
        hrows.append(row)
    b = board["boarding_s"].to_numpy(np.float64)
    kpis.update(boarding_mean_s=float(b.mean()) if len(b) else math.nan, boarding_p90_s=_p90(b),
                n_boarded=int(np.sum(b > 0)), n_diverted=len(dv_in),
                diversion_h=float(sum(r["diversion_h"] for r in hrows)),
                n_transfers=int((inwin & stays["transferred"]).sum()),
                n_inpatient_blocked=int((inwin & stays["blocked"]).sum()))
    flow = pd.DataFrame(hrows)
    periods = pd.DataFrame(per_div, columns=["hospital_idx", "start_s", "end_s"])
    pool_occ = (pd.concat(occ_rows, ignore_index=True) if occ_rows else
                pd.DataFrame(columns=["time_s", "hospital_idx", "pool", "occupied_beds", "boarding"]))
    return kpis, stays, dv, periods, flow, pool_occ


RELOCATION_COLUMNS = ["time_s", "unit_idx", "from_location_idx", "to_location_idx", "planned_s", "end_s",
                      "driven_s", "obeyed", "completed"]


def _relocation_table(model, start, end):
    """Move orders and the relocation KPIs over the window (orders given in it)."""
    rel = pd.DataFrame(model.relocator.moves, columns=RELOCATION_COLUMNS)
    rel = rel.astype({"time_s": np.float64, "unit_idx": np.int32, "from_location_idx": np.int32,
                      "to_location_idx": np.int32, "planned_s": np.float64, "end_s": np.float64,
                      "driven_s": np.float64, "obeyed": bool, "completed": bool})
    t = rel["time_s"].to_numpy()
    w = rel[(t >= start) & (t < end)]
    kpis = {"relocation_orders": len(w), "relocation_moves": int(w["obeyed"].sum()),
            "relocation_refused": int((~w["obeyed"]).sum()), "relocation_completed": int(w["completed"].sum()),
            "relocation_diverted": int((w["obeyed"] & ~w["completed"] & w["end_s"].notna()).sum()),
            "relocation_driving_s": float(w["driven_s"].sum()),
            "relocation_driving_mean_s": float(w.loc[w["obeyed"], "driven_s"].mean()) if w["obeyed"].any()
            else math.nan}
    return kpis, rel


def _transfer_kpis(model, start, end):
    """Inter-hospital transfers by ambulance: count, wait for the ambulance, total time."""
    calls = model.calls
    idx = np.array(sorted(model.transfers), dtype=np.int64)
    t = calls.time_s[idx]
    idx = idx[(t >= start) & (t < end)]
    wait = calls.on_scene_at_s[idx] - calls.time_s[idx]
    total = calls.bed_s[idx] - calls.time_s[idx]
    return {"n_transfers_ambulance": int(len(idx)),
            "transfer_pickup_mean_s": float(np.nanmean(wait)) if np.isfinite(wait).any() else math.nan,
            "transfer_time_mean_s": float(np.nanmean(total)) if np.isfinite(total).any() else math.nan}


INCIDENT_COLUMNS = ["incident_idx", "name", "location_idx", "time_s", "patients", "n_p1", "n_p2", "n_p3",
                    "first_call_id", "n_transported", "last_on_scene_s", "scene_clear_s", "last_at_hospital_s",
                    "complete_s", "n_hospitals_used", "hospitals"]


def _max_or_nan(x):
    """The largest value, NaN when empty or when any is NaN (a stage not reached by all)."""
    return float(np.max(x)) if len(x) and not np.isnan(x).any() else math.nan


def _incident_table(model):
    """One row per scripted incident and its ``incident_<i>_*`` scalar KPIs (see
    :attr:`twin.emergency.EmsResult.incidents`)."""
    calls, spec = model.calls, model.spec
    ev = np.array(model.unit_events, dtype=np.float64).reshape(-1, 4)
    rows, kpis = [], {}
    for i, (inc, idx) in enumerate(zip(spec.incidents, model.incident_calls)):
        t0 = inc.time_s
        prio = calls.priority[idx]
        tr = calls.transport[idx]
        done = bool((calls.outcome[idx] == COMPLETED).all())
        # A unit leaves the scene when it starts transporting, else when it is free there.
        mine = ev[np.isin(ev[:, 2], idx)]
        leave = {}
        for t, u, c, code in mine:
            if code == TRANSPORTING or (code == AVAILABLE and (u, c) not in leave):
                leave[(u, c)] = t
        clear = max(leave.values()) - t0 if done and leave else math.nan
        at_h = calls.at_hospital_s[idx[tr]]
        used = sorted({int(h) for h in calls.hospital_idx[idx[tr]][~np.isnan(at_h)]})
        row = {"incident_idx": i, "name": inc.name, "location_idx": inc.location_idx, "time_s": t0,
               "patients": len(idx), "n_p1": int((prio == 1).sum()), "n_p2": int((prio == 2).sum()),
               "n_p3": int((prio == 3).sum()), "first_call_id": int(idx[0]), "n_transported": int(tr.sum()),
               "last_on_scene_s": _max_or_nan(calls.on_scene_at_s[idx] - t0), "scene_clear_s": clear,
               "last_at_hospital_s": _max_or_nan(at_h - t0) if tr.any() and done else math.nan,
               "complete_s": float(np.max(calls.available_s[idx])) - t0 if done else math.nan,
               "n_hospitals_used": len(used), "hospitals": ";".join(spec.hospitals[h].name for h in used)}
        rows.append(row)
        for key in ("patients", "last_on_scene_s", "scene_clear_s", "last_at_hospital_s", "complete_s",
                    "n_hospitals_used"):
            kpis[f"incident_{i}_{key}"] = row[key]
    return kpis, pd.DataFrame(rows, columns=INCIDENT_COLUMNS)




def ems_result(model, end_s: float) -> EmsResult:
    """The records and KPIs of a model run to ``end_s`` (see :func:`twin.agents.ems.run_ems`)."""
    spec, until_s, seed = model.spec, model.until_s, model.seed
    kpis, units, admissions, occupancy, hospitals, assignments = _kpis_and_tables(model, spec.warmup_s, float(until_s))
    flow = {}
    if model.any_flow or model.any_diversion:
        fk, stays, diverted, periods, flow_h, pool_occ = _flow_tables(model, spec.warmup_s, float(until_s))
        kpis.update(fk)
        flow = dict(stays=stays, diverted=diverted, diversion_periods=periods, hospital_flow=flow_h,
                    pool_occupancy=pool_occ)
    extra = {}
    if model.relocator is not None:
        rk, extra["relocations"] = _relocation_table(model, spec.warmup_s, float(until_s))
        kpis.update(rk)
    if model.transfer_rng is not None:
        kpis.update(_transfer_kpis(model, spec.warmup_s, float(until_s)))
    if spec.incidents:
        ik, extra["incidents"] = _incident_table(model)
        kpis.update(ik)
    if model.door_choice or model.any_diversion or any(model.needs):
        extra["hospital_choices"] = pd.DataFrame(model.hospital_choices, columns=CHOICE_COLUMNS)
    if model.dispatch.takers is not None:
        ck, extra["call_centres"] = model.dispatch.takers.kpis(spec.warmup_s, float(until_s))
        kpis.update(ck)
        extra["call_taking"] = model.dispatch.takers.table()
        from twin.agents.joint import joint_response

        jk, table = joint_response(model, spec.warmup_s, float(until_s))
        kpis.update(jk)
        if spec.dispatch.agency_of_unit:
            extra["agency_response"] = table
    ev = np.array(model.unit_events, dtype=np.float64).reshape(-1, 4)
    unit_events = pd.DataFrame({"time_s": ev[:, 0], "unit_idx": ev[:, 1].astype(np.int32),
                                "call_id": ev[:, 2].astype(np.int64),
                                "event": np.asarray(UNIT_EVENTS, dtype=object)[ev[:, 3].astype(np.int64)]})
    qs = np.array(model.dispatch.queue_series, dtype=np.float64)
    dq = pd.DataFrame({"time_s": qs[:, 0], "queue_length": qs[:, 1].astype(np.int64)})
    return EmsResult(calls=_calls_frame(model.calls), unit_events=unit_events, units=units, admissions=admissions,
                     occupancy=occupancy, hospitals=hospitals, dispatch_queue=dq, kpis=kpis, seed=seed,
                     until_s=float(until_s), end_s=end_s, spec=spec, assignments=assignments, **flow, **extra)
