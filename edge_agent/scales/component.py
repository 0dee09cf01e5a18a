"""One configured scale, read for as long as the agent runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from drivers.scales import ScaleDriver, scale_for
from drivers.scales.reading import Reading
from edge_agent.config import HidScaleConfig, SerialScaleConfig
from edge_agent.scales.weighing import Latest

WATCH_S = 0.25
"""How often the silence and the port are looked at, seconds."""

Changed = Callable[[Latest, Latest], None]


def driver_for(config: SerialScaleConfig | HidScaleConfig) -> ScaleDriver:
    return scale_for(config.type, config.id, **config.driver_options())


class ScaleComponent:
    """Ports: its config section, `on_change(latest, previous)` when the state changes (not on every
    reading). `latest` is replaced whole on every reading, for readers in other threads."""

    def __init__(
        self,
        config: SerialScaleConfig | HidScaleConfig,
        on_change: Changed,
        make_driver: Callable[[SerialScaleConfig | HidScaleConfig], ScaleDriver] = driver_for,
    ) -> None:
        self.name = f"scale:{config.id}"
        self.config = config
        self._on_change = on_change
        self._make_driver = make_driver
        self._driver: ScaleDriver | None = None
        self.latest = Latest(config.id, "offline", None, time.monotonic_ns(), config.min_load_g)
        self.readings_total = 0
        self._news = asyncio.Event()
        self._heard_ns = 0
        self._started_ns = 0
        self._announced = False
        self._log = structlog.get_logger("edge_agent.scales").bind(component="scale", scale=config.id)

    @property
    def connected(self) -> bool:
        return self._driver is not None and self._driver.connected

    async def start(self) -> None:
        self._started_ns = time.monotonic_ns()
        self._driver = self._make_driver(self.config)
        await self._driver.open()

    async def run(self) -> None:
        assert self._driver is not None
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._watch(), name=f"{self.name}:watch")
            async for reading in self._driver.readings():
                self.readings_total += 1
                self._heard_ns = time.monotonic_ns()
                self._set(reading.state, reading)

    async def stop(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.close()
        # stopping is not the scale going away: no alert, but nothing reads a stale weight either
        self.latest = Latest(self.config.id, "offline", None, time.monotonic_ns(), self.config.min_load_g)

    async def _watch(self) -> None:
        """Offline when the port is gone, or when the scale says nothing for its silence limit; a
        scale that never spoke is announced offline once, when that limit first passes."""
        driver = self._driver
        assert driver is not None
        limit_ns = int((driver.silent_after_s or 2.0) * 1e9)
        while True:
            await asyncio.sleep(WATCH_S)
            now = time.monotonic_ns()
            silent = (
                driver.silent_after_s is not None and now - max(self._heard_ns, self._started_ns) > limit_ns
            )
            if not driver.connected or silent:
                why = "device not present" if not driver.connected else "no answer"
                if self.latest.state != "offline":
                    self._set("offline", None, why)
                elif not self._announced and now - self._started_ns > limit_ns:
                    self._announced = True
                    self._on_change(self.latest, self.latest)

    def _set(self, state: str, reading: Reading | None, why: str = "") -> None:
        previous = self.latest
        self.latest = Latest(self.config.id, state, reading, time.monotonic_ns(), self.config.min_load_g)
        self._news.set()
        self._news = asyncio.Event()
        if state != previous.state:
            self._announced = True
            detail = reading.detail if reading is not None else why
            self._log.info("scale.state", state=state, previous=previous.state, grams=reading and reading.grams,
                           detail=detail)  # fmt: skip
            self._on_change(self.latest, previous)

    async def settled(self, after_ns: int, deadline_ns: int) -> Latest:
        """The first reading since `after_ns` with a parcel's stable weight on the pan, or the
        latest at the deadline."""
        while not (self.latest.loaded() and self.latest.at_ns >= after_ns):
            left = (deadline_ns - time.monotonic_ns()) / 1e9
            if left <= 0:
                break
            if self._driver is not None:
                self._driver.weigh_now()  # a polled scale is asked now, not at its next poll
            news = self._news
            try:
                async with asyncio.timeout(left):
                    await news.wait()
            except TimeoutError:
                break
        return self.latest
