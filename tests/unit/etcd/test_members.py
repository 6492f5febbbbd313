"""The member bookkeeping of the etcd client, without servers: calls go to the active member;
a failed one hands over to the next in the endpoint list and is remembered (it may have been
the leader), and a member nobody listens on is passed over within ``dialTimeout``."""

from __future__ import annotations

import asyncio

from pylotto.components._backends.etcd_members import Members
from tests.support.ports import free_port


async def test_failed_member_hands_over_to_the_next_in_turn() -> None:
    members = Members(["a:1", "b:2", "c:3"], None, dial_timeout=1.0)
    try:
        a, b, c = members.members
        assert members.current is a and members.in_turn(set()) == [a, b, c]
        a.member_id = 11
        members.failed(a, lost=True)
        assert members.current is b and members.left_behind is a and members.switches == 1
        assert members.in_turn({a}) == [b, c]
        members.failed(a, lost=True)  # a late failure of a member already left: no change
        assert members.current is b and members.switches == 1
        members.failed(b, lost=False)  # slow, or without a leader: not waited for
        assert members.left_behind is a
        members.failed(c, lost=False)
        assert members.current is a  # round the list
    finally:
        await members.close()


async def test_a_member_nobody_listens_on_is_passed_over() -> None:
    members = Members([f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"], None,
                      dial_timeout=2.0)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await members.connected(set(), loop.time() + 5) is None
        assert loop.time() - started < 1.5  # refused at once, not after dialTimeout (2 s each)
    finally:
        await members.close()
