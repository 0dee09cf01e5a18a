"""Scanner drivers, chosen by name from an explicit registry."""

from __future__ import annotations

from typing import Any

from drivers.scanners.base import RawScan, ScannerDriver
from drivers.scanners.hid import HidScanner
from drivers.scanners.hidpos import HidPosScanner
from drivers.scanners.serial import SerialScanner

SCANNER_DRIVERS: dict[str, type[Any]] = {
    "serial": SerialScanner,
    "hid": HidScanner,
    "hidpos": HidPosScanner,
}


def scanner_for(kind: str, scanner_id: str, **options: Any) -> ScannerDriver:
    """A driver instance for `kind` (a key of `SCANNER_DRIVERS`); it is not opened yet."""
    try:
        driver = SCANNER_DRIVERS[kind]
    except KeyError:
        raise ValueError(f"no scanner driver {kind!r}; known: {', '.join(sorted(SCANNER_DRIVERS))}") from None
    instance: ScannerDriver = driver(scanner_id, **options)
    return instance


__all__ = ["SCANNER_DRIVERS", "RawScan", "ScannerDriver", "scanner_for"]
