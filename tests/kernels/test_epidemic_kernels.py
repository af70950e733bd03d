"""Epidemic kernels against their plain references (tests/kernels/reference_epidemic.py).

Tolerance: exact for the hash, the pairs, the beds and the progression (the same comparisons
and additions in the same order); transmission agrees exactly on who is infected, by whom and
on which layer, and to 1e-12 days on when (the same product and one multiply-add).
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from twin.kernels import epidemic as K

_spec = importlib.util.spec_from_file_location("reference_epidemic", Path(__file__).with_name("reference_epidemic.py"))
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning")


@pytest.mark.parametrize("key", [0, 1, 2 ** 63 + 12345, 0xDEADBEEF])
def test_hash_uniform_matches_splitmix64_in_python_integers(key):
    rng = np.random.default_rng(key % 1000)
    for a, b, c in rng.integers(0, 2 ** 31, size=(50, 3)):
        assert K.hash_uniform(np.uint64(key), int(a), int(b), int(c)) == ref.hash_uniform(key, a, b, c)


def test_hash_uniforms_are_uniform_and_independent_of_neighbours():
    u = np.array([K.hash_uniform(np.uint64(7), i, i + 1, 3) for i in range(4000)])
    assert np.all((u >= 0) & (u < 1))
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.06


def test_group_pairs_match_the_reference():
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 6, 12)
    indptr = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    member = rng.permutation(200)[:indptr[-1]].astype(np.int64)
    start = rng.uniform(0, 10, indptr[-1])
    end = start + rng.uniform(0, 5, indptr[-1])
    n = K.group_pair_count(indptr)
    src, dst = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    got = K.group_pairs(indptr, member, start, end, 1.0, src, dst)
    groups = [[(member[x], x) for x in range(indptr[g], indptr[g + 1])] for g in range(len(sizes))]
    assert sorted(zip(src[:got].tolist(), dst[:got].tolist())) == ref.group_pairs_reference(groups, start, end, 1.0)


def test_profile_mass_is_the_gamma_cdf_difference():
    mean, sd = 6.0, 2.5
    k, theta = (mean / sd) ** 2, sd ** 2 / mean
    grid = np.arange(0, 40, 0.01)
    cdf = stats.gamma.cdf(grid, k, scale=theta)
    for s0, s1 in ((0.0, 1.0), (2.3, 3.3), (5.5, 7.25), (30.0, 80.0)):
        want = stats.gamma.cdf(s1, k, scale=theta) - stats.gamma.cdf(s0, k, scale=theta)
        assert K.profile_mass(cdf, 0.01, s0, s1) == pytest.approx(want, abs=2e-5)
    assert K.profile_mass(cdf, 0.01, -3.0, 0.0) == 0.0


def test_loss_admit_matches_the_reference():
    rng = np.random.default_rng(5)
    t = np.sort(rng.uniform(0, 50, 300))
    stay = rng.exponential(4.0, 300)
    free = np.full(7, -np.inf)
    refused = np.array([K.loss_admit(free, a, a + s) < 0 for a, s in zip(t, stay)])
    np.testing.assert_array_equal(refused, ref.loss_pool_reference(t, t + stay, 7))
    assert 0 < refused.sum() < 300


def _population(rng, n):
    dur = rng.uniform(0.05, 2.5, (n, 9))
    u = rng.random((n, 4))
    p_sym, p_sev, p_crit, p_death = (rng.uniform(0.2, 0.9, n) for _ in range(4))
    return dur, u, p_sym, p_sev, p_crit, p_death


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_progression_matches_the_reference_over_several_days(seed):
    rng = np.random.default_rng(seed)
    n = 60
    dur, u, p_sym, p_sev, p_crit, p_death = _population(rng, n)
    state = np.zeros(n, dtype=np.int8)
    t_state, t_next = np.zeros(n), np.full(n, np.inf)
    next_state = np.zeros(n, dtype=np.int8)
    t_inf = np.full(n, np.nan)
    for j in range(n):
        K.infect(j, rng.uniform(0, 1), state, t_state, t_next, next_state, t_inf, dur, u, p_sym)
    r_state, r_next, r_ns = state.tolist(), t_next.tolist(), next_state.tolist()
    inf_start, inf_end, bed, t_sev = np.full(n, np.inf), np.full(n, np.inf), np.full(n, -1), np.full(n, np.nan)
    t_onset, stays = np.full(n, np.nan), np.full((n, 4), np.nan)
    ward, icu = np.full(3, -np.inf), np.full(2, -np.inf)
    r_ward, r_icu = [-np.inf] * 3, [-np.inf] * 2
    heap_t, heap_i = np.empty(n), np.empty(n, dtype=np.int64)
    for day in range(12):
        events = np.zeros(len(K.EVENT_COLUMNS), dtype=np.int64)
        done = K.progress_day(day, state, t_state, t_next, next_state, inf_start, inf_end, dur, u, p_sev, p_crit,
                              p_death, 2.0, 2.0, ward, icu, bed, t_onset, t_sev, stays, heap_t, heap_i,
                              events)
        log = ref.progress_reference(day, r_state, r_next, r_ns, dur.tolist(), u.tolist(), p_sev, p_crit, p_death,
                                     2.0, 2.0, 3, 2, r_ward, r_icu)
        assert done == len(log)
        assert state.tolist() == r_state and t_next.tolist() == r_next
        assert ward.tolist() == r_ward and icu.tolist() == r_icu
        assert events[K.EV_WARD] + events[K.EV_WARD_REFUSED] == sum(1 for e in log if e[2] == K.SEV)
        assert events[K.EV_WARD_REFUSED] == sum(1 for e in log if e[2] == K.SEV and e[3] is None)
        assert events[K.EV_DEATH] == sum(1 for e in log if e[2] == K.DEAD)
        onsets = [(e[1], e[0]) for e in log if e[2] == K.IS]
        assert all(t_onset[i] == t for i, t in onsets)
        for t, i, new, b in log:                   # a stay is logged for every bed taken
            if new in (K.SEV, K.CRIT):
                col = 0 if new == K.SEV else 2
                assert (stays[i, col] == t) == (b is not None)
    assert set(state.tolist()) <= {K.REC, K.DEAD} | set(range(9))
    assert np.all(np.isfinite(inf_start[(state == K.REC) | (state == K.DEAD)]))


def _layers(rng, n, n_layers=3, n_zones=4):
    src, dst, lay, zone = [], [], [], []
    for _ in range(3 * n):
        i, j = rng.integers(0, n, 2)
        if i != j:
            la = int(rng.integers(0, n_layers))
            z = -1 if la == 0 else int(rng.integers(0, n_zones))
            src += [i, j]
            dst += [j, i]
            lay += [la, la]
            zone += [z, z]
    src, dst, lay, zone = np.array(src), np.array(dst), np.array(lay), np.array(zone)
    order = np.lexsort((dst, lay, src))
    indptr = np.r_[0, np.cumsum(np.bincount(src, minlength=n))].astype(np.int64)
    return indptr, dst[order].astype(np.int32), lay[order].astype(np.int8), zone[order].astype(np.int32)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_transmission_matches_the_reference(seed):
    rng = np.random.default_rng(seed)
    n, n_layers = 120, 3
    indptr, nbr, lay, zone = _layers(rng, n, n_layers)
    zone_closed = np.array([False, seed == 2, False, seed == 3])
    bucket_zone = (np.arange(5) % 4).astype(np.int32)
    dur, u, p_sym, *_ = _population(rng, n)
    state = np.zeros(n, dtype=np.int8)
    sick = rng.random(n) < 0.3
    state[sick] = K.IS
    inf_start = np.where(sick, rng.uniform(2.0, 3.5, n), np.inf)
    inf_end = np.where(sick, inf_start + rng.uniform(0.1, 3.0, n), np.inf)
    rel_inf, sus = rng.uniform(0.5, 1.5, n), rng.uniform(0.3, 1.2, n)
    beta = np.array([0.9, 0.5, 0.7, 0.4])              # three static layers + community (code 3)
    scale = np.array([1.0, 0.0 if seed == 1 else 1.0, 1.0, 1.0])
    home_only = rng.random(n) < 0.1
    n_b = 5
    bucket_of = [sorted(rng.choice(n, size=int(rng.integers(0, 30)), replace=False).tolist()) for _ in range(n_b)]
    person_buckets = [[b for b in range(n_b) if p in bucket_of[b]] for p in range(n)]
    bucket_indptr = np.r_[0, np.cumsum([len(b) for b in bucket_of])].astype(np.int64)
    bucket_member = np.array(sum(bucket_of, []), dtype=np.int32)
    pb_indptr = np.r_[0, np.cumsum([len(b) for b in person_buckets])].astype(np.int64)
    pbucket = np.array(sum(person_buckets, []), dtype=np.int32)
    t_state, t_next, next_state = np.zeros(n), np.full(n, np.inf), np.zeros(n, dtype=np.int8)
    t_inf, infector, inf_layer = np.full(n, np.nan), np.full(n, -1), np.full(n, -1, dtype=np.int8)
    new = np.empty(n, dtype=np.int64)
    key = np.uint64(1234567 + seed)
    edges = [(i, int(nbr[e]), int(lay[e]), int(zone[e])) for i in range(n) for e in range(indptr[i], indptr[i + 1])]
    state0 = state.copy()
    want = ref.transmit_reference(3, key, state.copy(), inf_start, inf_end, rel_inf, sus, edges, beta, scale, 0,
                                  home_only, zone_closed, bucket_of, bucket_zone, person_buckets, 2, 3)
    got = K.transmit_day(3, key, state, t_state, t_next, next_state, t_inf, inf_start, inf_end, rel_inf, sus, dur, u,
                         p_sym, np.ones(1), 0.01, False, indptr, nbr, lay, zone, beta, scale, 0, home_only,
                         zone_closed, bucket_indptr, bucket_member, bucket_zone, pb_indptr, pbucket, 2, 3, infector,
                         inf_layer, new)
    assert got == len(want) > 0
    assert sorted(new[:got].tolist()) == sorted(want)
    for j, (i, layer, t) in want.items():
        assert (infector[j], inf_layer[j]) == (i, layer)
        assert t_inf[j] == pytest.approx(t, abs=1e-12)
        assert state[j] == K.E and t_next[j] == pytest.approx(t + dur[j, 0], abs=1e-12)
    if seed == 1:
        assert not any(layer == 1 for _, layer, _ in want.values())
    if zone_closed.any():                                  # the closure took contacts away
        open_ = ref.transmit_reference(3, key, state0, inf_start, inf_end, rel_inf, sus, edges,
                                       beta, scale, 0, home_only, np.zeros(4, dtype=bool), bucket_of, bucket_zone,
                                       person_buckets, 2, 3)
        assert set(want) < set(open_)
