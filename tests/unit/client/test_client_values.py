import pytest

from pylotto.client import App, EventStatus, TopicEvent
from pylotto.client.aio import default_address
from pylotto.client.types import encode_payload
from pylotto.proto.layotto import appcallback_pb2


def test_payloads_carry_their_content_type() -> None:
    assert encode_payload(b"\x00") == (b"\x00", "application/octet-stream")
    assert encode_payload("héllo") == ("héllo".encode(), "text/plain")
    assert encode_payload({"a": [1]}) == (b'{"a": [1]}', "application/json")


def test_default_address_follows_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYLOTTO_GRPC_ADDRESS", raising=False)
    monkeypatch.delenv("runtime_GRPC_PORT", raising=False)
    monkeypatch.delenv("DAPR_GRPC_ENDPOINT", raising=False)
    assert default_address() == "127.0.0.1:34904"
    monkeypatch.setenv("runtime_GRPC_PORT", "1234")
    assert default_address() == "127.0.0.1:1234"
    monkeypatch.setenv("PYLOTTO_GRPC_ADDRESS", "host:9")
    assert default_address() == "host:9"


async def test_app_maps_handler_outcomes_to_statuses() -> None:
    app = App()
    outcomes: dict[str, object] = {"ok": None, "retry": EventStatus.RETRY,
                                   "drop": EventStatus.DROP}

    for topic, outcome in outcomes.items():
        app.subscribe("ps", topic)(lambda event, outcome=outcome: outcome)

    @app.subscribe("ps", "boom")
    async def boom(event: TopicEvent) -> None:
        raise RuntimeError("handler failed")

    async def status(topic: str) -> int:
        request = appcallback_pb2.TopicEventRequest(id="1", topic=topic, pubsub_name="ps")
        return (await app.OnTopicEvent(request, None)).status

    assert await status("ok") == EventStatus.SUCCESS
    assert await status("retry") == EventStatus.RETRY
    assert await status("drop") == EventStatus.DROP
    assert await status("boom") == EventStatus.RETRY
    assert await status("unknown-topic") == EventStatus.DROP
    subs = await app.ListTopicSubscriptions(None, None)  # type: ignore[arg-type]
    assert {(s.pubsub_name, s.topic) for s in subs.subscriptions} == {
        ("ps", "ok"), ("ps", "retry"), ("ps", "drop"), ("ps", "boom")}
    with pytest.raises(ValueError, match="already has a handler"):
        app.subscribe("ps", "ok")(lambda event: None)
