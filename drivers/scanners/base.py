"""What every scanner driver gives the daemon: an async iterator of raw scans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RawScan:
    scanner: str
    """Scanner id from the configuration."""
    data: bytes
    """The payload as the scanner sent it, without its terminator."""
    t_last_byte_ns: int
    """`time.monotonic_ns()` when the payload's last byte was read: the start of the latency clock."""


class ScannerDriver(Protocol):
    """A scanner. `open()` (or `async with`) before `scans()`; `close()` when done.

    `scans()` yields one `RawScan` per payload for as long as it is iterated. A device that is
    missing or unplugged is reopened with backoff inside `scans()`; it never ends the iteration.
    """

    scanner_id: str

    async def open(self) -> None: ...

    def scans(self) -> AsyncIterator[RawScan]: ...

    async def close(self) -> None: ...

    @property
    def connected(self) -> bool: ...
