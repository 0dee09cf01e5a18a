"""USB HID (keyboard-wedge) barcode scanner through its Linux input event device.

The device is grabbed exclusively (EVIOCGRAB) so scans do not type into the console. The
records read from the event device are decoded by the pure `hid_events` module. The two ioctls
this needs (EVIOCGVERSION to check that the node is an event device, EVIOCGRAB) are made with
`fcntl.ioctl` (drivers/ioctl.py), not python-evdev: evdev publishes no wheels, so it would need
a C compiler and kernel headers on every Pi a release is installed on.

Simulation mode: when `device` is a FIFO instead of a character device, the driver reads the
same `struct input_event` records from it without grabbing. `edge-sim hid-scanner` writes them.
This stands in for /dev/uinput, which this kind of machine (a container) does not have. A
writer closing the FIFO is treated like an unplug: the driver reopens it with backoff.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import AsyncIterator
from typing import Any

import structlog

from drivers.errors import DeviceGone
from drivers.fdreader import FdReader, ReopeningDevice
from drivers.ioctl import EVIOCGRAB, EVIOCGVERSION, eviocgname
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
        self._grabbed = False
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
            self._fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise DeviceGone(f"cannot open {self._path}: {exc.strerror}") from None
        event_device = stat.S_ISCHR(mode)
        try:
            name = self._claim(self._fd) if event_device else None
        except DeviceGone:
            os.close(self._fd)
            self._fd = None
            raise
        self._parser = InputEventParser()
        self._decoder = KeyDecoder(self._keymap, int(self._gap_s * 1_000_000))
        self._reader = FdReader(self._fd, self._path)
        self._log.info("scanner.opened", simulated=not event_device, grabbed=self._grabbed, name=name)

    def _claim(self, fd: int) -> str:
        """Check that `fd` is an input event device and grab it; returns the device's name. Raises
        DeviceGone, and the caller closes `fd`."""
        version = bytearray(4)
        try:
            fcntl.ioctl(fd, EVIOCGVERSION, version)
        except OSError as exc:
            raise DeviceGone(
                f"{self._path} is not an input event device (EVIOCGVERSION: {exc.strerror}); "
                "a HID scanner is /dev/input/event* or /dev/input/by-id/*-event-kbd"
            ) from None
        name = bytearray(256)
        try:
            fcntl.ioctl(fd, eviocgname(len(name)), name)
        except OSError:
            name[:] = b""  # a name is for the log only
        if self._grab:
            try:
                fcntl.ioctl(fd, EVIOCGRAB, 1)
            except OSError as exc:
                raise DeviceGone(
                    f"cannot grab {self._path} (another program holds it?): {exc.strerror}"
                ) from None
            self._grabbed = True
        return bytes(name).split(b"\0", 1)[0].decode("utf-8", "replace")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.stop()
            self._reader = None
        if self._fd is not None:
            if self._grabbed:
                # an unplugged device cannot be ungrabbed; closing releases it anyway
                with contextlib.suppress(OSError):
                    fcntl.ioctl(self._fd, EVIOCGRAB, 0)
                self._grabbed = False
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
