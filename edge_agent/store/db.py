"""Connections, pragmas and migrations."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

AGENT_DB = "agent.db"
MANIFEST_DB = "manifest.db"


@dataclass(frozen=True)
class Migration:
    """One step of agent.db's schema. Releases share the database (an update and a rollback
    switch code, not data), so a step must leave it readable by the releases before it: add
    tables and columns (with defaults), never drop, rename or change the meaning of one. A step
    that cannot (`older_can_read=False`) records itself as the oldest schema that may open the
    database, and the launcher refuses a rollback to a release older than that."""

    script: str
    older_can_read: bool = True


class SchemaTooNew(Exception):
    """agent.db was migrated by a newer release that this one cannot read."""


AGENT_MIGRATIONS: Sequence[Migration] = (
    Migration("""
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE outbox(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        qos INTEGER NOT NULL,
        retain INTEGER NOT NULL,
        correlation BLOB,
        kind TEXT NOT NULL,
        ready INTEGER NOT NULL DEFAULT 1,
        created_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX outbox_unsent ON outbox(id) WHERE sent_at IS NULL;
    CREATE TABLE scans(
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        scanner TEXT NOT NULL,
        mode TEXT NOT NULL,
        ts TEXT NOT NULL,
        raw TEXT NOT NULL,
        kind TEXT NOT NULL,
        valid INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        return_id TEXT,
        order_number TEXT,
        latency_us INTEGER NOT NULL,
        payload TEXT NOT NULL,
        outbox_id INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE received(
        return_id TEXT NOT NULL,
        mode TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY(return_id, mode)
    ) WITHOUT ROWID;
    CREATE TABLE desired_config(
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        overlay TEXT NOT NULL,
        applied_at REAL NOT NULL
    );
    CREATE TABLE jobs(
        job_id TEXT PRIMARY KEY,
        printer TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        body TEXT NOT NULL,
        error TEXT,
        not_after TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX jobs_state ON jobs(printer, state);
    """),
    # receipts (store/receipts.py): each receipt; meta.open_receipt names the open one
    Migration("""
    CREATE TABLE receipts(
        receipt_id TEXT PRIMARY KEY,
        return_id TEXT NOT NULL,
        state TEXT NOT NULL,
        data TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        updated_at REAL NOT NULL,
        receipt_seq INTEGER,
        closed_by TEXT,
        complete INTEGER,
        outbox_id INTEGER
    ) WITHOUT ROWID
"""),
    # office printers (printing/worker.py): the printer's own job id (IPP job-id), kept with the job
    Migration("ALTER TABLE jobs ADD COLUMN printer_job TEXT"),
    # new migrations go here (a test inserts its own at this line)
)
AGENT_SCHEMA = len(AGENT_MIGRATIONS)
"""The schema this release writes; the launcher compares it with a database's `min_reader_schema`."""

RETURNS_COLUMNS = (
    "return_id TEXT PRIMARY KEY, order_number TEXT, tracking_number TEXT, sscc TEXT, data TEXT NOT NULL"
)
MANIFEST_MIGRATIONS: Sequence[str] = (
    f"""
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
    CREATE TABLE returns_0({RETURNS_COLUMNS}) WITHOUT ROWID;
    CREATE TABLE returns_1({RETURNS_COLUMNS}) WITHOUT ROWID;
    CREATE TABLE snapshot_chunks(version INTEGER NOT NULL, chunk INTEGER NOT NULL, PRIMARY KEY(version, chunk));
    INSERT INTO meta VALUES ('version', '0'), ('active', '0');
    """,
)


def key_indexes(table: str) -> list[str]:
    return [
        f"CREATE INDEX IF NOT EXISTS {table}_order ON {table}(order_number)",
        f"CREATE INDEX IF NOT EXISTS {table}_tracking ON {table}(tracking_number)",
        f"CREATE INDEX IF NOT EXISTS {table}_sscc ON {table}(sscc)",
    ]


def connect(path: Path, synchronous: str = "FULL", readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT ourselves), WAL journal."""
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[str | Migration]) -> None:
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > len(migrations):
        oldest = min_reader_schema(conn)
        if oldest > len(migrations):
            raise SchemaTooNew(
                f"the database is at schema {current}, which releases before schema {oldest} cannot "
                f"read; this release is at schema {len(migrations)}"
            )
    for number, step in enumerate(migrations, start=1):
        if number <= current:
            continue
        migration = step if isinstance(step, Migration) else Migration(step)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in migration.script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if not migration.older_can_read:
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('min_reader_schema', ?)", (str(number),)
                )
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def min_reader_schema(conn: sqlite3.Connection) -> int:
    """The oldest schema that can read this database (0: any)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'min_reader_schema'").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0]) if row else 0


def schema_of(folder: Path) -> tuple[int, int]:
    """(schema, oldest schema that can read it) of the agent.db in `folder`, read-only; (0, 0)
    when there is none yet."""
    path = folder / AGENT_DB
    if not path.exists():
        return 0, 0
    conn = connect(path, readonly=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0]), min_reader_schema(conn)
    finally:
        conn.close()


def open_agent_db(folder: Path, max_size_mb: int | None = None) -> sqlite3.Connection:
    folder.mkdir(parents=True, exist_ok=True)
    conn = connect(folder / AGENT_DB, "FULL")
    migrate(conn, AGENT_MIGRATIONS)
    set_size_cap(conn, max_size_mb)
    return conn


def set_size_cap(conn: sqlite3.Connection, max_size_mb: int | None) -> int:
    """Cap the database file (SQLite's max_page_count); returns the cap in pages."""
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    pages = (max_size_mb * 1024 * 1024) // page_size if max_size_mb else 0xFFFFFFFE
    return int(conn.execute(f"PRAGMA max_page_count = {int(pages)}").fetchone()[0])


def fsync_files(conn: sqlite3.Connection) -> None:
    """Make what this connection committed durable now: fsync its database file and its WAL.

    For a database written with synchronous NORMAL, where one commit must not be lost to a power
    cut: an fsync of the WAL covers every frame written to it before, the earlier commits too.
    SQLite refuses to change the synchronous level inside a transaction, and the writer runs each
    job in one, so the fsync is done by hand (in the writer's thread, after the commit)."""
    (path,) = [row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"]
    for name in (f"{path}-wal", path):
        try:
            fd = os.open(name, os.O_RDONLY)
        except FileNotFoundError:
            continue  # no WAL just now: a checkpoint moved it into the database (and synced it)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def open_manifest_db(folder: Path) -> sqlite3.Connection:
    folder.mkdir(parents=True, exist_ok=True)
    # A snapshot's chunks can always be fetched again: NORMAL is enough for them. The commit that
    # changes the version is made durable before the version is reported (fsync_files).
    conn = connect(folder / MANIFEST_DB, "NORMAL")
    migrate(conn, MANIFEST_MIGRATIONS)
    active = conn.execute("SELECT value FROM meta WHERE key='active'").fetchone()[0]
    for statement in key_indexes(f"returns_{active}"):
        conn.execute(statement)
    return conn
