"""A printer on a serial port (RS-232 or USB CDC), through pyserial."""

from __future__ import annotations

import contextlib

import serial

from drivers.printers.base import NotSent
from drivers.printers.fdio import FdPrinter


class SerialPrinter(FdPrinter):
    def __init__(
        self, printer_id: str, language: str, port: str, baudrate: int = 9600, timeout_s: float = 3.0
    ) -> None:
        self.printer_id = printer_id
        self.language = language
        self._what = port
        self._baudrate = baudrate
        self._timeout = timeout_s
        self._serial: serial.Serial | None = None

    def _open_fd(self) -> int:
        if self._serial is None:
            try:
                self._serial = serial.Serial(
                    self._what, self._baudrate, timeout=0, write_timeout=0, exclusive=True
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                raise NotSent(f"cannot open {self._what}: {exc}") from None
        return int(self._serial.fileno())

    def _close_fd(self) -> None:
        if self._serial is not None:
            ser, self._serial = self._serial, None
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()
