"""USB HID (keyboard-wedge) barcode scanner through evdev.

The device is grabbed exclusively (EVIOCGRAB) so scans do not type into the console. The
records read from the event device are decoded by the pure `hid_events` module.

Simulation mode: when `device` is a FIFO instead of a character device, the driver reads the
same `struct input_event` records from it without grabbing. `edge-sim hid-scanner` writes them.
This stands in for /dev/uinput, which this kind of machine (a container) does not have. A
writer closing the FIFO is treated like an unplug: the driver reopens it with backoff.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from typing import Any

import structlog

from drivers.errors import DeviceGone
from drivers.fdreader import FdReader, ReopeningDevice
from drivers.scanners.base import RawScan
from drivers.scanners.hid_events import InputEventParser, KeyDecoder
from drivers.scanners.xkb import load_layout


class HidScanner(ReopeningDevice):
    def __init__(
        self,
        scanner_id: str,
        device: str,
        keymap: str = "us",
        inter_key_timeout_ms: int = 100,
        grab: bool = True,
        reopen_max_s: float = 5.0,
    ) -> None:
        self.scanner_id = scanner_id
        self._path = device
        self._keymap = load_layout(keymap)
        self._gap_s = inter_key_timeout_ms / 1000
        self._grab = grab
        self._reopen_max_s = reopen_max_s
        self._evdev: Any = None
        self._fd: int | None = None
        self._reader: FdReader | None = None
        self._parser = InputEventParser()
        self._decoder = KeyDecoder(self._keymap, inter_key_timeout_ms * 1000)
        self._log = structlog.get_logger("drivers.scanner").bind(
            component="scanner", scanner=scanner_id, driver="hid", device=device, keymap=keymap
        )

    def _open_now(self) -> None:
        try:
            mode = os.stat(self._path).st_mode
        except OSError as exc:
            raise DeviceGone(f"cannot open {self._path}: {exc.strerror}") from None
        if stat.S_ISCHR(mode):
            self._open_evdev()
            simulated = False
        else:
            try:
                self._fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                raise DeviceGone(f"cannot open {self._path}: {exc.strerror}") from None
            simulated = True
        assert self._fd is not None
        self._parser = InputEventParser()
        self._decoder = KeyDecoder(self._keymap, int(self._gap_s * 1_000_000))
        self._reader = FdReader(self._fd, self._path)
        self._log.info("scanner.opened", simulated=simulated, grabbed=self._evdev is not None and self._grab)

    def _open_evdev(self) -> None:
        import evdev  # imported here: only a real input device needs the C extension's ioctls

        try:
            device = evdev.InputDevice(self._path)
        except OSError as exc:
            raise DeviceGone(f"cannot open {self._path}: {exc.strerror}") from None
        if self._grab:
            try:
                device.grab()
            except OSError as exc:
                device.close()
                raise DeviceGone(f"cannot grab {self._path} (another program holds it?): {exc}") from None
        self._evdev = device
        self._fd = device.fd

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.stop()
            self._reader = None
        if self._evdev is not None:
            device, self._evdev = self._evdev, None
            try:
                if self._grab:
                    device.ungrab()
            except OSError:
                pass  # an unplugged device cannot be ungrabbed; closing releases it anyway
            device.close()
        elif self._fd is not None:
            os.close(self._fd)
        self._fd = None

    def _lost(self) -> dict[str, Any]:
        tail = self._decoder.flush()
        return {"partial_chars_dropped": len(tail) if tail else 0}

    def _read_timeout(self) -> float | None:
        return self._gap_s if self._decoder.pending else None

    async def scans(self) -> AsyncIterator[RawScan]:
        async for chunk, now in self._chunks():
            if chunk is None:  # the inter-key gap passed: a scanner that sends no Enter
                text = self._decoder.flush()
                if text is not None:
                    yield RawScan(self.scanner_id, text.encode("utf-8"), now)
                continue
            for event in self._parser.feed(chunk):
                for text in self._decoder.feed(event):
                    yield RawScan(self.scanner_id, text.encode("utf-8"), now)
