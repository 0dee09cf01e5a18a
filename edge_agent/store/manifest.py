"""The manifest of expected returns (manifest.db), applied in its own writer thread.

Theory of operation: two tables, `returns_0` and `returns_1`; `meta.active` names the one scans
are matched against. A snapshot (`base_version: null`) is loaded, chunk by chunk, into the other
table (without secondary indexes, which are built once at the end); when its last chunk has
arrived, the indexes are built and `meta.active` and `meta.version` flip in one transaction.
Scans keep matching the old table all along and see the new one whole or not at all.

A delta applies to the active table when the local version equals its `base_version`; a delta
in several chunks bumps the version when its last chunk is in. Anything else is out of step and
the caller asks the central system for what is missing (`manifest/request`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from edge_agent.store.db import RETURNS_COLUMNS, key_indexes
from edge_agent.sync.models import ManifestMessage, ManifestReturn, describe

Status = Literal["applied", "chunk_staged", "snapshot_applied", "out_of_step", "ignored", "rejected"]


@dataclass(frozen=True, slots=True)
class ManifestOutcome:
    status: Status
    version: int
    """The local manifest version after this message."""
    error: str | None = None
    rows: int = 0


def parse(raw: bytes) -> ManifestMessage | str:
    """The message, or a sentence saying what is wrong with it."""
    try:
        return ManifestMessage.model_validate_json(raw)
    except ValidationError as exc:
        return describe(exc)


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set(conn: sqlite3.Connection, key: str, value: str | None) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))


def version(conn: sqlite3.Connection) -> int:
    return int(_meta(conn, "version") or 0)


def active_table(conn: sqlite3.Connection) -> str:
    return f"returns_{int(_meta(conn, 'active') or 0)}"


def _rows(upserts: list[ManifestReturn]) -> list[tuple[str, str | None, str | None, str | None, str]]:
    return [
        (
            r.return_id,
            r.order_number,
            r.keys.get("tracking_number"),
            r.keys.get("sscc"),
            json.dumps(
                {"keys": r.keys, "customer": r.customer, "items": r.items, "bin": r.bin},
                separators=(",", ":"),
            ),
        )
        for r in upserts
    ]


def apply(conn: sqlite3.Connection, msg: ManifestMessage) -> ManifestOutcome:
    """Apply one manifest message inside the writer's transaction."""
    local = version(conn)
    if msg.chunk > msg.chunks:
        return ManifestOutcome("rejected", local, f"chunk {msg.chunk} of {msg.chunks}")
    if msg.base_version is None:
        return _snapshot_chunk(conn, msg, local)
    return _delta(conn, msg, local)


def _snapshot_chunk(conn: sqlite3.Connection, msg: ManifestMessage, local: int) -> ManifestOutcome:
    staging = _meta(conn, "staging_version")
    if msg.version <= local and staging != str(msg.version):
        return ManifestOutcome("ignored", local)
    active = int(_meta(conn, "active") or 0)
    target = f"returns_{1 - active}"
    if staging != str(msg.version):
        if staging is not None and int(staging) > msg.version:
            return ManifestOutcome("ignored", local)  # an older snapshot than the one being loaded
        conn.execute(f"DROP TABLE IF EXISTS {target}")
        conn.execute(f"CREATE TABLE {target}({RETURNS_COLUMNS}) WITHOUT ROWID")
        conn.execute("DELETE FROM snapshot_chunks")
        _set(conn, "staging_version", str(msg.version))
        _set(conn, "staging_chunks", str(msg.chunks))
    seen = conn.execute(
        "SELECT 1 FROM snapshot_chunks WHERE version = ? AND chunk = ?", (msg.version, msg.chunk)
    ).fetchone()
    if seen:
        return ManifestOutcome("ignored", local)
    rows = _rows(msg.upserts)
    conn.executemany(f"INSERT OR REPLACE INTO {target} VALUES (?,?,?,?,?)", rows)
    if msg.deletes:
        conn.executemany(f"DELETE FROM {target} WHERE return_id = ?", [(d,) for d in msg.deletes])
    conn.execute("INSERT INTO snapshot_chunks(version, chunk) VALUES (?, ?)", (msg.version, msg.chunk))
    have = conn.execute("SELECT count(*) FROM snapshot_chunks WHERE version = ?", (msg.version,)).fetchone()[
        0
    ]
    if have < int(_meta(conn, "staging_chunks") or msg.chunks):
        return ManifestOutcome("chunk_staged", local, rows=len(rows))
    for statement in key_indexes(target):
        conn.execute(statement)
    _set(conn, "active", str(1 - active))
    _set(conn, "version", str(msg.version))
    conn.execute("DELETE FROM meta WHERE key IN ('staging_version', 'staging_chunks')")
    conn.execute("DELETE FROM snapshot_chunks")
    total = conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    return ManifestOutcome("snapshot_applied", msg.version, rows=total)


def _delta(conn: sqlite3.Connection, msg: ManifestMessage, local: int) -> ManifestOutcome:
    if msg.version <= local:
        return ManifestOutcome("ignored", local)
    if msg.base_version != local:
        return ManifestOutcome("out_of_step", local, f"delta {msg.base_version}->{msg.version}, have {local}")
    key = f"delta_{msg.version}_chunks"
    done = set(json.loads(_meta(conn, key) or "[]"))
    if msg.chunk in done:
        return ManifestOutcome("ignored", local)
    table = active_table(conn)
    rows = _rows(msg.upserts)
    conn.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?,?,?,?,?)", rows)
    conn.executemany(f"DELETE FROM {table} WHERE return_id = ?", [(d,) for d in msg.deletes])
    done.add(msg.chunk)
    if len(done) < msg.chunks:
        _set(conn, key, json.dumps(sorted(done)))
        return ManifestOutcome("chunk_staged", local, rows=len(rows))
    conn.execute("DELETE FROM meta WHERE key LIKE 'delta_%_chunks'")
    _set(conn, "version", str(msg.version))
    return ManifestOutcome("applied", msg.version, rows=len(rows))


def drop_version(conn: sqlite3.Connection) -> None:
    """`manifest_resync`: keep matching what we have, but claim no version, so a snapshot follows."""
    _set(conn, "version", "0")
    conn.execute("DELETE FROM meta WHERE key IN ('staging_version', 'staging_chunks')")
    conn.execute("DELETE FROM meta WHERE key LIKE 'delta_%_chunks'")


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {active_table(conn)}").fetchone()[0])
