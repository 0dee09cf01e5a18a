"""The scan path's storage on real SQLite files: a scan whose second commit fails."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from drivers.scanners import RawScan
from edge_agent.decode import Decoder
from edge_agent.scan_service import ScanService
from edge_agent.store import outbox
from edge_agent.store.db import open_agent_db, open_manifest_db
from edge_agent.store.scans import ScanRecord, ScanRecorder
from edge_agent.store.writer import Writer


class FullOnce(ScanRecorder):
    """A disk that fills up right after a scan's commit: the commit that stores its measured
    latency fails once. (A real full disk cannot be made to fill at exactly that instant; the
    full-disk tests cover the rest with a real filesystem.)"""

    failed = False

    @staticmethod
    def after_commit(
        conn: sqlite3.Connection, record: ScanRecord, committed_ns: int, t_last_byte_ns: int
    ) -> bytes:
        if not FullOnce.failed:
            FullOnce.failed = True
            raise sqlite3.OperationalError("database or disk is full")
        return ScanRecorder.after_commit(conn, record, committed_ns, t_last_byte_ns)


def test_a_scan_whose_latency_cannot_be_stored_does_not_hold_up_the_events_after_it(tmp_path: Path) -> None:
    open_manifest_db(tmp_path).close()
    woken: list[float] = []

    async def main() -> list[outbox.OutboxRow]:
        writer = Writer(lambda: open_agent_db(tmp_path), "writer")
        writer.start()
        recorder = FullOnce(tmp_path, "d1", "s1", "receive")
        service = ScanService(
            writer, recorder, "t/scan", lambda: woken.append(time.monotonic()), lambda mode: None
        )
        decoder = Decoder()
        first = await service.record(
            RawScan("s1", b"FIRST-1", time.monotonic_ns()), decoder.decode("FIRST-1")
        )
        second = await service.record(
            RawScan("s1", b"SECOND-2", time.monotonic_ns()), decoder.decode("SECOND-2")
        )
        assert first is not None and second is not None and (first.seq, second.seq) == (1, 2)
        conn = open_agent_db(tmp_path)
        deadline = time.monotonic() + 10
        rows: list[outbox.OutboxRow] = []
        while time.monotonic() < deadline:
            rows = outbox.fetch_unsent(conn, 0, 10)
            if len(rows) == 2:
                break
            await asyncio.sleep(0.05)
        scans = [bytes(r[0], "utf-8") for r in conn.execute("SELECT payload FROM scans ORDER BY seq")]
        conn.close()
        writer.stop()
        assert [r.payload for r in rows] == scans  # what is sent is what replay would send
        return rows

    rows = asyncio.run(main())
    assert FullOnce.failed and len(rows) == 2, "the first scan's row was never released"
    assert b'"seq":1' in rows[0].payload and b'"seq":2' in rows[1].payload
    assert len(woken) >= 2  # the publisher was told both times
