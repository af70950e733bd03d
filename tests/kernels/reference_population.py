"""Plain numpy references of ``twin.kernels.population`` (obvious and slow is fine)."""

import numpy as np

__all__ = ["locate_persons_reference", "locate_persons_on_routes_reference", "choose_from_cumulative_reference"]


def locate_persons_reference(t_s, act_indptr, act_start_s, act_end_s, act_node_idx, act_type, travel_code):
    """Return (node_idx, activity, n_travelling) by walking each plan in Python."""
    n = len(act_indptr) - 1
    node = np.empty(n, dtype=np.int32)
    activity = np.empty(n, dtype=np.int8)
    travelling = 0
    for p in range(n):
        slots = list(range(act_indptr[p], act_indptr[p + 1]))
        started = [k for k in slots if act_start_s[k] <= t_s]
        k = started[-1] if started else slots[0]
        if t_s < act_end_s[k] or k == slots[-1]:
            node[p], activity[p] = act_node_idx[k], act_type[k]
        else:
            mid = (act_end_s[k] + act_start_s[k + 1]) / 2
            node[p] = act_node_idx[k] if t_s < mid else act_node_idx[k + 1]
            activity[p] = travel_code
            travelling += 1
    return node, activity, travelling


def choose_from_cumulative_reference(cum_weight, row_idx, u):
    """Inverse-CDF draw with ``numpy.searchsorted(side='right')`` per item."""
    out = np.empty(len(row_idx), dtype=np.int32)
    for i, r in enumerate(row_idx):
        out[i] = np.searchsorted(cum_weight[r], u[i] * cum_weight[r, -1], side="right")
    return out


def locate_persons_on_routes_reference(t_s, act_indptr, act_start_s, act_end_s, act_node_idx, act_type, act_mode,
                                       travel_code, row_of_node, tree_of_mode, tree_dist, tree_pred_node):
    """Return (node_idx, activity, n_travelling): a traveller at the last node of its route,
    listed origin to destination, whose cost from the origin is <= the elapsed fraction of the
    trip times the route's cost."""
    node, activity, travelling = locate_persons_reference(t_s, act_indptr, act_start_s, act_end_s, act_node_idx,
                                                          act_type, travel_code)
    for p in np.flatnonzero(activity == travel_code):
        slots = list(range(act_indptr[p], act_indptr[p + 1]))
        k = [s for s in slots if act_start_s[s] <= t_s][-1]
        o, d = act_node_idx[k], act_node_idx[k + 1]
        kind, row = tree_of_mode[act_mode[k + 1]], row_of_node[o]
        dep, arr = act_end_s[k], act_start_s[k + 1]
        if row < 0 or not np.isfinite(tree_dist[kind, row, d]):
            continue  # the mid-time rule of the plain reference stands
        route = [d]
        while route[-1] != o:
            route.append(tree_pred_node[kind, row, route[-1]])
        route.reverse()
        target = (t_s - dep) / (arr - dep) * tree_dist[kind, row, d]
        node[p] = [v for v in route if tree_dist[kind, row, v] <= target][-1]
    return node, activity, travelling
