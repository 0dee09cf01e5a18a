"""A scale component and its driver on real fds, with no simulator in between: the test plays the
scale on the master side of a pty (MT-SICS) or writes HID reports into a FIFO, so it decides
exactly when the scale answers, stays silent, or vanishes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from drivers.scales.serial import ASK_GAP_S
from edge_agent.config import HidScaleConfig, SerialScaleConfig
from edge_agent.scales.component import ScaleComponent
from edge_agent.scales.service import Scales
from edge_agent.scales.weighing import Latest


class Station:
    """What the component's and the service's ports see."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []
        self.alerts: list[dict[str, Any]] = []
        self.shown: list[list[dict[str, Any]]] = []

    def alert(self, kind: str, **fields: Any) -> None:
        self.alerts.append({"kind": kind, **fields})


async def until(predicate: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def started(
    config: SerialScaleConfig | HidScaleConfig,
) -> tuple[Station, Scales, ScaleComponent, asyncio.Task[None]]:
    """A component run as the supervisor runs it, its ports the `Station`'s."""
    station = Station()
    scales = Scales(lambda: None, station.alert, station.shown.append)  # type: ignore[arg-type,return-value]
    component = ScaleComponent(config, scales.changed)
    scales.components[config.id] = component
    await component.start()
    return station, scales, component, asyncio.create_task(component.run())


def read_all(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 256)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


@contextlib.asynccontextmanager
async def sics_on_a_pty(
    tmp_path: Path, poll_interval_ms: int, offline_after_s: float
) -> AsyncIterator[tuple[int, Station, Scales, ScaleComponent]]:
    """An MT-SICS scale component on a pty whose master side (non-blocking) the test plays the
    balance on; stopped, and the pty closed, on the way out."""
    master, slave = os.openpty()
    os.set_blocking(master, False)
    link = tmp_path / "scale"
    link.symlink_to(os.ttyname(slave))
    config = SerialScaleConfig(id="sc1", type="serial", protocol="sics", port=str(link),
                               poll_interval_ms=poll_interval_ms, offline_after_s=offline_after_s)  # fmt: skip
    station, scales, component, task = await started(config)
    try:
        yield master, station, scales, component
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await component.stop()
        os.close(master)
        os.close(slave)


async def _silent_then_answering(tmp_path: Path) -> None:
    async with sics_on_a_pty(tmp_path, poll_interval_ms=50, offline_after_s=0.5) as pty:
        master, station, scales, component = pty
        await asyncio.sleep(0.3)
        asked = read_all(master)
        assert asked.startswith(b"@\r\n") and asked.count(b"SI\r\n") >= 2  # reset first, then polled
        # the port is open but nothing answers: offline once the limit passed, announced once
        await until(lambda: station.alerts, "the offline alert")
        assert component.latest.state == "offline" and component.connected
        assert station.alerts == [{"kind": "scale", "scale": "sc1", "state": "offline"}]
        # it answers: a moving weight, then a stable one
        os.write(master, b"S D     947.50 g\r\n")
        await until(lambda: component.latest.state == "motion", "motion")
        after = time.monotonic_ns()
        waiting = asyncio.create_task(component.settled(after, after + 2_000_000_000))
        await asyncio.sleep(0.1)
        assert not waiting.done()  # still moving: the wait goes on
        os.write(master, b"S S     950.00 g\r\n")
        latest: Latest = await asyncio.wait_for(waiting, 1.0)
        assert latest.loaded() and latest.reading is not None and latest.reading.grams == 950.0
        assert latest.at_ns >= after
        assert scales.states()[0] | {"readings": 0} == {"id": "sc1", "state": "ok", "grams": 950, "stable": True,
                                                        "type": "serial", "protocol": "sics", "readings": 0}  # fmt: skip
        # a stable reading from before the scan is not the parcel's: the wait ends at the deadline
        now = time.monotonic_ns()
        stale = await component.settled(now + 10**12, now + 200_000_000)
        assert stale.at_ns < now + 10**12
        # then silent again: offline again, and alerted again (the state went back to offline)
        await until(lambda: component.latest.state == "offline", "offline again", timeout=3.0)
        assert len(station.alerts) == 2
    assert component.latest.state == "offline" and len(station.alerts) == 2  # stopping is no alert


def test_a_polled_scale_that_does_not_answer_is_offline_and_one_that_settles_is_waited_for(
    tmp_path: Path,
) -> None:
    asyncio.run(_silent_then_answering(tmp_path))


async def _asked_at_once(tmp_path: Path) -> None:
    # polled every 10 s: any request sooner than that was asked for by the parcel waiting
    async with sics_on_a_pty(tmp_path, poll_interval_ms=10000, offline_after_s=600) as pty:
        master, _, _, component = pty
        heard = bytearray()

        async def next_request(what: str) -> bytes:
            def line_in() -> bool:
                heard.extend(read_all(master))
                return b"\r\n" in heard

            await until(line_in, what)
            line, _, rest = bytes(heard).partition(b"\r\n")
            heard[:] = rest
            return line

        assert await next_request("the reset") == b"@"
        os.write(master, b'I4 A "0123456789"\r\n')  # the reset's answer is no weight
        assert await next_request("the first poll") == b"SI"
        os.write(master, b"S S       0.00 g\r\n")  # an empty pan
        await until(lambda: component.latest.state == "ok", "the empty pan")
        after = time.monotonic_ns()  # a parcel is scanned
        waiting = asyncio.create_task(component.settled(after, after + 8_000_000_000))
        assert await next_request("a request for the parcel, not at the next poll") == b"SI"
        os.write(master, b"S D     947.50 g\r\n")  # still moving
        assert await next_request("the next request as soon as the reply is in") == b"SI"
        os.write(master, b"S S     950.00 g\r\n")
        latest: Latest = await asyncio.wait_for(waiting, 5.0)
        assert latest.reading is not None and latest.reading.grams == 950.0 and latest.at_ns >= after
        await asyncio.sleep(0.3)
        assert bytes(heard) + read_all(master) == b""  # nobody waits: back to the poll interval


def test_a_parcel_waiting_for_its_weight_asks_a_polled_scale_at_once_and_until_it_settles(
    tmp_path: Path,
) -> None:
    asyncio.run(_asked_at_once(tmp_path))


async def _never_settling(tmp_path: Path) -> None:
    async with sics_on_a_pty(tmp_path, poll_interval_ms=10000, offline_after_s=600) as pty:
        master, _, _, component = pty
        await until(lambda: read_all(master).startswith(b"@\r\n"), "the reset")
        os.write(master, b"S S       0.00 g\r\n")
        await until(lambda: component.latest.state == "ok", "the empty pan")
        read_all(master)
        after = time.monotonic_ns()
        waiting = asyncio.create_task(component.settled(after, after + 600_000_000))
        asked = 0
        while not waiting.done():  # every request answered at once, and always still moving
            n = read_all(master).count(b"SI\r\n")
            asked += n
            if n:
                os.write(master, b"S D     947.50 g\r\n")
            await asyncio.sleep(0.002)
        latest = waiting.result()
        assert latest.state == "motion" and not latest.loaded()  # the deadline, no stable weight
        # asked again and again, but no faster than the scale's display can change
        assert 2 <= asked <= 0.6 / ASK_GAP_S + 2, asked


def test_a_scale_that_never_settles_is_asked_no_faster_than_its_display_changes(tmp_path: Path) -> None:
    asyncio.run(_never_settling(tmp_path))


async def _hid_unplugged(tmp_path: Path) -> None:
    fifo = tmp_path / "scale.reports"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    config = HidScaleConfig(id="h1", type="hid", device=str(fifo), reopen_max_s=0.2)
    station, scales, component, task = await started(config)
    try:
        # two reports back to back and half of a third: the FIFO is a byte stream
        os.write(writer, bytes([3, 3, 2, 0, 0x90, 0x01]) + bytes([3, 4, 2, 0, 0xB6, 0x03]) + bytes([3, 4]))
        await until(lambda: component.latest.state == "ok", "a stable report")
        assert component.latest.reading is not None and component.latest.reading.grams == 950.0
        os.close(writer)  # the writer goes away: the device is gone
        os.unlink(fifo)
        await until(lambda: component.latest.state == "offline", "offline")
        assert station.alerts == [{"kind": "scale", "scale": "h1", "state": "offline"}]
        os.mkfifo(fifo)
        writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        await asyncio.sleep(0.5)  # reopened with backoff
        os.write(writer, bytes([3, 4, 3, 0xFD, 0x9A, 0x04]))  # 1178 x 10^-3 kg
        await until(lambda: component.latest.state == "ok", "back", timeout=5.0)
        assert component.latest.reading is not None and component.latest.reading.grams == 1178.0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await component.stop()
        os.close(writer)


def test_a_hid_scale_unplugged_and_back(tmp_path: Path) -> None:
    asyncio.run(_hid_unplugged(tmp_path))
