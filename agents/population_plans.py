"""The day of each synthetic person: destinations, tour modes, activity times and routes.

This module holds the activity-based day of :func:`twin.agents.population.synthesize_population`:
gravity destination choice (:class:`_DestinationChooser`), tour-level mode choice and
clipped-normal departure and duration times (:func:`_build_plans`, which fills the activity
arrays of a :class:`~twin.agents.population.Population`), and the shortest-path route trees
that :meth:`Population.location_at` places travellers on (:func:`_route_trees`).
"""

from __future__ import annotations

import numpy as np

from twin.agents.activities import (
    ACTIVITIES, CAR, FACILITY_OF_ACTIVITY, HOME, MODES, PATTERNS, PERSON_TYPES, RETIREE, SCHOOL, WALK, WORK,
    mode_probabilities)
from twin.errors import ScenarioError
from twin.kernels.population import choose_from_cumulative

_PATTERN_NAMES = tuple(PATTERNS)


def _py(value):
    """A numpy scalar as the plain Python value, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def _route_trees(city, rows_nodes, car_link_cost_s):
    """(row_of_node, dist, pred_node) of :meth:`Population.route_trees`."""
    from twin.kernels.routing import dijkstra_sssp

    n, m = city.n_nodes, city.n_links
    row_of = np.full(n, -1, dtype=np.int64)
    row_of[rows_nodes] = np.arange(len(rows_nodes))
    dist = np.empty((2, len(rows_nodes), n))
    pred = np.empty((2, len(rows_nodes), n), dtype=np.int32)
    pred_link = np.empty(n, dtype=np.int64)
    heap_d, heap_v = np.empty(m + 1), np.empty(m + 1, dtype=np.int64)
    no_target = np.zeros(n, dtype=np.bool_)
    car = city.free_flow_time_s if car_link_cost_s is None else car_link_cost_s
    for kind, cost in enumerate((car, city.length_m)):
        slot_cost = np.ascontiguousarray(np.asarray(cost, dtype=np.float64)[city.fwd_link])
        for r, node in enumerate(rows_nodes):
            dijkstra_sssp(city.fwd_indptr, city.fwd_head, slot_cost, city.fwd_link, city.no_through, int(node),
                          no_target, n + 1, dist[kind, r], pred_link, heap_d, heap_v)
            pred[kind, r] = np.where(pred_link >= 0, city.link_from_idx[np.maximum(pred_link, 0)], -1)
    return row_of, dist, pred


class _DestinationChooser:
    """Gravity-model destination choice from any zone node to the facilities of an activity."""

    def __init__(self, city, facilities, car_time, row_of, params):
        self.city = city
        self.row_of = row_of
        self.cum = {}
        self.cols = {}
        kinds = facilities["kind"].to_numpy()
        for act, kind in FACILITY_OF_ACTIVITY.items():
            sel = kinds == kind
            fac_nodes = facilities["node_idx"].to_numpy()[sel]
            if not len(fac_nodes):
                self.cum[act] = None
                continue
            beta = params.gravity_beta_per_min[ACTIVITIES[act]]
            t_min = car_time[:, row_of[fac_nodes]] / 60.0
            with np.errstate(invalid="ignore"):
                w = facilities["weight"].to_numpy()[sel][None, :] * np.exp(-beta * t_min)
            w = np.where(np.isfinite(t_min), w, 0.0)
            self.cum[act] = np.ascontiguousarray(np.cumsum(w, axis=1))
            self.cols[act] = fac_nodes.astype(np.int32)

    def choose(self, act, origin_node_idx, u):
        """Facility node for each origin (int32), by the gravity model of ``act``."""
        if not len(origin_node_idx):
            return np.empty(0, dtype=np.int32)
        kind = FACILITY_OF_ACTIVITY[act]
        cum = self.cum[act]
        if cum is None:
            raise ScenarioError(f"no facility of kind {kind!r} in city {self.city.name!r}, but residents need one "
                                f"for activity {ACTIVITIES[act]!r}; add {kind} facilities or set that activity's "
                                "pattern shares to 0")
        rows = self.row_of[origin_node_idx]
        dead = cum[rows, -1] <= 0
        if dead.any():
            node = int(origin_node_idx[np.flatnonzero(dead)[0]])
            z = _py(self.city.zone_ids[self.city.zone_of_node[node]])
            raise ScenarioError(f"zone {z!r}: no {kind} facility can be reached "
                                f"by road from node {_py(self.city.node_ids[node])!r} (or all have weight 0); "
                                f"add a reachable {kind}")
        out = np.empty(len(rows), dtype=np.int32)
        choose_from_cumulative(cum, rows, np.ascontiguousarray(u, dtype=np.float64), out)
        return self.cols[act][out]


def _clipped_normal(rng, spec_h, n):
    mean, sd, lo, hi = spec_h
    return np.clip(rng.normal(mean, sd, n), lo, hi) * 3600.0


def _mode_time_s(mode, o_rows, d_rows, car_time, distance, params):
    """Door-to-door time of each trip by its mode (seconds)."""
    out = np.empty(len(mode))
    for code, name in enumerate(MODES):
        sel = mode == code
        base = car_time[o_rows[sel], d_rows[sel]] if code == CAR else \
            distance[o_rows[sel], d_rows[sel]] / params.speed_mps[name]
        out[sel] = base + params.terminal_s[name]
    return out


def _build_plans(ptype, chronic, home, work_node, car_available, car_time, distance, row_of, chooser,
                 act_params, mode_params, streams):
    n = len(ptype)
    names = _PATTERN_NAMES
    lengths = np.array([len(PATTERNS[p]) for p in names])
    # day pattern by person type (retirees with a chronic condition use their own shares)
    pattern = np.zeros(n, dtype=np.int64)
    u = streams["patterns"].random(n)
    type_key = np.where((ptype == RETIREE) & chronic, len(PERSON_TYPES), ptype)
    for t, key in enumerate((*PERSON_TYPES, "retiree_chronic")):
        sel = np.flatnonzero(type_key == t)
        shares = act_params.pattern_shares[key]
        probs = np.array([shares.get(p, 0.0) for p in names])
        pattern[sel] = np.minimum(np.searchsorted(np.cumsum(probs), u[sel], side="right"), len(names) - 1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths[pattern], out=indptr[1:])
    n_act = int(indptr[-1])
    a_type = np.empty(n_act, dtype=np.int8)
    a_node = np.empty(n_act, dtype=np.int32)
    a_start = np.empty(n_act, dtype=np.float64)
    a_end = np.empty(n_act, dtype=np.float64)
    a_mode = np.full(n_act, -1, dtype=np.int8)
    rng_t, rng_d, rng_m = streams["timing"], streams["destinations"], streams["modes"]
    for p_code, name in enumerate(names):
        who = np.flatnonzero(pattern == p_code)
        if not len(who):
            continue
        seq = PATTERNS[name]
        base = indptr[who]
        a_type[base] = HOME
        a_node[base] = home[who]
        a_start[base] = 0.0
        if len(seq) == 1:
            a_end[base] = np.inf
            continue
        prev = home[who]
        place = []
        for act in seq[1:-1]:
            if act in (WORK, SCHOOL):
                node = work_node[who]
            else:
                node = chooser.choose(act, prev, rng_d.random(len(who)))
            place.append(node)
            prev = node
        place.append(home[who])
        # tour mode from the first leg's times (same mode for every leg of the tour)
        o_rows, d_rows = row_of[home[who]], row_of[place[0]]
        times = np.column_stack([_mode_time_s(np.full(len(who), m), o_rows, d_rows, car_time, distance, mode_params)
                                 for m in range(len(MODES))])
        prob = mode_probabilities(times, car_available[who], mode_params)
        mode = np.minimum((rng_m.random(len(who))[:, None] > np.cumsum(prob, axis=1)).sum(axis=1),
                          len(MODES) - 1).astype(np.int8)
        mode = np.where(prob[np.arange(len(who)), mode] > 0, mode, WALK).astype(np.int8)
        end = _clipped_normal(rng_t, act_params.departure_h[ACTIVITIES[seq[1]]], len(who))
        a_end[base] = end
        prev = home[who]
        for k, act in enumerate(seq[1:], start=1):
            slot = base + k
            node = place[k - 1]
            tt = _mode_time_s(mode, row_of[prev], row_of[node], car_time, distance, mode_params)
            bad = ~np.isfinite(tt)
            if bad.any():
                i = np.flatnonzero(bad)[0]
                c = chooser.city
                raise ScenarioError(f"node {_py(c.node_ids[node[i]])!r} cannot be reached by road from node "
                                    f"{_py(c.node_ids[prev[i]])!r} (zone {_py(c.zone_ids[c.zone_of_node[prev[i]]])!r}); "
                                    "the network must let residents return home")
            start = end + tt
            a_type[slot] = act
            a_node[slot] = node
            a_start[slot] = start
            a_mode[slot] = mode
            if k == len(seq) - 1:
                end = np.full(len(who), np.inf)
            else:
                end = start + _clipped_normal(rng_t, act_params.duration_h[ACTIVITIES[act]], len(who))
            a_end[slot] = end
            prev = node
    return {"act_indptr": indptr, "act_type": a_type, "act_node_idx": a_node, "act_start_s": a_start,
            "act_end_s": a_end, "act_mode": a_mode}
