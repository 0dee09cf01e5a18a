"""What every printer driver gives the daemon: open / send / status / close."""

from __future__ import annotations

from typing import Protocol

from drivers.errors import DeviceError
from drivers.printers.status import PrinterStatus


class NotSent(DeviceError):
    """Nothing of the job reached the printer (refused, absent): safe to try again later."""


class PartlySent(DeviceError):
    """The connection died after the first byte: the label may or may not have printed."""


class PrinterDriver(Protocol):
    printer_id: str
    language: str

    async def open(self) -> None: ...

    async def send(self, data: bytes, name: str = "job") -> None:
        """Deliver one job's bytes. Raises NotSent or PartlySent."""

    async def status(self) -> PrinterStatus:
        """Ask the printer; `offline` when it does not answer in time. Never raises."""

    def prepare(self) -> None:
        """A job follows at once: get ready for it meanwhile (a TCP printer connects while the job's
        claim is being committed). The next `send` uses what was prepared. Never raises."""

    def unprepare(self) -> None:
        """The job announced by `prepare` is not coming: drop what was prepared, send nothing."""

    async def close(self) -> None: ...
