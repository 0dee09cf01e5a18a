"""A small HTTP/1.1 server for the station page: asyncio streams, with h11 for the protocol.

The page needs five GET routes and one long-lived event stream; a web framework for that costs
the agent 11 MB and 0.15 s of start-up (bench/footprint.py). h11 (python-hyper) parses and
frames HTTP/1.1 correctly (keep-alive, chunked responses, limits) with no I/O of its own; this
module only moves bytes. Requests with a body are refused; a client that sends nothing for
`IDLE_S` is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import h11

IDLE_S = 30.0
MAX_HEADERS = 16 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    peer: str


class Response:
    """What a handler answers with: `send()` a whole response, or `start()` a stream, `write()`
    chunks to it (each raises ConnectionError when the client is gone or too slow) and return."""

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter, gone: asyncio.Event) -> None:
        self._conn = conn
        self._writer = writer
        self.gone = gone
        """Set when the client closed its side (a stream's end)."""
        self.started = False

    async def _put(self, event: h11.Event, timeout: float) -> None:
        data = self._conn.send(event)
        if data:
            if self._writer.is_closing():
                raise ConnectionError("the client is gone")
            self._writer.write(data)
            async with asyncio.timeout(timeout):
                await self._writer.drain()

    async def start(self, status: int, headers: list[tuple[str, str]], timeout: float = 10.0) -> None:
        self.started = True
        await self._put(h11.Response(status_code=status, headers=headers), timeout)

    async def write(self, data: bytes, timeout: float = 10.0) -> None:
        try:
            await self._put(h11.Data(data=data), timeout)
        except TimeoutError:
            raise ConnectionError(f"the client took no data for {timeout:g} s") from None

    async def send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        await self.start(status, [*headers, ("Content-Length", str(len(body)))])
        if body:
            await self.write(body)


Handler = Callable[[Request, Response], Awaitable[None]]


async def serve(host: str, port: int, handler: Handler) -> asyncio.Server:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError, h11.ProtocolError):
            await _connection(reader, writer, handler)
        writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()

    return await asyncio.start_server(connection, host, port)


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
    peer = writer.get_extra_info("peername")
    peer_text = str(peer[0]) if peer else "?"
    while True:
        event = await _next(conn, reader)
        if not isinstance(event, h11.Request):
            return  # the client closed, or sent something that is not a request
        request = _request(event, peer_text)
        gone = asyncio.Event()
        response = Response(conn, writer, gone)
        body = await _next(conn, reader)
        if not isinstance(body, h11.EndOfMessage):
            await response.send(413, b"no request bodies here\n", [("Content-Type", "text/plain")])
            return
        watcher = asyncio.create_task(_watch_close(conn, reader, gone), name="http-client-gone")
        try:
            if request.method != "GET":
                await response.send(405, b"GET only\n", [("Allow", "GET"), ("Content-Type", "text/plain")])
            else:
                await handler(request, response)
        finally:
            watcher.cancel()
        if not response.started:
            await response.send(500, b"no answer\n", [("Content-Type", "text/plain")])
        await response._put(h11.EndOfMessage(), 10.0)
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE or gone.is_set():
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return


async def _next(conn: h11.Connection, reader: asyncio.StreamReader) -> object:
    """The next h11 event (or PAUSED), reading as much as it takes."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        async with asyncio.timeout(IDLE_S):
            data = await reader.read(8192)
        conn.receive_data(data)


async def _watch_close(conn: h11.Connection, reader: asyncio.StreamReader, gone: asyncio.Event) -> None:
    """While a response is being made: a pipelined request is left for later; EOF means gone."""
    with contextlib.suppress(ConnectionError):
        while True:
            data = await reader.read(8192)
            if not data:
                gone.set()
                return
            conn.receive_data(data)


def _request(event: h11.Request, peer: str) -> Request:
    target = event.target.decode("latin-1")
    parts = urlsplit(target)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
    return Request(event.method.decode("ascii"), parts.path or "/", query, headers, peer)
