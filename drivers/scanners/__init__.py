"""Scanner drivers, chosen by name from an explicit registry.

The registry names each driver's module and class; a driver's module (and what it needs: evdev,
ctypes and libxkbcommon for HID keyboards) is imported only when a scanner of that kind is
configured, so an agent with a serial scanner does not carry the HID drivers.
"""

from __future__ import annotations

from typing import Any

from drivers.registry import load
from drivers.scanners.base import RawScan, ScannerDriver

SCANNER_DRIVERS: dict[str, str] = {
    "serial": "drivers.scanners.serial:SerialScanner",
    "hid": "drivers.scanners.hid:HidScanner",
    "hidpos": "drivers.scanners.hidpos:HidPosScanner",
}


def scanner_class(kind: str) -> type[Any]:
    try:
        spec = SCANNER_DRIVERS[kind]
    except KeyError:
        raise ValueError(f"no scanner driver {kind!r}; known: {', '.join(sorted(SCANNER_DRIVERS))}") from None
    return load(spec)


def scanner_for(kind: str, scanner_id: str, **options: Any) -> ScannerDriver:
    """A driver instance for `kind` (a key of `SCANNER_DRIVERS`); it is not opened yet."""
    instance: ScannerDriver = scanner_class(kind)(scanner_id, **options)
    return instance


__all__ = ["SCANNER_DRIVERS", "RawScan", "ScannerDriver", "scanner_class", "scanner_for"]
