"""USB HID POS barcode scanner (usage page 0x8C) through hidraw.

`read()` on /dev/hidrawN returns one whole input report; the pure `hidpos_reports` module turns
reports into payloads (AIM identifier + data bytes, binary-safe). On open the driver reads the
report descriptor (HIDIOCGRDESC) to find the fields, falling back to Honeywell's layout, and
sends Honeywell's output-redirection feature report (0xFE = 1), without which those scanners
keep their HID POS reports to themselves.

Simulation mode: when `device` is a FIFO, the driver reads 64-byte reports in Honeywell's layout
from it (`edge-sim hidpos-scanner` writes them). A writer closing the FIFO is an unplug: the
driver reopens it with backoff, as it does a hidraw node that disappears.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from collections.abc import AsyncIterator
from typing import Any

import structlog

from drivers.errors import DeviceGone
from drivers.fdreader import FdReader, RawFdDevice
from drivers.ioctl import READ, WRITE, ioc
from drivers.scanners.base import RawScan
from drivers.scanners.hidpos_reports import (
    HONEYWELL,
    ReportLayout,
    ReportSplitter,
    ScanAssembler,
    layout_from_descriptor,
)

HID_MAX_DESCRIPTOR_SIZE = 4096
HIDIOCGRDESCSIZE = ioc(READ, "H", 0x01, 4)
HIDIOCGRDESC = ioc(READ, "H", 0x02, 4 + HID_MAX_DESCRIPTOR_SIZE)
OUTPUT_REDIRECTION = bytes([0xFE, 0x01])
"""Honeywell's feature report 0xFE with value 1: send scans over HID POS."""


def hidiocsfeature(length: int) -> int:
    return ioc(READ | WRITE, "H", 0x06, length)


class HidPosScanner(RawFdDevice):
    def __init__(
        self,
        scanner_id: str,
        device: str,
        output_redirection: bool = True,
        reopen_max_s: float = 5.0,
    ) -> None:
        self.scanner_id = scanner_id
        self._path = device
        self._redirect = output_redirection
        self._reopen_max_s = reopen_max_s
        self._fd: int | None = None
        self._reader: FdReader | None = None
        self._splitter: ReportSplitter | None = None
        self._assembler = ScanAssembler(HONEYWELL)
        self._log = structlog.get_logger("drivers.scanner").bind(
            component="scanner", scanner=scanner_id, driver="hidpos", device=device
        )

    def _open_now(self) -> None:
        try:
            mode = os.stat(self._path).st_mode
            fd = os.open(self._path, (os.O_RDWR if stat.S_ISCHR(mode) else os.O_RDONLY) | os.O_NONBLOCK)
        except OSError as exc:
            raise DeviceGone(f"cannot open {self._path}: {exc.strerror}") from None
        if stat.S_ISCHR(mode):
            layout, source = self._read_layout(fd)
            self._splitter = None  # hidraw: one report per read
            if self._redirect:
                self._send_redirection(fd)
        else:
            layout, source = HONEYWELL, "simulation"
            self._splitter = ReportSplitter(layout.size)
        self._fd = fd
        self._assembler = ScanAssembler(layout)
        self._reader = FdReader(fd, self._path)
        self._log.info("scanner.opened", layout=source, report_id=layout.report_id, report_size=layout.size)

    def _read_layout(self, fd: int) -> tuple[ReportLayout, str]:
        try:
            size_buf = bytearray(4)
            fcntl.ioctl(fd, HIDIOCGRDESCSIZE, size_buf)
            (size,) = struct.unpack("<I", size_buf)
            buf = bytearray(
                struct.pack("<I", min(size, HID_MAX_DESCRIPTOR_SIZE)) + bytes(HID_MAX_DESCRIPTOR_SIZE)
            )
            fcntl.ioctl(fd, HIDIOCGRDESC, buf)
        except OSError as exc:
            self._log.warning("scanner.descriptor_unreadable", error=str(exc), fallback="honeywell")
            return HONEYWELL, "honeywell (descriptor unreadable)"
        layout = layout_from_descriptor(bytes(buf[4 : 4 + size]))
        if layout is None:
            self._log.warning("scanner.descriptor_has_no_pos_data", fallback="honeywell")
            return HONEYWELL, "honeywell (no decoded-data usage in the descriptor)"
        return layout, "descriptor"

    def _send_redirection(self, fd: int) -> None:
        buf = bytearray(OUTPUT_REDIRECTION)
        try:
            fcntl.ioctl(fd, hidiocsfeature(len(buf)), buf)
        except OSError as exc:  # not a Honeywell: it sends reports without being asked
            self._log.info("scanner.output_redirection_refused", error=str(exc))

    def _lost(self) -> dict[str, Any]:
        tail = self._assembler.flush()
        return {"partial_bytes_dropped": len(tail) if tail else 0}

    async def scans(self) -> AsyncIterator[RawScan]:
        async for chunk, now in self._chunks():
            if chunk is None:
                continue
            reports = self._splitter.feed(chunk) if self._splitter is not None else [chunk]
            for report in reports:
                payload = self._assembler.feed(report)
                if payload is not None:
                    yield RawScan(self.scanner_id, payload, now)
