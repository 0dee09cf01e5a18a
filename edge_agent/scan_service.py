"""Records each decoded scan durably, then gives the worker feedback and wakes the publisher."""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Callable

import structlog
import uuid6

from drivers.scanners import RawScan
from edge_agent.clock import ClockWatch
from edge_agent.decode import Decoded
from edge_agent.decode.aim import split_symbology
from edge_agent.store.scans import ScanInput, ScanRecord, ScanRecorder
from edge_agent.store.writer import Writer
from edge_agent.sync.models import rfc3339


class ScanService:
    def __init__(
        self,
        writer: Writer,
        recorder: ScanRecorder,
        topic: str,
        wake_publisher: Callable[[], None],
        on_mode: Callable[[str], None],
        on_recorded: Callable[[ScanRecord], None] = lambda record: None,
        on_storage: Callable[[bool, str], None] = lambda full, detail: None,
    ) -> None:
        self._writer = writer
        self._recorder = recorder
        self._topic = topic
        self._wake_publisher = wake_publisher
        self._on_mode = on_mode
        self._on_recorded = on_recorded
        self._on_storage = on_storage
        self.storage_full = False
        self.clock = ClockWatch()
        self.latencies_us: deque[int] = deque(maxlen=2048)
        self.scans_total = 0
        self.store_failures = 0
        self._log = structlog.get_logger("edge_agent.scanning").bind(component="scanning")

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
        try:
            committed = await self._writer.submit(
                lambda conn: self._recorder.record(conn, scan, self._topic),
                after=lambda conn, record, done_ns: self._recorder.after_commit(conn, record, done_ns, t0),
            )
        except Exception as exc:
            self.store_failures += 1
            log.error("scan.store_failed", error=repr(exc), raw=decoded.raw, kind=decoded.kind)
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc) and not self.storage_full:
                self.storage_full = True
                log.error("storage.full", error=str(exc))
                self._on_storage(True, f"new scans cannot be stored: {exc}")
            return None
        if self.storage_full:
            self.storage_full = False
            log.warning("storage.recovered")
            self._on_storage(False, "scans are stored again")
        record = committed.value
        latency_us = (committed.committed_ns - raw.t_last_byte_ns) // 1000
        self.latencies_us.append(latency_us)
        self.scans_total += 1
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

    def percentile(self, q: float) -> int | None:
        if not self.latencies_us:
            return None
        ordered = sorted(self.latencies_us)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]
