"""The display's HTTP/1.1 server (h11 on asyncio streams) on a real socket: keep-alive, errors,
bad requests, a stream whose client stalls or leaves."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from edge_agent.display import http


async def _server(handler: http.Handler) -> tuple[asyncio.Server, int]:
    server = await http.serve("127.0.0.1", 0, handler)
    return server, server.sockets[0].getsockname()[1]


async def _exchange(port: int, raw: bytes, until: bytes = b"", timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = b""
    try:
        async with asyncio.timeout(timeout):
            while until not in data or not until:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
    except TimeoutError:
        pass
    writer.close()
    return data


def test_keep_alive_routes_and_refusals() -> None:
    seen: list[http.Request] = []

    async def handler(request: http.Request, response: http.Response) -> None:
        seen.append(request)
        body = f"{request.path} {request.query}".encode()
        await response.send(
            200 if request.path != "/missing" else 404, body, [("Content-Type", "text/plain")]
        )

    async def main() -> list[bytes]:
        server, port = await _server(handler)
        two = await _exchange(port, b"GET /a?token=x&b=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t\r\n\r\n"
                                    b"GET /missing HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")  # fmt: skip
        post = await _exchange(port, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        garbage = await _exchange(port, b"\x16\x03\x01 not http at all\r\n\r\n", timeout=2)
        server.close()
        return [two, post, garbage]

    two, post, garbage = asyncio.run(main())
    assert two.count(b"HTTP/1.1 200") == 1 and b"/a {'token': 'x', 'b': '1'}" in two
    assert b"HTTP/1.1 404" in two and b"/missing" in two  # the same connection, kept alive
    assert seen[0].headers["authorization"] == "Bearer t" and seen[0].peer == "127.0.0.1"
    assert post.startswith(b"HTTP/1.1 413") or post.startswith(b"HTTP/1.1 405")
    assert len(seen) == 2  # neither the POST nor the garbage reached the handler
    assert b"200" not in garbage


def test_a_stream_ends_when_its_client_leaves_or_stalls() -> None:
    ends: list[str] = []

    async def handler(request: http.Request, response: http.Response) -> None:
        await response.start(200, [("Content-Type", "text/event-stream")])
        try:
            if request.path == "/stall":
                while True:  # a client that reads nothing: its buffers fill, the write times out
                    await response.write(b"data: " + b"x" * 65536 + b"\n\n", timeout=0.5)
            await response.write(b"data: hello\n\n")
            await asyncio.wait_for(response.gone.wait(), 5)
            ends.append("gone")
        except ConnectionError as exc:
            ends.append(f"stalled: {exc}")

    async def main() -> bytes:
        server, port = await _server(handler)
        first = await _exchange(port, b"GET /events HTTP/1.1\r\nHost: h\r\n\r\n", until=b"hello")
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /stall HTTP/1.1\r\nHost: h\r\n\r\n")
        for _ in range(100):
            if len(ends) == 2:
                break
            await asyncio.sleep(0.1)
        sock.close()
        server.close()
        return first

    first = asyncio.run(main())
    assert b"HTTP/1.1 200" in first and b"Transfer-Encoding: chunked" in first and b"data: hello" in first
    assert ends[0] == "gone" and ends[1].startswith("stalled: the client took no data for 0.5 s")


def test_a_handler_that_answers_nothing_gets_a_500_and_the_server_lives(capsys: Any) -> None:
    async def handler(request: http.Request, response: http.Response) -> None:
        return None

    async def main() -> bytes:
        server, port = await _server(handler)
        out = await _exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        again = await _exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        server.close()
        return out + again

    assert asyncio.run(main()).count(b"HTTP/1.1 500") == 2
