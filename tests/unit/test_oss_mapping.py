"""The object storage servicer's mapping between Layotto's proto and S3's names and shapes
(facades/layotto/oss.py), and the S3 driver's regrouping of a streamed body into parts."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator

from pylotto.components._backends.s3_client import pieces
from pylotto.facades.layotto.oss import canned_acl, filled, s3_name, s3_params
from pylotto.proto.layotto import oss_pb2


def test_s3_names() -> None:
    assert [s3_name(n) for n in ("version_id", "sse_kms_key_id", "sse_customer_key_md5",
                                 "etag", "maxKeys", "grant_read_acp", "id", "sse_kms_keyId",
                                 "acl", "content_md5")] == [
        "VersionId", "SSEKMSKeyId", "SSECustomerKeyMD5", "ETag", "MaxKeys", "GrantReadACP",
        "ID", "SSEKMSKeyId", "ACL", "ContentMD5"]


def test_request_fields_set_only_nested_and_skipped() -> None:
    request = oss_pb2.DeleteObjectsInput(store_name="s", bucket="b", delete=oss_pb2.Delete(
        objects=[oss_pb2.ObjectIdentifier(key="k", version_id="v")], quiet=True))
    assert s3_params(request) == {"Bucket": "b", "Delete": {
        "Objects": [{"Key": "k", "VersionId": "v"}], "Quiet": True}}
    head = oss_pb2.HeadObjectInput(store_name="s", bucket="b", key="k", with_details=True,
                                   if_modified_since=1700000000)
    assert s3_params(head) == {"Bucket": "b", "Key": "k", "IfModifiedSince": 1700000000}


def test_answers_filled_with_times_prefixes_and_nested_lists() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    out = filled(oss_pb2.ListObjectsOutput(), {
        "Name": "b", "IsTruncated": True, "MaxKeys": 2, "CommonPrefixes": [{"Prefix": "p/"}],
        "Contents": [{"Key": "k", "ETag": '"e"', "Size": 3, "LastModified": when,
                      "Owner": {"DisplayName": "me", "ID": "42"}, "Unknown": 1}]})
    assert (out.name, out.is_truncated, out.max_keys, list(out.common_prefixes)) == (
        "b", True, 2, ["p/"])
    [item] = out.contents
    assert (item.key, item.etag, item.size, item.last_modified, item.owner.id) == (
        "k", '"e"', 3, int(when.timestamp()), "42")
    got = filled(oss_pb2.GetObjectOutput(), {"Expires": when, "Metadata": {"a": "b"}})
    assert (got.expires, dict(got.metadata)) == ("Fri, 02 Jan 2026 03:04:05 GMT", {"a": "b"})
    parts = filled(oss_pb2.ListPartsOutput(), {"NextPartNumberMarker": 3, "MaxParts": 1000})
    assert (parts.next_part_number_marker, parts.max_parts) == ("3", 1000)


def test_canned_acl_from_grants() -> None:
    owner = {"Grantee": {"ID": "o", "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}
    everyone = "http://acs.amazonaws.com/groups/global/AllUsers"
    assert canned_acl([owner], "o") == "private"
    assert canned_acl([owner, {"Grantee": {"URI": everyone}, "Permission": "READ"}], "o") \
        == "public-read"
    assert canned_acl([owner, {"Grantee": {"URI": everyone}, "Permission": "READ"},
                       {"Grantee": {"URI": everyone}, "Permission": "WRITE"}], "o") \
        == "public-read-write"
    assert canned_acl([owner, {"Grantee": {"ID": "x"}, "Permission": "READ"}], "o") == ""


def test_pieces_regroup_a_stream() -> None:
    async def body() -> AsyncIterator[bytes]:
        for chunk in (b"ab", b"cdefg", b"", b"h", b"ijklmnop"):
            yield chunk

    async def collect() -> list[bytes]:
        return [piece async for piece in pieces(body(), 4)]

    assert asyncio.run(collect()) == [b"abcd", b"efgh", b"ijkl", b"mnop"]
