"""A printer on a serial port (RS-232 or USB CDC), through pyserial."""

from __future__ import annotations

import contextlib

import serial

from drivers.printers.base import NotSent
from drivers.printers.fdio import query_status, write_all
from drivers.printers.status import PrinterStatus


class SerialPrinter:
    def __init__(
        self, printer_id: str, language: str, port: str, baudrate: int = 9600, timeout_s: float = 3.0
    ) -> None:
        self.printer_id = printer_id
        self.language = language
        self._port = port
        self._baudrate = baudrate
        self._timeout = timeout_s
        self._serial: serial.Serial | None = None

    def _ensure_open(self) -> serial.Serial:
        if self._serial is None:
            try:
                self._serial = serial.Serial(
                    self._port, self._baudrate, timeout=0, write_timeout=0, exclusive=True
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                raise NotSent(f"cannot open {self._port}: {exc}") from None
        return self._serial

    async def open(self) -> None:
        with contextlib.suppress(NotSent):
            self._ensure_open()

    async def close(self) -> None:
        if self._serial is not None:
            ser, self._serial = self._serial, None
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    async def send(self, data: bytes, name: str = "job") -> None:
        ser = self._ensure_open()
        try:
            await write_all(ser.fileno(), data, self._port, self._timeout)
        except Exception:
            await self.close()  # reopen next time: the port may have gone
            raise

    async def status(self) -> PrinterStatus:
        try:
            ser = self._ensure_open()
        except NotSent as exc:
            return PrinterStatus("offline", str(exc))
        result = await query_status(ser.fileno(), self.language, self._port, self._timeout)
        if result.state == "offline":
            await self.close()
        return result
