"""The one writer of a SQLite file: a thread that owns the connection and commits in groups.

Theory of operation: callers hand `submit()` a function of the connection. The thread takes the
first waiting function, then every other one already queued (a burst), runs each inside its own
SAVEPOINT within one transaction (a lone one needs none), and commits once. A function that raises
is rolled back alone and its caller gets the exception; a failed COMMIT (disk full) fails every caller of the group.
A lone scan is committed at once: grouping only ever takes what is already waiting, so it never
adds latency. Results carry `committed_ns`, the monotonic time the COMMIT returned.

An item may bring an `after` function, run once its commit returned, with its value and that
time, in a second transaction of the same group (scans store their measured latency this way),
and a `durable` function, run in this thread once everything the item wrote is committed (a scan
hands its event to the publisher from here: no hop through the event loop before the broker).
Callers are answered after both.

`max_group` bounds a group. The manifest's writer commits each message alone: 30 snapshot chunks
of 700 kB grouped into one transaction wrote 20 MB at once (and, with the WAL unable to checkpoint
in between, made every later checkpoint as large), and the scans' own fsyncs waited behind that
writeback in the filesystem's journal (bench/manifest.py, old and new alternated: scans during a
1,000,000-return snapshot p99 250-361 ms, max 401-512 ms grouped; 27-46 ms, max 43-101 ms one by
one; the snapshot itself 19.4-19.8 -> 18.5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
MAX_GROUP = 512


@dataclass(frozen=True, slots=True)
class Committed(Generic[T]):
    value: T
    committed_ns: int


@dataclass(slots=True)
class _Item:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    after: Callable[[sqlite3.Connection, Any, int], None] | None = None
    durable: Callable[[Any], None] | None = None


class Writer:
    def __init__(
        self, open_conn: Callable[[], sqlite3.Connection], name: str, max_group: int = MAX_GROUP
    ) -> None:
        self._open_conn = open_conn
        self._name = name
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self.commits = 0
        self.items = 0

    def start(self) -> None:
        """Open the database in the writer thread; raises what opening it raised."""
        self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            raise self._open_error

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    async def submit(
        self,
        fn: Callable[[sqlite3.Connection], T],
        after: Callable[[sqlite3.Connection, T, int], None] | None = None,
        durable: Callable[[T], None] | None = None,
    ) -> Committed[T]:
        """Run `fn` in a transaction and commit; then `after` (with the commit's end time) in a
        second one; then `durable` in this thread, only if both committed. `durable` must not
        block and its exceptions are ignored: it may only speed up what happens anyway."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Committed[T]] = loop.create_future()
        self._queue.put(_Item(fn, future, loop, after, durable))
        return await future

    def _main(self) -> None:
        try:
            conn = self._open_conn()
        except BaseException as exc:
            self._open_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < self._max_group:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
                self._run(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        results: list[tuple[bool, Any]] = []
        # A lone item needs no savepoint: rolling the transaction back undoes it alone (two
        # statements fewer on a scan's way to its commit).
        alone = len(batch) == 1
        try:
            conn.execute("BEGIN")
            for item in batch:
                if not alone:
                    conn.execute("SAVEPOINT item")
                try:
                    value = item.fn(conn)
                except Exception as exc:
                    if alone:
                        with contextlib.suppress(sqlite3.Error):
                            if conn.in_transaction:
                                conn.execute("ROLLBACK")
                        results.append((False, exc))
                        continue
                    try:
                        conn.execute("ROLLBACK TO item")
                        conn.execute("RELEASE item")
                    except sqlite3.Error:
                        # SQLite already rolled the whole transaction back (a full disk does):
                        # the group fails with the cause, not with "no such savepoint"
                        raise exc from None
                    results.append((False, exc))
                else:
                    if not alone:
                        conn.execute("RELEASE item")
                    results.append((True, value))
            if conn.in_transaction:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            # A full disk can fail even the savepoint bookkeeping: give the whole group up, keep
            # the thread (and what was committed before) alive.
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            results = [(False, exc)] * len(batch)
        done = time.monotonic_ns()
        self.commits += 1
        self.items += len(batch)
        follow_up = [
            (item, value) for item, (ok, value) in zip(batch, results, strict=True) if ok and item.after
        ]
        after_ok = True
        if follow_up:
            try:
                conn.execute("BEGIN")
                for item, value in follow_up:
                    assert item.after is not None
                    item.after(conn, value, done)
                conn.execute("COMMIT")
            except Exception:
                # The first commit holds the data; the caller learns that `after` did not commit
                # from `durable` not being called (scans then release their row themselves).
                after_ok = False
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
        for item, (ok, value) in zip(batch, results, strict=True):
            if ok and item.durable is not None and (after_ok or item.after is None):
                with contextlib.suppress(Exception):
                    item.durable(value)
            item.loop.call_soon_threadsafe(_settle, item.future, ok, value, done)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any, done: int) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(Committed(value, done))
    else:
        future.set_exception(value)
