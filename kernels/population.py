"""Population kernels: where every person is at one instant, and row-wise categorical draws.

A day plan is a CSR of activities: person ``p`` owns slots ``act_indptr[p]:act_indptr[p + 1]``
in time order; slot ``k`` is at node ``act_node_idx[k]`` from ``act_start_s[k]`` to
``act_end_s[k]`` (the first activity starts at ``-inf`` or 0, the last ends at ``inf``).
Between two activities the person travels; the trip of slot ``k`` (k not first) departs at
``act_end_s[k - 1]`` and arrives at ``act_start_s[k]``.

``locate_persons_on_routes`` places a traveller on the trip's route instead: the trip's
shortest path (by its mode's link costs) is read from a shortest-path tree rooted at the
trip's origin (``tree_dist``/``tree_pred_node``, one tree per origin row and cost kind), and
the traveller is at the last path node whose cost from the origin is at most the elapsed
fraction of the trip times the path's cost.

Randomness comes in as data (pre-drawn uniforms); kernels never draw. Both kernels run in
parallel over independent items and write only item ``i``'s output slots, so results do not
depend on the thread count.

This module imports only numpy, numba and math (STYLE §2).
"""

import math

from numba import njit, prange

__all__ = ["locate_persons", "locate_persons_on_routes", "choose_from_cumulative"]


@njit(cache=True, nogil=True, parallel=True)
def locate_persons(t_s, act_indptr, act_start_s, act_end_s, act_node_idx, act_type, travel_code,
                   out_node_idx, out_activity):
    """Node and activity of every person at time ``t_s``.

    Parameters
    ----------
    t_s : float
        The instant, seconds from midnight of the simulated day.
    act_indptr : ndarray of int64, shape (n_persons + 1,)
        Person ``p``'s activities are slots ``act_indptr[p]:act_indptr[p + 1]`` (at least one).
    act_start_s, act_end_s : ndarray of float64, shape (n_activities,)
        Arrival at and departure from each activity, seconds; non-decreasing along a person's
        plan (``start <= end <= next start``).
    act_node_idx : ndarray of int32, shape (n_activities,)
        Node index of each activity.
    act_type : ndarray of int8, shape (n_activities,)
        Activity code of each activity.
    travel_code : int
        Code written to ``out_activity`` for a person between two activities.
    out_node_idx : ndarray of int32, shape (n_persons,)
        Output: node of the current activity; while travelling, the trip's origin before the
        trip's mid-time and its destination from the mid-time on.
    out_activity : ndarray of int8, shape (n_persons,)
        Output: code of the current activity, or ``travel_code``.

    Returns
    -------
    int
        Number of persons travelling at ``t_s``.

    Notes
    -----
    A person is at activity ``k`` when ``start[k] <= t_s < end[k]`` (before the first
    activity's start the person is at the first activity, after the last activity's end at
    the last), and travelling on trip ``k + 1`` when ``end[k] <= t_s < start[k + 1]``.
    Plans are a handful of activities, so a linear scan beats a binary search.
    """
    n = act_indptr.shape[0] - 1
    travelling = 0
    for p in prange(n):
        lo = act_indptr[p]
        hi = act_indptr[p + 1]
        k = lo
        while k + 1 < hi and act_start_s[k + 1] <= t_s:
            k += 1
        if t_s < act_end_s[k] or k + 1 == hi:
            out_node_idx[p] = act_node_idx[k]
            out_activity[p] = act_type[k]
        else:
            mid_s = 0.5 * (act_end_s[k] + act_start_s[k + 1])
            out_node_idx[p] = act_node_idx[k] if t_s < mid_s else act_node_idx[k + 1]
            out_activity[p] = travel_code
            travelling += 1
    return travelling


@njit(cache=True, nogil=True, parallel=True)
def locate_persons_on_routes(t_s, act_indptr, act_start_s, act_end_s, act_node_idx, act_type, act_mode,
                             travel_code, row_of_node, tree_of_mode, tree_dist, tree_pred_node,
                             out_node_idx, out_activity):
    """Node and activity of every person at time ``t_s``, travellers placed along their route.

    Parameters
    ----------
    t_s, act_indptr, act_start_s, act_end_s, act_node_idx, act_type, travel_code
        As in :func:`locate_persons`.
    act_mode : ndarray of int8, shape (n_activities,)
        Mode of the trip arriving at each activity (ignored for a person's first activity).
    row_of_node : ndarray of int64, shape (n_nodes,)
        Tree row of each node (the trip origins' rows; -1 for a node no trip starts from).
    tree_of_mode : ndarray of int64, shape (n_modes,)
        Which cost kind (first axis of the trees) routes each mode.
    tree_dist : ndarray of float64, shape (n_kinds, n_rows, n_nodes)
        Least cost from the row's origin to each node (``inf`` where unreachable).
    tree_pred_node : ndarray of int32, shape (n_kinds, n_rows, n_nodes)
        Predecessor of each node on its least-cost path from the row's origin; -1 at the
        origin and at unreachable nodes.
    out_node_idx, out_activity : ndarray of int32 / int8, shape (n_persons,)
        Output, as in :func:`locate_persons`; a traveller's node is on the trip's route.

    Returns
    -------
    int
        Number of persons travelling at ``t_s``.

    Notes
    -----
    A traveller on trip ``k + 1`` (departs ``d = end[k]``, arrives ``a = start[k + 1]``) has
    covered the fraction ``f = (t_s - d) / (a - d)`` of the trip, and so the cost
    ``c = f * C`` of its route of least cost ``C``; its node is the last route node whose
    cost from the origin is ``<= c``: the origin at departure, then each route node in turn
    (monotone along the route). The route is walked back from the destination through the
    predecessors, so the work per traveller is the route's length in links. Fixed terminal
    times (parking, waiting) are spread evenly over the trip. Where the destination is
    unreachable in the tree (costs inconsistent with the plan) the mid-time rule of
    :func:`locate_persons` is used.
    """
    n = act_indptr.shape[0] - 1
    travelling = 0
    for p in prange(n):
        lo = act_indptr[p]
        hi = act_indptr[p + 1]
        k = lo
        while k + 1 < hi and act_start_s[k + 1] <= t_s:
            k += 1
        if t_s < act_end_s[k] or k + 1 == hi:
            out_node_idx[p] = act_node_idx[k]
            out_activity[p] = act_type[k]
            continue
        travelling += 1
        out_activity[p] = travel_code
        o = act_node_idx[k]
        d = act_node_idx[k + 1]
        dep = act_end_s[k]
        arr = act_start_s[k + 1]
        kind = tree_of_mode[act_mode[k + 1]]
        row = row_of_node[o]
        if row < 0 or not tree_dist[kind, row, d] < math.inf:
            out_node_idx[p] = o if t_s < 0.5 * (dep + arr) else d
            continue
        target = (t_s - dep) / (arr - dep) * tree_dist[kind, row, d]
        v = d
        while v != o and tree_dist[kind, row, v] > target:
            u = tree_pred_node[kind, row, v]
            if u < 0:
                break
            v = u
        out_node_idx[p] = v
    return travelling


@njit(cache=True, nogil=True, parallel=True)
def choose_from_cumulative(cum_weight, row_idx, u, out_col):
    """Draw one column per item from the row of cumulative weights it points to.

    Parameters
    ----------
    cum_weight : ndarray of float64, shape (n_rows, n_cols)
        Cumulative non-negative weights along each row (need not be normalised); each row
        used must end with a total > 0.
    row_idx : ndarray of int32 or int64, shape (n_items,)
        Row of each item.
    u : ndarray of float64, shape (n_items,)
        Uniform draws in [0, 1), one per item.
    out_col : ndarray of int32, shape (n_items,)
        Output: chosen column, the first ``j`` with ``cum_weight[row, j] > u * total``.

    Returns
    -------
    int
        0.

    Notes
    -----
    Inverse-CDF sampling by binary search; a column of zero weight is never chosen, because
    its cumulative value equals its left neighbour's.
    """
    n_cols = cum_weight.shape[1]
    for i in prange(row_idx.shape[0]):
        r = row_idx[i]
        x = u[i] * cum_weight[r, n_cols - 1]
        lo = 0
        hi = n_cols - 1
        while lo < hi:
            mid = (lo + hi) >> 1
            if cum_weight[r, mid] > x:
                hi = mid
            else:
                lo = mid + 1
        out_col[i] = lo
    return 0
