"""The pub/sub suite leaves no MQTT session behind: every client id a subscription used gets
its persistent session removed after the test (connecting with it and a clean session)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from pylotto.components.pubsub.mqtt import MQTTPubSub


@pytest.fixture(autouse=True)
async def _forget_mqtt_sessions(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    used: set[str] = set()
    reserve = MQTTPubSub._reserve_client_id

    def recording(self: MQTTPubSub, topic: str, group: str) -> str:
        client_id = reserve(self, topic, group)
        used.add(client_id)
        return client_id

    monkeypatch.setattr(MQTTPubSub, "_reserve_client_id", recording)
    yield
    if not used:
        return
    import aiomqtt

    for client_id in used:
        try:  # best effort: cleaning must not fail a test
            async with aiomqtt.Client("127.0.0.1", 1883, identifier=client_id,
                                      clean_session=True, timeout=5):
                pass
        except Exception as exc:
            logging.getLogger("tests.conformance").warning("session %s kept: %r",
                                                           client_id, exc)
