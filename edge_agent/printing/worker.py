"""A printer's worker: it prints the printer's accepted jobs one at a time, in order, each at most
once (the states are service.py's), polls the printer's status and reports every change, and
sends buzzer bytes between jobs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import structlog

from drivers.printers import NotSent, PartlySent, PrinterDriver, PrinterStatus, printer_for
from drivers.printers.file import FilePrinter
from edge_agent.printing.documents.pages import MAX_PAGE_PIXELS, Profile
from edge_agent.printing.jobdata import StoredJob, job_data, templates_of
from edge_agent.printing.render_escpos import render_escpos
from edge_agent.printing.render_zpl import render_zpl
from edge_agent.printing.service import PrintService, document_of
from edge_agent.printing.templates import Filled, TemplateError, fill
from edge_agent.sync.models import parse_rfc3339

SIGNAL_MAX_AGE_S = 3.0
"""A buzzer that could not sound within this many seconds of its scan is dropped, seconds."""


def driver_for(cfg: Any, timeout: float) -> PrinterDriver:
    """The driver of a configured printer, not opened yet."""
    options: dict[str, Any]
    if cfg.transport == "tcp":
        options = {"host": cfg.host, "port": cfg.port, "timeout_s": timeout}
    elif cfg.transport == "serial":
        options = {"port": cfg.port, "baudrate": cfg.baudrate, "timeout_s": timeout}
    elif cfg.transport == "device":
        options = {"path": cfg.path, "timeout_s": timeout}
    elif cfg.transport in ("ipp", "cups"):
        options = {"url": cfg.ipp_url(), "timeout_s": timeout}
    else:
        options = {"path": str(cfg.path)}
    return printer_for(cfg.transport, cfg.id, cfg.language, **options)


class PrinterWorker:
    def __init__(self, service: PrintService, printer_id: str) -> None:
        self.name = f"printer:{printer_id}"
        self.printer_id = printer_id
        self._service = service
        cfg = next(p for p in service.config().printers if p.id == printer_id)
        self.config = cfg
        self.language = cfg.language
        self.last = PrinterStatus("unknown", "not asked yet")
        self._asked_at = float("-inf")
        self._idle = False
        """The last look found no accepted job and nothing is being sent: a new job is the next one."""
        self._taken: deque[StoredJob] = deque()
        self._published: PrinterStatus | None = None
        self._wake = asyncio.Event()
        self._signals: deque[tuple[float, bytes, str]] = deque(maxlen=8)
        self._driver: PrinterDriver | None = None
        self._log = structlog.get_logger("edge_agent.printing").bind(component="printer", printer=printer_id)

    def wake(self) -> None:
        self._idle = False  # jobs were put back or reprinted: the next one comes from storage
        self._wake.set()

    def can_take(self, body: dict[str, Any]) -> bool:
        """Whether a job being accepted may be claimed in the same commit and handed over: the
        worker is idle and its printer said `ready` less than `status_fresh_s` ago. Reserves
        the worker (`take` or `release` follows) and gets the printer ready meanwhile (a TCP
        printer's connection opens while the claim commits)."""
        fresh = time.monotonic() - self._asked_at < self._service.config().printing.status_fresh_s
        not_after = body.get("not_after")
        if not (self._idle and fresh and self.last.ready and self._driver is not None):
            return False
        if not_after and parse_rfc3339(not_after) < datetime.now(UTC):
            return False
        self._idle = False
        self._driver.prepare()
        return True

    def take(self, job: StoredJob) -> None:
        """A job claimed (`printing`) by its accepting commit: sent next, as it is."""
        self._taken.append(job)
        self._wake.set()

    def release(self) -> None:
        self._idle = True
        if self._driver is not None:
            self._driver.unprepare()

    def signal(self, data: bytes, name: str) -> None:
        """Bytes that are not a job (a buzzer): sent between jobs, never inside one."""
        self._signals.append((time.monotonic(), data, name))
        self._wake.set()

    async def _send_signals(self) -> None:
        while self._signals and self._driver is not None:
            queued, data, name = self._signals.popleft()
            if time.monotonic() - queued > SIGNAL_MAX_AGE_S:
                self._log.info("feedback.dropped_stale", signal=name)
                continue
            try:
                await self._driver.send(data, name=name)
            except (NotSent, PartlySent) as exc:
                self._log.warning("feedback.not_sent", signal=name, error=str(exc))

    def _make_driver(self) -> PrinterDriver:
        return driver_for(self.config, self._service.config().printing.status_timeout_s)

    async def start(self) -> None:
        self._driver = self._make_driver()
        await self._driver.open()

    async def stop(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.close()

    async def _check(self) -> PrinterStatus:
        assert self._driver is not None
        status = await self._driver.status()
        self.last = status
        self._asked_at = time.monotonic()
        if status != self._published:
            previous, self._published = self._published, status
            out = self._service.out
            payload = {**out.envelope(), "printer": self.printer_id, "language": self.language,
                       "state": status.state, "detail": status.detail}  # fmt: skip
            await out.publish(
                out.topics.printer_status(self.printer_id), payload, retain=True, kind="printer_status"
            )
            self._log.info("printer.status", state=status.state, detail=status.detail)
            if not status.ready and (previous is None or previous.ready):
                await self._service.alerts.alert("printer", printer=self.printer_id, state=status.state,
                                                 detail=status.detail)  # fmt: skip
        return status

    async def _next_job(self) -> StoredJob | None:
        def query(conn: sqlite3.Connection) -> StoredJob | None:
            row = conn.execute(
                "SELECT job_id, printer, body FROM jobs WHERE printer = ? AND state = 'accepted'"
                " ORDER BY created_at, rowid LIMIT 1", (self.printer_id,)).fetchone()  # fmt: skip
            return StoredJob(row[0], row[1], json.loads(row[2])) if row else None

        return await self._service.stores.reader.read(query)

    async def run(self) -> None:
        poll = self._service.config().printing.poll_interval_s
        await self._check()
        while True:
            self._wake.clear()  # before the query: a job accepted during it wakes the wait below
            await self._send_signals()
            if self._taken:
                taken = self._taken.popleft()
                await self._send(taken, poll, self._log.bind(job_id=taken.job_id))
                continue
            job = await self._next_job()
            self._idle = job is None and not self._taken
            if job is None:
                try:
                    async with asyncio.timeout(poll):
                        await self._wake.wait()
                except TimeoutError:
                    await self._check()
                continue
            await self._print(job, poll)

    async def _print(self, job: StoredJob, poll: float) -> None:
        service, body = self._service, job.body
        log = self._log.bind(job_id=job.job_id)
        not_after = body.get("not_after")
        if not_after and parse_rfc3339(not_after) < datetime.now(UTC):
            await service.set_state(job.job_id, "expired", expect=("accepted",),
                                    error={"code": "expired", "message": f"not printed by {not_after}"})  # fmt: skip
            log.warning("job.expired", not_after=not_after)
            return
        fresh = time.monotonic() - self._asked_at < service.config().printing.status_fresh_s
        status = self.last if fresh and self.last.ready else await self._check()
        if not status.ready:
            await asyncio.sleep(poll)  # the job waits; not_after is checked again next time
            return
        data = await self._render_or_fail(job, "accepted")
        if data is None:
            return
        if not await service.set_state(job.job_id, "printing", expect=("accepted",), attempt=True):
            return
        await self._send(job, poll, log, data)

    async def _send(self, job: StoredJob, poll: float, log: Any, data: bytes | None = None) -> None:
        """A job claimed (`printing`): its bytes to the printer, then `printed`, `uncertain`, or back to
        `accepted` when nothing reached the printer."""
        service, body = self._service, job.body
        if data is None:
            data = await self._render_or_fail(job, "printing")
            if data is None:
                return
        if self._driver is None:
            await self._unclaim(job.job_id)
            return
        try:
            await self._driver.send(data, name=job.job_id)
            if isinstance(self._driver, FilePrinter) and body.get("template"):
                await self._driver.write(self._preview(body), job.job_id, ".png")  # the label library
        except NotSent as exc:
            await self._unclaim(job.job_id)
            log.warning("job.not_sent", error=str(exc))
            self.last = PrinterStatus("offline", str(exc))
            self._asked_at = float("-inf")
            await asyncio.sleep(poll)
            return
        except PartlySent as exc:
            await service.set_state(job.job_id, "uncertain", expect=("printing",),
                                    error={"code": "connection_lost", "message": str(exc)})  # fmt: skip
            log.error("job.uncertain", error=str(exc))
            self._asked_at = float("-inf")
            return
        printer_job = getattr(self._driver, "last_job_id", None)
        await service.set_state(job.job_id, "printed", expect=("printing",))
        if printer_job is not None:  # an IPP printer's job-id: what its own queue calls this job
            await service.stores.writer.submit(lambda c: c.execute(
                "UPDATE jobs SET printer_job = ? WHERE job_id = ?", (str(printer_job), job.job_id)))  # fmt: skip
        self._service.station.prints_total += int(body.get("copies", 1))
        log.info("job.printed", bytes=len(data))

    async def _render_or_fail(self, job: StoredJob, state: str) -> bytes | None:
        """The job's bytes; None when it cannot be rendered, and the job (in `state`) is then `failed`."""
        try:
            document = document_of(job.body)
            if document is not None:
                return await self._render_document(*document, int(job.body.get("copies", 1)), job.job_id)
            return self._render(job.body)
        except (TemplateError, ValueError) as exc:
            await self._service.set_state(job.job_id, "failed", expect=(state,),
                                          error={"code": "render_failed", "message": str(exc)})  # fmt: skip
            return None

    async def _unclaim(self, job_id: str) -> None:
        """Nothing of a claimed job reached the printer: it is `accepted` again, sent later."""
        await self._service.stores.writer.submit(lambda c: c.execute(
            "UPDATE jobs SET state = 'accepted' WHERE job_id = ? AND state = 'printing'", (job_id,)))  # fmt: skip

    async def _render_document(self, kind: str, data: bytes, copies: int, job_id: str) -> bytes:
        """A PDF or image rasterised for this printer, in the renderer's process (DocumentError)."""
        cfg, printing = self.config, self._service.config().printing
        if cfg.language == "pdf":
            profile = Profile("pdf", 0, 0, None, printing.max_pages, MAX_PAGE_PIXELS)
        else:
            width, height = cfg.label_dots()
            profile = Profile(cfg.language, cfg.dpi, width, height, printing.max_pages, MAX_PAGE_PIXELS)
        t0 = time.monotonic()
        out = await self._service.documents.render(kind, data, profile, copies)
        self._log.info("job.rendered", job_id=job_id, kind=kind, bytes=len(out),
                       ms=round((time.monotonic() - t0) * 1000, 1))  # fmt: skip
        return out

    def _preview(self, body: dict[str, Any]) -> bytes:
        from edge_agent.printing.render_png import render_png

        return render_png(self._label(body))

    def _render(self, body: dict[str, Any]) -> bytes:
        copies = int(body.get("copies", 1))
        if body.get("zpl") is not None:
            return str(body["zpl"]).encode("utf-8") * copies
        if body.get("escpos_b64") is not None:
            return base64.b64decode(body["escpos_b64"]) * copies
        label = self._label(body)
        if self.language == "zpl":
            return render_zpl(label, copies)
        if self.language == "pdf":
            from edge_agent.printing.render_pdf import render_pdf

            return render_pdf([label] * copies, getattr(self.config, "paper", "a4"))
        return render_escpos(label, copies)

    def _label(self, body: dict[str, Any]) -> Filled:
        config = self._service.config()
        template = templates_of(config)[body["template"]]
        return fill(template, job_data(config, self._service.station.mode, body.get("data") or {}))
