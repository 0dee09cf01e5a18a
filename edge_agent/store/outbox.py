"""The outbox: every message the agent must deliver, in order, until the broker acknowledged it.

Functions of a connection; the writer thread calls the writing ones, `Reader` the others.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    correlation: bytes | None
    kind: str


def enqueue(
    conn: sqlite3.Connection,
    topic: str,
    payload: bytes,
    qos: int = 1,
    retain: bool = False,
    kind: str = "event",
    correlation: bytes | None = None,
    ready: bool = True,
) -> int:
    if "+" in topic or "#" in topic:
        raise ValueError(f"refusing to publish to a wildcard topic {topic!r}")
    cur = conn.execute(
        "INSERT INTO outbox(topic, payload, qos, retain, correlation, kind, ready, created_at)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (topic, payload, qos, int(retain), correlation, kind, int(ready), time.time()),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def fetch_unsent(conn: sqlite3.Connection, after_id: int, limit: int) -> list[OutboxRow]:
    """Unsent rows after `after_id` in order, up to the first that is not ready yet (a scan whose
    final payload, with its measured latency, is not committed yet): order is never broken."""
    rows = conn.execute(
        "SELECT id, topic, payload, qos, retain, correlation, kind, ready FROM outbox"
        " WHERE sent_at IS NULL AND id > ? ORDER BY id LIMIT ?",
        (after_id, limit),
    ).fetchall()
    out = []
    for r in rows:
        if not r[7]:
            break
        out.append(OutboxRow(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6]))
    return out


def release_unready(conn: sqlite3.Connection, row_id: int | None = None) -> int:
    """Scans whose measured latency was never stored keep the latency measured to the start of
    their commit: at start-up, those committed just before a crash (all of them); while running,
    one whose second commit failed (`row_id`: a full disk can take the scan's commit and refuse
    the next). They were never published, so no re-send can differ."""
    if row_id is None:
        return conn.execute("UPDATE outbox SET ready = 1 WHERE ready = 0").rowcount
    return conn.execute("UPDATE outbox SET ready = 1 WHERE id = ? AND ready = 0", (row_id,)).rowcount


def id_ranges(ids: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of ids, as (first, last): acknowledgements come mostly in order."""
    runs: list[tuple[int, int]] = []
    for i in sorted(set(ids)):
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def mark_sent(conn: sqlite3.Connection, ids: list[int], when: float | None = None) -> None:
    # One statement per run keeps the per-row work in SQLite's C code (and off the GIL).
    stamp = time.time() if when is None else when
    conn.executemany(
        "UPDATE outbox SET sent_at = ? WHERE id BETWEEN ? AND ? AND sent_at IS NULL",
        [(stamp, first, last) for first, last in id_ranges(ids)],
    )


def depth(conn: sqlite3.Connection) -> tuple[int, float | None]:
    """(unsent messages, seconds the oldest of them has waited)."""
    count, oldest = conn.execute(
        "SELECT count(*), min(created_at) FROM outbox WHERE sent_at IS NULL"
    ).fetchone()
    return int(count), (time.time() - oldest) if oldest is not None else None


def prune(conn: sqlite3.Connection, retention_s: float) -> int:
    """Forget what was delivered longer ago than the retention period; returns rows removed."""
    cutoff = time.time() - retention_s
    removed = conn.execute("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?", (cutoff,)).rowcount
    removed += conn.execute(
        "DELETE FROM scans WHERE created_at < ? AND outbox_id NOT IN (SELECT id FROM outbox WHERE sent_at IS NULL)",
        (cutoff,),
    ).rowcount
    removed += conn.execute(  # closed receipts whose events were delivered (an open one is kept, however old)
        "DELETE FROM receipts WHERE state = 'closed' AND updated_at < ?"
        " AND outbox_id NOT IN (SELECT id FROM outbox WHERE sent_at IS NULL)",
        (cutoff,),
    ).rowcount
    return removed


def get_meta(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else default


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
