"""The shared delivery loop's receive hooks (components/pubsub/delivery.py): a broker defines
``receive`` or ``receive_many``, each of which defaults to the other."""

from __future__ import annotations

import pytest

from pylotto.components.pubsub.delivery import BrokerSubscription, Delivery


def test_a_broker_defining_neither_receive_hook_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match="must define receive or receive_many"):
        class _Neither(BrokerSubscription):
            async def ack(self, delivery: Delivery) -> None:
                pass


async def test_receive_defaults_to_one_of_receive_many() -> None:
    class _Batched(BrokerSubscription):
        batch_limit = 8

        async def receive_many(self, limit: int) -> list[Delivery]:
            self.asked = limit
            return [Delivery(message=None)]  # type: ignore[arg-type]

        async def ack(self, delivery: Delivery) -> None:
            pass

    sub = object.__new__(_Batched)
    delivery = await sub.receive()
    assert delivery.message is None and sub.asked == 1
