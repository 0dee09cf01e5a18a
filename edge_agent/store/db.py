"""Connections, pragmas and migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

AGENT_DB = "agent.db"
MANIFEST_DB = "manifest.db"

AGENT_MIGRATIONS: Sequence[str] = (
    """
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
    """,
)

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


def migrate(conn: sqlite3.Connection, migrations: Sequence[str]) -> None:
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(migrations, start=1):
        if number <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


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


def open_manifest_db(folder: Path) -> sqlite3.Connection:
    folder.mkdir(parents=True, exist_ok=True)
    # The manifest can always be fetched again from the central system: NORMAL is enough.
    conn = connect(folder / MANIFEST_DB, "NORMAL")
    migrate(conn, MANIFEST_MIGRATIONS)
    active = conn.execute("SELECT value FROM meta WHERE key='active'").fetchone()[0]
    for statement in key_indexes(f"returns_{active}"):
        conn.execute(statement)
    return conn
