"""daprd's consistent-hash ring as placement uses it: the hash definition (daprd's own test
vectors), an even spread of partitions, and minimal movement when a member joins or leaves."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from pylotto.capabilities.actors.placement.ring import (
    VNODES,
    Ring,
    hash64,
    partition,
    partition_key,
    vnode_hashes,
)

MEMBERS = [f"10.0.0.{i}:50002" for i in range(1, 6)]


def test_the_hash_is_blake2b_512_first_8_bytes_little_endian() -> None:
    digest = hashlib.blake2b(b"actor-42", digest_size=64).digest()
    assert hash64("actor-42") == int.from_bytes(digest[:8], "little")
    # daprd's own vectors (pkg/placement/hashing/consistent_hash_test.go): vnode i of a host
    # is hash(host + str(i))
    assert vnode_hashes("192.168.1.83:60992", 5) == (
        11414427053803968138, 6110756290993384529, 13876541546109691082,
        12165331075625862737, 9528020266818944582)
    assert vnode_hashes("192.168.1.89:62362", 3) == (
        13384490355354205375, 11281728843146723001, 694935339057032644)
    assert len(vnode_hashes("h:1")) == VNODES == 100


def test_a_key_goes_to_the_first_point_at_or_after_its_hash_wrapping_round() -> None:
    ring = Ring(["a:1", "b:2"], vnodes=3)
    points = sorted((h, m) for m in ("a:1", "b:2") for h in vnode_hashes(m, 3))
    for key in (f"k{i}" for i in range(200)):
        h = hash64(key)
        expected = next((m for p, m in points if p >= h), points[0][1])
        assert ring.owner(key) == expected


def test_an_empty_ring_names_nobody() -> None:
    assert Ring([]).owner("T#0") is None
    assert not Ring([])


def test_partitions_of_ids_spread_evenly() -> None:
    counts = Counter(partition(f"id-{i}", 64) for i in range(64_000))
    assert set(counts) == set(range(64))
    assert max(counts.values()) < 1.15 * 1000 and min(counts.values()) > 0.85 * 1000
    assert partition("id-7", 64) == hash64("id-7") % 64


def test_the_ring_spreads_partitions_over_members() -> None:
    ring = Ring(MEMBERS)
    owners = Counter(ring.owner(partition_key("Counter", p)) for p in range(1024))
    assert set(owners) == set(MEMBERS)
    share = 1024 / len(MEMBERS)
    assert all(0.6 * share < n < 1.4 * share for n in owners.values()), owners


def test_rings_of_the_same_members_agree_whatever_their_order() -> None:
    keys = [partition_key("T", p) for p in range(64)]
    assert [Ring(MEMBERS).owner(k) for k in keys] == \
        [Ring(reversed(MEMBERS)).owner(k) for k in keys]


@pytest.mark.parametrize("change", ["join", "leave"])
def test_a_join_or_leave_moves_only_the_partitions_of_that_member(change: str) -> None:
    keys = [partition_key("T", p) for p in range(1024)]
    before = Ring(MEMBERS)
    other = "10.0.0.9:50002"
    after = Ring([*MEMBERS, other]) if change == "join" else Ring(MEMBERS[1:])
    moved = [k for k in keys if before.owner(k) != after.owner(k)]
    if change == "join":
        assert all(after.owner(k) == other for k in moved)  # only to the new member
        expected = len(keys) / (len(MEMBERS) + 1)
    else:
        assert all(before.owner(k) == MEMBERS[0] for k in moved)  # only the leaver's
        expected = len(keys) / len(MEMBERS)
    assert 0.6 * expected < len(moved) < 1.4 * expected
