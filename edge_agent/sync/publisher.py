"""Delivers the outbox to the broker: QoS 1, in id (and so seq) order, a bounded window in flight.

Theory of operation: while the link is up, the event loop keeps a buffer of the next unsent rows
(read in pages, off the loop). Rows are handed to paho in buffer order, at most `window` of them
unacknowledged. Handing over happens where it is cheapest: from the event loop when rows arrive
in an idle buffer, and from paho's own network thread right after each PUBACK (no thread hop
per message, which would halve a backlog drain). One pumper at a time (`_pumping`) keeps the
order; neither thread holds our lock while it calls into paho, so the two locks cannot deadlock.

A scan's event does not wait for a read: the writer thread hands its row over (`hand_over`) the
moment its commit returned, and it is taken when it is the very next row after everything already
read (`_after`, kept under the lock with the buffer): then no earlier row can be missing, and the
order holds. Any other row is left for the read, which skips what was handed over.

PUBACKs come in publish order for QoS 1 on one connection (MQTT 4.6); each one retires the
oldest row in flight. Acknowledged ids go to the event loop in batches and are marked sent in
storage (sharing commits with scans). When the link drops, nothing in flight or buffered is
trusted: the next connection starts again from the first row not yet acknowledged, in order. So
a row is sent at least once, an unacknowledged one again after a reconnect, never out of order.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

import structlog

from edge_agent.store import outbox
from edge_agent.store.outbox import OutboxRow
from edge_agent.store.reader import Reader
from edge_agent.store.writer import Writer
from edge_agent.sync.link import MqttLink, NotConnected

PRUNE_EVERY_S = 600.0
PAGE = 5000
ACK_POLL_BUSY_S = 0.005
MARK_EVERY_S = 0.05
ACK_POLL_IDLE_S = 0.05


class OutboxPublisher:
    def __init__(
        self, link: MqttLink, reader: Reader, writer: Writer, retention_s: float, window: int = 64
    ) -> None:
        self.name = "outbox"
        self._link = link
        self._reader = reader
        self._writer = writer
        self._retention_s = retention_s
        self._window = window
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        # shared with paho's thread, under _lock
        self._lock = threading.Lock()
        self._buffer: deque[OutboxRow] = deque()
        self._inflight: deque[tuple[int, int]] = deque()  # (mid, row id), in publish order
        self._early: set[int] = set()  # PUBACKs that beat the recording of their mid
        self._pumping = False
        self._acked_out: list[int] = []
        self._after = 0  # the last row id read or handed over; every unsent row up to it is buffered
        self.handed_over = 0
        # event loop only
        self._acked: set[int] = set()
        self._to_mark: list[int] = []
        self._generation = 0
        self._marker: asyncio.Task[None] | None = None
        self.published = 0
        self.acked_total = 0
        self._log = structlog.get_logger("edge_agent.sync").bind(component="outbox")

    def wake(self) -> None:
        """New rows may be ready."""
        self._wake.set()

    def on_connected(self) -> None:
        """A new connection: resend from the first row the broker has not acknowledged."""
        with self._lock:
            self._generation += 1
            self._inflight.clear()
            self._buffer.clear()
            self._early.clear()
            self._after = 0
        self._wake.set()

    def hand_over(self, row: OutboxRow) -> bool:
        """From any thread: a row just committed ready to send. Taken (True) only when it is the
        next row after all that were read or handed over, and the link is up; else it is left to
        the read (False)."""
        with self._lock:
            if row.id != self._after + 1 or not self._link.connected.is_set():
                return False
            self._after = row.id
            self._buffer.append(row)
            self.handed_over += 1
        self._pump()
        return True

    # --- either thread ---------------------------------------------------------------------
    def _pump(self) -> None:
        while True:
            with self._lock:
                if self._pumping or not self._buffer or len(self._inflight) >= self._window:
                    return
                self._pumping = True
                generation = self._generation
                row = self._buffer.popleft()
            try:
                mid = self._link.publish(row.topic, row.payload, row.qos, row.retain, row.correlation)
            except NotConnected:
                with self._lock:
                    if generation == self._generation:
                        self._buffer.appendleft(row)
                    self._pumping = False
                return
            with self._lock:
                self._pumping = False
                early, self._early = mid in self._early, set()
                if generation != self._generation:
                    return
                self.published += 1
                if early:
                    self._retire(row.id)
                else:
                    self._inflight.append((mid, row.id))

    def _retire(self, row_id: int) -> None:
        """Under _lock: a row the broker acknowledged; `_collect` picks it up in the event loop.
        (No wake-up per PUBACK: a syscall and a GIL hand-over per message would slow a drain.)"""
        self._acked_out.append(row_id)

    # --- paho's thread ---------------------------------------------------------------------
    def puback(self, mid: int) -> None:
        with self._lock:
            if self._inflight and self._inflight[0][0] == mid:
                self._retire(self._inflight.popleft()[1])
            else:
                for i, (m, row_id) in enumerate(self._inflight):
                    if m == mid:
                        del self._inflight[i]
                        self._retire(row_id)
                        break
                else:
                    # Only the message being published right now can be acknowledged before its
                    # mid is recorded; any other mid is not ours (a QoS 0 message, or one sent
                    # around the outbox), and keeping it would retire an unacknowledged row that
                    # gets the same mid once paho's counter wraps.
                    if self._pumping:
                        self._early.add(mid)
        self._pump()

    # --- event loop ------------------------------------------------------------------------
    def _take_acks(self) -> bool:
        """Move acknowledged ids to the marker; True while anything is still in flight."""
        with self._lock:
            ids, self._acked_out = self._acked_out, []
            low = len(self._buffer) < PAGE // 2
            busy = bool(self._inflight)
        if not ids:
            return busy
        self.acked_total += len(ids)
        self._acked.update(ids)
        self._to_mark.extend(ids)
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._mark(), name="outbox-mark-sent")
        if low:
            self._wake.set()
        return busy

    async def _collect(self) -> None:
        while True:
            busy = self._take_acks()
            await asyncio.sleep(ACK_POLL_BUSY_S if busy else ACK_POLL_IDLE_S)

    async def _mark(self) -> None:
        # At most one commit per MARK_EVERY_S: a drain marks thousands of rows per commit instead
        # of a few; a crash in between only means those rows are sent again (exact re-sends).
        while self._to_mark:
            await asyncio.sleep(MARK_EVERY_S)
            ids, self._to_mark = self._to_mark, []
            try:
                await self._writer.submit(lambda conn: outbox.mark_sent(conn, ids))  # noqa: B023 (awaited here)
            except Exception as exc:
                self._log.error("outbox.mark_failed", error=repr(exc), rows=len(ids))
                await asyncio.sleep(1.0)
                self._to_mark.extend(ids)
                continue
            self._acked.difference_update(ids)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._collect(), name="outbox-acks")
            group.create_task(self._feed(), name="outbox-feed")

    async def _feed(self) -> None:
        last_prune = 0.0
        while True:
            if time.monotonic() - last_prune > PRUNE_EVERY_S:
                last_prune = time.monotonic()
                removed = (await self._writer.submit(lambda c: outbox.prune(c, self._retention_s))).value
                if removed:
                    self._log.info("outbox.pruned", rows=removed)
            await self._link.connected.wait()
            self._wake.clear()
            with self._lock:
                buffered = len(self._buffer)
            fetched = PAGE  # when the buffer is full enough we did not read; assume there is more
            if buffered < PAGE // 2:
                with self._lock:
                    generation, after = self._generation, self._after
                rows = await self._reader.read(lambda c: outbox.fetch_unsent(c, after, PAGE))  # noqa: B023
                with self._lock:
                    if generation != self._generation:
                        continue  # the connection changed while we read: start over from its beginning
                    skip = self._acked.union(row_id for _, row_id in self._inflight)
                    # rows handed over while we read are buffered already
                    self._buffer.extend(row for row in rows if row.id > self._after and row.id not in skip)
                    if rows:
                        self._after = max(self._after, rows[-1].id)
                fetched = len(rows)
            self._pump()
            if fetched < PAGE or buffered >= PAGE // 2:
                await self._sleep()

    async def _sleep(self) -> None:
        try:
            async with asyncio.timeout(1.0):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def stop(self) -> None:
        if self._marker is not None:
            await asyncio.gather(self._marker, return_exceptions=True)
