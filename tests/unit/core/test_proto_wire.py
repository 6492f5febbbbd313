"""Our .proto files keep Layotto's wire contract: messages round-trip, the service is whole."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import any_pb2, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from pylotto.proto.layotto import (
    appcallback_pb2,
    cryption_pb2,
    email_pb2,
    lifecycle_pb2,
    oss_pb2,
    runtime_pb2,
)


def _messages(descriptors: list[Descriptor]) -> Iterator[Descriptor]:
    for desc in descriptors:
        if desc.GetOptions().map_entry:
            continue
        yield desc
        yield from _messages(list(desc.nested_types))


ALL = [
    d
    for module in (runtime_pb2, appcallback_pb2, email_pb2, cryption_pb2, lifecycle_pb2,
                   oss_pb2)
    for d in _messages(list(module.DESCRIPTOR.message_types_by_name.values()))
]


def _scalar(field: Any, seed: int) -> Any:
    if field.type == FieldDescriptor.TYPE_STRING:
        return f"s{seed}é"
    if field.type == FieldDescriptor.TYPE_BYTES:
        return bytes([seed % 256, 0, 255])
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type == FieldDescriptor.TYPE_ENUM:
        values = field.enum_type.values
        return values[-1].number
    if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64):
        return 2**40 + seed
    return seed + 1


def _any() -> any_pb2.Any:
    return any_pb2.Any(type_url="type.googleapis.com/x", value=b"\x01\x02")


def _fill(msg: Message, depth: int = 0) -> None:
    """Set every field of ``msg`` (one member per oneof) to a non-default value."""
    filled_oneofs: set[str] = set()
    for field in msg.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None:
            if oneof.name in filled_oneofs:
                continue
            filled_oneofs.add(oneof.name)
        target = getattr(msg, field.name)
        sub = field.message_type
        if sub is not None and sub.GetOptions().map_entry:
            key, value = sub.fields_by_name["key"], sub.fields_by_name["value"]
            if value.message_type is not None:
                _fill(target[_scalar(key, 1)], depth + 1)
            else:
                target[_scalar(key, 1)] = _scalar(value, 2)
        elif sub is not None:
            item = target.add() if field.is_repeated else target
            if sub.full_name == "google.protobuf.Any":
                item.CopyFrom(_any())
            elif depth < 4:
                _fill(item, depth + 1)
                item.SetInParent()
        elif field.is_repeated:
            target.extend([_scalar(field, 3), _scalar(field, 4)])
        else:
            setattr(msg, field.name, _scalar(field, field.number))


@pytest.mark.parametrize("descriptor", ALL, ids=lambda d: d.full_name)
def test_every_message_round_trips(descriptor: Descriptor) -> None:
    cls = message_factory.GetMessageClass(descriptor)
    original = cls()
    _fill(original)
    parsed = cls.FromString(original.SerializeToString())
    assert parsed == original
    for field, value in original.ListFields():
        assert getattr(parsed, field.name) == value


RUNTIME_METHODS = {
    # name: (client streaming, server streaming)
    "SayHello": (False, False), "InvokeService": (False, False),
    "GetConfiguration": (False, False), "SaveConfiguration": (False, False),
    "DeleteConfiguration": (False, False), "SubscribeConfiguration": (True, True),
    "TryLock": (False, False), "Unlock": (False, False), "LockKeepAlive": (False, False),
    "GetNextId": (False, False), "GetState": (False, False), "GetBulkState": (False, False),
    "SaveState": (False, False), "DeleteState": (False, False),
    "DeleteBulkState": (False, False), "ExecuteStateTransaction": (False, False),
    "PublishEvent": (False, False), "SubscribeTopicEvents": (True, True),
    "GetFile": (False, True), "PutFile": (True, False), "ListFile": (False, False),
    "DelFile": (False, False), "GetFileMeta": (False, False), "InvokeBinding": (False, False),
    "GetSecret": (False, False), "GetBulkSecret": (False, False),
}


def test_runtime_service_has_every_layotto_rpc() -> None:
    service = runtime_pb2.DESCRIPTOR.services_by_name["Runtime"]
    assert service.full_name == "spec.proto.runtime.v1.Runtime"
    got = {m.name: (m.client_streaming, m.server_streaming) for m in service.methods}
    assert got == RUNTIME_METHODS
    callback = appcallback_pb2.DESCRIPTOR.services_by_name["AppCallback"]
    assert {m.name for m in callback.methods} == {"ListTopicSubscriptions", "OnTopicEvent"}


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        (runtime_pb2.GetStateRequest, {"store_name": 1, "key": 2, "consistency": 3,
                                       "metadata": 4}),
        (runtime_pb2.StateItem, {"key": 1, "value": 2, "etag": 3, "metadata": 4, "options": 5}),
        (runtime_pb2.InvokeServiceRequest, {"id": 1, "message": 3}),
        (runtime_pb2.ExecuteStateTransactionRequest, {"storeName": 1, "operations": 2,
                                                      "metadata": 3}),
        (runtime_pb2.TransactionalStateOperation, {"operationType": 1, "request": 2}),
        (appcallback_pb2.TopicEventRequest, {"id": 1, "source": 2, "type": 3, "spec_version": 4,
                                             "data_content_type": 5, "topic": 6, "data": 7,
                                             "pubsub_name": 8, "metadata": 10}),
        (runtime_pb2.GetNextIdResponse, {"next_id": 1}),
        (runtime_pb2.TryLockRequest, {"store_name": 1, "resource_id": 2, "lock_owner": 3,
                                      "expire": 4}),
        (runtime_pb2.SubscribeTopicEventsRequestInitial, {"pubsub_name": 1, "topic": 2,
                                                          "metadata": 3,
                                                          "dead_letter_topic": 4}),
    ],
)
def test_field_numbers_match_layotto(message: type[Message], fields: dict[str, int]) -> None:
    assert {f.name: f.number for f in message.DESCRIPTOR.fields} == fields


def test_enums_and_oneofs_match_layotto() -> None:
    assert dict(runtime_pb2.UnlockResponse.Status.items()) == {
        "SUCCESS": 0, "LOCK_UNEXIST": 1, "LOCK_BELONG_TO_OTHERS": 2, "INTERNAL_ERROR": 3}
    assert dict(runtime_pb2.SequencerOptions.AutoIncrement.items()) == {"WEAK": 0, "STRONG": 1}
    assert dict(appcallback_pb2.TopicEventResponse.TopicEventResponseStatus.items()) == {
        "SUCCESS": 0, "RETRY": 1, "DROP": 2}
    oneof = runtime_pb2.SubscribeTopicEventsRequest.DESCRIPTOR.oneofs_by_name[
        "subscribe_topic_events_request_type"]
    assert [(f.name, f.number) for f in oneof.fields] == [("initial_request", 1),
                                                         ("event_processed", 2)]
    next_id = runtime_pb2.GetNextIdResponse.DESCRIPTOR.fields_by_name["next_id"]
    assert next_id.type == FieldDescriptor.TYPE_INT64


def test_cryption_service_is_layottos() -> None:
    """Names, numbers and types as in Layotto's cryption.proto at f9681450."""
    from pylotto.proto.layotto import cryption_pb2

    service = cryption_pb2.DESCRIPTOR.services_by_name["CryptionService"]
    assert service.full_name == "spec.proto.extension.v1.cryption.CryptionService"
    assert {m.name: (m.input_type.name, m.output_type.name) for m in service.methods} == {
        "Encrypt": ("EncryptRequest", "EncryptResponse"),
        "Decrypt": ("DecryptRequest", "DecryptResponse")}
    shapes = {name: [(f.name, f.number, f.type) for f in desc.fields]
              for name, desc in cryption_pb2.DESCRIPTOR.message_types_by_name.items()}
    s, b = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES
    answer = [("key_id", 2, s), ("key_version_id", 3, s), ("request_id", 4, s)]
    assert shapes == {
        "EncryptRequest": [("component_name", 1, s), ("plain_text", 2, b), ("key_id", 3, s)],
        "EncryptResponse": [("cipher_text", 1, b), *answer],
        "DecryptRequest": [("component_name", 1, s), ("cipher_text", 2, b)],
        "DecryptResponse": [("plain_text", 1, b), *answer]}


def test_lifecycle_service_is_layottos() -> None:
    """Names, numbers and types as in Layotto's lifecycle.proto at f9681450."""
    service = lifecycle_pb2.DESCRIPTOR.services_by_name["Lifecycle"]
    assert service.full_name == "spec.proto.runtime.v1.Lifecycle"
    assert {m.name: (m.input_type.full_name, m.output_type.full_name, m.client_streaming,
                     m.server_streaming) for m in service.methods} == {
        "ApplyConfiguration": ("spec.proto.runtime.v1.DynamicConfiguration",
                               "spec.proto.runtime.v1.ApplyConfigurationResponse", False, False)}
    s, m = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE
    shapes = {name: [(f.name, f.number, f.type) for f in desc.fields]
              for name, desc in lifecycle_pb2.DESCRIPTOR.message_types_by_name.items()}
    assert shapes == {
        "DynamicConfiguration": [("component_config", 1, m)],
        "ApplyConfigurationResponse": [],
        "ComponentConfig": [("kind", 1, s), ("name", 2, s), ("metadata", 3, m)]}
    metadata = lifecycle_pb2.ComponentConfig.DESCRIPTOR.fields_by_name["metadata"]
    assert metadata.message_type.GetOptions().map_entry
    assert [(f.name, f.type) for f in metadata.message_type.fields] == [("key", s), ("value", s)]


LAYOTTO_OSS_SHAPE = "bd7635f7c19df6f1efc09cdec89a1689fdc40d7e219d43b6a0b891210be6f375"
"""sha256 of the shape of Layotto's spec/proto/extension/v1/s3/oss.proto at f9681450 (its
messages' fields: name, number, type, repeated, message type; its service's methods: name,
input, output, streaming both ways), computed by :func:`_shape` from that proto compiled."""


def _shape(module: Any) -> str:
    import hashlib
    import json

    d = module.DESCRIPTOR
    messages = sorted(
        (name, [(f.name, f.number, f.type, f.is_repeated,
                 f.message_type.name if f.message_type else "") for f in desc.fields])
        for name, desc in d.message_types_by_name.items())
    service = next(iter(d.services_by_name.values()))
    methods = [(m.name, m.input_type.name, m.output_type.name, m.client_streaming,
                m.server_streaming) for m in service.methods]
    return hashlib.sha256(json.dumps([messages, methods]).encode()).hexdigest()


def test_object_storage_service_is_layottos() -> None:
    from pylotto.proto.layotto import oss_pb2

    service = oss_pb2.DESCRIPTOR.services_by_name["ObjectStorageService"]
    assert service.full_name == "spec.proto.extension.v1.s3.ObjectStorageService"
    assert len(service.methods) == 26
    streams = {m.name: (m.client_streaming, m.server_streaming) for m in service.methods
               if m.client_streaming or m.server_streaming}
    assert streams == {"PutObject": (True, False), "GetObject": (False, True),
                       "UploadPart": (True, False), "AppendObject": (True, False)}
    assert _shape(oss_pb2) == LAYOTTO_OSS_SHAPE
