"""What every scale driver gives the agent: an async iterator of readings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from drivers.scales.reading import Reading


class ScaleDriver(Protocol):
    """A scale. `open()` (or `async with`) before `readings()`; `close()` when done.

    `readings()` yields every `Reading` the scale sends (asked for, where the protocol is polled)
    for as long as it is iterated, stability already decided (`Stabilizer` for a scale without a
    flag). A device that is missing or unplugged is reopened with backoff inside `readings()`; it
    never ends the iteration. Whether the scale is offline is the caller's verdict, from
    `connected` and `silent_after_s`.
    """

    scale_id: str
    silent_after_s: float | None
    """A scale that sends nothing for this long is offline even with its port open (a polled
    scale that does not answer, a continuous one gone quiet); None for a scale that speaks only
    when its weight changes (HID)."""

    async def open(self) -> None: ...

    def weigh_now(self) -> None:
        """A parcel has just been scanned: ask for a reading now rather than at the next poll, and
        again as soon as each reply is in, for as long as this keeps being called. A no-op for a
        scale that is never asked (continuous, HID), and while the device is away."""
        ...

    def readings(self) -> AsyncIterator[Reading]: ...

    async def close(self) -> None: ...

    @property
    def connected(self) -> bool: ...
