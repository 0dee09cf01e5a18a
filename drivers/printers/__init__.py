"""Printer drivers, chosen by transport from an explicit registry; each speaks ZPL or ESC/POS, or
(ipp, cups) takes PDF documents.

The registry names each transport's module and class, imported when a printer with that
transport is configured (pyserial only for a serial printer or scanner).
"""

from __future__ import annotations

from typing import Any

from drivers.printers.base import NotSent, PartlySent, PrinterDriver
from drivers.printers.status import PrinterStatus
from drivers.registry import load

PRINTER_DRIVERS: dict[str, str] = {
    "tcp": "drivers.printers.tcp:TcpPrinter",
    "serial": "drivers.printers.serial:SerialPrinter",
    "device": "drivers.printers.device:DevicePrinter",
    "file": "drivers.printers.file:FilePrinter",
    "ipp": "drivers.printers.ipp:IppPrinter",
    "cups": "drivers.printers.ipp:IppPrinter",
}


def printer_class(transport: str) -> type[Any]:
    try:
        spec = PRINTER_DRIVERS[transport]
    except KeyError:
        raise ValueError(
            f"no printer transport {transport!r}; known: {', '.join(sorted(PRINTER_DRIVERS))}"
        ) from None
    return load(spec)


def printer_for(transport: str, printer_id: str, language: str, **options: Any) -> PrinterDriver:
    instance: PrinterDriver = printer_class(transport)(printer_id, language, **options)
    return instance


__all__ = ["PRINTER_DRIVERS", "NotSent", "PartlySent", "PrinterDriver", "PrinterStatus", "printer_class",
           "printer_for"]  # fmt: skip
