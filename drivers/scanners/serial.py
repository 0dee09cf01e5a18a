"""Serial (RS-232 / USB CDC-ACM) barcode scanner: one payload per line, through pyserial."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import serial
import structlog

from drivers.fdreader import FdReader
from drivers.scanners.base import RawScan
from drivers.scanners.framing import LineFramer
from drivers.serialport import SerialDevice


class SerialScanner(SerialDevice):
    def __init__(
        self,
        scanner_id: str,
        port: str,
        baudrate: int = 9600,
        prefix: bytes = b"",
        suffix: bytes = b"",
        max_frame_bytes: int = 4096,
        reopen_max_s: float = 5.0,
    ) -> None:
        self.scanner_id = scanner_id
        self._port = port
        self._baudrate = baudrate
        self._framer = LineFramer(prefix, suffix, max_frame_bytes)
        self._reopen_max_s = reopen_max_s
        self._serial: serial.Serial | None = None
        self._reader: FdReader | None = None
        self._log = structlog.get_logger("drivers.scanner").bind(
            component="scanner", scanner=scanner_id, driver="serial", port=port
        )
        self.noise_frames = 0

    def _open_now(self) -> None:
        self._open_port(baudrate=self._baudrate)
        self._framer.reset()
        self._log.info("scanner.opened", baudrate=self._baudrate)

    def _lost(self) -> dict[str, Any]:
        return {"partial_bytes_dropped": len(self._framer.reset())}

    async def scans(self) -> AsyncIterator[RawScan]:
        async for chunk, now in self._chunks():
            if chunk is None:
                continue
            for frame in self._framer.feed(chunk):
                if frame.noise is not None:
                    self.noise_frames += 1
                    self._log.warning("scanner.noise", reason=frame.noise, sample=frame.data[:32].hex())
                    continue
                yield RawScan(self.scanner_id, frame.data, now)
