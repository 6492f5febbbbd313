"""Protobuf ⇄ SDK values, shared by the async client, the sync client and the callback server."""

from __future__ import annotations

from collections.abc import Mapping

from pylotto.client.types import (
    BulkStateItem,
    ConfigurationItem,
    FileInfo,
    StateItem,
    TopicEvent,
)
from pylotto.proto.layotto import appcallback_pb2, runtime_pb2


def state_item(item: StateItem) -> runtime_pb2.StateItem:
    pb = runtime_pb2.StateItem(key=item.key, value=item.value, metadata=dict(item.metadata))
    if item.etag is not None:
        pb.etag.value = item.etag
    if item.concurrency or item.consistency:
        pb.options.concurrency = item.concurrency.value  # type: ignore[assignment]
        pb.options.consistency = item.consistency.value  # type: ignore[assignment]
    return pb


def bulk_item(pb: runtime_pb2.BulkStateItem) -> BulkStateItem:
    return BulkStateItem(pb.key, pb.data, pb.etag or None, pb.error, dict(pb.metadata))


def configuration_item(item: ConfigurationItem) -> runtime_pb2.ConfigurationItem:
    return runtime_pb2.ConfigurationItem(
        key=item.key, content=item.content, group=item.group, label=item.label,
        tags=dict(item.tags), metadata=dict(item.metadata),
    )


def configuration_items(pbs: object) -> list[ConfigurationItem]:
    return [
        ConfigurationItem(pb.key, pb.content, pb.group, pb.label, dict(pb.tags), dict(pb.metadata))
        for pb in pbs  # type: ignore[attr-defined]
    ]


def file_info(pb: runtime_pb2.FileInfo) -> FileInfo:
    return FileInfo(pb.file_name, pb.size, pb.last_modified, dict(pb.metadata))


def topic_event(pb: appcallback_pb2.TopicEventRequest) -> TopicEvent:
    return TopicEvent(
        id=pb.id, source=pb.source, type=pb.type, spec_version=pb.spec_version,
        data_content_type=pb.data_content_type, topic=pb.topic, pubsub_name=pb.pubsub_name,
        data=pb.data, metadata=dict(pb.metadata),
    )


def metadata(values: Mapping[str, str] | None) -> dict[str, str]:
    return dict(values or {})
