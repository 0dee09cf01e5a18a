"""Non-blocking reads of a file descriptor on the event loop (`add_reader`), and the reopen loop,
shared by the scanner drivers (serial, HID, HID POS), the scale drivers and the printers' fd I/O."""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections.abc import AsyncIterator
from typing import Any, Self

from drivers.backoff import backoff_delays
from drivers.errors import DeviceGone

_GONE_ERRNOS = frozenset({errno.EIO, errno.ENODEV, errno.ENXIO, errno.EBADF, errno.EPIPE})


class FdReader:
    """Delivers chunks read from `fd`; raises `DeviceGone` once the fd hangs up or errors."""

    def __init__(self, fd: int, what: str) -> None:
        self._fd = fd
        self._what = what
        self._loop = asyncio.get_running_loop()
        # each chunk with the time it was read: a scan's latency starts at its last byte, not at
        # whenever the task that frames it next runs
        self._queue: asyncio.Queue[tuple[bytes, int] | BaseException] = asyncio.Queue()
        self._done = False
        self._loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._finish(DeviceGone(f"{self._what}: {exc.strerror or exc}"))
            return
        if not chunk:
            self._finish(DeviceGone(f"{self._what}: hung up"))
            return
        self._queue.put_nowait((chunk, time.monotonic_ns()))

    def _finish(self, exc: BaseException) -> None:
        if not self._done:
            self._done = True
            self._loop.remove_reader(self._fd)
            self._queue.put_nowait(exc)

    async def read(self, timeout: float | None = None) -> bytes | None:
        """The next chunk; None when `timeout` seconds pass with nothing read."""
        stamped = await self.read_stamped(timeout)
        return None if stamped is None else stamped[0]

    async def read_stamped(self, timeout: float | None = None) -> tuple[bytes, int] | None:
        """The next chunk and `time.monotonic_ns()` when it was read; None when `timeout`
        seconds pass with nothing read."""
        try:
            async with asyncio.timeout(timeout):
                item = await self._queue.get()
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        if not self._done:
            self._done = True
            self._loop.remove_reader(self._fd)


def is_gone(exc: OSError) -> bool:
    return exc.errno in _GONE_ERRNOS or exc.errno == errno.ENOENT


class ReopeningDevice:
    """What the fd-based device drivers share: open once without failing, and chunks read for as
    long as they are iterated, the device reopened with jittered backoff whenever it is missing or
    vanishes. A driver supplies `_open_now()` (sets `_reader`, raises DeviceGone), `close()`,
    `_lost()` (what to drop and log when the device went away) and `_read_timeout()`; `_kind`
    names its log events (`scanner.lost`, `scale.lost`)."""

    _kind = "scanner"
    _reader: FdReader | None
    _reopen_max_s: float
    _log: Any

    @property
    def connected(self) -> bool:
        return self._reader is not None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Try once; a missing device is not an error here, `scans()` retries."""
        try:
            self._open_now()
        except DeviceGone as exc:
            self._log.warning(f"{self._kind}.unavailable", error=str(exc))

    def _open_now(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def _stop_reader(self) -> None:
        if self._reader is not None:
            self._reader.stop()
            self._reader = None

    def _lost(self) -> dict[str, Any]:
        """Called when the device went away: drop what was half read; fields for the log line."""
        return {}

    def _read_timeout(self) -> float | None:
        return None

    async def _chunks(self) -> AsyncIterator[tuple[bytes | None, int]]:
        """(chunk, time it was read) for every read; (None, time) when `_read_timeout()` passed."""
        delays = backoff_delays(0.1, self._reopen_max_s)
        while True:
            if self._reader is None:
                try:
                    self._open_now()
                except DeviceGone as exc:
                    delay = next(delays)
                    self._log.debug(f"{self._kind}.reopen_wait", error=str(exc), delay_s=round(delay, 2))
                    await asyncio.sleep(delay)
                    continue
                delays = backoff_delays(0.1, self._reopen_max_s)
            assert self._reader is not None
            try:
                stamped = await self._reader.read_stamped(self._read_timeout())
            except (DeviceGone, OSError) as exc:
                if isinstance(exc, OSError) and not is_gone(exc):
                    raise
                self._log.warning(f"{self._kind}.lost", error=str(exc), **self._lost())
                await self.close()
                continue
            yield stamped if stamped is not None else (None, time.monotonic_ns())


class RawFdDevice(ReopeningDevice):
    """A device read through an fd it opened itself with `os.open` (a hidraw node, a FIFO)."""

    _fd: int | None

    async def close(self) -> None:
        self._stop_reader()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
