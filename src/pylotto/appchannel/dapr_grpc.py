"""Dapr's ``AppCallback`` over gRPC: how a Dapr gRPC app receives events.

:func:`dapr_topic_event` is also the ``event_message`` of Dapr's streaming subscription.
"""

from __future__ import annotations

from dapr.proto.runtime.v1 import appcallback_pb2
from google.protobuf import struct_pb2

from pylotto.appchannel.base import TopicEvent
from pylotto.capabilities import cloudevents

_ATTRIBUTES = frozenset({
    cloudevents.ID, cloudevents.SOURCE, cloudevents.TYPE, cloudevents.SPECVERSION,
    cloudevents.DATACONTENTTYPE, cloudevents.DATA, cloudevents.DATA_BASE64,
    cloudevents.TOPIC, cloudevents.PUBSUBNAME,
})
"""CloudEvent attributes with a field of their own in TopicEventRequest."""


def dapr_topic_event(event: TopicEvent, path: str = "") -> appcallback_pb2.TopicEventRequest:
    """Dapr's wire form of ``event``; every other CloudEvent attribute goes in ``extensions``."""
    extensions = struct_pb2.Struct()
    extra = {k: v for k, v in event.cloud_event.items() if k not in _ATTRIBUTES}
    if extra:
        extensions.update(extra)
    return appcallback_pb2.TopicEventRequest(
        id=event.id,
        source=event.source,
        type=event.type,
        spec_version=event.spec_version,
        data_content_type=event.data_content_type,
        data=event.data,
        topic=event.topic,
        pubsub_name=event.pubsub_name,
        path=path,
        extensions=extensions,
    )
