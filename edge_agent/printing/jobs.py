"""Print jobs, each printed at most once, and the health of each printer.

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

import asyncio
import base64
import binascii
import contextlib
import json
import sqlite3
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from drivers.printers import NotSent, PartlySent, PrinterDriver, PrinterStatus, printer_for
from drivers.printers.file import FilePrinter
from edge_agent.decode import ret1
from edge_agent.printing.render_escpos import render_escpos
from edge_agent.printing.render_zpl import render_zpl
from edge_agent.printing.templates import Template, TemplateError, fill, with_site_templates
from edge_agent.store import outbox
from edge_agent.sync.models import PrintJob, describe, parse_json, parse_rfc3339, rfc3339

SIGNAL_MAX_AGE_S = 3.0
"""A buzzer that could not sound within this many seconds of its scan is dropped, seconds."""

if TYPE_CHECKING:
    from edge_agent.app import Agent
    from edge_agent.config import AgentConfig


class JobRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class StoredJob:
    job_id: str
    printer: str
    body: dict[str, Any]


def templates_of(config: AgentConfig) -> dict[str, Template]:
    return with_site_templates(config.templates)


def job_data(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
    """The job's data plus what the agent knows: the signed RET1 payload, the warehouse, the
    items as lines, the station."""
    cfg = agent.config
    out: dict[str, Any] = {
        "warehouse_name": cfg.printing.warehouse_name,
        "warehouse_address": cfg.printing.warehouse_address,
        "carrier_message": cfg.printing.carrier_message,
        "station": cfg.device.id,
        "device": cfg.device.id,
        "mode": agent.mode,
        "ts": rfc3339(),
        "agent_version": agent_version(),
        **data,
    }
    customer = out.get("customer")
    if isinstance(customer, dict):
        out.setdefault("customer_name", customer.get("name", ""))
        out.setdefault("customer_address", customer.get("address", ""))
    items = out.get("items")
    if isinstance(items, list):
        lines = [
            f"{i.get('qty', 1)} x {i.get('name') or i.get('sku', '')}" for i in items if isinstance(i, dict)
        ]
        out.setdefault("items_text", "; ".join(lines))
        for n, line in enumerate(lines[:4], start=1):
            out.setdefault(f"item_{n}", line)
        if len(lines) > 4:
            out.setdefault("more_items", f"... and {len(lines) - 4} more")
    kid = cfg.labels.sign_kid
    if kid and "ret1" not in out and out.get("return_id") and out.get("order_number"):
        # ids a RET1 label cannot carry: the label prints without its QR
        with contextlib.suppress(ValueError):
            out["ret1"] = ret1.make_label(
                cfg.labels.secrets()[kid], kid, str(out["return_id"]), str(out["order_number"])
            )
    return out


def agent_version() -> str:
    from edge_agent import __version__

    return __version__


class PrintService:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.workers: dict[str, PrinterWorker] = {}
        self._log = structlog.get_logger("edge_agent.printing").bind(component="printing")

    # --- storage (writer thread) -----------------------------------------------------------
    def _event(self, conn: sqlite3.Connection, job_id: str, printer: str, state: str, attempts: int,
               error: dict[str, str] | None) -> None:  # fmt: skip
        payload = {**self.agent.envelope(), "job_id": job_id, "printer": printer, "state": state,
                   "attempts": attempts, "error": error}  # fmt: skip
        outbox.enqueue(conn, self.agent.topics.event_print, json.dumps(payload, separators=(",", ":")).encode(),
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
            await self.agent.writer.submit(
                lambda c: self._set_state(c, job_id, state, expect=expect, error=error, attempt=attempt)
            )
        ).value
        self.agent.publisher.wake()
        return done

    # --- inbound ---------------------------------------------------------------------------
    async def on_message(self, payload: bytes) -> None:
        try:
            raw = parse_json(payload)
        except ValueError as exc:
            await self.agent.fleet.bad_message(self.agent.topics.job_print, f"print job is not JSON: {exc}")
            return
        job_id = raw.get("job_id") if isinstance(raw, dict) else None
        if not isinstance(job_id, str) or not job_id:
            await self.agent.fleet.bad_message(self.agent.topics.job_print, "print job has no job_id")
            return
        try:
            job = PrintJob.model_validate(raw)
            printer = self.validate(job)
        except ValidationError as exc:
            await self.reject(job_id, str(raw.get("printer", "")), "bad_job", describe(exc))
            return
        except JobRejected as exc:
            await self.reject(job_id, str(raw.get("printer", "")), exc.code, exc.message)
            return
        await self.accept(job, printer)

    def validate(self, job: PrintJob) -> str:
        """The printer id the job goes to; raises JobRejected with the reason."""
        cfg = self.agent.config
        kinds = [k for k in ("template", "zpl", "escpos_b64") if getattr(job, k) is not None]
        if len(kinds) != 1:
            raise JobRejected(
                "bad_job", f"a job needs exactly one of template, zpl, escpos_b64; it has {kinds or 'none'}"
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
        if job.template is not None:
            template = templates_of(cfg).get(job.template)
            if template is None:
                raise JobRejected("unknown_template", f"no template {job.template!r}")
            try:
                fill(template, job_data(self.agent, job.data or {}))
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

        if (await self.agent.writer.submit(store)).value:
            self._log.warning("job.rejected", job_id=job_id, printer=printer, code=code, error=message)
        self.agent.publisher.wake()

    async def accept(self, job: PrintJob, printer_id: str) -> bool:
        body = job.model_dump(exclude_none=True)

        def store(conn: sqlite3.Connection) -> bool:
            now = time.time()
            cur = conn.execute(
                "INSERT OR IGNORE INTO jobs(job_id, printer, state, attempts, body, not_after, created_at, updated_at)"
                " VALUES (?, ?, 'accepted', 0, ?, ?, ?, ?)",
                (job.job_id, printer_id, json.dumps(body), job.not_after, now, now),
            )
            if cur.rowcount == 1:
                self._event(conn, job.job_id, printer_id, "accepted", 0, None)
            return cur.rowcount == 1

        new = (await self.agent.writer.submit(store)).value
        if new:
            self._log.info("job.accepted", job_id=job.job_id, printer=printer_id)
            self.agent.publisher.wake()
            worker = self.workers.get(printer_id)
            if worker is not None:
                worker.wake()
        else:
            self._log.info("job.redelivered", job_id=job.job_id)
        return new

    async def recover(self) -> None:
        """Jobs a dead agent was sending: uncertain, never printed again by themselves."""

        def find(conn: sqlite3.Connection) -> list[str]:
            return [r[0] for r in conn.execute("SELECT job_id FROM jobs WHERE state = 'printing'")]

        for job_id in (await self.agent.writer.submit(find)).value:
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

    async def reprint(self, job_id: str) -> str:
        ok = await self.set_state(job_id, "accepted", expect=("printed", "uncertain", "failed", "expired"))
        if not ok:
            raise JobRejected(
                "bad_args", f"job {job_id!r} is unknown, or not in a state that can be printed again"
            )
        printer = (await self.agent.reader.read(
            lambda c: c.execute("SELECT printer FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0]))  # fmt: skip
        if printer in self.workers:
            self.workers[printer].wake()
        return str(printer)

    def states(self) -> list[dict[str, Any]]:
        return [{"id": pid, "language": w.language, "state": w.last.state, "detail": w.last.detail}
                for pid, w in self.workers.items()]  # fmt: skip


class PrinterWorker:
    def __init__(self, service: PrintService, printer_id: str) -> None:
        self.name = f"printer:{printer_id}"
        self.printer_id = printer_id
        self._service = service
        self._agent = service.agent
        cfg = next(p for p in self._agent.config.printers if p.id == printer_id)
        self.config = cfg
        self.language = cfg.language
        self.last = PrinterStatus("unknown", "not asked yet")
        self._published: PrinterStatus | None = None
        self._wake = asyncio.Event()
        self._signals: deque[tuple[float, bytes, str]] = deque(maxlen=8)
        self._driver: PrinterDriver | None = None
        self._log = structlog.get_logger("edge_agent.printing").bind(component="printer", printer=printer_id)

    def wake(self) -> None:
        self._wake.set()

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
        cfg = self.config
        timeout = self._agent.config.printing.status_timeout_s
        options: dict[str, Any]
        if cfg.transport == "tcp":
            options = {"host": cfg.host, "port": cfg.port, "timeout_s": timeout}
        elif cfg.transport == "serial":
            options = {"port": cfg.port, "baudrate": cfg.baudrate, "timeout_s": timeout}
        elif cfg.transport == "device":
            options = {"path": cfg.path, "timeout_s": timeout}
        else:
            options = {"path": str(cfg.path)}
        return printer_for(cfg.transport, cfg.id, cfg.language, **options)

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
        if status != self._published:
            previous, self._published = self._published, status
            payload = {**self._agent.envelope(), "printer": self.printer_id, "language": self.language,
                       "state": status.state, "detail": status.detail}  # fmt: skip
            await self._agent.publish(self._agent.topics.printer_status(self.printer_id), payload, retain=True,
                                      kind="printer_status")  # fmt: skip
            self._log.info("printer.status", state=status.state, detail=status.detail)
            if not status.ready and (previous is None or previous.ready):
                await self._agent.fleet.alert("printer", printer=self.printer_id, state=status.state,
                                              detail=status.detail)  # fmt: skip
        return status

    async def _next_job(self) -> StoredJob | None:
        def query(conn: sqlite3.Connection) -> StoredJob | None:
            row = conn.execute(
                "SELECT job_id, printer, body FROM jobs WHERE printer = ? AND state = 'accepted'"
                " ORDER BY created_at, rowid LIMIT 1", (self.printer_id,)).fetchone()  # fmt: skip
            return StoredJob(row[0], row[1], json.loads(row[2])) if row else None

        return await self._agent.reader.read(query)

    async def run(self) -> None:
        poll = self._agent.config.printing.poll_interval_s
        await self._check()
        while True:
            self._wake.clear()  # before the query: a job accepted during it wakes the wait below
            await self._send_signals()
            job = await self._next_job()
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
        status = await self._check()
        if not status.ready:
            await asyncio.sleep(poll)  # the job waits; not_after is checked again next time
            return
        try:
            data = self._render(body)
        except (TemplateError, ValueError) as exc:
            await service.set_state(job.job_id, "failed", expect=("accepted",),
                                    error={"code": "render_failed", "message": str(exc)})  # fmt: skip
            return
        if not await service.set_state(job.job_id, "printing", expect=("accepted",), attempt=True):
            return
        assert self._driver is not None
        try:
            await self._driver.send(data, name=job.job_id)
            if isinstance(self._driver, FilePrinter) and body.get("template"):
                await self._driver.write(self._preview(body), job.job_id, ".png")  # the label library
        except NotSent as exc:
            await self._agent.writer.submit(lambda c: c.execute(
                "UPDATE jobs SET state = 'accepted' WHERE job_id = ? AND state = 'printing'", (job.job_id,)))  # fmt: skip
            log.warning("job.not_sent", error=str(exc))
            self.last = PrinterStatus("offline", str(exc))
            await asyncio.sleep(poll)
            return
        except PartlySent as exc:
            await service.set_state(job.job_id, "uncertain", expect=("printing",),
                                    error={"code": "connection_lost", "message": str(exc)})  # fmt: skip
            log.error("job.uncertain", error=str(exc))
            return
        await service.set_state(job.job_id, "printed", expect=("printing",))
        self._agent.prints_total += int(body.get("copies", 1))
        log.info("job.printed", bytes=len(data))

    def _preview(self, body: dict[str, Any]) -> bytes:
        from edge_agent.printing.render_png import render_png

        template = templates_of(self._agent.config)[body["template"]]
        return render_png(fill(template, job_data(self._agent, body.get("data") or {})))

    def _render(self, body: dict[str, Any]) -> bytes:
        copies = int(body.get("copies", 1))
        if body.get("zpl") is not None:
            return str(body["zpl"]).encode("utf-8") * copies
        if body.get("escpos_b64") is not None:
            return base64.b64decode(body["escpos_b64"]) * copies
        template = templates_of(self._agent.config)[body["template"]]
        label = fill(template, job_data(self._agent, body.get("data") or {}))
        if self.language == "zpl":
            return render_zpl(label, copies)
        return render_escpos(label, copies)
