"""Job and status I/O on a file descriptor (serial port, /dev/usb/lp0), shared by those drivers."""

from __future__ import annotations

import asyncio
import contextlib
import os

from drivers.errors import DeviceGone
from drivers.fdreader import FdReader
from drivers.printers.base import NotSent, PartlySent
from drivers.printers.languages import QUERIES, read_status
from drivers.printers.status import PrinterStatus, StatusParseError


async def write_all(fd: int, data: bytes, what: str, timeout_s: float) -> None:
    """Write every byte, waiting for the device to take them; PartlySent if it stops."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    try:
        async with asyncio.timeout(timeout_s + len(data) / 5_000):
            while view:
                try:
                    n = os.write(fd, view)
                    view = view[n:]
                except BlockingIOError:
                    ready: asyncio.Future[None] = loop.create_future()
                    loop.add_writer(fd, ready.set_result, None)
                    try:
                        await ready
                    finally:
                        loop.remove_writer(fd)
    except (OSError, TimeoutError) as exc:
        sent = len(data) - len(view)
        raise PartlySent(f"{what}: stopped after {sent} of {len(data)} bytes: {exc or 'timed out'}") from None


async def query_status(fd: int, language: str, what: str, timeout_s: float) -> PrinterStatus:
    query, make_parser = QUERIES[language]
    reader = FdReader(fd, what)
    try:
        await write_all(fd, query, what, timeout_s)

        async def read() -> bytes:
            chunk = await reader.read()
            assert chunk is not None  # no timeout given: a chunk or DeviceGone
            return chunk

        return await read_status(read, make_parser(), timeout_s)
    except StatusParseError as exc:
        return PrinterStatus("error", f"unreadable status answer: {exc}")
    except (PartlySent, DeviceGone, OSError) as exc:
        return PrinterStatus("offline", str(exc))
    finally:
        reader.stop()


class FdPrinter:
    """A printer behind one file descriptor; subclasses say how to open and close it."""

    printer_id: str
    language: str
    _what: str
    _timeout: float

    def _open_fd(self) -> int:
        raise NotImplementedError

    def prepare(self) -> None:
        """The descriptor stays open between jobs: nothing to get ready."""

    def unprepare(self) -> None:
        pass

    def _close_fd(self) -> None:
        raise NotImplementedError

    async def open(self) -> None:
        with contextlib.suppress(NotSent):
            self._open_fd()

    async def close(self) -> None:
        self._close_fd()

    async def send(self, data: bytes, name: str = "job") -> None:
        fd = self._open_fd()
        try:
            await write_all(fd, data, self._what, self._timeout)
        except Exception:
            self._close_fd()  # reopen next time: the device may have gone
            raise

    async def status(self) -> PrinterStatus:
        try:
            fd = self._open_fd()
        except NotSent as exc:
            return PrinterStatus("offline", str(exc))
        result = await query_status(fd, self.language, self._what, self._timeout)
        if result.state == "offline":
            self._close_fd()
        return result
