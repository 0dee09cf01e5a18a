"""A printer on raw TCP (port 9100, "JetDirect"): one connection per job or status request."""

from __future__ import annotations

import asyncio
import contextlib

from drivers.printers.base import NotSent, PartlySent
from drivers.printers.languages import QUERIES, read_status
from drivers.printers.status import PrinterStatus, StatusParseError


class TcpPrinter:
    def __init__(
        self, printer_id: str, language: str, host: str, port: int = 9100, timeout_s: float = 3.0
    ) -> None:
        self.printer_id = printer_id
        self.language = language
        self._host = host
        self._port = port
        self._timeout = timeout_s

    async def open(self) -> None:
        """Nothing to hold open: raw-port printers serve one connection at a time."""

    async def close(self) -> None:
        pass

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(self._timeout):
            return await asyncio.open_connection(self._host, self._port)

    async def send(self, data: bytes, name: str = "job") -> None:
        try:
            reader, writer = await self._connect()
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
