"""A printer on raw TCP (port 9100, "JetDirect"): one connection per job or status request.

A job's connection can be opened ahead (`prepare`), while the agent commits the job's claim, so
that connecting and committing overlap: the first byte still leaves only after the commit, but
no longer waits for the TCP handshake and asyncio's transport set-up after it (bench/print.py).
Raw ports serve one connection at a time, so a status request or `close` drops a prepared
connection that no job used.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TypeAlias

from drivers.printers.base import NotSent, PartlySent
from drivers.printers.languages import QUERIES, read_status
from drivers.printers.status import PrinterStatus, StatusParseError

Streams: TypeAlias = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _drop(task: asyncio.Task[Streams]) -> None:
    """A prepared connection nobody used: closed without a byte sent."""
    if not task.cancelled() and task.exception() is None:
        task.result()[1].close()


class TcpPrinter:
    def __init__(
        self, printer_id: str, language: str, host: str, port: int = 9100, timeout_s: float = 3.0
    ) -> None:
        self.printer_id = printer_id
        self.language = language
        self._host = host
        self._port = port
        self._timeout = timeout_s
        self._ahead: asyncio.Task[Streams] | None = None

    async def open(self) -> None:
        """Nothing to hold open: raw-port printers serve one connection at a time."""

    async def close(self) -> None:
        self.unprepare()

    def prepare(self) -> None:
        if self._ahead is None:
            self._ahead = asyncio.create_task(self._connect(), name=f"printer-{self.printer_id}-connect")

    def unprepare(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.add_done_callback(_drop)
            ahead.cancel()

    async def _connect(self) -> Streams:
        async with asyncio.timeout(self._timeout):
            return await asyncio.open_connection(self._host, self._port)

    async def send(self, data: bytes, name: str = "job") -> None:
        ahead, self._ahead = self._ahead, None
        try:
            reader, writer = await (ahead if ahead is not None else self._connect())
        except (OSError, TimeoutError) as exc:
            raise NotSent(f"{self._host}:{self._port}: {exc or 'connect timed out'}") from None
        try:
            writer.write(data)
            async with asyncio.timeout(self._timeout + len(data) / 50_000):
                await writer.drain()
                writer.write_eof()
                # The printer closes when it has the job; if it never does, the bytes still went out.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await reader.read()
        except (OSError, TimeoutError) as exc:
            raise PartlySent(f"{self._host}:{self._port}: connection lost while sending: {exc}") from None
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    async def status(self) -> PrinterStatus:
        self.unprepare()
        query, make_parser = QUERIES[self.language]
        try:
            reader, writer = await self._connect()
        except (OSError, TimeoutError) as exc:
            return PrinterStatus(
                "offline", f"no connection to {self._host}:{self._port}: {exc or 'timed out'}"
            )
        try:
            writer.write(query)
            async with asyncio.timeout(self._timeout):
                await writer.drain()
            return await read_status(lambda: reader.read(256), make_parser(), self._timeout)
        except TimeoutError:
            return PrinterStatus("offline", f"the printer took no status request within {self._timeout:g} s")
        except StatusParseError as exc:
            return PrinterStatus("error", f"unreadable status answer: {exc}")
        except OSError as exc:
            return PrinterStatus("offline", f"connection lost: {exc}")
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
