"""Non-blocking reads of a file descriptor on the event loop (`add_reader`), shared by the
serial and HID scanner drivers."""

from __future__ import annotations

import asyncio
import errno
import os

from drivers.errors import DeviceGone

_GONE_ERRNOS = frozenset({errno.EIO, errno.ENODEV, errno.ENXIO, errno.EBADF, errno.EPIPE})


class FdReader:
    """Delivers chunks read from `fd`; raises `DeviceGone` once the fd hangs up or errors."""

    def __init__(self, fd: int, what: str) -> None:
        self._fd = fd
        self._what = what
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
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
        self._queue.put_nowait(chunk)

    def _finish(self, exc: BaseException) -> None:
        if not self._done:
            self._done = True
            self._loop.remove_reader(self._fd)
            self._queue.put_nowait(exc)

    async def read(self, timeout: float | None = None) -> bytes | None:
        """The next chunk; None when `timeout` seconds pass with nothing read."""
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
