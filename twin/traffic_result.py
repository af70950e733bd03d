"""The outcome of a traffic run: :class:`TrafficResult` and its assembly from the engine's
state and kernel outputs (re-exported by :mod:`twin.traffic`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twin.traffic_inputs import STATUS_NAMES, TrafficParams

#: A run is *gridlocked* when the gridlock rule moved at least this share of its trips (forced
#: moves plus teleports over trips): its travel times then reflect the rule, not queues. SUMO
#: reports every teleport; twin warns from 1 % (a threshold of ours, not a published one).
GRIDLOCK_SHARE = 0.01


def gridlocked(kpis, n_trips) -> bool:
    """Whether a traffic run's forced moves and teleports reach :data:`GRIDLOCK_SHARE` of its trips."""
    return (kpis["forced_moves"] + kpis["teleports"]) >= GRIDLOCK_SHARE * max(int(n_trips), 1)


@dataclass(eq=False)
class TrafficResult:
    """What :func:`simulate_traffic` returns.

    Attributes
    ----------
    trips : pandas.DataFrame
        One row per trip, input order: ``origin``, ``destination``, ``depart_s``,
        ``arrive_s`` (NaN if unfinished), ``travel_time_s`` (arrival − planned departure,
        including any wait to enter the network), ``free_flow_time_s`` (of its route),
        ``length_m`` (route length), ``n_links``, ``status``.
    links : dict of ndarray
        Per interval × link: ``inflow_veh``, ``outflow_veh``, ``occupancy_veh`` (mean
        vehicles present), ``mean_travel_time_s`` (of vehicles leaving; NaN if none),
        ``speed_mps``; and ``time_s`` (interval starts).
    kpis : dict
        Network totals: ``vkt_veh_km``, ``vht_veh_h``, ``delay_veh_h``, ``congestion_index``,
        ``completed``, ``en_route``, ``waiting``, ``not_departed``, ``unroutable``,
        ``cancelled`` (only where a forecast member's demand removed trips or trips held for
        an order never came, status ``cancelled``: :mod:`twin.traffic_fork`),
        ``forced_moves`` (stuck heads pushed into a full link), ``teleports`` (stuck heads
        moved along their route past links with no room; see :mod:`twin.kernels.traffic`), ``simulated_s``, ``mean_travel_time_s``, ``p90_travel_time_s``.
    step_counts : ndarray of int64, shape (n_ticks, 3)
        Per tick: departed, in network, arrived (conservation: departed = in network +
        arrived + waiting).
    params : TrafficParams
    """

    trips: object
    links: dict
    kpis: dict
    step_counts: np.ndarray
    params: TrafficParams
    meta: dict = field(default_factory=dict)

    def write(self, writer, *, prefix="traffic") -> None:
        """Write trips, link series and KPIs into an open :class:`twin.results.ResultsWriter`."""
        t = self.trips
        cols = {c: t[c].to_numpy() for c in ("depart_s", "arrive_s", "travel_time_s", "free_flow_time_s",
                                              "length_m", "n_links")}
        cols["origin"] = t["origin"].to_numpy()
        cols["destination"] = t["destination"].to_numpy()
        if cols["origin"].dtype == object:
            cols["origin"] = cols["origin"].astype(str)
            cols["destination"] = cols["destination"].astype(str)
        cols["status"] = t["status"].astype(str).to_numpy()
        writer.write_table(f"/events/{prefix}_trips", cols, units={
            "depart_s": "s", "arrive_s": "s", "travel_time_s": "s", "free_flow_time_s": "s", "length_m": "m",
            "n_links": "1", "origin": "", "destination": "", "status": ""})
        units = {"inflow_veh": "veh", "outflow_veh": "veh", "occupancy_veh": "veh",
                 "mean_travel_time_s": "s", "speed_mps": "m/s", "entry_wait_s": "s"}
        writer.write_array(f"/timeseries/{prefix}_links/time_s", self.links["time_s"], units="s")
        for name, u in units.items():
            writer.write_array(f"/timeseries/{prefix}_links/{name}", self.links[name].astype(np.float32), units=u,
                               attrs={"time_path": f"/timeseries/{prefix}_links/time_s", "axes": "time, link"})
        kpi_units = {"vkt_veh_km": "veh*km", "vht_veh_h": "veh*h", "delay_veh_h": "veh*h", "congestion_index": "1",
                     "simulated_s": "s", "mean_travel_time_s": "s", "p90_travel_time_s": "s"}
        for name, value in self.kpis.items():
            writer.write_summary(f"{prefix}_{name}", value, units=kpi_units.get(name, "1"))
        writer.write_array(f"/timeseries/{prefix}_counts", self.step_counts, units="veh",
                           attrs={"column_names": "departed, in_network, arrived", "dt_s": self.params.dt_s})


def _assemble(city, o_idx, d_idx, depart_s, route_off, route_links, state, out, params, k_end, spi, n_iv,
              step_counts, pd):
    dt = params.dt_s
    status = state["status"]
    arrive_s = np.where(state["arrive_step"] >= 0, state["arrive_step"] * dt, np.nan)
    # arrival tick k means the vehicle left its last link during tick k, i.e. at (k) * dt
    lens = np.diff(route_off)
    owner = np.repeat(np.arange(len(lens)), lens)
    length_m = np.bincount(owner, weights=city.length_m[route_links], minlength=len(lens))
    ff_s = np.bincount(owner, weights=city.free_flow_time_s[route_links], minlength=len(lens))
    tt = arrive_s - depart_s
    table = pd.DataFrame({
        "origin": city.node_ids[o_idx], "destination": city.node_ids[d_idx], "depart_s": depart_s,
        "arrive_s": arrive_s, "travel_time_s": tt, "free_flow_time_s": np.where(lens > 0, ff_s, np.nan),
        "length_m": np.where(lens > 0, length_m, np.nan), "n_links": lens,
        "status": pd.Categorical.from_codes(status.astype(np.int8), categories=list(STATUS_NAMES)),
    })
    inflow, outflow = out["inflow"], out["outflow"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_tt = np.where(outflow > 0, out["tt_sum_steps"] * dt / outflow, np.nan)
        speed = np.where(outflow > 0, city.length_m[None, :] / mean_tt, np.nan)
    occupancy = out["occ_vsteps"] / spi
    if n_iv and k_end < n_iv * spi:
        last_iv = (k_end - 1) // spi if k_end else 0
        occupancy[last_iv] = out["occ_vsteps"][last_iv] / max(1, k_end - last_iv * spi)
    dw = out["dep_wait"]
    with np.errstate(invalid="ignore", divide="ignore"):
        entry_wait = np.where(dw[..., 0] > 0, dw[..., 1] * dt / dw[..., 0], np.nan)
    links = dict(time_s=np.arange(n_iv) * spi * dt, inflow_veh=inflow, outflow_veh=outflow, occupancy_veh=occupancy,
                 mean_travel_time_s=mean_tt, speed_mps=speed, entry_wait_s=entry_wait)
    arrived = status == 3
    counts = np.bincount(status.astype(np.int64), minlength=5)
    tta = tt[arrived]
    kpis = dict(
        vkt_veh_km=float((outflow.sum(axis=0) * city.length_m).sum() / 1000.0),
        vht_veh_h=float(out["occ_vsteps"].sum() * dt / 3600.0),
        delay_veh_h=float((tta - ff_s[arrived]).sum() / 3600.0),
        congestion_index=float(tta.sum() / ff_s[arrived].sum()) if arrived.any() and ff_s[arrived].sum() > 0
        else float("nan"),
        completed=int(counts[3]), en_route=int(counts[2]), waiting=int(counts[1]), not_departed=int(counts[0]),
        unroutable=int(counts[4]), forced_moves=int(out["counters"][3]), teleports=int(out["counters"][6]),
        simulated_s=float(k_end * dt),
        mean_travel_time_s=float(tta.mean()) if len(tta) else float("nan"),
        p90_travel_time_s=float(np.percentile(tta, 90)) if len(tta) else float("nan"),
    )
    meta = dict(link_moves=int(outflow.sum()), ticks=k_end)
    return TrafficResult(trips=table, links=links, kpis=kpis, step_counts=step_counts, params=params, meta=meta)
