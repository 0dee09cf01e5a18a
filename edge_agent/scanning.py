"""The scan path inside the daemon: driver → decode → match + store (one commit) → feedback → sync.

One `ScannerComponent` per configured scanner. It reads raw scans from its driver, decodes each
inline (pure, microseconds) and hands it to the sink: `ScanService.record` in the daemon.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from drivers.scanners import RawScan, ScannerDriver, scanner_for
from edge_agent.config import AnyScannerConfig, HidPosScannerConfig, SerialScannerConfig
from edge_agent.decode import Decoded

ScanSink = Callable[[RawScan, Decoded], Awaitable[object]]


def driver_for(config: AnyScannerConfig) -> ScannerDriver:
    options: dict[str, Any]
    if isinstance(config, SerialScannerConfig):
        options = {
            "port": config.port,
            "baudrate": config.baudrate,
            "prefix": config.prefix.encode("utf-8"),
            "suffix": config.suffix.encode("utf-8"),
            "max_frame_bytes": config.max_frame_bytes,
            "reopen_max_s": config.reopen_max_s,
        }
    elif isinstance(config, HidPosScannerConfig):
        options = {
            "device": config.device,
            "output_redirection": config.output_redirection,
            "reopen_max_s": config.reopen_max_s,
        }
    else:
        options = {
            "device": config.device,
            "keymap": config.keymap,
            "inter_key_timeout_ms": config.inter_key_timeout_ms,
            "grab": config.grab,
            "reopen_max_s": config.reopen_max_s,
        }
    return scanner_for(config.type, config.id, **options)


class ScannerComponent:
    def __init__(
        self,
        config: AnyScannerConfig,
        decode: Callable[[bytes], Decoded],
        sink: ScanSink,
        make_driver: Callable[[AnyScannerConfig], ScannerDriver] = driver_for,
    ) -> None:
        self.name = f"scanner:{config.id}"
        self.config = config
        self._decode = decode
        self._sink = sink
        self._make_driver = make_driver
        self._driver: ScannerDriver | None = None
        self.scans_total = 0
        self._log = structlog.get_logger("edge_agent.scanning").bind(component="scanner", scanner=config.id)

    @property
    def connected(self) -> bool:
        return self._driver is not None and self._driver.connected

    async def start(self) -> None:
        self._driver = self._make_driver(self.config)
        await self._driver.open()

    async def run(self) -> None:
        assert self._driver is not None
        async for raw in self._driver.scans():
            decoded = self._decode(raw.data)
            self.scans_total += 1
            await self._sink(raw, decoded)

    async def stop(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.close()
