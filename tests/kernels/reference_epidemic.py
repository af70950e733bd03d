"""Plain references of ``twin.kernels.epidemic`` (obvious and slow is fine).

The references share only the kernels' documented semantics: SplitMix64 in Python integers,
transmission as "every successful (infector, contact) draw, the first in (infector, static
before community, position) order wins", progression as a sorted event list, and beds as
"the lowest-numbered bed free at the admission time"."""

import itertools
import math

import numpy as np

MASK = (1 << 64) - 1


def mix64(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def hash_uniform(key, a, b, c):
    h = mix64(int(key) ^ int(a))
    h = mix64(h ^ int(b))
    h = mix64(h ^ int(c))
    return (h >> 11) / 2.0 ** 53


def group_pairs_reference(groups, start, end, min_overlap):
    """groups: list of lists of (person, position); all ordered pairs overlapping enough."""
    out = []
    for g in groups:
        for (p, x), (q, y) in itertools.permutations(g, 2):
            if min(end[x], end[y]) - max(start[x], start[y]) >= min_overlap:
                out.append((p, q))
    return sorted(out)


SALT_TIME = 0x5851F42D4C957F2D
SALT_PICK = 0x14057B7EF767814F


def transmit_reference(day, key, state, inf_start, inf_end, rel_inf, sus, edges, beta, scale, home_layer,
                       home_only, zone_closed, buckets, bucket_zone, person_buckets, contacts, community_layer):
    """New infections of the day as {j: (infector, layer, time)} with constant infectiousness.

    ``edges``: list of (i, j, layer, place zone) in the kernel's CSR order; ``buckets``: list of
    member lists; ``person_buckets``: list of bucket lists per person."""
    key = int(key)
    n_layers = len(beta)
    hits = {}
    for i in range(len(state)):
        a, b = max(day, inf_start[i]), min(day + 1.0, inf_end[i])
        if not b > a:
            continue
        w = (b - a) * rel_inf[i]
        if w <= 0:
            continue
        order = 0
        for (src, j, lay, zone) in edges:
            if src != i:
                continue
            order += 1
            away = lay != home_layer
            if state[j] != 0 or (away and (home_only[i] or home_only[j] or (zone >= 0 and zone_closed[zone]))):
                continue
            hz = beta[lay] * scale[lay] * w * sus[j]
            if hz > 0 and hash_uniform(key, i, j, lay) < -math.expm1(-hz):
                t = a + (b - a) * hash_uniform(key ^ SALT_TIME, i, j, lay)
                hits.setdefault(j, []).append(((i, 0, order), i, lay, t))
        if community_layer < 0 or home_only[i] or contacts <= 0:
            continue
        rate = beta[community_layer] * scale[community_layer] * w
        if rate <= 0:
            continue
        for bkt in person_buckets[i]:
            if zone_closed[bucket_zone[bkt]]:
                continue
            members = buckets[bkt]
            m = len(members)
            if m < 2:
                continue
            for k in range(contacts):
                tag = n_layers + bkt * contacts + k
                r = int(hash_uniform(key ^ SALT_PICK, i, bkt, k) * (m - 1))
                j = members[r] if members[r] != i else members[m - 1]
                if state[j] != 0 or home_only[j]:
                    continue
                if hash_uniform(key, i, j, tag) < -math.expm1(-rate * sus[j]):
                    t = a + (b - a) * hash_uniform(key ^ SALT_TIME, i, j, tag)
                    hits.setdefault(j, []).append(((i, 1, bkt, k), i, community_layer, t))
    return {j: min(v, key=lambda h: h[0])[1:] for j, v in hits.items()}


def loss_pool_reference(arrive, leave, beds):
    """Refused flags of patients (in the given order) in a pool of ``beds`` identical beds."""
    free_at = [-np.inf] * beds
    refused = []
    for t, u in zip(arrive, leave):
        k = next((k for k in range(beds) if free_at[k] <= t), None)
        refused.append(k is None)
        if k is not None:
            free_at[k] = u
    return np.array(refused)


def progress_reference(day, state, t_next, next_state, dur, u, p_sev, p_crit, p_death, no_hosp, no_icu,
                       ward_beds, icu_beds, ward_free, icu_free):
    """The day's transitions in (time, person) order by the documented rules; returns the list
    of (time, person, new state, bed or None) and updates the per-person lists in place."""
    S_, E_, IP_, IS_, IA_, SEV_, CRIT_, REC_, DEAD_ = range(9)
    log = []
    end = day + 1.0
    while True:
        due = [(t_next[i], i) for i in range(len(state)) if t_next[i] < end]
        if not due:
            return log
        t, i = min(due)
        new = next_state[i]
        bed = None
        if new == IP_:
            t_next[i], next_state[i] = t + dur[i][1], IS_
        elif new == IA_:
            t_next[i], next_state[i] = t + dur[i][2], REC_
        elif new == IS_:
            sev = u[i][1] < p_sev[i]
            t_next[i], next_state[i] = (t + dur[i][4], SEV_) if sev else (t + dur[i][3], REC_)
        elif new in (SEV_, CRIT_):
            pool, col, p, factor, worse_state, worse_dur, ok_dur = (
                (ward_free, 2, p_crit, no_hosp, CRIT_, 5, 6) if new == SEV_ else
                (icu_free, 3, p_death, no_icu, DEAD_, 7, 8))
            free = [k for k in range(len(pool)) if pool[k] <= t]
            worse = u[i][col] < (p[i] if free else min(1.0, p[i] * factor))
            leave = t + dur[i][worse_dur if worse else ok_dur]
            if free:
                bed = free[0]
                pool[bed] = leave
            t_next[i], next_state[i] = leave, worse_state if worse else REC_
        else:
            t_next[i], next_state[i] = math.inf, new
        state[i] = new
        log.append((t, i, new, bed))
