"""gRPC to an app over TLS without checking its certificate (``--app-protocol grpcs``), as
daprd dials it (pkg/api/grpc/manager: ``tls.Config{InsecureSkipVerify: true}``).

grpcio cannot skip the certificate check, so the channel to the app is a plaintext gRPC
channel to a relay on the loopback that carries each connection to the app over TLS
(certificate and name not checked, ALPN ``h2`` as gRPC needs it). The relay's socket is bound
at once (the channel may dial it before the relay's first turn of the event loop; connections
wait in the backlog).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl

from pylotto.core.tasks import stop_task, stop_tasks

log = logging.getLogger("pylotto.appchannel")

CHUNK_BYTES = 64 * 1024


def unverified_context() -> ssl.SSLContext:
    """TLS to the app, its certificate not checked (daprd's ``InsecureSkipVerify``), TLS 1.2
    at least (daprd's ``AppChannelMinTLSVersion``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    return context


class TlsRelay:
    """A loopback listener (:attr:`address`) relaying every connection to ``host:port`` over
    TLS. Must be made within the running event loop."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._context = unverified_context()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)
        self._socket.setblocking(False)
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self._connections: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._starting = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._relay, sock=self._socket)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            try:
                app_reader, app_writer = await asyncio.open_connection(
                    *self.target, ssl=self._context, server_hostname=self.target[0])
            except (OSError, ssl.SSLError) as exc:
                log.debug("grpcs: cannot reach the app at %s:%d: %s", *self.target, exc)
                return
            pipes = {asyncio.ensure_future(_pipe(reader, app_writer)),
                     asyncio.ensure_future(_pipe(app_reader, writer))}
            try:  # one side ended: the connection is over
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                app_writer.close()
        finally:
            writer.close()
            if task is not None:
                self._connections.discard(task)

    async def close(self) -> None:
        await stop_task(self._starting)
        if self._server is not None:
            self._server.close()
        else:
            self._socket.close()
        await stop_tasks(*self._connections)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until its end."""
    with contextlib.suppress(OSError, ssl.SSLError):
        while data := await reader.read(CHUNK_BYTES):
            writer.write(data)
            await writer.drain()
