"""Print jobs, each printed at most once: the job state machine (the printers' workers are in
worker.py).

Theory of operation (one job):

    job/print ─▶ validate ─▶ INSERT (job_id unique) + event `accepted`, one commit ─▶ PUBACK
      ─▶ the printer's worker: not_after passed? ─▶ `expired`
      ─▶ printer status (asked before every job) not ready? ─▶ wait, the job stays `accepted`
      ─▶ claim: state `printing`, attempts + 1, committed BEFORE the first byte leaves
      ─▶ send ─▶ `printed` | nothing left (refused): back to `accepted`, waits
                          | connection lost after the first byte: `uncertain`

A redelivered job (QoS 1, broker replay, agent restart) finds its row and is acknowledged with
no second `accepted`. A job found `printing` at start-up was claimed by an agent that died
while sending: it becomes `uncertain`, like a connection lost mid-job, and is never printed
again by itself; the `reprint` command does that on purpose. Every change of state is one
`event/print` through the outbox, committed with the change.

Each printer's worker also polls its status every `printing.poll_interval_s` and publishes the
retained `printer/{id}/status` on every change, with an `event/alert` when it leaves `ready`.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import structlog
from pydantic import ValidationError

from drivers.printers import PrinterStatus
from edge_agent.config import AgentConfig
from edge_agent.ports import Station, Stores
from edge_agent.printing.documents import DocumentError
from edge_agent.printing.documents.renderer import DocumentRenderer
from edge_agent.printing.errors import JobRejected
from edge_agent.printing.jobdata import StoredJob, job_data, receipt_slip_data, templates_of
from edge_agent.printing.templates import TemplateError, fill
from edge_agent.store import outbox
from edge_agent.sync.alerts import Alerts
from edge_agent.sync.models import PrintJob, describe, parse_json, parse_rfc3339
from edge_agent.sync.outbound import Outbound


class Worker(Protocol):
    """What the service uses of a printer's worker (worker.py): its last status, a nudge, and the
    hand-over of a job claimed as it is accepted."""

    @property
    def language(self) -> str: ...

    @property
    def last(self) -> PrinterStatus: ...

    def wake(self) -> None: ...

    def signal(self, data: bytes, name: str) -> None: ...

    def can_take(self, body: dict[str, Any]) -> bool: ...

    def take(self, job: StoredJob) -> None: ...

    def release(self) -> None: ...


JOB_KINDS = ("template", "zpl", "escpos_b64", "pdf_b64", "image_b64")


def document_of(job: PrintJob | dict[str, Any]) -> tuple[str, bytes] | None:
    """("pdf" | "image", the decoded bytes) of a document job; None for any other."""
    for field, kind in (("pdf_b64", "pdf"), ("image_b64", "image")):
        text = job.get(field) if isinstance(job, dict) else getattr(job, field)
        if text is not None:
            return kind, base64.b64decode(text)
    return None


class PrintService:
    """Ports: `out` (events), `alerts`, `stores`, `station` (mode, print count), `config` (the
    running configuration). Its printers' workers (worker.py) are registered in `workers`."""

    def __init__(
        self,
        out: Outbound,
        alerts: Alerts,
        stores: Stores,
        station: Station,
        config: Callable[[], AgentConfig],
    ) -> None:
        self.out = out
        self.alerts = alerts
        self.stores = stores
        self.station = station
        self.config = config
        self.workers: dict[str, Worker] = {}
        self.documents = DocumentRenderer(
            lambda: (config().printing.render_timeout_s, config().printing.render_memory_mb)
        )
        self._log = structlog.get_logger("edge_agent.printing").bind(component="printing")

    # --- storage (writer thread) -----------------------------------------------------------
    def _event(self, conn: sqlite3.Connection, job_id: str, printer: str, state: str, attempts: int,
               error: dict[str, str] | None) -> None:  # fmt: skip
        payload = {**self.out.envelope(), "job_id": job_id, "printer": printer, "state": state,
                   "attempts": attempts, "error": error}  # fmt: skip
        outbox.enqueue(conn, self.out.topics.event_print, json.dumps(payload, separators=(",", ":")).encode(),
                       kind="print")  # fmt: skip

    def _set_state(
        self, conn: sqlite3.Connection, job_id: str, state: str, *, expect: tuple[str, ...],
        error: dict[str, str] | None = None, attempt: bool = False,
    ) -> bool:  # fmt: skip
        marks = ",".join("?" * len(expect))
        cur = conn.execute(
            f"UPDATE jobs SET state = ?, error = ?, updated_at = ?, attempts = attempts + ? "
            f"WHERE job_id = ? AND state IN ({marks})",
            (state, json.dumps(error) if error else None, time.time(), int(attempt), job_id, *expect),
        )
        if cur.rowcount != 1:
            return False
        printer, attempts = conn.execute(
            "SELECT printer, attempts FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
        self._event(conn, job_id, printer, state, attempts, error)
        return True

    async def set_state(self, job_id: str, state: str, *, expect: tuple[str, ...],
                        error: dict[str, str] | None = None, attempt: bool = False) -> bool:  # fmt: skip
        done = (
            await self.stores.writer.submit(
                lambda c: self._set_state(c, job_id, state, expect=expect, error=error, attempt=attempt)
            )
        ).value
        self.out.wake()
        return done

    # --- inbound ---------------------------------------------------------------------------
    async def on_message(self, payload: bytes) -> None:
        try:
            raw = parse_json(payload)
        except ValueError as exc:
            await self.alerts.bad_message(self.out.topics.job_print, f"print job is not JSON: {exc}")
            return
        job_id = raw.get("job_id") if isinstance(raw, dict) else None
        if not isinstance(job_id, str) or not job_id:
            await self.alerts.bad_message(self.out.topics.job_print, "print job has no job_id")
            return
        try:
            job = PrintJob.model_validate(raw)
            printer = self.validate(job)
            document = document_of(job)
            if document is not None:
                pages = await self.documents.check(*document, self.config().printing.max_pages)
                self._log.info(
                    "job.document", job_id=job_id, kind=document[0], bytes=len(document[1]), pages=pages
                )
        except DocumentError as exc:
            await self.reject(job_id, str(raw.get("printer", "")), "bad_document", str(exc))
            return
        except ValidationError as exc:
            await self.reject(job_id, str(raw.get("printer", "")), "bad_job", describe(exc))
            return
        except JobRejected as exc:
            await self.reject(job_id, str(raw.get("printer", "")), exc.code, exc.message)
            return
        await self.accept(job, printer)

    def validate(self, job: PrintJob) -> str:
        """The printer id the job goes to; raises JobRejected with the reason."""
        cfg = self.config()
        kinds = [k for k in JOB_KINDS if getattr(job, k) is not None]
        if len(kinds) != 1:
            raise JobRejected(
                "bad_job", f"a job needs exactly one of {', '.join(JOB_KINDS)}; it has {kinds or 'none'}"
            )
        printers = {p.id: p for p in cfg.printers}
        if job.printer.startswith("role:"):
            role = job.printer[5:]
            candidates = [p.id for p in cfg.printers if role in p.roles]
            if not candidates:
                raise JobRejected("unknown_printer", f"no printer has role {role!r}")
            ready = [pid for pid in candidates if self.workers.get(pid) and self.workers[pid].last.ready]
            printer_id = (ready or candidates)[0]
        elif job.printer in printers:
            printer_id = job.printer
        else:
            raise JobRejected(
                "unknown_printer", f"no printer {job.printer!r}; known: {', '.join(sorted(printers))}"
            )
        language = printers[printer_id].language
        if job.zpl is not None and language != "zpl":
            raise JobRejected("wrong_language", f"printer {printer_id} speaks {language}, the job is ZPL")
        if job.escpos_b64 is not None:
            if language != "escpos":
                raise JobRejected(
                    "wrong_language", f"printer {printer_id} speaks {language}, the job is ESC/POS"
                )
            try:
                base64.b64decode(job.escpos_b64, validate=True)
            except (binascii.Error, ValueError):
                raise JobRejected("bad_data", "escpos_b64 is not base64") from None
        for field in ("pdf_b64", "image_b64"):
            if getattr(job, field) is not None:
                limit = cfg.printing.max_document_kb
                if len(getattr(job, field)) * 3 // 4 > limit * 1024:
                    raise JobRejected(
                        "bad_document", f"{field} is larger than {limit} KB (printing.max_document_kb)"
                    )
                try:
                    base64.b64decode(getattr(job, field), validate=True)
                except (binascii.Error, ValueError):
                    raise JobRejected("bad_document", f"{field} is not base64") from None
        if job.template is not None:
            template = templates_of(cfg).get(job.template)
            if template is None:
                raise JobRejected("unknown_template", f"no template {job.template!r}")
            try:
                fill(template, job_data(cfg, self.station.mode, job.data or {}))
            except TemplateError as exc:
                raise JobRejected("bad_data", str(exc)) from None
        if job.not_after is not None:
            try:
                parse_rfc3339(job.not_after)
            except ValueError:
                raise JobRejected("bad_job", f"not_after {job.not_after!r} is not an RFC 3339 time") from None
        return printer_id

    async def reject(self, job_id: str, printer: str, code: str, message: str) -> None:
        error = {"code": code, "message": message}

        def store(conn: sqlite3.Connection) -> bool:
            now = time.time()
            cur = conn.execute(
                "INSERT OR IGNORE INTO jobs(job_id, printer, state, attempts, body, error, created_at, updated_at)"
                " VALUES (?, ?, 'rejected', 0, '{}', ?, ?, ?)",
                (job_id, printer, json.dumps(error), now, now),
            )
            if cur.rowcount == 1:
                self._event(conn, job_id, printer, "rejected", 0, error)
            return cur.rowcount == 1

        if (await self.stores.writer.submit(store)).value:
            self._log.warning("job.rejected", job_id=job_id, printer=printer, code=code, error=message)
        self.out.wake()

    async def accept(self, job: PrintJob, printer_id: str) -> bool:
        """Store the job, `accepted`. When its printer's worker is idle with a fresh `ready` answer,
        the job is also claimed (`printing`) in the same commit and handed to the worker, which
        sends it without reading it back or committing again (bench/print.py)."""
        body = job.model_dump(exclude_none=True)
        worker = self.workers.get(printer_id)
        claim = worker is not None and worker.can_take(body)

        def store(conn: sqlite3.Connection) -> bool:
            now = time.time()
            cur = conn.execute(
                "INSERT OR IGNORE INTO jobs(job_id, printer, state, attempts, body, not_after, created_at, updated_at)"
                " VALUES (?, ?, 'accepted', 0, ?, ?, ?, ?)",
                (job.job_id, printer_id, json.dumps(body), job.not_after, now, now),
            )
            if cur.rowcount == 1:
                self._event(conn, job.job_id, printer_id, "accepted", 0, None)
                if claim:
                    self._set_state(conn, job.job_id, "printing", expect=("accepted",), attempt=True)
            return cur.rowcount == 1

        new = False
        try:
            new = (await self.stores.writer.submit(store)).value
        finally:
            # the reserved worker gets the job only if this commit stored it (not when the commit
            # failed, nor for a redelivery): otherwise it is free again, its prepared connection dropped
            if claim and worker is not None and not new:
                worker.release()
        if new:
            if worker is not None:
                if claim:
                    worker.take(StoredJob(job.job_id, printer_id, body))
                else:
                    worker.wake()
            self.out.wake()
            self._log.info("job.accepted", job_id=job.job_id, printer=printer_id, claimed=claim)
        else:
            self._log.info("job.redelivered", job_id=job.job_id)
        return new

    async def recover(self) -> None:
        """Jobs a dead agent was sending: uncertain, never printed again by themselves."""

        def find(conn: sqlite3.Connection) -> list[str]:
            return [r[0] for r in conn.execute("SELECT job_id FROM jobs WHERE state = 'printing'")]

        for job_id in (await self.stores.writer.submit(find)).value:
            error = {"code": "interrupted", "message": "the agent stopped while sending this job"}
            await self.set_state(job_id, "uncertain", expect=("printing",), error=error)
            self._log.warning("job.uncertain", job_id=job_id, reason="agent restarted mid-job")

    # --- commands --------------------------------------------------------------------------
    async def test_print(self, printer: str) -> str:
        job = PrintJob(job_id=f"test-{uuid.uuid4().hex[:12]}", printer=printer, template="test_label",
                       data={"printer": printer})  # fmt: skip
        printer_id = self.validate(job)
        await self.accept(job, printer_id)
        return job.job_id

    async def routing_slip(self, record: Any, printer: str) -> None:
        ret = record.ret or {}
        data = {"order_number": ret.get("order_number") or ret.get("return_id"), "return_id": ret.get("return_id"),
                "items": ret.get("items") or [], "bin": ret.get("bin") or "", "mode": record.mode}  # fmt: skip
        job = PrintJob(job_id=f"slip-{record.event_id}", printer=printer, template="routing_slip", data=data)
        try:
            await self.accept(job, self.validate(job))
        except JobRejected as exc:
            self._log.warning("routing_slip.not_printed", event_id=record.event_id, error=exc.message)

    async def receipt_print(self, event: dict[str, Any], on_close: Any) -> None:
        """A closed receipt's slip, or a restock label per unit received (`receiving.print_on_close`).
        Job ids come from the receipt, so a repeat of the same close never prints twice."""
        rid, lines = event["event_id"], event["lines"]
        jobs: list[PrintJob] = []
        if on_close.what == "slip":
            jobs.append(PrintJob(job_id=f"receipt-{rid}", printer=on_close.printer, template="receipt_slip",
                                 data=receipt_slip_data(event)))  # fmt: skip
        else:
            units = [(i, ln, grade) for i, ln in enumerate(lines)
                     for grade, n in sorted(ln["grades"].items()) for _ in range(n)]  # fmt: skip
            for k, (i, ln, grade) in enumerate(units, start=1):
                data = {"sku": ln["sku"] or ln["gtin"] or "?", "name": ln["name"] or "", "grade": grade,
                        "return_id": event["return_id"], "unit": k, "units": len(units), "line": i}  # fmt: skip
                jobs.append(PrintJob(job_id=f"restock-{rid}-{k}", printer=on_close.printer,
                                     template="restock_label", data=data))  # fmt: skip
        for job in jobs:
            try:
                await self.accept(job, self.validate(job))
            except JobRejected as exc:
                self._log.warning(
                    "receipt_print.not_printed", receipt_id=rid, job_id=job.job_id, error=exc.message
                )

    async def reprint(self, job_id: str) -> str:
        ok = await self.set_state(job_id, "accepted", expect=("printed", "uncertain", "failed", "expired"))
        if not ok:
            raise JobRejected(
                "bad_args", f"job {job_id!r} is unknown, or not in a state that can be printed again"
            )
        printer = (await self.stores.reader.read(
            lambda c: c.execute("SELECT printer FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0]))  # fmt: skip
        if printer in self.workers:
            self.workers[printer].wake()
        return str(printer)

    def signal(self, printer: str, data: bytes, name: str) -> bool:
        """Bytes that are not a job (a buzzer) for `printer`'s worker; False when it has none."""
        worker = self.workers.get(printer)
        if worker is None:
            return False
        worker.signal(data, name)
        return True

    def states(self) -> list[dict[str, Any]]:
        return [{"id": pid, "language": w.language, "state": w.last.state, "detail": w.last.detail}
                for pid, w in self.workers.items()]  # fmt: skip
