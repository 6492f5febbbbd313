"""Layotto's ``spec.proto.extension.v1.s3.ObjectStorageService`` against the real ``pylotto run
-c`` with a Layotto JSON config whose ``oss`` section points pylotto's S3 component (types
``aws.oss`` and ``minio``) at a real S3-compatible server (moto's standalone server on a free
port), through a client generated from pylotto's oss.proto: streamed put/get, a 100 MB object
with the sidecar's RSS watched, list paging, multipart, tagging, ACLs, presigned URLs fetched
over HTTP, and the refusals."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import psutil
import pytest

from pylotto.proto.layotto import oss_pb2, oss_pb2_grpc
from tests.e2e.test_layotto_config_styles import _layotto_config, _start, _stop
from tests.support.ports import free_port
from tests.support.s3_server import S3Server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BUCKET = "layotto"
MiB = 1024 * 1024


@dataclass
class Sidecar:
    stub: oss_pb2_grpc.ObjectStorageServiceStub
    pid: int
    s3: S3Server


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    tmp_path = tmp_path_factory.mktemp("oss")
    with S3Server(tmp_path / "moto.log") as s3:
        s3.make_bucket(BUCKET)
        s3.make_bucket("other")
        address = f"127.0.0.1:{free_port()}"
        keys = {"endpoint": s3.endpoint, "accessKeyID": "testing",
                "accessKeySecret": "testing", "region": "us-east-1"}
        config = _layotto_config(address, grpc_config={"oss": {
            "oss_demo": {"type": "aws.oss", "metadata": {"basic_config": keys}},
            "minio_demo": {"type": "minio", "metadata": {**keys, "bucket": "other"}},
            "down": {"type": "aws.oss", "metadata": {
                **keys, "endpoint": f"http://127.0.0.1:{free_port()}"}},
        }})
        proc = _start(tmp_path, config)
        channel = grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", 8 * MiB)])
        try:
            grpc.channel_ready_future(channel).result(timeout=60)
            yield Sidecar(oss_pb2_grpc.ObjectStorageServiceStub(channel), proc.pid, s3)
        finally:
            channel.close()
            code, output = _stop(proc)
            assert code == 0, output
            assert "Traceback" not in output, output  # refusals are answers, not crashes
            (tmp_path / "sidecar.log").write_text(output)


def _put(stub: oss_pb2_grpc.ObjectStorageServiceStub, key: str,
         chunks: Iterator[bytes] | list[bytes], store: str = "oss_demo", bucket: str = BUCKET,
         **fields: Any) -> oss_pb2.PutObjectOutput:
    def messages() -> Iterator[oss_pb2.PutObjectInput]:
        first = True
        for chunk in chunks:
            if first:
                yield oss_pb2.PutObjectInput(store_name=store, bucket=bucket, key=key, body=chunk,
                                             **fields)
                first = False
            else:
                yield oss_pb2.PutObjectInput(body=chunk)
    reply: oss_pb2.PutObjectOutput = stub.PutObject(messages(), timeout=240)
    return reply


def _get(stub: oss_pb2_grpc.ObjectStorageServiceStub, key: str, store: str = "oss_demo",
         bucket: str = BUCKET, **fields: Any) -> list[oss_pb2.GetObjectOutput]:
    return list(stub.GetObject(oss_pb2.GetObjectInput(store_name=store, bucket=bucket, key=key,
                                                      **fields), timeout=240))


def _refused(call: Any) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    assert isinstance(refused.value, grpc.Call)
    return refused.value


def test_put_get_round_trip_with_metadata(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    put = _put(stub, "dir/hello.txt", [b"hello ", b"object ", b"storage"],
               meta={"owner": "alice"}, tagging={"env": "test"}, cache_control="no-cache")
    assert put.etag == f'"{hashlib.md5(b"hello object storage").hexdigest()}"'
    [message] = _get(stub, "dir/hello.txt")
    assert message.body == b"hello object storage"
    assert (message.content_length, message.etag, message.cache_control) == (
        20, put.etag, "no-cache")
    assert message.metadata["owner"] == "alice"
    assert message.last_modified > 1_600_000_000
    assert message.tag_count == 1
    ranged = _get(stub, "dir/hello.txt", start=6, end=11)
    assert b"".join(m.body for m in ranged) == b"object"
    assert ranged[0].content_range == "bytes 6-11/20"


def test_empty_object(sidecar: Sidecar) -> None:
    _put(sidecar.stub, "empty", [b""])
    [message] = _get(sidecar.stub, "empty")
    assert (message.body, message.content_length) == (b"", 0)


def _rss_watch(pid: int, stop: threading.Event, peak: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        stop.wait(0.05)


def test_100_mb_streamed_both_ways_with_bounded_rss(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    _put(stub, "warm-up", [b"x" * MiB] * 10)  # the upload path's first-use allocations
    b"".join(m.body for m in _get(stub, "warm-up"))
    base = psutil.Process(sidecar.pid).memory_info().rss
    piece = bytes(range(256)) * 4096  # 1 MiB
    digest = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for i in range(100):
            chunk = piece[i:] + piece[:i]
            digest.update(chunk)
            yield chunk

    stop, peak = threading.Event(), [base]
    watcher = threading.Thread(target=_rss_watch, args=(sidecar.pid, stop, peak))
    watcher.start()
    try:
        put = _put(stub, "big/100mb.bin", chunks())
        upload_peak = peak[0]
        received = hashlib.sha256()
        count = size = 0
        for message in stub.GetObject(oss_pb2.GetObjectInput(
                store_name="oss_demo", bucket=BUCKET, key="big/100mb.bin"), timeout=240):
            received.update(message.body)
            size += len(message.body)
            count += 1
            assert message.content_length == 100 * MiB
    finally:
        stop.set()
        watcher.join()
    assert put.etag.endswith('-20"'), put.etag  # a multipart upload of 5 MiB parts
    assert size == 100 * MiB and received.hexdigest() == digest.hexdigest()
    assert count == 100  # 1 MiB per message, as Layotto's servicer
    growth = (peak[0] - base) / MiB
    print(f"sidecar RSS: base {base / MiB:.1f} MiB, peak during upload "
          f"{(upload_peak - base) / MiB:.1f} MiB above, during both {growth:.1f} MiB above")
    assert growth < 60, f"sidecar RSS grew {growth:.1f} MiB for a 100 MB object"


def test_list_paging_with_marker_and_max_keys(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    keys = [f"page/{i:02d}" for i in range(7)]
    for key in keys:
        _put(stub, key, [key.encode()])
    seen: list[str] = []
    marker, pages = "", 0
    while True:
        page = stub.ListObjects(oss_pb2.ListObjectsInput(
            store_name="oss_demo", bucket=BUCKET, prefix="page/", maxKeys=3, marker=marker),
            timeout=30)
        pages += 1
        seen += [o.key for o in page.contents]
        assert all(o.size == 7 and o.etag and o.last_modified for o in page.contents)
        if not page.is_truncated:
            break
        assert page.next_marker == page.contents[-1].key
        marker = page.next_marker
    assert (seen, pages) == (keys, 3)
    grouped = stub.ListObjects(oss_pb2.ListObjectsInput(
        store_name="oss_demo", bucket=BUCKET, delimiter="/"), timeout=30)
    assert "page/" in grouped.common_prefixes and "big/" in grouped.common_prefixes


def test_head_exists_copy_delete(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    _put(stub, "src.txt", [b"copy me"], meta={"colour": "blue"})
    head = stub.HeadObject(oss_pb2.HeadObjectInput(
        store_name="oss_demo", bucket=BUCKET, key="src.txt"), timeout=30)
    assert dict(head.result_metadata) == {"colour": "blue"}
    detailed = stub.HeadObject(oss_pb2.HeadObjectInput(
        store_name="oss_demo", bucket=BUCKET, key="src.txt", with_details=True), timeout=30)
    assert detailed.result_metadata["ContentLength"] == "7"
    exists = stub.IsObjectExist(oss_pb2.IsObjectExistInput(
        store_name="oss_demo", bucket=BUCKET, key="src.txt"), timeout=30)
    missing = stub.IsObjectExist(oss_pb2.IsObjectExistInput(
        store_name="oss_demo", bucket=BUCKET, key="no-such"), timeout=30)
    assert (exists.file_exist, missing.file_exist) == (True, False)
    copied = stub.CopyObject(oss_pb2.CopyObjectInput(
        store_name="oss_demo", bucket="other", key="dst.txt",
        copy_source=oss_pb2.CopySource(copy_source_bucket=BUCKET, copy_source_key="src.txt")),
        timeout=30)
    assert copied.copy_object_result.etag and copied.copy_object_result.last_modified
    assert b"".join(m.body for m in _get(stub, "dst.txt", bucket="other")) == b"copy me"
    stub.DeleteObject(oss_pb2.DeleteObjectInput(
        store_name="oss_demo", bucket=BUCKET, key="src.txt"), timeout=30)
    gone = stub.IsObjectExist(oss_pb2.IsObjectExistInput(
        store_name="oss_demo", bucket=BUCKET, key="src.txt"), timeout=30)
    assert not gone.file_exist
    for key in ("a", "b"):
        _put(stub, f"many/{key}", [b"."])
    deleted = stub.DeleteObjects(oss_pb2.DeleteObjectsInput(
        store_name="oss_demo", bucket=BUCKET, delete=oss_pb2.Delete(objects=[
            oss_pb2.ObjectIdentifier(key="many/a"), oss_pb2.ObjectIdentifier(key="many/b")])),
        timeout=30)
    assert sorted(d.key for d in deleted.deleted) == ["many/a", "many/b"]
    left = stub.ListObjects(oss_pb2.ListObjectsInput(
        store_name="oss_demo", bucket=BUCKET, prefix="many/"), timeout=30)
    assert list(left.contents) == []


def _part(stub: oss_pb2_grpc.ObjectStorageServiceStub, key: str, upload_id: str, number: int,
          chunks: list[bytes]) -> oss_pb2.UploadPartOutput:
    def messages() -> Iterator[oss_pb2.UploadPartInput]:
        yield oss_pb2.UploadPartInput(store_name="oss_demo", bucket=BUCKET, key=key,
                                      upload_id=upload_id, part_number=number,
                                      content_length=sum(map(len, chunks)), body=chunks[0])
        for chunk in chunks[1:]:
            yield oss_pb2.UploadPartInput(body=chunk)
    reply: oss_pb2.UploadPartOutput = stub.UploadPart(messages(), timeout=120)
    return reply


def test_multipart_upload(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    key = "multi/object.bin"
    created = stub.CreateMultipartUpload(oss_pb2.CreateMultipartUploadInput(
        store_name="oss_demo", bucket=BUCKET, key=key, meta_data={"kind": "multi"},
        content_type="application/x-test"), timeout=30)
    assert created.upload_id and (created.bucket, created.key) == (BUCKET, key)
    first = [bytes([65 + i]) * MiB for i in range(10)]  # 10 MiB in 10 messages: spooled
    one = _part(stub, key, created.upload_id, 1, first)
    _put(stub, "multi/source", [b"0123456789" * 100])
    two = stub.UploadPartCopy(oss_pb2.UploadPartCopyInput(
        store_name="oss_demo", bucket=BUCKET, key=key, upload_id=created.upload_id,
        part_number=2, copy_source=oss_pb2.CopySource(copy_source_bucket=BUCKET,
                                                      copy_source_key="multi/source"),
        start_position=10, part_size=20), timeout=30)
    parts = stub.ListParts(oss_pb2.ListPartsInput(
        store_name="oss_demo", bucket=BUCKET, key=key, upload_id=created.upload_id), timeout=30)
    assert [(p.part_number, p.size, p.etag) for p in parts.parts] == [
        (1, 10 * MiB, one.etag), (2, 20, two.copy_part_result.etag)]
    uploads = stub.ListMultipartUploads(oss_pb2.ListMultipartUploadsInput(
        store_name="oss_demo", bucket=BUCKET, prefix="multi/"), timeout=30)
    assert [(u.key, u.upload_id) for u in uploads.uploads] == [(key, created.upload_id)]
    done = stub.CompleteMultipartUpload(oss_pb2.CompleteMultipartUploadInput(
        store_name="oss_demo", bucket=BUCKET, key=key, upload_id=created.upload_id,
        multipart_upload=oss_pb2.CompletedMultipartUpload(parts=[
            oss_pb2.CompletedPart(part_number=1, etag=one.etag),
            oss_pb2.CompletedPart(part_number=2, etag=two.copy_part_result.etag)])),
        timeout=30)
    assert done.etag.endswith('-2"') and done.key == key
    messages = _get(stub, key)
    body = b"".join(m.body for m in messages)
    assert body == b"".join(first) + b"0123456789" * 2
    assert (messages[0].content_type, messages[0].metadata["kind"]) == (
        "application/x-test", "multi")
    aborted = stub.CreateMultipartUpload(oss_pb2.CreateMultipartUploadInput(
        store_name="oss_demo", bucket=BUCKET, key="multi/aborted"), timeout=30)
    stub.AbortMultipartUpload(oss_pb2.AbortMultipartUploadInput(
        store_name="oss_demo", bucket=BUCKET, key="multi/aborted",
        upload_id=aborted.upload_id), timeout=30)
    left = stub.ListMultipartUploads(oss_pb2.ListMultipartUploadsInput(
        store_name="oss_demo", bucket=BUCKET, prefix="multi/"), timeout=30)
    assert list(left.uploads) == []


def test_tagging(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    _put(stub, "tagged", [b"t"], tagging={"a": "1"})
    got = stub.GetObjectTagging(oss_pb2.GetObjectTaggingInput(
        store_name="oss_demo", bucket=BUCKET, key="tagged"), timeout=30)
    assert dict(got.tags) == {"a": "1"}
    stub.PutObjectTagging(oss_pb2.PutObjectTaggingInput(
        store_name="oss_demo", bucket=BUCKET, key="tagged", tags={"b": "2", "c": "x y"}),
        timeout=30)
    got = stub.GetObjectTagging(oss_pb2.GetObjectTaggingInput(
        store_name="oss_demo", bucket=BUCKET, key="tagged"), timeout=30)
    assert dict(got.tags) == {"b": "2", "c": "x y"}
    stub.DeleteObjectTagging(oss_pb2.DeleteObjectTaggingInput(
        store_name="oss_demo", bucket=BUCKET, key="tagged"), timeout=30)
    got = stub.GetObjectTagging(oss_pb2.GetObjectTaggingInput(
        store_name="oss_demo", bucket=BUCKET, key="tagged"), timeout=30)
    assert dict(got.tags) == {}


def test_canned_acl(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    _put(stub, "acl", [b"a"])
    got = stub.GetObjectCannedAcl(oss_pb2.GetObjectCannedAclInput(
        store_name="oss_demo", bucket=BUCKET, key="acl"), timeout=30)
    assert got.canned_acl == "private"
    stub.PutObjectCannedAcl(oss_pb2.PutObjectCannedAclInput(
        store_name="oss_demo", bucket=BUCKET, key="acl", acl="public-read"), timeout=30)
    got = stub.GetObjectCannedAcl(oss_pb2.GetObjectCannedAclInput(
        store_name="oss_demo", bucket=BUCKET, key="acl"), timeout=30)
    assert got.canned_acl == "public-read" and got.owner.id


def test_presigned_urls_fetched_over_http(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    _put(stub, "signed.txt", [b"signed body"])
    get_url = stub.SignURL(oss_pb2.SignURLInput(
        store_name="oss_demo", bucket=BUCKET, key="signed.txt", method="GET",
        expired_in_sec=300), timeout=30).signed_url
    put_url = stub.SignURL(oss_pb2.SignURLInput(
        store_name="oss_demo", bucket=BUCKET, key="uploaded.txt", method="put",
        expired_in_sec=300), timeout=30).signed_url
    assert get_url.startswith(f"{sidecar.s3.endpoint}/{BUCKET}/signed.txt?")
    assert "X-Amz-Signature=" in get_url and "X-Amz-Expires=300" in get_url
    default = stub.SignURL(oss_pb2.SignURLInput(
        store_name="oss_demo", bucket=BUCKET, key="signed.txt", method="GET"), timeout=30)
    assert "X-Amz-Expires=900" in default.signed_url

    async def fetch() -> tuple[int, bytes, int]:
        async with aiohttp.ClientSession() as session:
            async with session.get(get_url) as answer:
                got = (answer.status, await answer.read())
            async with session.put(put_url, data=b"via presigned PUT") as answer:
                return (*got, answer.status)

    status, body, put_status = asyncio.run(fetch())
    assert (status, body, put_status) == (200, b"signed body", 200)
    assert b"".join(m.body for m in _get(stub, "uploaded.txt")) == b"via presigned PUT"
    refused = _refused(lambda: stub.SignURL(oss_pb2.SignURLInput(
        store_name="oss_demo", bucket=BUCKET, key="x", method="DELETE"), timeout=30))
    assert (refused.code(), refused.details()) == (
        grpc.StatusCode.INTERNAL, "not supported method DELETE now")


def test_versions_listed(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    _put(stub, "versions/v", [b"1"])
    listed = stub.ListObjectVersions(oss_pb2.ListObjectVersionsInput(
        store_name="oss_demo", bucket=BUCKET, prefix="versions/"), timeout=30)
    assert [(v.key, v.is_latest, v.size) for v in listed.versions] == [("versions/v", True, 1)]


def test_minio_type_with_default_bucket(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    _put(stub, "defaulted", [b"in other"], store="minio_demo", bucket="")
    assert b"".join(m.body for m in _get(stub, "defaulted", store="minio_demo", bucket="")) \
        == b"in other"
    assert b"".join(m.body for m in _get(stub, "defaulted", bucket="other")) == b"in other"


def test_refusals(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    unknown = _refused(lambda: stub.HeadObject(oss_pb2.HeadObjectInput(
        store_name="nope", bucket=BUCKET, key="k"), timeout=30))
    assert (unknown.code(), unknown.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT, "not supported store type: nope")
    unknown_put = _refused(lambda: _put(stub, "k", [b"x"], store="nope"))
    assert unknown_put.code() == grpc.StatusCode.INVALID_ARGUMENT
    no_bucket = _refused(lambda: _get(stub, "k", bucket=""))
    assert no_bucket.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "bucket is required" in str(no_bucket.details())
    missing_bucket = _refused(lambda: _put(stub, "k", [b"x"], bucket="no-such-bucket"))
    assert missing_bucket.code() == grpc.StatusCode.INTERNAL
    assert "NoSuchBucket" in str(missing_bucket.details())
    missing_key = _refused(lambda: _get(stub, "no-such-key"))
    assert missing_key.code() == grpc.StatusCode.INTERNAL
    assert "NoSuchKey" in str(missing_key.details())
    append = _refused(lambda: stub.AppendObject(iter([oss_pb2.AppendObjectInput(
        store_name="oss_demo", bucket=BUCKET, key="k", body=b"x")]), timeout=30))
    assert (append.code(), append.details()) == (
        grpc.StatusCode.INTERNAL, "AppendObject method not supported on AWS")
    for call in (stub.UpdateDownloadBandwidthRateLimit, stub.UpdateUploadBandwidthRateLimit):
        limited = _refused(lambda call=call: call(oss_pb2.UpdateBandwidthRateLimitInput(
            store_name="oss_demo", average_rate_limit_in_bits_per_sec=1000), timeout=30))
        assert limited.code() == grpc.StatusCode.INTERNAL
        assert "method not supported now" in str(limited.details())
    down = _refused(lambda: stub.IsObjectExist(oss_pb2.IsObjectExistInput(
        store_name="down", bucket=BUCKET, key="k"), timeout=60))
    assert down.code() == grpc.StatusCode.UNAVAILABLE, down.details()
    restore = _refused(lambda: stub.RestoreObject(oss_pb2.RestoreObjectInput(
        store_name="oss_demo", bucket=BUCKET, key="empty",
        restore_request=oss_pb2.RestoreRequest(days=1)), timeout=30))
    assert restore.code() == grpc.StatusCode.INTERNAL  # not an archived object


def test_get_cancelled_early_leaves_the_store_usable(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    _put(stub, "cancelled", [b"c" * MiB] * 6)
    for _ in range(12):  # more than aiobotocore's pool of 10 connections, if they leaked
        stream = stub.GetObject(oss_pb2.GetObjectInput(
            store_name="oss_demo", bucket=BUCKET, key="cancelled"), timeout=60)
        assert next(stream).body == b"c" * MiB
        stream.cancel()
    assert len(b"".join(m.body for m in _get(stub, "cancelled"))) == 6 * MiB
