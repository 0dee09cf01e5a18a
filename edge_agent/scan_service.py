"""Records each decoded scan durably, hands its event to the publisher, then gives the worker
feedback."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
import uuid6

from drivers.backoff import backoff_delays
from drivers.scanners import RawScan
from edge_agent.clock import ClockWatch
from edge_agent.decode import Decoded
from edge_agent.decode.aim import split_symbology
from edge_agent.scales import weighing
from edge_agent.scales.weighing import Latest
from edge_agent.store import outbox
from edge_agent.store.outbox import OutboxRow
from edge_agent.store.scans import ScanInput, ScanRecord, ScanRecorder
from edge_agent.store.writer import Writer
from edge_agent.sync.models import rfc3339

# SQLite's primary result codes that mean the storage will not take writes for now (full, the
# card remounted read-only, I/O errors), as opposed to a bug in a statement.
_STORAGE_STATES = {"SQLITE_FULL": "full", "SQLITE_READONLY": "read_only", "SQLITE_IOERR": "io_error",
                   "SQLITE_CANTOPEN": "io_error"}  # fmt: skip


def storage_state_of(exc: BaseException, folder: Path | None = None) -> str | None:
    """`full`, `read_only` or `io_error` for a storage failure, None for any other error. SQLite
    calls a write refused by a filesystem remounted read-only under it an I/O error: the mount
    flags of `folder` tell the two apart."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    name = getattr(exc, "sqlite_errorname", "") or ""
    state = _STORAGE_STATES.get("_".join(name.split("_")[:2]))  # SQLITE_IOERR_WRITE -> SQLITE_IOERR
    if state is None:  # older SQLite bindings: the message says it
        text = str(exc).lower()
        state = ("full" if "full" in text else "read_only" if "readonly" in text or "read-only" in text
                 else "io_error" if "i/o error" in text else None)  # fmt: skip
    if state == "io_error" and folder is not None and _read_only(folder):
        state = "read_only"
    return state


def _read_only(folder: Path) -> bool:
    """Whether the filesystem refuses writes as read-only: the mount flag, or (ext4 after an error
    with errors=remount-ro keeps the mount "rw" and refuses writes itself) EROFS on a probe file."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return True
        probe = folder / ".write-probe"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        return exc.errno == errno.EROFS
    return False


class ScanService:
    def __init__(
        self,
        writer: Writer,
        recorder: ScanRecorder,
        topic: str,
        wake_publisher: Callable[[], None],
        on_mode: Callable[[str], None],
        on_recorded: Callable[[ScanRecord], None] = lambda record: None,
        on_storage: Callable[[str, str], None] = lambda state, detail: None,
        storage_dir: Path | None = None,
        hand_over: Callable[[OutboxRow], bool] = lambda row: False,
        settled: Callable[[int, int], Awaitable[Latest | None]] | None = None,
        on_weighed: Callable[[ScanRecord], None] = lambda record: None,
    ) -> None:
        """`hand_over` is called in the writer thread with the event's final row, once it is
        committed; it returns whether the publisher took it (else `wake_publisher` makes it read
        the row from storage). `settled(after_ns, deadline_ns)` waits for the station scale's stable weight
        (edge_agent/scales/); `on_weighed` is told when a held parcel event got its weight."""
        self._settled = settled
        self._on_weighed = on_weighed
        self._hand_over = hand_over
        self._storage_dir = storage_dir
        self._writer = writer
        self._recorder = recorder
        self._topic = topic
        self._wake_publisher = wake_publisher
        self._on_mode = on_mode
        self._on_recorded = on_recorded
        self._on_storage = on_storage
        self.storage_state = "ok"
        """`ok`, or why new scans cannot be stored: `full`, `read_only`, `io_error`."""
        self.storage_detail: str | None = None
        self.clock = ClockWatch()
        self.latencies_us: deque[int] = deque(maxlen=2048)
        self.scans_total = 0
        self.store_failures = 0
        self._log = structlog.get_logger("edge_agent.scanning").bind(component="scanning")
        self._releasing: set[asyncio.Task[None]] = set()
        self._weighing: dict[int, asyncio.Task[None]] = {}
        """Parcel events held for their weight, by outbox row."""

    @property
    def storage_full(self) -> bool:
        return self.storage_state == "full"

    async def record(self, raw: RawScan, decoded: Decoded) -> ScanRecord | None:
        wall_ns = time.time_ns() - (time.monotonic_ns() - raw.t_last_byte_ns)
        scan = ScanInput(
            event_id=str(uuid6.uuid7()),
            scanner=raw.scanner,
            ts=rfc3339(wall_ns),
            decoded=decoded.to_dict(),
            body=split_symbology(decoded.raw)[1],
            t_last_byte_ns=raw.t_last_byte_ns,
            clock_synced=self.clock.synced,
        )
        log = self._log.bind(scanner=raw.scanner, event_id=scan.event_id)
        t0 = raw.t_last_byte_ns
        final: list[bytes] = []
        handed: list[bool] = []

        def after(conn: sqlite3.Connection, record: ScanRecord, done_ns: int) -> None:
            final.append(self._recorder.after_commit(conn, record, done_ns, t0))

        def durable(record: ScanRecord) -> None:
            if record.weigh_pending:
                handed.append(True)  # held for its weight: `_weigh` releases it
                return
            row = OutboxRow(record.outbox_id, record.topic, final[0], 1, False, None, "scan")
            handed.append(self._hand_over(row))

        try:
            committed = await self._writer.submit(
                lambda conn: self._recorder.record(conn, scan, self._topic), after=after, durable=durable
            )
        except Exception as exc:
            self.store_failures += 1
            log.error("scan.store_failed", error=repr(exc), raw=decoded.raw, kind=decoded.kind)
            state = storage_state_of(exc, self._storage_dir)
            if state is not None and state != self.storage_state:
                self.storage_state, self.storage_detail = state, str(exc)
                log.error(f"storage.{state}", error=str(exc))
                self._on_storage(state, f"new scans cannot be stored: {exc}")
            return None
        if self.storage_state != "ok":
            self.storage_state, self.storage_detail = "ok", None
            log.warning("storage.recovered")
            self._on_storage("ok", "scans are stored again")
        record = committed.value
        if not handed:
            # `durable` never ran: the commit that stores the measured latency and makes the row
            # ready failed. Until that row is ready, no later event can leave (order): release it.
            self._spawn(self._release(record.outbox_id, log), f"release-{record.seq}")
        latency_us = (committed.committed_ns - raw.t_last_byte_ns) // 1000
        self.latencies_us.append(latency_us)
        self.scans_total += 1
        if record.weigh_pending:
            task = asyncio.create_task(
                self._weigh(record, raw.t_last_byte_ns, log), name=f"weigh-{record.seq}"
            )
            row_id = record.outbox_id
            self._weighing[row_id] = task
            task.add_done_callback(lambda _task: self._weighing.pop(row_id, None) and None)
        elif not handed or not handed[0]:
            self._wake_publisher()
        ret = record.ret or {}
        log.info(
            "scan.stored",
            seq=record.seq,
            outcome=record.outcome,
            mode=record.mode,
            kind=decoded.kind,
            valid=decoded.valid,
            symbology=decoded.symbology,
            raw=decoded.raw,
            error=decoded.error,
            return_id=ret.get("return_id"),
            order_number=ret.get("order_number"),
            latency_us=latency_us,
        )
        if record.new_mode is not None:
            log.info("station.mode_changed", mode=record.new_mode, previous=record.mode)
            self._on_mode(record.new_mode)
        self._on_recorded(record)
        return record

    async def stop_weighing(self) -> None:
        """At a clean stop: the events still waiting for a weight leave as stored (`unknown`), now,
        rather than at the next start, and with them everything queued behind them."""
        rows = list(self._weighing)
        for task in list(self._weighing.values()):
            task.cancel()
        await asyncio.gather(*self._weighing.values(), return_exceptions=True)
        if rows:
            await self._writer.submit(lambda conn: [outbox.release_unready(conn, row) for row in rows])
            self._wake_publisher()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _weigh(self, record: ScanRecord, t0_ns: int, log: Any) -> None:
        """Wait for the parcel's stable weight (at most `weight_settle_ms` from its scan), then
        write it into the held event and release it, in order with what follows."""
        settle_ms = self._recorder.settle_ms()
        deadline = t0_ns + settle_ms * 1_000_000
        latest = await self._settled(t0_ns, deadline) if self._settled is not None else None
        fresh = latest is not None and latest.loaded() and latest.at_ns >= t0_ns
        why = None if fresh else weighing.unknown_because(latest, settle_ms)
        weight = self._recorder.weight_of(latest, record.expected_g, why)
        try:
            await self._writer.submit(lambda conn: self._recorder.weighed(conn, record, weight))
        except Exception as exc:
            log.error("scan.weight_store_failed", error=repr(exc), seq=record.seq)
            await self._release(record.outbox_id, log)  # the stored `unknown` event leaves as it is
            return
        log.info("scan.weighed", seq=record.seq, grams=weight["grams"], expected_g=weight["expected_g"],
                 check=weight["check"], waited_ms=(time.monotonic_ns() - t0_ns) // 1_000_000)  # fmt: skip
        self._wake_publisher()
        self._on_weighed(record)

    async def _release(self, row_id: int, log: Any) -> None:
        for delay in backoff_delays(0.2, 30.0):
            try:
                await self._writer.submit(lambda conn: outbox.release_unready(conn, row_id))
            except Exception as exc:
                log.warning(
                    "scan.release_failed", outbox_id=row_id, error=repr(exc), retry_in_s=round(delay, 1)
                )
                await asyncio.sleep(delay)
                continue
            log.warning("scan.released", outbox_id=row_id, reason="the latency's commit failed")
            self._wake_publisher()
            return

    def percentile(self, q: float) -> int | None:
        if not self.latencies_us:
            return None
        ordered = sorted(self.latencies_us)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]
