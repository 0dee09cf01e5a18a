"""Status query and answer parser of each printer language."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from drivers.printers import escpos_status, zpl_status
from drivers.printers.status import PrinterStatus


class StatusParser(Protocol):
    def feed(self, data: bytes) -> PrinterStatus | None: ...

    def finish(self) -> PrinterStatus | None: ...


# Once part of an answer is in, the rest gets this long before the part is used on its own.
SETTLE_S = 0.4


QUERIES: dict[str, tuple[bytes, Callable[[], StatusParser]]] = {
    "zpl": (zpl_status.QUERY, zpl_status.HostStatusParser),
    "escpos": (escpos_status.QUERY, escpos_status.RealtimeStatusParser),
}
