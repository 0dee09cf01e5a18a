"""Is the wall clock trustworthy yet? A Pi has no RTC: until NTP syncs, it boots at an old time.

The kernel knows (adjtimex: STA_UNSYNC, set until a time daemon disciplines the clock). Events
stamped while the clock is not synchronised carry `"clock_synced": false`, so the central system
can distrust their `ts`; their order is the gapless `seq`, which no clock touches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from functools import cache

STA_UNSYNC = 0x0040
TIME_ERROR = 5
# A clock before this was never set: the agent did not exist yet.
EARLIEST_PLAUSIBLE = 1767225600  # 2026-01-01T00:00:00Z


class _Timex(ctypes.Structure):
    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("padding", ctypes.c_int * 11),
    ]  # fmt: skip


@cache
def _adjtimex() -> object | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
        return libc.adjtimex
    except (OSError, AttributeError):
        return None


def synced_from(state: int, status: int, now: float) -> bool:
    """Pure: the kernel's answer and the time, to a verdict."""
    if now < EARLIEST_PLAUSIBLE:
        return False
    return state != TIME_ERROR and not status & STA_UNSYNC


def kernel_clock_synced(now: float | None = None) -> bool:
    now = time.time() if now is None else now
    adjtimex = _adjtimex()
    if adjtimex is None:
        return now >= EARLIEST_PLAUSIBLE
    timex = _Timex()
    state = adjtimex(ctypes.byref(timex))  # type: ignore[operator]
    if state < 0:
        return now >= EARLIEST_PLAUSIBLE
    return synced_from(int(state), int(timex.status), now)


class ClockWatch:
    """Asks the kernel at most every `every_s` seconds: stamping a scan must stay cheap."""

    def __init__(self, every_s: float = 30.0) -> None:
        self._every = every_s
        self._checked = -1e9
        self._synced = False

    @property
    def synced(self) -> bool:
        now = time.monotonic()
        if now - self._checked >= self._every:
            self._checked = now
            self._synced = kernel_clock_synced()
        return self._synced
