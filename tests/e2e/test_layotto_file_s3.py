"""Layotto's file API (GetFile, PutFile, ListFile, DelFile, GetFileMeta) against the real
``pylotto run -c`` with a Layotto JSON config whose ``file`` section is configs/config_file.json's
shape (type ``minio``, metadata a list of endpoints; and ``aws.s3``), pointed at a real
S3-compatible server (moto's standalone server on a free port): a 100 MB file streamed both
ways with the sidecar's RSS watched, list paging, metadata and Layotto's error answers."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import grpc
import psutil
import pytest

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.e2e.test_layotto_config_styles import _layotto_config, _start, _stop
from tests.support.ports import free_port
from tests.support.s3_server import S3Server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BUCKET = "layotto"
MiB = 1024 * 1024


@dataclass
class Sidecar:
    stub: runtime_pb2_grpc.RuntimeStub
    pid: int


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    tmp_path = tmp_path_factory.mktemp("file-s3")
    with S3Server(tmp_path / "moto.log") as s3:
        s3.make_bucket(BUCKET)
        address = f"127.0.0.1:{free_port()}"
        endpoint = {"endpoint": f"127.0.0.1:{s3.port}", "accessKeyID": "layotto",
                    "accessKeySecret": "layotto_secret", "SSL": False, "region": "us-east-1"}
        config = _layotto_config(address, grpc_config={"file": {
            "file_demo": {"type": "minio", "metadata": [endpoint]},
            "aws": {"type": "aws.s3", "metadata": [{**endpoint, "endpoint": s3.endpoint}]},
        }})
        proc = _start(tmp_path, config)
        channel = grpc.insecure_channel(address)
        try:
            grpc.channel_ready_future(channel).result(timeout=60)
            yield Sidecar(runtime_pb2_grpc.RuntimeStub(channel), proc.pid)
        finally:
            channel.close()
            code, output = _stop(proc)
            (tmp_path / "sidecar.log").write_text(output)
            assert code == 0, output
            assert "Traceback" not in output, output


def _put(stub: runtime_pb2_grpc.RuntimeStub, name: str, chunks: Iterator[bytes] | list[bytes],
         store: str = "file_demo") -> None:
    def messages() -> Iterator[runtime_pb2.PutFileRequest]:
        first = True
        for chunk in chunks:
            if first:
                yield runtime_pb2.PutFileRequest(store_name=store, name=name, data=chunk)
                first = False
            else:
                yield runtime_pb2.PutFileRequest(data=chunk)
    stub.PutFile(messages(), timeout=240)


def _request(name: str, store: str = "file_demo") -> runtime_pb2.FileRequest:
    return runtime_pb2.FileRequest(store_name=store, name=name)


def _code(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as refused:
        call()  # type: ignore[operator]
    error = refused.value
    assert isinstance(error, grpc.Call)
    return error.code(), error.details() or ""


def test_put_get_stat_list_delete(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    _put(stub, f"{BUCKET}/docs/a.txt", [b"hello ", b"file ", b"api"])
    replies = list(stub.GetFile(runtime_pb2.GetFileRequest(
        store_name="file_demo", name=f"{BUCKET}/docs/a.txt"), timeout=30))
    assert b"".join(r.data for r in replies) == b"hello file api"
    meta = stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(
        request=_request(f"{BUCKET}/docs/a.txt")), timeout=30)
    assert meta.size == 14 and datetime.fromisoformat(meta.last_modified).year >= 2024
    assert list(meta.response.metadata["ETag"].value) == [
        f'"{hashlib.md5(b"hello file api").hexdigest()}"']
    # the aws.s3 store reaches the same server: the file is there too
    assert stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(
        request=_request(f"{BUCKET}/docs/a.txt", "aws")), timeout=30).size == 14
    stub.DelFile(runtime_pb2.DelFileRequest(request=_request(f"{BUCKET}/docs/a.txt")),
                 timeout=30)
    assert _code(lambda: stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(
        request=_request(f"{BUCKET}/docs/a.txt")), timeout=30))[0] == grpc.StatusCode.NOT_FOUND


def test_list_pages_with_marker(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    keys = [f"page/{i:02d}.txt" for i in range(5)]
    for key in keys:
        _put(stub, f"{BUCKET}/{key}", [b"12345"])
    seen: list[str] = []
    marker, pages = "", 0
    while True:
        reply = stub.ListFile(runtime_pb2.ListFileRequest(
            request=_request(f"{BUCKET}/page/"), page_size=2, marker=marker), timeout=30)
        pages += 1
        seen += [f.file_name for f in reply.files]
        assert all(f.size == 5 for f in reply.files)
        if not reply.is_truncated:
            break
        assert reply.marker == reply.files[-1].file_name
        marker = reply.marker
    assert (seen, pages) == (keys, 3)


def test_layottos_error_answers(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    code, text = _code(lambda: list(stub.GetFile(runtime_pb2.GetFileRequest(
        store_name="nope", name=f"{BUCKET}/x"), timeout=30)))
    assert (code, text) == (grpc.StatusCode.INVALID_ARGUMENT, "not supported store type: nope")
    code, text = _code(lambda: stub.ListFile(runtime_pb2.ListFileRequest(
        request=_request("x", "nope")), timeout=30))
    assert (code, text) == (grpc.StatusCode.INVALID_ARGUMENT, "not support store type: nope")
    assert _code(lambda: stub.ListFile(runtime_pb2.ListFileRequest(), timeout=30)) == (
        grpc.StatusCode.INVALID_ARGUMENT, "request can't be nil")
    code, _ = _code(lambda: list(stub.GetFile(runtime_pb2.GetFileRequest(
        store_name="file_demo", name=f"{BUCKET}/absent"), timeout=30)))
    assert code == grpc.StatusCode.NOT_FOUND
    code, text = _code(lambda: stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(
        request=_request("no-slash")), timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "<bucket>/<key>" in text


def _rss_watch(pid: int, stop: threading.Event, peak: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        stop.wait(0.05)


def test_100_mb_streamed_both_ways_with_bounded_rss(sidecar: Sidecar) -> None:
    stub = sidecar.stub
    _put(stub, f"{BUCKET}/warm-up", [b"x" * MiB] * 10)  # the paths' first-use allocations
    b"".join(r.data for r in stub.GetFile(runtime_pb2.GetFileRequest(
        store_name="file_demo", name=f"{BUCKET}/warm-up"), timeout=60))
    base = psutil.Process(sidecar.pid).memory_info().rss
    piece = bytes(range(256)) * 4096  # 1 MiB
    sent = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for i in range(100):
            chunk = piece[i:] + piece[:i]
            sent.update(chunk)
            yield chunk

    stop, peak = threading.Event(), [base]
    watcher = threading.Thread(target=_rss_watch, args=(sidecar.pid, stop, peak))
    watcher.start()
    try:
        _put(stub, f"{BUCKET}/big/100mb.bin", chunks())
        upload_peak = peak[0]
        received = hashlib.sha256()
        size = 0
        for reply in stub.GetFile(runtime_pb2.GetFileRequest(
                store_name="file_demo", name=f"{BUCKET}/big/100mb.bin"), timeout=240):
            assert len(reply.data) <= 102_400
            received.update(reply.data)
            size += len(reply.data)
    finally:
        stop.set()
        watcher.join()
    assert size == 100 * MiB and received.hexdigest() == sent.hexdigest()
    meta = stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(
        request=_request(f"{BUCKET}/big/100mb.bin")), timeout=30)
    assert meta.size == 100 * MiB
    assert meta.response.metadata["ETag"].value[0].endswith('-20"')  # 5 MiB parts
    growth = (peak[0] - base) / MiB
    print(f"sidecar RSS: base {base / MiB:.1f} MiB, peak during upload "
          f"{(upload_peak - base) / MiB:.1f} MiB above, during both {growth:.1f} MiB above")
    assert growth < 60, f"sidecar RSS grew {growth:.1f} MiB for a 100 MB file"
