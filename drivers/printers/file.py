"""A "printer" that writes every job into a folder: a label library, and a printer for tests."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from pathlib import Path

from drivers.printers.base import NotSent
from drivers.printers.status import PrinterStatus

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
SUFFIX = {"zpl": ".zpl", "escpos": ".escpos"}


class FilePrinter:
    def __init__(self, printer_id: str, language: str, path: str) -> None:
        self.printer_id = printer_id
        self.language = language
        self._folder = Path(path)
        self._counter = itertools.count(1)

    async def open(self) -> None:
        await asyncio.to_thread(self._folder.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        pass

    def prepare(self) -> None:
        """Nothing to get ready for a file."""

    def unprepare(self) -> None:
        pass

    def path_for(self, name: str, suffix: str) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return self._folder / f"{stamp}-{next(self._counter):04d}-{_SAFE.sub('_', name)[:60]}{suffix}"

    async def send(self, data: bytes, name: str = "job") -> None:
        await self.write(data, name, SUFFIX.get(self.language, ".bin"))

    async def write(self, data: bytes, name: str, suffix: str) -> Path:
        path = self.path_for(name, suffix)
        try:
            await asyncio.to_thread(path.write_bytes, data)
        except OSError as exc:
            raise NotSent(f"cannot write {path}: {exc.strerror}") from None
        return path

    async def status(self) -> PrinterStatus:
        ok = await asyncio.to_thread(self._folder.is_dir)
        return (
            PrinterStatus("ready", str(self._folder))
            if ok
            else PrinterStatus("error", f"{self._folder} missing")
        )
