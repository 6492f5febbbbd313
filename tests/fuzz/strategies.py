"""Hypothesis strategies for hostile input: protobuf requests built from the message
descriptors, JSON documents and raw bytes.

The values lean on what has broken sidecars before: names of the configured components (so a
call gets past the lookup and into the component), empty and huge strings, NUL and path
separators in keys, TTLs past every store's range, JSON nested 100,000 deep, bytes that are not
UTF-8, lone surrogate escapes, numbers Python cannot hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

COMPONENT_NAMES = ("in-memory", "sqlite", "local", "local.env", "quick_start_demo", "web", "nope",
                   "")
"""The embedded default components' names (and two that are not configured)."""
CONFIGURED = ("in-memory", "in-memory", "in-memory", "sqlite", "local", "local.env",
              "quick_start_demo", "web")
"""Configured names, weighted by how many building blocks have a component of that name."""

INT_BOUNDS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}

DEEP_JSON = (b"[" * 100_000, b"{\"a\":" * 50_000, b"[" * 200 + b"]" * 200,
             b"[" * 100_000 + b"]" * 100_000)
HOSTILE_BYTES = (
    b"", b"\xff\xfe\xfd", b"\xc3\x28", b'"\\ud800"', b'{"a":"\\udfff"}', b"[NaN]", b"1e999",
    b"1" * 5000, b"\xef\xbb\xbf{}", b"\x00", b"{", b'{"a":', b"null", b"[]", b"{}",
    b'{"specversion":"1.0","data":"\\ud800"}', b'{"data_base64":"!!"}',
    b'{"filter":{"AND":[]},"sort":[],"page":{"limit":-1}}', b'{"page":{"token":"%%"}}',
    *DEEP_JSON,
)
HOSTILE_TEXT = (
    "", " ", "a\x00b", "../../etc/passwd", "/etc/passwd", "a||b", "||", "k" * 10_000,
    "ключ", "🙂", "%s%n", "\r\nX-Injected: 1", "*", "..", ".", "a/../../b", "NUL\x00",
    "253402300799", "9" * 19, "9" * 400, "-1", "0", "2147483648", "1.5", "soon",
)
TTL_VALUES = ("253402300799", "9999999999999999999", "9" * 400, "-" + "9" * 30, "999999999999",
              "2147483647", "2147483648", "-1", "0", "1", "1.5", "x", "", "١٢", " 5 ")
METADATA_KEYS = ("ttlInSeconds", "rawPayload", "contentType", "partitionKey", "queryIndexName",
                 "cloudevent.id", "cloudevent.type", "traceparent", "priority", "metadata.x")


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(COMPONENT_NAMES),
        st.sampled_from(HOSTILE_TEXT),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=24),
    )


def json_documents(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                        st.floats(allow_nan=False, allow_infinity=False), hostile_text())
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(hostile_text(), inner, max_size=4)),
        max_leaves=max_leaves)


def hostile_bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from(DEEP_JSON),
        st.sampled_from(HOSTILE_BYTES),
        json_documents().map(lambda doc: json.dumps(doc).encode()),
        st.binary(max_size=48),
    )


def metadata_maps() -> st.SearchStrategy[dict[str, str]]:
    key = st.one_of(st.sampled_from(METADATA_KEYS), hostile_text())
    value = st.one_of(st.sampled_from(TTL_VALUES), hostile_text())
    return st.one_of(
        st.just({}),
        st.fixed_dictionaries({"ttlInSeconds": st.sampled_from(TTL_VALUES)}),
        st.dictionaries(key, value, max_size=3),
    )


CONTENT_TYPES = ("application/json", "application/cloudevents+json", "text/plain",
                 "application/octet-stream", "", "text/plain; charset=evil", "application/xml")
SIMPLE_NAMES = ("k", "orders", "a-b", "key1", "topic")


def _weighted(likely: st.SearchStrategy[Any], other: st.SearchStrategy[Any]
              ) -> st.SearchStrategy[Any]:
    """``likely`` three times in four: a request gets past its first check more often."""
    return st.one_of(likely, likely, likely, other)


def _string(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    """A string by what the field's name says it holds."""
    name = field.name.lower()
    if name.endswith("content_type"):
        return _weighted(st.sampled_from(CONTENT_TYPES), hostile_text())
    if name == "query":
        return _weighted(hostile_bytes().map(lambda raw: raw.decode("utf-8", "replace")),
                         hostile_text())
    if name.endswith("name") or name in ("store", "component", "pubsub"):
        return _weighted(st.sampled_from(CONFIGURED), hostile_text())
    if name in ("key", "topic", "id", "resource_id", "lock_owner", "app_id"):
        return _weighted(st.sampled_from(SIMPLE_NAMES), hostile_text())
    return hostile_text()


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _string(field)
    if kind == FieldDescriptor.TYPE_BYTES:
        return hostile_bytes()
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=64 if kind == FieldDescriptor.TYPE_DOUBLE else 32)
    if kind == FieldDescriptor.TYPE_ENUM:
        low, high = INT_BOUNDS[FieldDescriptor.TYPE_INT32]
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.sampled_from((low, high, 99)))
    low, high = INT_BOUNDS[kind]
    return st.one_of(st.sampled_from((low, high, 0, 1, -1 if low < 0 else 2)),
                     st.integers(low, high))


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``'s type, every field set or left out at random, nested
    messages down to three levels."""
    cls = GetMessageClass(descriptor)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        value = _field(field, depth)
        if value is not None:
            fields[field.name] = st.one_of(st.none(), value)

    def build(values: Mapping[str, Any]) -> Message:
        message = cls()
        for name, value in values.items():
            if value is None:
                continue
            _assign(message, descriptor.fields_by_name[name], value)
        return message

    return st.fixed_dictionaries(fields).map(build)


def _field(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        if (key_field.type == FieldDescriptor.TYPE_STRING
                and value_field.type == FieldDescriptor.TYPE_STRING):
            return metadata_maps()
        value = _single(value_field, depth + 1)
        if value is None:
            return None
        return st.dictionaries(_scalar(key_field), value, max_size=2)
    single = _single(field, depth)
    if single is None:
        return None
    if field.is_repeated:
        return st.lists(single, max_size=3)
    return single


def _single(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    if field.message_type is None:
        return _scalar(field)
    if depth >= 3:
        return None
    if field.message_type.full_name == "google.protobuf.Any":
        return st.builds(_any, st.sampled_from(("", "type.googleapis.com/x", "bogus")),
                         hostile_bytes())
    return st.deferred(lambda: messages(field.message_type, depth + 1))


def _any(type_url: str, value: bytes) -> Message:
    from google.protobuf import any_pb2

    return any_pb2.Any(type_url=type_url, value=value)


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    target = getattr(message, field.name)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        for key, item in value.items():
            if value_field.message_type is None:
                target[key] = item
            else:
                target[key].CopyFrom(item)
    elif field.is_repeated:
        if field.message_type is None:
            target.extend(value)
        else:
            for item in value:
                target.add().CopyFrom(item)
    elif field.message_type is not None:
        target.CopyFrom(value)
    else:
        setattr(message, field.name, value)


def mangled(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` cut short, with a byte flipped, or with junk after it: what a protobuf parser
    must refuse (or read as another message) without failing the call."""
    cuts = st.integers(0, max(0, len(data) - 1)).map(lambda n: data[:n])
    flips = st.tuples(st.integers(0, max(0, len(data) - 1)), st.integers(1, 255)).map(
        lambda p: data[:p[0]] + bytes([(data[p[0]] ^ p[1]) if data else p[1]]) + data[p[0] + 1:])
    return st.one_of(cuts, flips, st.binary(min_size=1, max_size=8).map(lambda junk: data + junk))
