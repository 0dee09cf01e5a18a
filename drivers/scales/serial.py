"""A scale on a serial line (RS-232, or the virtual COM port of a USB scale), through pyserial:
MT-SICS and Toledo 8217 are polled (`SI`, `W`) every `poll_interval_s`, and asked at once when a
parcel is scanned (`weigh_now`), then again as each reply comes in until it has its weight; a
continuous-output indicator is only listened to."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import serial
import structlog

from drivers.fdreader import FdReader
from drivers.scales import sics, toledo8217
from drivers.scales.continuous import ContinuousParser
from drivers.scales.reading import Reading
from drivers.scales.sics import SicsParser
from drivers.scales.stability import Stabilizer
from drivers.scales.toledo8217 import Toledo8217Parser
from drivers.serialport import SerialDevice

ASK_GAP_S = 0.05
"""While a parcel waits for its weight the scale is asked again as each reply comes in, but not
sooner than this after the last request, seconds: a scale's display updates 10 to 20 times a
second, so asking faster would only fetch the same reading again."""

REPLY_WAIT_S = 0.25
"""A request with no reply after this long is taken as lost, seconds (a reply takes some 20 ms
at 9600 baud): a parcel waiting for its weight asks again then, not at the next poll."""

REQUESTS: dict[str, bytes | None] = {
    "sics": sics.WEIGH_NOW,
    "toledo8217": toledo8217.WEIGH,
    "continuous": None,
}


class SerialScale(SerialDevice):
    _kind = "scale"

    def __init__(
        self,
        scale_id: str,
        port: str,
        protocol: str,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
        unit: str | None = None,
        poll_interval_s: float = 0.2,
        silent_after_s: float = 2.0,
        stable_count: int = 3,
        stable_tolerance_g: float = 2.0,
        reopen_max_s: float = 5.0,
    ) -> None:
        if protocol not in REQUESTS:
            raise ValueError(f"no serial scale protocol {protocol!r}; known: {', '.join(REQUESTS)}")
        self.scale_id = scale_id
        self.silent_after_s = silent_after_s
        self._port = port
        self._protocol = protocol
        self._settings = {"baudrate": baudrate, "bytesize": bytesize, "parity": parity, "stopbits": stopbits}
        self._unit = unit
        self._request = REQUESTS[protocol]
        self._poll_interval_s = poll_interval_s
        self._stable = (stable_count, stable_tolerance_g)
        self._reopen_max_s = reopen_max_s
        self._serial: serial.Serial | None = None
        self._reader: FdReader | None = None
        self._next_poll = 0.0
        self._in_flight = False
        """A request went out and no reading has come back for it yet."""
        self._asked = False
        """`weigh_now()` wants a request the moment none is in flight."""
        self._sent_at = 0.0
        self._asked_at = 0.0
        """When the last request asked for by `weigh_now()` went: the gap runs from it, so a
        parcel's first request does not wait on the last routine poll."""
        self._later: asyncio.TimerHandle | None = None
        self._parser = self._new_parser()
        self._stabilizer = Stabilizer(*self._stable)
        self._log = structlog.get_logger("drivers.scale").bind(
            component="scale", scale=scale_id, driver="serial", protocol=protocol, port=port
        )

    def _new_parser(self) -> SicsParser | Toledo8217Parser | ContinuousParser:
        if self._protocol == "sics":
            return SicsParser()
        if self._protocol == "toledo8217":
            return Toledo8217Parser(self._unit)
        return ContinuousParser()

    def _open_now(self) -> None:
        # write_timeout=0: a request is a few bytes; one the line cannot take now is dropped, never
        # waited for on the event loop
        self._open_port(write_timeout=0, **self._settings)
        self._parser = self._new_parser()
        self._stabilizer = Stabilizer(*self._stable)
        self._in_flight = self._asked = False
        self._next_poll = self._sent_at = self._asked_at = 0.0
        self._log.info("scale.opened", **self._settings)
        if self._protocol == "sics":
            self._send(sics.RESET)  # the manual's advice: start every session from a known state

    def _send(self, data: bytes) -> None:
        if self._serial is None:
            return
        with contextlib.suppress(serial.SerialException, OSError):
            self._serial.write(data)

    def _lost(self) -> dict[str, Any]:
        return {"partial_bytes_dropped": len(self._parser.pending)}

    def _read_timeout(self) -> float | None:
        return self._poll_interval_s if self._request is not None else self.silent_after_s

    def weigh_now(self) -> None:
        self._asked = True  # reset when the port is (re)opened; never sent for a continuous scale
        self._poll()

    def _poll(self) -> None:
        # One request in flight at a time: the next goes at the poll interval (a silent scale is
        # asked again then), or, while a parcel waits for its weight, once a reply came (not within
        # ASK_GAP_S of the last such request) or REPLY_WAIT_S passed without one. Two in flight would
        # leave a reply to the first read as if it answered the second.
        self._cancel_later()
        if self._request is None or self._serial is None:
            return
        now = time.monotonic()
        if now < self._next_poll:
            if not self._asked:
                return
            due = self._sent_at + REPLY_WAIT_S if self._in_flight else self._asked_at + ASK_GAP_S
            if now < due:
                self._later = asyncio.get_running_loop().call_later(due - now, self._poll)
                return
        self._send(self._request)
        if self._asked:
            self._asked_at = now
        self._in_flight, self._asked = True, False
        self._sent_at = now
        self._next_poll = now + self._poll_interval_s

    def _cancel_later(self) -> None:
        if self._later is not None:
            self._later.cancel()
            self._later = None

    async def close(self) -> None:
        self._cancel_later()
        await super().close()

    async def readings(self) -> AsyncIterator[Reading]:
        async for chunk, _now in self._chunks():
            if chunk is not None:
                for reading in self._parser.feed(chunk):
                    self._in_flight = False
                    yield self._stabilizer.feed(reading)
            self._poll()
