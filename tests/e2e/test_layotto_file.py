"""File API through the real sidecar, on the embedded ``local`` file store."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.e2e.sidecar import Sidecar

STORE = "local"


def put(stub: runtime_pb2_grpc.RuntimeStub, name: str, first: bytes, *rest: bytes) -> None:
    """PutFile: store and name in the first message only, as Layotto clients send them."""

    def messages() -> Iterator[runtime_pb2.PutFileRequest]:
        yield runtime_pb2.PutFileRequest(store_name=STORE, name=name, data=first)
        for part in rest:
            yield runtime_pb2.PutFileRequest(data=part)

    stub.PutFile(messages(), timeout=10)


def file_request(name: str, store: str = STORE) -> runtime_pb2.FileRequest:
    return runtime_pb2.FileRequest(store_name=store, name=name)


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    code: grpc.StatusCode = info.value.code()
    return code


def test_put_then_get_in_chunks_of_100_kib(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    payload = os.urandom(300 * 1024 + 5)
    put(stub, "big/blob.bin", payload[:1000], payload[1000:200_000], payload[200_000:])
    replies = list(stub.GetFile(runtime_pb2.GetFileRequest(store_name=STORE, name="big/blob.bin"),
                                timeout=10))
    assert all(len(r.data) <= 102_400 for r in replies) and len(replies) == 4
    assert b"".join(r.data for r in replies) == payload
    assert (sidecar.data_dir / "files" / "big" / "blob.bin").read_bytes() == payload


def test_list_pages_meta_and_delete(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    for i in range(5):
        put(stub, f"docs/d{i}.txt", b"x" * (i + 1))
    seen: list[str] = []
    marker = ""
    while True:
        reply = stub.ListFile(runtime_pb2.ListFileRequest(request=file_request("docs"),
                                                          page_size=2, marker=marker))
        seen += [f.file_name for f in reply.files]
        assert len(reply.files) <= 2
        if not reply.is_truncated:
            break
        marker = reply.marker
    assert seen == [f"d{i}.txt" for i in range(5)]

    meta = stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(request=file_request("docs/d2.txt")))
    assert meta.size == 3
    assert datetime.fromisoformat(meta.last_modified).year >= 2024
    assert list(meta.response.metadata["IsDir"].value) == ["false"]

    stub.DelFile(runtime_pb2.DelFileRequest(request=file_request("docs/d2.txt")))
    assert code_of(lambda: stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(
        request=file_request("docs/d2.txt")))) == grpc.StatusCode.NOT_FOUND
    reply = stub.ListFile(runtime_pb2.ListFileRequest(request=file_request("docs")))
    assert [f.file_name for f in reply.files] == ["d0.txt", "d1.txt", "d3.txt", "d4.txt"]


def test_error_codes(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    not_found = [
        lambda: list(stub.GetFile(runtime_pb2.GetFileRequest(store_name=STORE, name="missing"))),
        lambda: stub.DelFile(runtime_pb2.DelFileRequest(request=file_request("missing"))),
    ]
    for call in not_found:
        assert code_of(call) == grpc.StatusCode.NOT_FOUND
    invalid = [
        lambda: list(stub.GetFile(runtime_pb2.GetFileRequest(store_name=STORE, name="../x"))),
        lambda: list(stub.GetFile(runtime_pb2.GetFileRequest(store_name=STORE, name="/etc/hosts"))),
        lambda: put(stub, "../../escape", b"x"),
        lambda: stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(request=file_request(""))),
        lambda: stub.ListFile(runtime_pb2.ListFileRequest(request=file_request("a/../../.."))),
        lambda: stub.ListFile(runtime_pb2.ListFileRequest()),  # no nested request
        lambda: list(stub.GetFile(runtime_pb2.GetFileRequest(store_name="other", name="x"))),
        lambda: stub.DelFile(runtime_pb2.DelFileRequest(request=file_request("x", store=""))),
    ]
    for call in invalid:
        assert code_of(call) == grpc.StatusCode.INVALID_ARGUMENT
    assert not (sidecar.data_dir / "escape").exists()


def test_empty_put_stream_is_ok(sidecar: Sidecar) -> None:
    sidecar.stub().PutFile(iter(()), timeout=5)


def test_interrupted_put_leaves_no_file(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    sent_first = threading.Event()
    release = threading.Event()

    def messages() -> Iterator[runtime_pb2.PutFileRequest]:
        yield runtime_pb2.PutFileRequest(store_name=STORE, name="partial.bin", data=b"a" * 50_000)
        sent_first.set()
        release.wait(10)
        yield runtime_pb2.PutFileRequest(data=b"b" * 50_000)

    root = sidecar.data_dir / "files"

    def temp_files() -> list[str]:
        return [p.name for p in root.rglob("*") if p.name.startswith(".pylotto-tmp-")]

    def wait_for(condition: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + 5
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        return condition()

    future = stub.PutFile.future(messages(), timeout=30)
    assert sent_first.wait(5)
    assert wait_for(lambda: bool(temp_files()))  # the sidecar is midway through the put
    future.cancel()
    release.set()
    assert wait_for(lambda: not temp_files()), temp_files()
    assert not (root / "partial.bin").exists()
    assert code_of(lambda: stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(
        request=file_request("partial.bin")))) == grpc.StatusCode.NOT_FOUND


def test_an_unknown_store_is_answered_as_layotto_does(sidecar: Sidecar) -> None:
    """pkg/grpc/default_api/api_file.go: InvalidArgument "not supported store type: x" from
    GetFile, "not support store type: x" from the others."""
    stub = sidecar.stub()

    def error_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as info:
            call()
        return info.value.code(), info.value.details() or ""

    bad = grpc.StatusCode.INVALID_ARGUMENT
    assert error_of(lambda: list(stub.GetFile(runtime_pb2.GetFileRequest(
        store_name="other", name="x")))) == (bad, "not supported store type: other")
    for call in (
        lambda: stub.PutFile(iter([runtime_pb2.PutFileRequest(store_name="other", name="x",
                                                              data=b"x")]), timeout=10),
        lambda: stub.ListFile(runtime_pb2.ListFileRequest(request=file_request("", "other"))),
        lambda: stub.DelFile(runtime_pb2.DelFileRequest(request=file_request("x", "other"))),
        lambda: stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(
            request=file_request("x", "other"))),
    ):
        assert error_of(call) == (bad, "not support store type: other")
