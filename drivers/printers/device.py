"""A printer on a character device, such as /dev/usb/lp0 (usblp)."""

from __future__ import annotations

import contextlib
import os

from drivers.printers.base import NotSent
from drivers.printers.fdio import FdPrinter
from drivers.printers.status import PrinterStatus


class DevicePrinter(FdPrinter):
    def __init__(self, printer_id: str, language: str, path: str, timeout_s: float = 3.0) -> None:
        self.printer_id = printer_id
        self.language = language
        self._what = path
        self._timeout = timeout_s
        self._fd: int | None = None

    def _open_fd(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self._what, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
            except OSError as exc:
                raise NotSent(f"cannot open {self._what}: {exc.strerror}") from None
        return self._fd

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    async def status(self) -> PrinterStatus:
        # usblp answers reads only on bidirectional printers: a silent one is "unknown", not offline
        result = await super().status()
        if result.state == "offline" and "no status answer" in result.detail:
            return PrinterStatus("unknown", "the device does not answer status requests")
        return result
