"""An app that speaks HTTP/2 without TLS and nothing else (prior knowledge, as
``dapr run --app-protocol h2c`` expects of the app), on the h2 library: each request goes to
``handler(method, path, headers, body) -> (status, headers, body)`` and is recorded. An
HTTP/1.1 request is not HTTP/2's connection preface, so it fails the connection."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

Handler = Callable[[str, str, dict[str, str], bytes],
                   tuple[int, list[tuple[str, str]], bytes]]


@dataclass
class H2cRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class H2cApp:
    handler: Handler
    port: int = 0
    requests: list[H2cRequest] = field(default_factory=list)
    refused_connections: int = 0
    """Connections that did not start with HTTP/2's preface (an HTTP/1.1 client)."""
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.base_events.Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> H2cApp:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop

            async def serve() -> None:
                self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
                self.port = self._server.sockets[0].getsockname()[1]
                ready.set()
                await self._server.serve_forever()

            main = loop.create_task(serve())
            try:
                loop.run_until_complete(main)
            except asyncio.CancelledError:
                pass
            finally:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.wait(pending))
                loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10), "the h2c app did not start"
        return self

    def stop(self) -> None:
        """Stop serving: every connection is closed and the loop ends."""
        loop = self._loop
        if loop is None or self._thread is None:
            return

        def cancel_all() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()

        loop.call_soon_threadsafe(cancel_all)
        self._thread.join(10)

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        try:
            while data := await reader.read(65536):
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self.refused_connections += 1
                    return
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        headers = {k.decode() if isinstance(k, bytes) else k:
                                   v.decode() if isinstance(v, bytes) else v
                                   for k, v in event.headers}
                        streams[event.stream_id] = (headers, bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data)
                        conn.acknowledge_received_data(event.flow_controlled_length,
                                                       event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = streams.pop(event.stream_id)
                        self._answer(conn, event.stream_id, headers, bytes(body))
                writer.write(conn.data_to_send())
                await writer.drain()
        finally:
            writer.close()

    def _answer(self, conn: h2.connection.H2Connection, stream_id: int,
                headers: dict[str, str], body: bytes) -> None:
        method, path = headers.get(":method", ""), headers.get(":path", "")
        self.requests.append(H2cRequest(method, path, headers, body))
        status, extra, reply = self.handler(method, path, headers, body)
        conn.send_headers(stream_id, [(":status", str(status)),
                                      ("content-length", str(len(reply))), *extra],
                          end_stream=not reply)
        if reply:
            conn.send_data(stream_id, reply, end_stream=True)
