"""What the serial device drivers share (a scanner, a scale): the port opened exclusively and
non-blocking, read on the event loop, and closed whatever state it vanished in."""

from __future__ import annotations

import contextlib
from typing import Any

import serial

from drivers.errors import DeviceGone
from drivers.fdreader import FdReader, ReopeningDevice


class SerialDevice(ReopeningDevice):
    _port: str
    _serial: serial.Serial | None

    def _open_port(self, **settings: Any) -> serial.Serial:
        """Open `_port` (raises DeviceGone) and start reading it; timeout=0: reads never block."""
        try:
            ser = serial.Serial(self._port, timeout=0, exclusive=True, **settings)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceGone(f"cannot open {self._port}: {exc}") from None
        self._serial = ser
        self._reader = FdReader(ser.fileno(), self._port)
        return ser

    async def close(self) -> None:
        self._stop_reader()
        if self._serial is not None:
            ser, self._serial = self._serial, None
            # a port that vanished cannot be closed cleanly; the fd is gone either way
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()
