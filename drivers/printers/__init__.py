"""Printer drivers, chosen by transport from an explicit registry; each speaks ZPL or ESC/POS."""

from __future__ import annotations

from typing import Any

from drivers.printers.base import NotSent, PartlySent, PrinterDriver
from drivers.printers.device import DevicePrinter
from drivers.printers.file import FilePrinter
from drivers.printers.serial import SerialPrinter
from drivers.printers.status import PrinterStatus
from drivers.printers.tcp import TcpPrinter

PRINTER_DRIVERS: dict[str, type[Any]] = {
    "tcp": TcpPrinter,
    "serial": SerialPrinter,
    "device": DevicePrinter,
    "file": FilePrinter,
}


def printer_for(transport: str, printer_id: str, language: str, **options: Any) -> PrinterDriver:
    try:
        driver = PRINTER_DRIVERS[transport]
    except KeyError:
        raise ValueError(
            f"no printer transport {transport!r}; known: {', '.join(sorted(PRINTER_DRIVERS))}"
        ) from None
    instance: PrinterDriver = driver(printer_id, language, **options)
    return instance


__all__ = ["PRINTER_DRIVERS", "NotSent", "PartlySent", "PrinterDriver", "PrinterStatus", "printer_for"]
