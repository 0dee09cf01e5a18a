"""Serial (RS-232 / USB CDC-ACM) barcode scanner: one payload per line, through pyserial."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import serial
import structlog

from drivers.backoff import backoff_delays
from drivers.errors import DeviceError, DeviceGone
from drivers.scanners.base import RawScan
from drivers.scanners.fdreader import FdReader
from drivers.scanners.framing import LineFramer


class SerialScanner:
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

    @property
    def connected(self) -> bool:
        return self._serial is not None

    async def __aenter__(self) -> SerialScanner:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Try once to open the port; a missing port is not an error here, `scans()` retries."""
        try:
            self._open_now()
        except DeviceError as exc:
            self._log.warning("scanner.unavailable", error=str(exc))

    def _open_now(self) -> None:
        try:
            ser = serial.Serial(self._port, self._baudrate, timeout=0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceGone(f"cannot open {self._port}: {exc}") from None
        self._serial = ser
        self._reader = FdReader(ser.fileno(), self._port)
        self._framer.reset()
        self._log.info("scanner.opened", baudrate=self._baudrate)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.stop()
            self._reader = None
        if self._serial is not None:
            ser, self._serial = self._serial, None
            # a port that vanished cannot be closed cleanly; the fd is gone either way
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    async def scans(self) -> AsyncIterator[RawScan]:
        delays = backoff_delays(0.1, self._reopen_max_s)
        while True:
            if self._reader is None:
                try:
                    self._open_now()
                except DeviceGone as exc:
                    delay = next(delays)
                    self._log.debug("scanner.reopen_wait", error=str(exc), delay_s=round(delay, 2))
                    await asyncio.sleep(delay)
                    continue
                delays = backoff_delays(0.1, self._reopen_max_s)
            assert self._reader is not None
            try:
                chunk = await self._reader.read()
            except DeviceGone as exc:
                dropped = self._framer.reset()
                self._log.warning("scanner.lost", error=str(exc), partial_bytes_dropped=len(dropped))
                await self.close()
                continue
            if chunk is None:
                continue
            now = time.monotonic_ns()
            for frame in self._framer.feed(chunk):
                if frame.noise is not None:
                    self.noise_frames += 1
                    self._log.warning("scanner.noise", reason=frame.noise, sample=frame.data[:32].hex())
                    continue
                yield RawScan(self.scanner_id, frame.data, now)
