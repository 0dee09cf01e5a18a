"""An office printer over IPP (an IPP Everywhere printer, or a CUPS queue, which CUPS serves over
IPP at `ipp://localhost:631/printers/NAME`), through CUPS's own client `ipptool`: documents go as
PDF, as they are (`Print-Job`, document-format application/pdf); status is
`Get-Printer-Attributes`. ipptool runs as a subprocess with a deadline, so a printer that hangs
holds a job's worker, never the event loop.

Exactly once: a printer never reached, or one that answered with an error status (busy, not
accepting jobs) made no job: `NotSent`, tried again later. Any other failure after the request
left (no answer in time) may have printed: `PartlySent`, the job is `uncertain`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

import structlog

from drivers.printers.base import NotSent, PartlySent
from drivers.printers.ipp_status import attributes, status_of
from drivers.printers.status import PrinterStatus

BUSY_WAIT_S = 120.0
"""How long a job waits on a printer that answers `server-error-busy` before it is put back, seconds."""
STATUS_TEST = """{
  NAME "status"
  OPERATION Get-Printer-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR keyword requested-attributes printer-state,printer-state-reasons,printer-state-message,media-ready,printer-input-tray
  STATUS successful-ok
  DISPLAY printer-state
  DISPLAY printer-state-reasons
  DISPLAY printer-state-message
  DISPLAY media-ready
  DISPLAY printer-input-tray
}
"""
PRINT_TEST = """{
  NAME "print"
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name edge-agent
  ATTR name job-name $job
  ATTR mimeMediaType document-format application/pdf
  FILE $filename
  STATUS successful-ok
  STATUS successful-ok-ignored-or-substituted-attributes
  EXPECT job-id OF-TYPE integer
  DISPLAY job-id
}
"""


class IppPrinter:
    def __init__(
        self, printer_id: str, language: str = "pdf", url: str = "", timeout_s: float = 10.0
    ) -> None:
        self.printer_id = printer_id
        self.language = language
        self._url = url
        self._timeout_s = timeout_s
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.last_job_id: int | None = None
        """The printer's job id of the last job sent."""
        self._log = structlog.get_logger("drivers.printer").bind(
            component="printer", printer=printer_id, driver="ipp"
        )

    async def open(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix=f"edge-ipp-{self.printer_id}-")
        for name, text in (("status.test", STATUS_TEST), ("print.test", PRINT_TEST)):
            (Path(self._dir.name) / name).write_text(text)

    async def _ipptool(self, test: str, *options: str, timeout_s: float) -> tuple[int, str]:
        assert self._dir is not None
        proc = await asyncio.create_subprocess_exec(
            "ipptool", "-T", f"{timeout_s:g}", "-t", *options, self._url, str(Path(self._dir.name) / test),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            async with asyncio.timeout(timeout_s + 5):
                out, _ = await proc.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return -1, f"ipptool did not finish in {timeout_s + 5:g} s"
        return proc.returncode or 0, out.decode("utf-8", "replace")

    async def status(self) -> PrinterStatus:
        try:
            code, out = await self._ipptool("status.test", timeout_s=self._timeout_s)
        except OSError as exc:
            return PrinterStatus("error", f"cannot run ipptool: {exc}")
        if code != 0:
            return PrinterStatus("offline", _why(out))
        return status_of(attributes(out))

    async def send(self, data: bytes, name: str = "job") -> None:
        assert self._dir is not None
        path = Path(self._dir.name) / "job.pdf"
        path.write_bytes(data)
        deadline = time.monotonic() + BUSY_WAIT_S
        try:
            while True:
                code, out = await self._ipptool("print.test", "-f", str(path), "-d", f"job={name}",
                                                timeout_s=max(self._timeout_s, 30.0))  # fmt: skip
                # a printer that takes one job at a time says so; it made no job: ask again shortly
                if "got server-error-busy" not in out or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        except OSError as exc:
            raise NotSent(f"cannot run ipptool: {exc}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if code != 0:
            why = _why(out)
            # the printer answered with an error status (busy, not accepting, bad document): it made
            # no job; or it was never reached. Anything else (a timeout after the request left) may
            # have printed.
            if (
                "Unable to connect" in out
                or "Unable to open" in out
                or re.search(r"\(got (client|server)-error", out)
            ):
                raise NotSent(why)
            raise PartlySent(why)
        job_id = attributes(out).get("job-id")
        self.last_job_id = int(job_id) if job_id and job_id.isdigit() else None
        self._log.info("printer.ipp_job", job=name, ipp_job_id=self.last_job_id)

    def prepare(self) -> None:
        pass

    def unprepare(self) -> None:
        pass

    async def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def _why(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    useful = [
        line for line in lines if "ipptool:" in line or "FAIL" in line or "EXPECTED" in line or "GOT" in line
    ]
    return "; ".join(useful or lines[-2:])[:300] or "ipptool failed"
