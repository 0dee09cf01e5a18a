"""A printer on a character device, such as /dev/usb/lp0 (usblp)."""

from __future__ import annotations

import contextlib
import os

from drivers.printers.base import NotSent
from drivers.printers.fdio import query_status, write_all
from drivers.printers.status import PrinterStatus


class DevicePrinter:
    def __init__(self, printer_id: str, language: str, path: str, timeout_s: float = 3.0) -> None:
        self.printer_id = printer_id
        self.language = language
        self._path = path
        self._timeout = timeout_s
        self._fd: int | None = None

    def _ensure_open(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
            except OSError as exc:
                raise NotSent(f"cannot open {self._path}: {exc.strerror}") from None
        return self._fd

    async def open(self) -> None:
        with contextlib.suppress(NotSent):
            self._ensure_open()

    async def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    async def send(self, data: bytes, name: str = "job") -> None:
        fd = self._ensure_open()
        try:
            await write_all(fd, data, self._path, self._timeout)
        except Exception:
            await self.close()
            raise

    async def status(self) -> PrinterStatus:
        # usblp answers reads only on bidirectional printers; a silent one is "unknown", not offline
        try:
            fd = self._ensure_open()
        except NotSent as exc:
            return PrinterStatus("offline", str(exc))
        result = await query_status(fd, self.language, self._path, self._timeout)
        if result.state == "offline" and "no status answer" in result.detail:
            return PrinterStatus("unknown", "the device does not answer status requests")
        return result
