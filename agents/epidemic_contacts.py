"""Contact layers of the epidemic, built from the synthetic population's day plans.

One *day type* (the population's one weekday) gives four layers, struct-of-arrays, built once:

``household``
    Every pair of members of a household, every day.
``school`` / ``work``
    Persons whose school or work activity is at the same node *and* overlaps in time by at
    least ``min_overlap_s`` (15 min by default). A location's persons are split, in a seeded
    random order, into ``ceil(n / group)`` groups of near-equal size at most ``group`` (classes
    of at most 21 pupils, teams of at most 17 workers), so that a full group gives each member
    Covasim's default contacts per day (school 20, work 16; Kerr et al. 2021). Every pair of a
    group is a contact (a clique: contacts cluster as they do in a class or an office).
``community``
    Co-presence in a zone-hour: at hh:30 of every hour, persons out of home at a shop, park,
    clinic, care centre or travelling are in the bucket of (hour, zone of where they are). The
    epidemic kernel draws ``community_contacts`` partners per person-bucket uniformly from the
    bucket, anew every day (:func:`twin.kernels.epidemic.transmit_day`).

Care homes are not modelled (the population has none). :func:`homogeneous_contacts` builds the
textbook alternative: one community bucket holding everyone (mass action), for validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.agents.activities import CARE, CLINIC, LEISURE, SCHOOL, SHOP, TRAVEL, WORK
from twin.errors import ScenarioError
from twin.kernels.epidemic import group_pair_count, group_pairs

__all__ = ["Contacts", "contacts_from_population", "homogeneous_contacts", "OUT_OF_HOME"]

#: Activities that put a person in the community layer's zone-hour bucket.
OUT_OF_HOME = (SHOP, LEISURE, CLINIC, CARE, TRAVEL)


@dataclass(frozen=True, eq=False)
class Contacts:
    """Contact layers of one day type (see the module docstring).

    Attributes
    ----------
    n_persons : int
    layer_names : tuple of str
        Layer codes 0, 1, ... (static layers first, then the community layer, if any).
    edge_indptr : ndarray of int64 (n_persons + 1,)
    edge_nbr : ndarray of int32
        Static contacts of person ``i``: ``edge_nbr[edge_indptr[i]:edge_indptr[i + 1]]``
        (symmetric: ``j`` in ``i``'s list iff ``i`` in ``j``'s, once per layer).
    edge_layer : ndarray of int8
        Layer code of each static contact.
    edge_zone : ndarray of int32
        Zone of the place of each static contact (-1: the home).
    bucket_indptr, bucket_member : ndarray of int64 / int32
        Community buckets (zone-hours) and their members.
    bucket_zone : ndarray of int32
        Zone of each bucket.
    pb_indptr, pbucket : ndarray of int64 / int32
        Each person's buckets.
    community_contacts : int
        Partners drawn per person and bucket each day.
    """

    n_persons: int
    layer_names: tuple
    edge_indptr: np.ndarray
    edge_nbr: np.ndarray
    edge_layer: np.ndarray
    edge_zone: np.ndarray
    bucket_indptr: np.ndarray
    bucket_member: np.ndarray
    bucket_zone: np.ndarray
    pb_indptr: np.ndarray
    pbucket: np.ndarray
    community_contacts: int = 0

    def layer(self, name) -> int:
        """Code of layer ``name``, or -1 when absent."""
        return self.layer_names.index(name) if name in self.layer_names else -1

    def contacts_per_person(self) -> dict:
        """Mean contacts per person per day by layer (community: expected, ``community_contacts``
        per bucket a person is in)."""
        n = max(self.n_persons, 1)
        out = {name: float(np.count_nonzero(self.edge_layer == k)) / n
               for k, name in enumerate(self.layer_names) if name != "community"}
        if "community" in self.layer_names:
            out["community"] = float(len(self.pbucket) * self.community_contacts) / n
        return out


def _csr(src, dst, layer, zone, n):
    order = np.lexsort((dst, layer, src))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, dst[order].astype(np.int32), layer[order].astype(np.int8), zone[order].astype(np.int32)


def _groups(key, persons, cap, rng):
    """Split the persons of each ``key`` (a location) into near-equal groups of at most ``cap``,
    in a random order; returns (group_indptr, member positions into ``persons``)."""
    if len(persons) == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.lexsort((rng.random(len(persons)), key))
    k = key[order]
    first = np.r_[True, k[1:] != k[:-1]]
    start = np.flatnonzero(first)
    size = np.diff(np.r_[start, len(k)])
    loc = np.repeat(np.arange(len(start)), size)
    rank = np.arange(len(k)) - start[loc]
    n_groups = -(-size // cap)
    chunk = rank * n_groups[loc] // size[loc]
    gid = np.cumsum(np.r_[0, n_groups[:-1]])[loc] + chunk
    bounds = np.r_[0, np.flatnonzero(np.diff(gid)) + 1, len(gid)]
    return bounds.astype(np.int64), order


def _activity_slot(pop, code):
    """Each person's first activity of type ``code``: (persons, node, start_s, end_s)."""
    slots = np.flatnonzero(np.asarray(pop.act_type) == code)
    person = np.searchsorted(pop.act_indptr, slots, side="right") - 1
    person, first = np.unique(person, return_index=True)
    slots = slots[first]
    return person, np.asarray(pop.act_node_idx)[slots], np.asarray(pop.act_start_s)[slots], \
        np.asarray(pop.act_end_s)[slots]


def _pairs(group_indptr, member, start, end, min_overlap_s):
    size = group_pair_count(group_indptr)
    src = np.empty(size, dtype=np.int64)
    dst = np.empty(size, dtype=np.int64)
    n = group_pairs(group_indptr, member.astype(np.int64), start.astype(np.float64), end.astype(np.float64),
                    float(min_overlap_s), src, dst)
    return src[:n], dst[:n]


def _place_zone(src, person, zone_of_person):
    """Zone of the place of each contact of ``src`` (its group's place, the same for both ends)."""
    where_ = np.full(int(max(person.max(), src.max()) + 1 if len(person) else 0), -1, dtype=np.int64)
    where_[person] = zone_of_person
    return where_[src]


def contacts_from_population(pop, *, work_group=17, school_group=21, community_contacts=3, min_overlap_s=900.0,
                             seed=0) -> Contacts:
    """The four layers of a :class:`~twin.agents.population.Population`'s day (module docstring).

    Parameters
    ----------
    pop : Population
    work_group, school_group : int
        Largest team / class (persons); at least 2.
    community_contacts : int
        Community partners per person per zone-hour out of home (>= 0).
    min_overlap_s : float
        Least time two persons of a group must share the place, seconds.
    seed : int
        Seeds the order in which a location's persons are split into groups.
    """
    for name, v, lo in (("work_group", work_group, 2), ("school_group", school_group, 2),
                        ("community_contacts", community_contacts, 0)):
        if isinstance(v, bool) or int(v) != v or v < lo:
            raise ScenarioError(f"contacts: {name} = {v!r}; expected an integer >= {lo}")
    n = int(pop.n_persons)
    rng = np.random.default_rng(seed)
    srcs, dsts, lays, zones = [], [], [], []
    hh = np.asarray(pop.household_idx, dtype=np.int64)
    order = np.argsort(hh, kind="stable")
    bounds = np.r_[0, np.flatnonzero(np.diff(hh[order])) + 1, n].astype(np.int64)
    ones = np.ones(n)
    s, d = _pairs(bounds, order, np.zeros(n), ones, 0.0)
    srcs.append(s), dsts.append(d), lays.append(np.full(len(s), 0)), zones.append(np.full(len(s), -1))
    zone_of_node = np.asarray(pop.city.zone_of_node, dtype=np.int64)
    for code, (act, cap) in enumerate(((SCHOOL, school_group), (WORK, work_group)), start=1):
        person, node, start, end = _activity_slot(pop, act)
        g_indptr, pos = _groups(node, person, int(cap), rng)
        s, d = _pairs(g_indptr, person[pos], start[pos], end[pos], min_overlap_s)
        srcs.append(s), dsts.append(d), lays.append(np.full(len(s), code))
        zones.append(_place_zone(s, person, zone_of_node[node]) if len(s) else np.zeros(0, dtype=np.int64))
    edge_indptr, edge_nbr, edge_layer, edge_zone = _csr(np.concatenate(srcs), np.concatenate(dsts),
                                                        np.concatenate(lays), np.concatenate(zones), n)
    n_zones = int(pop.city.n_zones)
    bucket, person = [], []
    for h in range(24):
        loc = pop.location_at(h * 3600.0 + 1800.0, along_routes=False)
        out = np.flatnonzero(np.isin(loc.activity, OUT_OF_HOME))
        bucket.append(h * n_zones + np.asarray(loc.zone_idx)[out])
        person.append(out)
    bucket_indptr, bucket_member, pb_indptr, pbucket = _buckets(np.concatenate(bucket), np.concatenate(person),
                                                                24 * n_zones, n)
    bucket_zone = (np.arange(24 * n_zones) % n_zones).astype(np.int32)
    return Contacts(n, ("household", "school", "work", "community"), edge_indptr, edge_nbr, edge_layer, edge_zone,
                    bucket_indptr, bucket_member, bucket_zone, pb_indptr, pbucket, int(community_contacts))


def _buckets(bucket, person, n_buckets, n):
    order = np.lexsort((person, bucket))
    bucket_indptr = np.zeros(n_buckets + 1, dtype=np.int64)
    np.cumsum(np.bincount(bucket, minlength=n_buckets), out=bucket_indptr[1:])
    member = person[order].astype(np.int32)
    porder = np.lexsort((bucket, person))
    pb_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(person, minlength=n), out=pb_indptr[1:])
    return bucket_indptr, member, pb_indptr, bucket[porder].astype(np.int32)


def homogeneous_contacts(n_persons, contacts_per_day) -> Contacts:
    """Mass action: no static layers, one community bucket holding all ``n_persons``, each
    person drawing ``contacts_per_day`` partners a day (the homogeneous-mixing limit)."""
    n = int(n_persons)
    if n < 2 or int(contacts_per_day) != contacts_per_day or contacts_per_day < 1:
        raise ScenarioError(f"homogeneous contacts: n_persons = {n_persons!r}, contacts_per_day = "
                            f"{contacts_per_day!r}; expected at least 2 persons and an integer >= 1 contacts")
    everyone = np.arange(n)
    bi, bm, pbi, pb = _buckets(np.zeros(n, dtype=np.int64), everyone, 1, n)
    return Contacts(n, ("community",), np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int32),
                    np.zeros(0, dtype=np.int8), np.zeros(0, dtype=np.int32), bi, bm, np.zeros(1, dtype=np.int32), pbi,
                    pb, int(contacts_per_day))
