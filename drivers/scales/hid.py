"""A USB HID POS scale (usage page 0x8D) through hidraw: each read is one input report, the
6-byte scale data report among them (`hidpos.py`). Such a scale sends a report when its weight
or status changes, and many every few hundred milliseconds as well; it is never asked.

Simulation mode: when `device` is a FIFO, the reports arrive back to back from it
(`edge-sim scale --protocol hid`); a writer closing it is an unplug, reopened with backoff as a
hidraw node that disappears is."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from typing import Any

import structlog

from drivers.errors import DeviceGone
from drivers.fdreader import FdReader, RawFdDevice
from drivers.scales.hidpos import ReportReader, parse_report
from drivers.scales.reading import Reading


class HidScale(RawFdDevice):
    _kind = "scale"

    def __init__(
        self, scale_id: str, device: str, silent_after_s: float | None = None, reopen_max_s: float = 5.0
    ) -> None:
        self.scale_id = scale_id
        self.silent_after_s = silent_after_s
        self._path = device
        self._reopen_max_s = reopen_max_s
        self._fd: int | None = None
        self._reader: FdReader | None = None
        self._stream: ReportReader | None = None
        self._log = structlog.get_logger("drivers.scale").bind(
            component="scale", scale=scale_id, driver="hid", device=device
        )

    def _open_now(self) -> None:
        try:
            mode = os.stat(self._path).st_mode
            fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise DeviceGone(f"cannot open {self._path}: {exc.strerror}") from None
        self._fd = fd
        self._stream = None if stat.S_ISCHR(mode) else ReportReader()
        self._reader = FdReader(fd, self._path)
        self._log.info("scale.opened", source="hidraw" if self._stream is None else "simulation")

    def weigh_now(self) -> None:
        """A HID POS scale reports on its own; there is nothing to ask."""

    def _lost(self) -> dict[str, Any]:
        self._stream = None
        return {}

    async def readings(self) -> AsyncIterator[Reading]:
        async for chunk, _now in self._chunks():
            if chunk is None:
                continue
            if self._stream is not None:
                for reading in self._stream.feed(chunk):
                    yield reading
            elif (single := parse_report(chunk)) is not None:
                yield single
