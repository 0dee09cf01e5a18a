"""The manifest of expected returns (manifest.db), applied in its own writer thread.

Theory of operation: two tables, `returns_0` and `returns_1`; `meta.active` names the one scans
are matched against. A snapshot (`base_version: null`) is loaded, chunk by chunk, into the other
table (without secondary indexes, which are built once at the end); when its last chunk has
arrived, the indexes are built and `meta.active` and `meta.version` flip in one transaction.
Scans keep matching the old table all along and see the new one whole or not at all.

A delta applies to the active table when the local version equals its `base_version`; a delta
in several chunks bumps the version when its last chunk is in. Anything else is out of step and
the caller asks the central system for what is missing (`manifest/request`).

Messages are read, checked and written by SQLite's JSON functions (`json_each`), not parsed into
Python objects: a chunk of thousands of returns is one statement, during which the sqlite3 module
releases the GIL, so a 1,000,000-return snapshot does not hold up scans (bench/manifest.py). The
checks are those of `sync.models.ManifestReturn`, and errors name the field (`upserts[3].keys`).
An item's own fields (`gtin`, `qty`, `barcodes`, `serials`, `weight_g`) are checked when a receipt
opens for its return (receiving/machine.py `item_problems`), where a bad one is reported by name
and left out, not here: checking every field of every item took a 1,000,000-return snapshot from
about 15 s to 22 s (bench/manifest.py), and would refuse a chunk of thousands of good returns for
one item's bad GTIN.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from edge_agent.store.db import RETURNS_COLUMNS, key_indexes
from edge_agent.sync.models import ManifestMessage, describe

Status = Literal["applied", "chunk_staged", "snapshot_applied", "out_of_step", "ignored", "rejected"]


@dataclass(frozen=True, slots=True)
class ManifestOutcome:
    status: Status
    version: int
    """The local manifest version after this message."""
    error: str | None = None
    rows: int = 0


@dataclass(frozen=True, slots=True)
class Message:
    """A manifest message whose header is read and whose returns are checked; `upserts` and
    `deletes` stay JSON text for SQLite."""

    version: int
    base_version: int | None
    chunk: int
    chunks: int
    upserts: str
    deletes: str

    @classmethod
    def of(cls, model: ManifestMessage) -> Message:
        return cls(model.version, model.base_version, model.chunk, model.chunks,
                   json.dumps([r.model_dump(exclude_none=True) for r in model.upserts]),
                   json.dumps(model.deletes))  # fmt: skip


def parse(raw: bytes) -> ManifestMessage | str:
    """The message as pydantic reads it (tests, tools), or a sentence saying what is wrong."""
    try:
        return ManifestMessage.model_validate_json(raw)
    except ValidationError as exc:
        return describe(exc)


# Each statement reads the chunk's elements once into a MATERIALIZED table: referenced straight
# from json_each, an element's text is rendered again for every function that reads it (a dozen
# times here), which took 40 % of a 1,000,000-return snapshot (3,000-return chunk: check 25.5 ->
# 14.5 ms, write 21.4 -> 13.3 ms, SQLite 3.40).
_CHECK_UPSERTS = """
WITH u(key, type, value) AS MATERIALIZED (SELECT key, type, value FROM json_each(?))
SELECT key, problem FROM (
  SELECT u.key AS key, CASE WHEN u.type != 'object' THEN 'must be an object' ELSE (
    -- one pass over the return's fields (a json_extract per field would parse its text each time)
    SELECT CASE WHEN sum(f.key = 'return_id') = 0 THEN 'return_id: must be a string' ELSE min(CASE f.key
      WHEN 'return_id' THEN CASE WHEN f.type != 'text' THEN 'return_id: must be a string'
        WHEN length(f.atom) NOT BETWEEN 1 AND 64 THEN 'return_id: 1 to 64 characters' END
      WHEN 'order_number' THEN CASE WHEN f.type NOT IN ('text', 'null') THEN 'order_number: must be a string or null'
        WHEN length(f.atom) > 64 THEN 'order_number: at most 64 characters' END
      WHEN 'keys' THEN CASE WHEN f.type != 'object' THEN 'keys: must be an object'
        WHEN EXISTS (SELECT 1 FROM json_each(f.value) AS k WHERE k.type != 'text')
          THEN 'keys: every value must be a string' END
      WHEN 'customer' THEN CASE WHEN f.type NOT IN ('object', 'null') THEN 'customer: must be an object or null' END
      WHEN 'bin' THEN CASE WHEN f.type NOT IN ('text', 'null') THEN 'bin: must be a string or null'
        WHEN length(f.atom) > 64 THEN 'bin: at most 64 characters' END
      WHEN 'weight_g' THEN CASE WHEN f.type NOT IN ('integer', 'real', 'null') OR f.atom < 0
        THEN 'weight_g: must be a number of grams, at least 0' END
      WHEN 'items' THEN CASE WHEN f.type != 'array' THEN 'items: must be a list'
        WHEN EXISTS (SELECT 1 FROM json_each(f.value) AS i WHERE i.type != 'object')
          THEN 'items: every item must be an object' END
    END) END FROM json_each(u.value) AS f)
  END AS problem FROM u
) WHERE problem IS NOT NULL LIMIT 1
"""

_UPSERT = """
WITH u(value) AS MATERIALIZED (SELECT value FROM json_each(?))
INSERT OR REPLACE INTO {table}(return_id, order_number, tracking_number, sscc, data)
SELECT json_extract(value, '$.return_id'), json_extract(value, '$.order_number'),
       json_extract(value, '$.keys.tracking_number'), json_extract(value, '$.keys.sscc'),
       json_object('keys', json(coalesce(json_extract(value, '$.keys'), '{{}}')),
                   'customer', json(json_extract(value, '$.customer')),
                   'items', json(coalesce(json_extract(value, '$.items'), '[]')),
                   'bin', json_extract(value, '$.bin'),
                   'weight_g', json_extract(value, '$.weight_g'))
FROM u
"""
"""`data` holds what a scan reads of a return. Storing the return's text as sent was 40 % faster to
write (a 3,000-return chunk 13.5 -> 8-12 ms) but 21 % larger, and the extra writeback showed in
the scans' fsyncs during a 1,000,000-return snapshot (p99 24 -> 32-45 ms, bench/manifest.py, old
and new alternated on the same data), so the fields are picked as before."""


def _integer(fields: dict[str, tuple[str, Any, str | None]], name: str, default: int | None, low: int,
             required: bool = False, nullable: bool = False) -> int | str | None:  # fmt: skip
    if name not in fields:
        return f"{name}: Field required" if required else default
    kind, atom, _ = fields[name]
    if kind == "null" and nullable:
        return None
    if kind != "integer" or atom < low:
        return f"{name}: must be a whole number of at least {low}" + (" or null" if nullable else "")
    return int(atom)


def read(conn: sqlite3.Connection, raw: bytes) -> Message | str:
    """The message with its returns checked, or a sentence saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
        top = conn.execute(
            "SELECT key, type, atom, CASE WHEN type IN ('array', 'object') THEN value END FROM json_each(?)",
            (text,),
        ).fetchall()
    except UnicodeDecodeError as exc:
        return f"manifest message is not UTF-8: {exc.reason} at byte {exc.start}"
    except sqlite3.OperationalError as exc:
        return f"manifest message is not valid JSON: {exc}"
    if not top or any(not isinstance(key, str) for key, *_ in top):
        return "manifest message is not a JSON object"
    fields = {key: (kind, atom, value) for key, kind, atom, value in top}
    header = [
        _integer(fields, "version", None, 0, required=True),
        _integer(fields, "base_version", None, 0, required=True, nullable=True),
        _integer(fields, "chunk", 1, 1),
        _integer(fields, "chunks", 1, 1),
    ]
    problems = [h for h in header if isinstance(h, str)]
    lists = {}
    for name in ("upserts", "deletes"):
        kind, _, value = fields.get(name, ("array", None, "[]"))
        if kind != "array":
            problems.append(f"{name}: must be a list")
        lists[name] = value or "[]"
    if problems:
        return "; ".join(problems)
    bad = conn.execute(_CHECK_UPSERTS, (lists["upserts"],)).fetchone()
    if bad is not None:
        return f"upserts[{bad[0]}].{bad[1]}" if ":" in bad[1] else f"upserts[{bad[0]}]: {bad[1]}"
    bad = conn.execute(
        "SELECT key FROM json_each(?) WHERE type != 'text' LIMIT 1", (lists["deletes"],)
    ).fetchone()
    if bad is not None:
        return f"deletes[{bad[0]}]: must be a string"
    version, base, chunk, chunks = header
    assert isinstance(version, int) and isinstance(chunk, int) and isinstance(chunks, int)
    assert base is None or isinstance(base, int)
    return Message(version, base, chunk, chunks, lists["upserts"], lists["deletes"])


def apply_raw(conn: sqlite3.Connection, raw: bytes) -> ManifestOutcome | str:
    """Read and apply one message inside the writer's transaction; a sentence when it is bad."""
    msg = read(conn, raw)
    return msg if isinstance(msg, str) else apply(conn, msg)


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set(conn: sqlite3.Connection, key: str, value: str | None) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))


def version(conn: sqlite3.Connection) -> int:
    return int(_meta(conn, "version") or 0)


def active_table(conn: sqlite3.Connection) -> str:
    return f"returns_{int(_meta(conn, 'active') or 0)}"


def _write(conn: sqlite3.Connection, table: str, msg: Message) -> int:
    """Upserts and deletes of one message, each one statement over its JSON; returns upserts."""
    rows = conn.execute(_UPSERT.format(table=table), (msg.upserts,)).rowcount
    if msg.deletes != "[]":
        conn.execute(
            f"DELETE FROM {table} WHERE return_id IN (SELECT value FROM json_each(?))", (msg.deletes,)
        )
    return int(rows)


def apply(conn: sqlite3.Connection, message: Message | ManifestMessage) -> ManifestOutcome:
    """Apply one manifest message inside the writer's transaction."""
    msg = message if isinstance(message, Message) else Message.of(message)
    local = version(conn)
    if msg.chunk > msg.chunks:
        return ManifestOutcome("rejected", local, f"chunk {msg.chunk} of {msg.chunks}")
    if msg.base_version is None:
        return _snapshot_chunk(conn, msg, local)
    return _delta(conn, msg, local)


def _snapshot_chunk(conn: sqlite3.Connection, msg: Message, local: int) -> ManifestOutcome:
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
    rows = _write(conn, target, msg)
    conn.execute("INSERT INTO snapshot_chunks(version, chunk) VALUES (?, ?)", (msg.version, msg.chunk))
    have = conn.execute("SELECT count(*) FROM snapshot_chunks WHERE version = ?", (msg.version,)).fetchone()[
        0
    ]
    if have < int(_meta(conn, "staging_chunks") or msg.chunks):
        return ManifestOutcome("chunk_staged", local, rows=rows)
    for statement in key_indexes(target):
        conn.execute(statement)
    _set(conn, "active", str(1 - active))
    _set(conn, "version", str(msg.version))
    conn.execute("DELETE FROM meta WHERE key IN ('staging_version', 'staging_chunks')")
    conn.execute("DELETE FROM snapshot_chunks")
    total = conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    return ManifestOutcome("snapshot_applied", msg.version, rows=total)


def _delta(conn: sqlite3.Connection, msg: Message, local: int) -> ManifestOutcome:
    if msg.version <= local:
        return ManifestOutcome("ignored", local)
    if msg.base_version != local:
        return ManifestOutcome("out_of_step", local, f"delta {msg.base_version}->{msg.version}, have {local}")
    key = f"delta_{msg.version}_chunks"
    done = set(json.loads(_meta(conn, key) or "[]"))
    if msg.chunk in done:
        return ManifestOutcome("ignored", local)
    rows = _write(conn, active_table(conn), msg)
    done.add(msg.chunk)
    if len(done) < msg.chunks:
        _set(conn, key, json.dumps(sorted(done)))
        return ManifestOutcome("chunk_staged", local, rows=rows)
    conn.execute("DELETE FROM meta WHERE key LIKE 'delta_%_chunks'")
    _set(conn, "version", str(msg.version))
    return ManifestOutcome("applied", msg.version, rows=rows)


def drop_version(conn: sqlite3.Connection) -> None:
    """`manifest_resync`: keep matching what we have, but claim no version, so a snapshot follows."""
    _set(conn, "version", "0")
    conn.execute("DELETE FROM meta WHERE key IN ('staging_version', 'staging_chunks')")
    conn.execute("DELETE FROM meta WHERE key LIKE 'delta_%_chunks'")


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {active_table(conn)}").fetchone()[0])
