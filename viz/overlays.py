"""Overlays of the map: calls, hospitals (markers or bars), stations, ambulances, shelters,
evacuees and flooded facilities, read from a results file for one interval (used by
:mod:`twin.viz.plot`)."""

from __future__ import annotations

import numpy as np
import pyvista as pv

from twin.viz.mesh import _diagonal_m

__all__ = ["active_calls", "hospital_bars_mesh", "PRIORITY_COLORS", "BAR_SHARE_OF_DIAGONAL"]

#: Marker colour of a call by priority (other priorities grey).
PRIORITY_COLORS = {1: "red", 2: "orange", 3: "yellow"}
#: Height of the tallest possible hospital bar (the hospital with the most beds, all occupied),
#: as a share of the network's diagonal: ``m_per_bed = BAR_SHARE_OF_DIAGONAL * diagonal / max(beds)``.
BAR_SHARE_OF_DIAGONAL = 0.25


def active_calls(calls, t0_s, t1_s):
    """The calls active in the interval ``[t0_s, t1_s)``: a boolean mask over ``calls``' rows.

    A call is active when its life ``[call_s, complete_s)`` overlaps the interval, or it
    arrives within the interval (a call completed at once); a call not yet complete
    (``complete_s`` NaN) stays active from ``call_s`` on.

    Parameters
    ----------
    calls : pandas.DataFrame
        ``/events/ems_calls`` (columns ``call_s`` and ``complete_s``, seconds).
    t0_s, t1_s : float
        Interval start and end, seconds from the scenario start.

    Returns
    -------
    ndarray of bool, shape (len(calls),)
    """
    call = calls["call_s"].to_numpy(np.float64)
    done = calls["complete_s"].to_numpy(np.float64) if "complete_s" in calls else np.full(len(call), np.nan)
    with np.errstate(invalid="ignore"):
        return (call < t1_s) & ((call >= t0_s) | (done > t0_s) | np.isnan(done))


def hospital_bars_mesh(x_m, y_m, occupied_beds, beds, *, m_per_bed, radius_m):
    """Hospitals as vertical cylinders standing on the ground, as tall as their occupied beds.

    Parameters
    ----------
    x_m, y_m : array_like, shape (n,)
        Hospital positions, metres.
    occupied_beds : array_like, shape (n,)
        Beds occupied (NaN draws a zero-height bar).
    beds : array_like, shape (n,)
        Beds of each hospital; the occupied share is ``occupied_beds / beds``.
    m_per_bed : float
        Bar height per occupied bed, metres (:func:`plot_run` uses
        ``BAR_SHARE_OF_DIAGONAL * diagonal / max(beds)``).
    radius_m : float
        Bar radius, metres.

    Returns
    -------
    pyvista.PolyData
        One cylinder per hospital (bottom at z = 0, top at ``occupied_beds * m_per_bed``);
        ``cell_data``: ``hospital_idx``, ``occupied_beds``, ``share`` (occupied / beds,
        dimensionless), ``height_m``.
    """
    occupied = np.nan_to_num(np.asarray(occupied_beds, dtype=np.float64), nan=0.0)
    beds = np.asarray(beds, dtype=np.float64)
    parts = []
    for k, (x, y, occ) in enumerate(zip(np.asarray(x_m, float), np.asarray(y_m, float), occupied)):
        h = max(float(occ) * float(m_per_bed), 1e-6 * float(m_per_bed) + 1e-9)
        cyl = pv.Cylinder(center=(x, y, h / 2.0), direction=(0.0, 0.0, 1.0), radius=radius_m, height=h,
                          resolution=24, capping=True)
        cyl.cell_data["hospital_idx"] = np.full(cyl.n_cells, k, dtype=np.int32)
        cyl.cell_data["occupied_beds"] = np.full(cyl.n_cells, occ)
        cyl.cell_data["share"] = np.full(cyl.n_cells, occ / beds[k] if beds[k] > 0 else np.nan)
        cyl.cell_data["height_m"] = np.full(cyl.n_cells, float(occ) * float(m_per_bed))
        parts.append(cyl)
    if not parts:
        return pv.PolyData()
    return pv.merge(parts, merge_points=False) if len(parts) > 1 else parts[0]


def _call_marks(res, x, y, t0, t1, calls_by, lift_m):
    """The mark of the calls active in [t0, t1), or None where the file has no calls."""
    if "/events/ems_calls" not in set(res.keys("/events")):
        return None
    calls = res.table("/events/ems_calls")
    sel = active_calls(calls, t0, t1)
    act = calls[sel]
    rt = act["response_time_s"].to_numpy(np.float64) if "response_time_s" in act else np.full(len(act), np.nan)
    with np.errstate(invalid="ignore"):
        rt_all = calls["response_time_s"].to_numpy(np.float64) if "response_time_s" in calls else rt
    hi = float(np.nanmax(rt_all)) if np.isfinite(rt_all).any() else 1.0
    idx = act["node_idx"].to_numpy(np.int64)
    return dict(kind="calls", x=x[idx], y=y[idx], call_id=act["call_id"].to_numpy() if "call_id" in act
                else np.flatnonzero(sel), priority=act["priority"].to_numpy(np.int64) if "priority" in act
                else np.zeros(len(act), np.int64), response_time_s=rt, calls_by=calls_by, clim=(0.0, max(hi, 1.0)),
                lift_m=lift_m)


def _facilities(res, view, i, *, calls_by="priority", bars=False):
    """Hospital, station, unit and call markers of an emergency run (empty for a traffic-only file)."""
    keys = set(res.keys("/network"))
    nodes = res.table("/network/nodes")
    x, y = nodes["x_m"].to_numpy(), nodes["y_m"].to_numpy()
    marks = []
    t0 = float(view.series.time_s[i])
    calls = _call_marks(res, x, y, t0, t0 + float(view.series.interval_s), calls_by, 0.01 * _diagonal_m(view.net))
    if calls is not None:
        marks.append(calls)
    if "/network/hospitals" in keys:
        h = res.table("/network/hospitals")
        occ = np.full(len(h), np.nan)
        occ_path = "/timeseries/ems_hospital_occupancy/occupancy_beds"
        if occ_path in set(res.keys("/timeseries")):
            t_occ = res.array("/timeseries/ems_hospital_occupancy/time_s")
            beds_t = res.array(occ_path)
            t_mid = float(view.series.time_s[i]) + 0.5 * float(view.series.interval_s)
            k = int(np.clip(np.searchsorted(t_occ, t_mid, side="right") - 1, 0, len(t_occ) - 1))
            occ = np.asarray(beds_t[k], dtype=np.float64) / np.maximum(h["beds"].to_numpy(), 1)
        idx = h["node_idx"].to_numpy()
        if bars:
            beds = h["beds"].to_numpy(np.float64)
            m_per_bed = BAR_SHARE_OF_DIAGONAL * _diagonal_m(view.net) / max(float(beds.max()), 1.0)
            marks.append(dict(kind="bars", x=x[idx], y=y[idx], occupied=occ * np.maximum(beds, 1), beds=beds,
                              m_per_bed=m_per_bed, radius_m=0.012 * _diagonal_m(view.net)))
        out = _out_of_service(res, "hospital", t0 + 0.5 * float(view.series.interval_s))
        marks.append(dict(x=x[idx], y=y[idx], values=occ, labels=[f"H {n}{out(n)}" for n in h["name"]],
                          title="beds in use (%)", color=None))
    units = _unit_positions(res, x, y, float(view.series.time_s[i]) + 0.5 * float(view.series.interval_s))
    if units is not None:
        ux, uy, busy = units
        marks.append(dict(x=ux, y=uy, values=None, labels=[("busy" if b else "") for b in busy], title=None,
                          color="blue", small=True))
    marks += _evacuation_marks(res, nodes, float(view.series.time_s[i]) + 0.5 * float(view.series.interval_s))
    if "/network/ems_stations" in keys:
        st = res.table("/network/ems_stations")
        idx = st["node_idx"].to_numpy()
        out = _out_of_service(res, "station", t0 + 0.5 * float(view.series.interval_s))
        labels = [f"S {n} ({u}){out(n)}" for n, u in zip(st["name"], st.get("n_units", [""] * len(st)))]
        marks.append(dict(x=x[idx], y=y[idx], values=None, labels=labels, title=None, color="black"))
    return marks


def _out_of_service(res, kind, t_s):
    """``name -> " (flooded)"`` for facilities of ``kind`` out of service at ``t_s``, else ``""``."""
    if "/events/hazard_facility_outages" not in set(res.keys("/events")):
        return lambda name: ""
    o = res.table("/events/hazard_facility_outages")
    o = o[(o["kind"] == kind) & (o["start_s"] <= t_s) & (o["end_s"] > t_s)]
    names = set(o["name"].tolist())
    return lambda name: " (flooded)" if name in names else ""


def _evacuation_marks(res, nodes, t_s):
    """Shelters (labelled with the persons in them at ``t_s``, coloured by the share of their
    capacity) and evacuees on their way (cars and walkers between their origin and shelter in
    proportion to elapsed time: a drawing aid, not the route) of an evacuation run."""
    keys = set(res.keys("/network")) | set(res.keys("/events")) | set(res.keys("/timeseries"))
    if "/network/evacuation_shelters" not in keys:
        return []
    x, y = nodes["x_m"].to_numpy(), nodes["y_m"].to_numpy()
    index = {v: k for k, v in enumerate(nodes["node_id"].tolist())}
    sh = res.table("/network/evacuation_shelters")
    s_idx = np.array([index[v] for v in sh["node"].tolist()], dtype=np.int64)
    occ = np.zeros(len(sh))
    if "/timeseries/evacuation_shelters/occupancy_persons" in keys:
        t_occ, o = res.series("/timeseries/evacuation_shelters/occupancy_persons")
        occ = np.asarray(o[int(np.clip(np.searchsorted(t_occ, t_s, side="right") - 1, 0, len(t_occ) - 1))])
    share = occ / np.maximum(sh["capacity"].to_numpy(np.float64), 1.0)
    marks = [dict(kind="shelters", x=x[s_idx], y=y[s_idx], share=share,
                  labels=[f"Sh {n} {o:,.0f}" for n, o in zip(sh["name"], occ)])]
    px, py, n_cars, n_walk = [], [], 0, 0
    for table, kind in (("/events/evacuation_cars", "car"), ("/events/evacuation_walkers", "walk")):
        if table not in keys:
            continue
        e = res.table(table)
        on = (e["shelter_idx"].to_numpy() >= 0) & (e["depart_s"].to_numpy() <= t_s) & \
            ~(e["arrive_s"].to_numpy() <= t_s)
        e = e[on]
        o = np.array([index[v] for v in e["origin"].tolist()], dtype=np.int64)
        d = s_idx[e["shelter_idx"].to_numpy()]
        span = e["arrive_s"].to_numpy() - e["depart_s"].to_numpy()
        f = np.where(np.isfinite(span) & (span > 0), np.clip((t_s - e["depart_s"].to_numpy()) / span, 0, 1), 0.5)
        px.append(x[o] + f * (x[d] - x[o]))
        py.append(y[o] + f * (y[d] - y[o]))
        n_cars, n_walk = (n_cars + len(e), n_walk) if kind == "car" else (n_cars, n_walk + len(e))
    if px:
        marks.append(dict(kind="evacuees", x=np.concatenate(px), y=np.concatenate(py), n_cars=n_cars, n_walk=n_walk))
    return marks


def _draw_evacuation(pl, *, kind, x, y, prefix, labels=None, share=None, n_cars=0, n_walk=0):
    from twin.viz.mesh import points_mesh

    pts = points_mesh(x, y, None)
    if kind == "evacuees":
        if not pts.n_points:
            return
        pts.points[:, 2] = 6.0
        pl.add_mesh(pts, color="#1f4fd1", point_size=6, render_points_as_spheres=True, lighting=False,
                    name=prefix + "evacuees")
        w, h = pl.window_size
        pl.add_text(f"blue: evacuees on their way ({n_cars:,} cars, {n_walk:,} on foot); Sh: shelters (persons)",
                    position=(8, int(h * 0.86)), font_size=9, color="black", name=prefix + "evacuees_legend")
        return
    pts.points[:, 2] = 7.0
    pts.point_data["share"] = np.asarray(share, dtype=np.float64)
    pl.add_mesh(pts, scalars="share", cmap="Greens", clim=[0.0, 1.0], point_size=20, render_points_as_spheres=True,
                lighting=False, show_scalar_bar=False, name=prefix + "shelters")
    below = pts.points.copy()              # labels under the marker: stations often share the node
    below[:, 1] -= 0.045 * max(float(np.ptp(pl.bounds[2:4])) if pl.bounds else 0.0, 1.0)
    for k, text in enumerate(labels):        # one placement each: one mapper culls its own overlapping labels
        pl.add_point_labels(below[k:k + 1], [text], font_size=11, point_size=1, shape_opacity=0.6,
                            shape_color="#d8f0d8", always_visible=True, show_points=False,
                            name=f"{prefix}shelter_label_{k}")


def _unit_positions(res, x, y, t_s):
    """Where each ambulance is at ``t_s``: (x, y, busy) from the unit events, or None.

    At its station, the call's node or the hospital; on a leg (en route, transporting,
    returning) on the straight line between the leg's ends, in proportion to elapsed time
    (a drawing aid, not the route driven).
    """
    keys = set(res.keys("/events")) | set(res.keys("/network"))
    need = {"/events/ems_unit_events", "/events/ems_calls", "/network/ems_units", "/network/ems_locations"}
    if not need <= keys:
        return None
    ev = res.table("/events/ems_unit_events").sort_values(["unit_idx", "time_s"], kind="stable")
    calls = res.table("/events/ems_calls").set_index("call_id")
    units = res.table("/network/ems_units")
    loc_node = res.table("/network/ems_locations").set_index("location_idx")["node_idx"]
    hosp_node = (res.table("/network/hospitals").set_index("hospital_idx")["node_idx"]
                 if "/network/hospitals" in keys else None)
    ux = np.empty(len(units))
    uy = np.empty(len(units))
    busy = np.zeros(len(units), dtype=bool)
    for u, row in units.iterrows():
        home = int(loc_node[row["location_idx"]])
        pos = (x[home], y[home])
        e = ev[ev["unit_idx"] == row["unit_idx"]]
        times, kinds, cids = e["time_s"].to_numpy(), e["event"].to_numpy(), e["call_id"].to_numpy()
        k = int(np.searchsorted(times, t_s, side="right")) - 1
        if k >= 0:
            call = calls.loc[cids[k]] if cids[k] in calls.index else None
            scene = (x[int(call["node_idx"])], y[int(call["node_idx"])]) if call is not None else pos
            h = int(call["hospital_idx"]) if call is not None else -1
            hosp = (x[int(hosp_node[h])], y[int(hosp_node[h])]) if (h >= 0 and hosp_node is not None) else scene
            ends = {"en_route": (pos, scene), "transporting": (scene, hosp), "returning": (hosp, pos)}
            at = {"dispatched": pos, "on_scene": scene, "at_hospital": hosp, "handover": hosp,
                  "available": hosp if h >= 0 else scene, "at_station": pos}
            kind = kinds[k]
            if kind in ends:
                (ax, ay), (bx, by) = ends[kind]
                if kind == "returning" and h < 0:
                    ax, ay = scene
                t1 = times[k + 1] if k + 1 < len(times) else times[k]
                f = 0.0 if t1 <= times[k] else min(1.0, (t_s - times[k]) / (t1 - times[k]))
                pos = (ax + f * (bx - ax), ay + f * (by - ay))
            else:
                pos = at.get(kind, pos)
            busy[u] = kind not in ("at_station",)
        ux[u], uy[u] = pos
    return ux, uy, busy


def _draw_calls(pl, *, x, y, call_id, priority, response_time_s, calls_by, clim, lift_m):
    from twin.viz.mesh import points_mesh

    pts = points_mesh(x, y, {"call_id": np.asarray(call_id), "priority": np.asarray(priority),
                             "response_time_s": np.asarray(response_time_s, dtype=np.float64)})
    if not pts.n_points:
        return
    # the coloured sphere sits above its black outline by more than the sprites' depth
    pts.points[:, 2] = 1.0 + lift_m
    outline = pts.copy()
    outline.points[:, 2] = 1.0
    pl.add_mesh(outline, color="black", point_size=12, render_points_as_spheres=True, lighting=False,
                name="facility_calls_outline")
    if calls_by == "response":
        pts.point_data["response_min"] = np.asarray(response_time_s, dtype=np.float64) / 60.0
        pl.add_mesh(pts, scalars="response_min", cmap="plasma", clim=[c / 60.0 for c in clim], nan_color="grey",
                    point_size=9, render_points_as_spheres=True, lighting=False, name="facility_calls",
                    scalar_bar_args=dict(title="response (min)", vertical=True, position_x=0.015,
                                         position_y=0.3, height=0.42, width=0.035, fmt="%.1f", n_labels=5,
                                         title_font_size=12, label_font_size=11, color="black"))
    else:
        rgb = np.array([pv.Color(PRIORITY_COLORS.get(int(p), "grey")).int_rgb for p in priority], dtype=np.uint8)
        pts.point_data["rgb"] = rgb
        pl.add_mesh(pts, scalars="rgb", rgb=True, point_size=9, render_points_as_spheres=True, lighting=False,
                    name="facility_calls")
        counts = {p: int(np.sum(np.asarray(priority) == p)) for p in PRIORITY_COLORS}
        legend = pl.add_legend(labels=[[f"calls P{p}: {counts[p]}", c] for p, c in PRIORITY_COLORS.items()],
                               bcolor="#404040", border=True, face="circle", size=(0.15, 0.11),
                               background_opacity=0.85, name="facility_calls_legend")
        legend.SetPosition(0.01, 0.18)                    # above the bottom scalar bar, left
        legend.SetPosition2(0.15, 0.11)


def _draw_bars(pl, *, x, y, occupied, beds, m_per_bed, radius_m):
    mesh = hospital_bars_mesh(x, y, occupied, beds, m_per_bed=m_per_bed, radius_m=radius_m)
    full = hospital_bars_mesh(x, y, beds, beds, m_per_bed=m_per_bed, radius_m=radius_m * 1.15)
    pl.add_mesh(full, color="grey", opacity=0.25, name="facility_hospital_capacity")
    pl.add_mesh(mesh, scalars="share", cmap="cool", clim=[0.0, 1.0], nan_color="grey", show_scalar_bar=False,
                ambient=0.4, diffuse=0.7, name="facility_hospital_bars")


def _draw_facility(pl, *, x, y, values=None, labels=None, title=None, color=None, small=False,
                   prefix="facility_", kind=None, **more):
    from twin.viz.mesh import points_mesh

    if kind == "calls":
        return _draw_calls(pl, x=x, y=y, **more)
    if kind in ("shelters", "evacuees"):
        return _draw_evacuation(pl, kind=kind, x=x, y=y, prefix=prefix, labels=labels, **more)
    if kind == "bars":
        return _draw_bars(pl, x=x, y=y, **more)

    if small:                                             # units: small markers, no labels
        pts = points_mesh(x, y, None)
        pts.points[:, 2] = 8.0
        pl.add_mesh(pts, color=color, point_size=10, render_points_as_spheres=True, lighting=False,
                    name=prefix + "units")
        pl.add_text(f"{color}: ambulances ({sum(1 for b in labels if b)} busy); H: hospitals; S: stations (units)",
                    position="lower_left", font_size=9, color="black", name="units_legend")
        return
    z = np.full(len(x), 5.0)
    pts = points_mesh(x, y, None if values is None else {"value": values})
    pts.points[:, 2] = z
    if values is None or np.all(np.isnan(values)):
        pl.add_mesh(pts, color=color or "black", point_size=16, render_points_as_spheres=True, lighting=False,
                    name=prefix + "points")
    else:
        pts.point_data["value"] = 100.0 * np.asarray(values, dtype=np.float64)          # %
        pl.add_mesh(pts, scalars="value", cmap="cool", clim=[0.0, 100.0], point_size=22, render_points_as_spheres=True,
                    lighting=False, nan_color="grey", name=prefix + "points",
                    scalar_bar_args=dict(title=title, vertical=True, position_x=0.925, position_y=0.3, height=0.42,
                                         width=0.035, title_font_size=12, label_font_size=11, n_labels=5,
                                         fmt="%.0f"))
    pl.add_point_labels(pts.points, list(labels), font_size=12, point_size=1, shape_opacity=0.6,
                        always_visible=True, show_points=False, name=prefix + "labels")
