"""Epidemic kernels: one day of transmission on contact layers, and one day of disease progression.

Time is in **days** from the start of the epidemic (float64); day ``d`` is ``[d, d + 1)``.

*States* (int8): ``S`` susceptible, ``E`` exposed (infected, not yet infectious), ``IP``
presymptomatic, ``IS`` symptomatic, ``IA`` asymptomatic, ``SEV`` severe (needs a hospital ward
bed), ``CRIT`` critical (needs an ICU bed), ``REC`` recovered (immune), ``DEAD``. The paths are
``S -> E -> IA -> REC`` and ``S -> E -> IP -> IS -> (REC | SEV -> (REC | CRIT -> (REC | DEAD)))``,
as in Covasim (Kerr et al. 2021, *PLoS Comput Biol* 17(7): e1009149).

*Infectious window.* A person transmits from leaving ``E`` (``inf_start``) until recovery or
admission as severe (``inf_end``; severe and critical persons are cared for in isolation). On
day ``d`` the window's overlap ``[a, b)`` with the day gives the person's *weight*: ``b - a``
(days infectious, constant infectiousness) or, with an infectiousness profile, the profile's
probability mass over ``[a - t_inf, b - t_inf)`` (a gamma generation-interval density as in
OpenABM-Covid19, given as a CDF table). A contact of layer ``l`` between an infectious ``i`` and
a susceptible ``j`` infects with probability ``1 - exp(-beta[l] * scale[l] * weight_i *
rel_inf[i] * sus[j])``, at a time uniform on ``[a, b)``. A person infected on day ``d``
transmits from day ``d + 1`` on (the daily step's one approximation of the continuous clocks).

*Contacts.* Static layers (household, work, school ...) are one symmetric CSR adjacency with a
layer code per edge. The community layer is resampled every day: person ``i``, out of home in
the zone-hour *buckets* ``pbucket[pb_indptr[i]:pb_indptr[i + 1]]``, meets ``contacts`` others of
each bucket drawn uniformly (the infectious side draws, so each person-hour out has
``contacts`` community contacts on average: mass action within a zone-hour).

*Progression* runs in time order over the whole population (a binary heap of ``(time,
person)``), so the hospital wards and ICUs are exact loss systems in continuous time: a severe
or critical person takes a free bed until leaving the state, or is refused; refused, the
probability of the next worse outcome is multiplied by ``no_hosp_factor`` / ``no_icu_factor``
(Covasim's rule), capped at 1.

*Randomness comes in as data.* Durations (``dur_d``) and branch uniforms (``u_branch``) are
drawn per person by the caller before the run. Transmission and partner choices use a
counter-based hash (SplitMix64, Steele, Lea & Flood 2014) of a 64-bit day ``key`` passed in and
the ids of the pair, so a draw belongs to (day, infector, contact, layer), not to the loop
order: two scenarios that differ only in contacts keep common random numbers.

This module imports only numpy, numba and math (STYLE §2).
"""

import math

import numpy as np
from numba import njit

__all__ = ["S", "E", "IP", "IS", "IA", "SEV", "CRIT", "REC", "DEAD", "N_STATES", "STATE_NAMES",
           "DUR_COLUMNS", "BRANCH_COLUMNS", "EVENT_COLUMNS",
           "mix64", "hash_uniform", "profile_mass", "loss_admit", "infect", "transmit_day", "progress_day",
           "group_pair_count", "group_pairs"]

S, E, IP, IS, IA, SEV, CRIT, REC, DEAD = 0, 1, 2, 3, 4, 5, 6, 7, 8
N_STATES = 9
STATE_NAMES = ("susceptible", "exposed", "presymptomatic", "symptomatic", "asymptomatic", "severe", "critical",
               "recovered", "dead")
#: Columns of ``dur_d`` (days): exposed -> infectious, presymptomatic -> symptomatic,
#: asymptomatic -> recovered, mild (symptomatic) -> recovered, symptomatic -> severe,
#: severe -> critical, severe -> recovered, critical -> dead, critical -> recovered.
DUR_COLUMNS = ("latent", "presymptomatic", "asymptomatic", "mild", "to_severe", "to_critical", "severe",
               "to_death", "critical")
D_LATENT, D_PRESYM, D_ASYM, D_MILD, D_TOSEV, D_TOCRIT, D_SEVREC, D_TODEATH, D_CRITREC = range(9)
#: Columns of ``u_branch``: uniforms against the probabilities of symptoms, severe given
#: symptoms, critical given severe, death given critical.
BRANCH_COLUMNS = ("symptomatic", "severe", "critical", "death")
#: Columns of a day's ``events`` counters.
EVENT_COLUMNS = ("symptom_onsets", "ward_admissions", "ward_refused", "icu_admissions", "icu_refused",
                 "recoveries", "deaths")
EV_ONSET, EV_WARD, EV_WARD_REFUSED, EV_ICU, EV_ICU_REFUSED, EV_REC, EV_DEATH = range(7)

_INC = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_SALT_TIME = np.uint64(0x5851F42D4C957F2D)
_SALT_PICK = np.uint64(0x14057B7EF767814F)


@njit(cache=True, nogil=True)
def mix64(x):
    """SplitMix64's output function of ``x + golden gamma`` (uint64 -> uint64)."""
    z = x + _INC
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True)
def hash_uniform(key, a, b, c):
    """A uniform on ``[0, 1)`` (53 bits) from a uint64 ``key`` and three non-negative ints."""
    h = mix64(key ^ np.uint64(a))
    h = mix64(h ^ np.uint64(b))
    h = mix64(h ^ np.uint64(c))
    return float(h >> _S11) * (1.0 / 9007199254740992.0)


@njit(cache=True, nogil=True)
def _cdf_at(cdf, step_d, x):
    if x <= 0.0:
        return 0.0
    pos = x / step_d
    k = int(pos)
    if k >= len(cdf) - 1:
        return cdf[len(cdf) - 1]
    f = pos - k
    return cdf[k] * (1.0 - f) + cdf[k + 1] * f


@njit(cache=True, nogil=True)
def profile_mass(cdf, step_d, s0, s1):
    """Mass of the infectiousness profile between ``s0`` and ``s1`` days after infection
    (``cdf[k]`` is the profile's CDF at ``k * step_d``, linear in between, its last value beyond)."""
    return _cdf_at(cdf, step_d, s1) - _cdf_at(cdf, step_d, s0)


@njit(cache=True, nogil=True)
def loss_admit(free_at, t, until):
    """Admit a patient at time ``t`` staying until ``until`` into a pool of beds, each free from
    ``free_at[k]`` on; returns the bed taken (``free_at[k] = until``) or -1 when every bed is
    busy at ``t`` (refused: a loss system). The lowest-numbered free bed is taken."""
    for k in range(len(free_at)):
        if free_at[k] <= t:
            free_at[k] = until
            return k
    return -1


@njit(cache=True, nogil=True)
def infect(j, t, state, t_state, t_next, next_state, t_inf, dur_d, u_branch, p_sym):
    """Infect person ``j`` at time ``t`` (days): exposed, leaving E after its latent duration."""
    state[j] = E
    t_state[j] = t
    t_inf[j] = t
    t_next[j] = t + dur_d[j, D_LATENT]
    next_state[j] = IP if u_branch[j, 0] < p_sym[j] else IA


@njit(cache=True, nogil=True)
def transmit_day(day, key, state, t_state, t_next, next_state, t_inf, inf_start, inf_end, rel_inf, sus,
                 dur_d, u_branch, p_sym, profile_cdf, profile_step_d, use_profile,
                 edge_indptr, edge_nbr, edge_layer, edge_zone, beta_layer, layer_scale, home_layer, home_only,
                 zone_closed, bucket_indptr, bucket_member, bucket_zone, pb_indptr, pbucket, contacts,
                 community_layer, infector, inf_layer, new_idx):
    """One day of transmission; returns the number of new infections (their persons in
    ``new_idx[:n]``, in the order infected).

    Parameters
    ----------
    day : int
        The day ``d``; infectious windows are clipped to ``[d, d + 1)``.
    key : uint64
        The day's random key.
    state, t_state, t_next, next_state, t_inf : ndarray (n_persons,)
        Per-person disease state (see :func:`progress_day`); new infections are written here.
    inf_start, inf_end : ndarray of float64 (n_persons,)
        Infectious window, days (``inf`` where not (yet) set).
    rel_inf, sus : ndarray of float64 (n_persons,)
        Relative infectiousness and susceptibility.
    dur_d, u_branch, p_sym : ndarray
        Per-person durations (days), branch uniforms and probability of symptoms (for
        :func:`infect`).
    profile_cdf : ndarray of float64, profile_step_d : float, use_profile : bool
        Infectiousness profile (CDF table in steps of ``profile_step_d`` days) or constant.
    edge_indptr, edge_nbr, edge_layer, edge_zone : ndarray
        Static contacts: person ``i``'s contacts ``edge_nbr[edge_indptr[i]:edge_indptr[i + 1]]``,
        each of layer ``edge_layer``, at a place in zone ``edge_zone`` (-1: at home).
    beta_layer, layer_scale : ndarray of float64 (n_layers,)
        Transmission rate per contact-day of infectious weight 1, and today's multiplier
        (0 = the layer is closed).
    home_layer : int
        The household layer, the only one a person with ``home_only`` takes part in.
    home_only : ndarray of bool (n_persons,)
        Persons restricted to their household today (isolated, locked down).
    zone_closed : ndarray of bool (n_zones,)
        Zones where no activity out of home takes place today (their places' contacts and
        community buckets are off).
    bucket_indptr, bucket_member, bucket_zone, pb_indptr, pbucket : ndarray
        Community zone-hour buckets (members, zone) and each person's buckets.
    contacts : int
        Community contacts each person draws per bucket.
    community_layer : int
        The community layer's code (beta and scale; -1: no community layer).
    infector, inf_layer : ndarray (n_persons,)
        Output: who infected each new case (-1: seeded) and on which layer.
    new_idx : ndarray of int64 (n_persons,)
        Output buffer of today's new infections.
    """
    n = len(state)
    d0 = float(day)
    d1 = d0 + 1.0
    n_new = 0
    n_layers = len(beta_layer)
    for i in range(n):
        a = max(d0, inf_start[i])
        b = min(d1, inf_end[i])
        if not b > a:
            continue
        if use_profile:
            w = profile_mass(profile_cdf, profile_step_d, a - t_inf[i], b - t_inf[i])
        else:
            w = b - a
        w *= rel_inf[i]
        if w <= 0.0:
            continue
        for e in range(edge_indptr[i], edge_indptr[i + 1]):
            j = edge_nbr[e]
            if state[j] != S:
                continue
            lay = edge_layer[e]
            if lay != home_layer and (home_only[i] or home_only[j] or
                                      (edge_zone[e] >= 0 and zone_closed[edge_zone[e]])):
                continue
            hz = beta_layer[lay] * layer_scale[lay] * w * sus[j]
            if hz <= 0.0:
                continue
            if hash_uniform(key, i, j, lay) < -math.expm1(-hz):
                t = a + (b - a) * hash_uniform(key ^ _SALT_TIME, i, j, lay)
                infect(j, t, state, t_state, t_next, next_state, t_inf, dur_d, u_branch, p_sym)
                infector[j] = i
                inf_layer[j] = lay
                new_idx[n_new] = j
                n_new += 1
        if community_layer < 0 or home_only[i] or contacts <= 0:
            continue
        rate = beta_layer[community_layer] * layer_scale[community_layer] * w
        if rate <= 0.0:
            continue
        for q in range(pb_indptr[i], pb_indptr[i + 1]):
            bkt = pbucket[q]
            if zone_closed[bucket_zone[bkt]]:
                continue
            lo = bucket_indptr[bkt]
            m = bucket_indptr[bkt + 1] - lo
            if m < 2:
                continue
            for k in range(contacts):
                tag = n_layers + bkt * contacts + k
                r = int(hash_uniform(key ^ _SALT_PICK, i, bkt, k) * (m - 1))
                j = bucket_member[lo + r]
                if j == i:
                    j = bucket_member[lo + m - 1]
                if state[j] != S or home_only[j]:
                    continue
                if hash_uniform(key, i, j, tag) < -math.expm1(-rate * sus[j]):
                    t = a + (b - a) * hash_uniform(key ^ _SALT_TIME, i, j, tag)
                    infect(j, t, state, t_state, t_next, next_state, t_inf, dur_d, u_branch, p_sym)
                    infector[j] = i
                    inf_layer[j] = community_layer
                    new_idx[n_new] = j
                    n_new += 1
    return n_new


@njit(cache=True, nogil=True)
def _before(ta, ia, tb, ib):
    return ta < tb or (ta == tb and ia < ib)


@njit(cache=True, nogil=True)
def _swap(heap_t, heap_i, a, b):
    heap_t[a], heap_t[b] = heap_t[b], heap_t[a]
    heap_i[a], heap_i[b] = heap_i[b], heap_i[a]


@njit(cache=True, nogil=True)
def _push(heap_t, heap_i, size, t, i):
    k = size
    heap_t[k] = t
    heap_i[k] = i
    while k > 0:
        p = (k - 1) // 2
        if _before(heap_t[k], heap_i[k], heap_t[p], heap_i[p]):
            _swap(heap_t, heap_i, k, p)
            k = p
        else:
            break
    return size + 1


@njit(cache=True, nogil=True)
def _pop(heap_t, heap_i, size):
    size -= 1
    heap_t[0] = heap_t[size]
    heap_i[0] = heap_i[size]
    k = 0
    while True:
        c = 2 * k + 1
        if c >= size:
            break
        if c + 1 < size and _before(heap_t[c + 1], heap_i[c + 1], heap_t[c], heap_i[c]):
            c += 1
        if _before(heap_t[c], heap_i[c], heap_t[k], heap_i[k]):
            _swap(heap_t, heap_i, k, c)
            k = c
        else:
            break
    return size


@njit(cache=True, nogil=True)
def _advance(i, t, new, state, t_state, t_next, next_state, inf_start, inf_end, dur_d, u_branch,
             p_sev, p_crit, p_death, no_hosp_factor, no_icu_factor, ward_free_at, icu_free_at, bed, t_onset, t_severe,
             stays, events):
    """Person ``i`` enters state ``new`` at time ``t``; schedules its next transition."""
    inf = np.inf
    if new == IP:
        inf_start[i] = t
        t_next[i] = t + dur_d[i, D_PRESYM]
        next_state[i] = IS
    elif new == IA:
        inf_start[i] = t
        t_next[i] = t + dur_d[i, D_ASYM]
        next_state[i] = REC
    elif new == IS:
        events[EV_ONSET] += 1
        t_onset[i] = t
        if u_branch[i, 1] < p_sev[i]:
            t_next[i] = t + dur_d[i, D_TOSEV]
            next_state[i] = SEV
        else:
            t_next[i] = t + dur_d[i, D_MILD]
            next_state[i] = REC
    elif new == SEV:
        inf_end[i] = t
        t_severe[i] = t
        pc = p_crit[i]
        worse = u_branch[i, 2] < pc
        leave = t + (dur_d[i, D_TOCRIT] if worse else dur_d[i, D_SEVREC])
        k = loss_admit(ward_free_at, t, leave)
        if k < 0:
            events[EV_WARD_REFUSED] += 1
            worse = u_branch[i, 2] < min(1.0, pc * no_hosp_factor)
            leave = t + (dur_d[i, D_TOCRIT] if worse else dur_d[i, D_SEVREC])
        else:
            events[EV_WARD] += 1
            stays[i, 0] = t
            stays[i, 1] = leave
        bed[i] = k
        t_next[i] = leave
        next_state[i] = CRIT if worse else REC
    elif new == CRIT:
        pd = p_death[i]
        dies = u_branch[i, 3] < pd
        leave = t + (dur_d[i, D_TODEATH] if dies else dur_d[i, D_CRITREC])
        k = loss_admit(icu_free_at, t, leave)
        if k < 0:
            events[EV_ICU_REFUSED] += 1
            dies = u_branch[i, 3] < min(1.0, pd * no_icu_factor)
            leave = t + (dur_d[i, D_TODEATH] if dies else dur_d[i, D_CRITREC])
        else:
            events[EV_ICU] += 1
            stays[i, 2] = t
            stays[i, 3] = leave
        bed[i] = k
        t_next[i] = leave
        next_state[i] = DEAD if dies else REC
    else:                                      # REC or DEAD
        if inf_end[i] > t:
            inf_end[i] = t
        events[EV_REC if new == REC else EV_DEATH] += 1
        bed[i] = -1
        t_next[i] = inf
        next_state[i] = new
    state[i] = new
    t_state[i] = t


@njit(cache=True, nogil=True)
def progress_day(day, state, t_state, t_next, next_state, inf_start, inf_end, dur_d, u_branch,
                 p_sev, p_crit, p_death, no_hosp_factor, no_icu_factor, ward_free_at, icu_free_at, bed, t_onset,
                 t_severe, stays, heap_t, heap_i, events):
    """Every transition due before the end of day ``day`` (``t_next < day + 1``), in time order
    (ties by person), each scheduling the next; hospital and ICU beds are taken and refused on
    the way (see the module docstring). Adds the day's counts to ``events`` (:data:`EVENT_COLUMNS`).

    ``state`` ... ``inf_end``: per-person disease state (``t_next`` inf: nothing due);
    ``dur_d`` (n, 9) days and ``u_branch`` (n, 4): the persons' dice; ``p_sev``, ``p_crit``,
    ``p_death``: conditional probabilities per person; ``ward_free_at`` / ``icu_free_at``: each
    bed's release time, days; ``bed``: each person's bed (-1 none); ``t_onset`` /
    ``t_severe``: output, when each person's symptoms began / became severe (days); ``stays``
    (n, 4): output, each person's ward and ICU stay taken (``[ward in, ward out, icu in, icu
    out]``, days, as set at admission); ``heap_t`` / ``heap_i``:
    scratch of length ``n``. Returns the number of transitions.
    """
    end = float(day) + 1.0
    size = 0
    for i in range(len(state)):
        if t_next[i] < end:
            size = _push(heap_t, heap_i, size, t_next[i], i)
    done = 0
    while size > 0:
        t = heap_t[0]
        i = heap_i[0]
        size = _pop(heap_t, heap_i, size)
        _advance(i, t, next_state[i], state, t_state, t_next, next_state, inf_start, inf_end, dur_d, u_branch,
                 p_sev, p_crit, p_death, no_hosp_factor, no_icu_factor, ward_free_at, icu_free_at, bed, t_onset,
                 t_severe, stays, events)
        done += 1
        if t_next[i] < end:
            size = _push(heap_t, heap_i, size, t_next[i], i)
    return done


@njit(cache=True, nogil=True)
def group_pair_count(group_indptr):
    """Directed pairs (``m * (m - 1)`` per group of ``m``): the size :func:`group_pairs` may fill."""
    total = 0
    for g in range(len(group_indptr) - 1):
        m = group_indptr[g + 1] - group_indptr[g]
        total += m * (m - 1)
    return total


@njit(cache=True, nogil=True)
def group_pairs(group_indptr, member, start_s, end_s, min_overlap_s, out_src, out_dst):
    """Contacts within groups: both directions of every pair of members of group ``g``
    (``member[group_indptr[g]:group_indptr[g + 1]]``) whose intervals ``[start_s, end_s)``
    (indexed by member position) overlap by at least ``min_overlap_s``. Returns the number of
    directed pairs written to ``out_src`` / ``out_dst`` (group order, then member order)."""
    n = 0
    for g in range(len(group_indptr) - 1):
        lo, hi = group_indptr[g], group_indptr[g + 1]
        for x in range(lo, hi):
            for y in range(lo, hi):
                if x == y:
                    continue
                if min(end_s[x], end_s[y]) - max(start_s[x], start_s[y]) >= min_overlap_s:
                    out_src[n] = member[x]
                    out_dst[n] = member[y]
                    n += 1
    return n
