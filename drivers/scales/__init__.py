"""Scales (contract cli.md `scales:`; facts and sources in ../shared/reference/scales.md).

Theory of operation. One protocol a file, each a pure parser (bytes in, `Reading`s out, no I/O,
no clock): `sics.py` (Mettler Toledo MT-SICS), `toledo8217.py` (the scanner-scale "weight only"
protocol), `continuous.py` (indicators that send a line every display update), `hidpos.py` (USB
HID POS scale data reports, usage page 0x8D). Every parser takes bytes as they arrive, whole or
one at a time, and keeps what follows a complete reply for the next. Weights are reported in
grams whatever unit the scale uses. A reading is stable by the scale's own flag where the
protocol has one; `stability.Stabilizer` decides it from N equal readings in a row where not.

Drivers, one a file, chosen from `SCALE_DRIVERS` by the configured `type`: `serial.py` (the three
serial protocols; MT-SICS and Toledo 8217 polled, continuous listened to) and `hid.py` (hidraw, or
a FIFO in simulation mode). Both reopen a vanished device with backoff, as the scanner drivers do
(drivers/fdreader.py).
"""

from __future__ import annotations

from typing import Any

from drivers.registry import load
from drivers.scales.base import ScaleDriver
from drivers.scales.reading import Reading

SCALE_DRIVERS: dict[str, str] = {
    "serial": "drivers.scales.serial:SerialScale",
    "hid": "drivers.scales.hid:HidScale",
}


def scale_for(kind: str, scale_id: str, **options: Any) -> ScaleDriver:
    """A driver instance for `kind` (a key of `SCALE_DRIVERS`); it is not opened yet."""
    try:
        spec = SCALE_DRIVERS[kind]
    except KeyError:
        raise ValueError(f"no scale driver {kind!r}; known: {', '.join(sorted(SCALE_DRIVERS))}") from None
    instance: ScaleDriver = load(spec)(scale_id, **options)
    return instance


__all__ = ["SCALE_DRIVERS", "Reading", "ScaleDriver", "scale_for"]
