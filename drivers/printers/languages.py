"""Status query and answer parser of each printer language."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from drivers.printers import escpos_status, zpl_status
from drivers.printers.status import PrinterStatus


class StatusParser(Protocol):
    def feed(self, data: bytes) -> PrinterStatus | None: ...

    def finish(self) -> PrinterStatus | None: ...


# Once part of an answer is in, the rest gets this long before the part is used on its own.
SETTLE_S = 0.4


QUERIES: dict[str, tuple[bytes, Callable[[], StatusParser]]] = {
    "zpl": (zpl_status.QUERY, zpl_status.HostStatusParser),
    "escpos": (escpos_status.QUERY, escpos_status.RealtimeStatusParser),
}


async def read_status(
    read: Callable[[], Awaitable[bytes]], parser: StatusParser, timeout_s: float
) -> PrinterStatus:
    """Feed what `read` returns to `parser` until it has a status. b"" is the end of the stream.
    A part of an answer is used alone once the rest has had SETTLE_S; silence is `offline`
    (a Zebra may stay silent while out of paper: silence is never "ready")."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s) as deadline:
            while True:
                chunk = await read()
                if not chunk:
                    return parser.finish() or PrinterStatus(
                        "offline", "printer closed the connection without answering"
                    )
                result = parser.feed(chunk)
                if result is not None:
                    return result
                deadline.reschedule(min(deadline.when() or loop.time(), loop.time() + SETTLE_S))
    except TimeoutError:
        return parser.finish() or PrinterStatus("offline", f"no status answer within {timeout_s:g} s")
