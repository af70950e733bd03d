"""Population kernels: where every person is at one instant, and row-wise categorical draws.

A day plan is a CSR of activities: person ``p`` owns slots ``act_indptr[p]:act_indptr[p + 1]``
in time order; slot ``k`` is at node ``act_node_idx[k]`` from ``act_start_s[k]`` to
``act_end_s[k]`` (the first activity starts at ``-inf`` or 0, the last ends at ``inf``).
Between two activities the person travels; the trip of slot ``k`` (k not first) departs at
``act_end_s[k - 1]`` and arrives at ``act_start_s[k]``.

Randomness comes in as data (pre-drawn uniforms); kernels never draw. Both kernels run in
parallel over independent items and write only item ``i``'s output slots, so results do not
depend on the thread count.

This module imports only numpy, numba and math (STYLE §2).
"""

from numba import njit, prange

__all__ = ["locate_persons", "choose_from_cumulative"]


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
