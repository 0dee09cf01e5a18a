"""Delivers the outbox to the broker: QoS 1, in id (and so seq) order, a bounded window in flight.

Theory of operation: while the link is up, the publisher reads the next unsent rows after the
last one it handed to paho and publishes them until `window` are unacknowledged. Each PUBACK
moves a row id from `inflight` to `acked`; acked ids are marked sent in storage in batches (they
share commits with scans). When the link drops, nothing in flight is trusted: the next
connection starts again from the first row not yet acknowledged, in order. So a row is sent at
least once, an unacknowledged one again after a reconnect, and never out of order. Sent rows are
pruned after the retention period.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from edge_agent.store import outbox
from edge_agent.store.reader import Reader
from edge_agent.store.writer import Writer
from edge_agent.sync.link import MqttLink, NotConnected

PRUNE_EVERY_S = 600.0


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
        self._wake = asyncio.Event()
        self._inflight: dict[int, int] = {}
        self._acked: set[int] = set()
        self._to_mark: list[int] = []
        self._after = 0
        self._generation = 0
        self._marker: asyncio.Task[None] | None = None
        self.published = 0
        self.acked_total = 0
        self._log = structlog.get_logger("edge_agent.sync").bind(component="outbox")

    def wake(self) -> None:
        self._wake.set()

    def on_connected(self) -> None:
        """A new connection: resend from the first row the broker has not acknowledged."""
        self._generation += 1
        self._inflight.clear()
        self._after = 0
        self._wake.set()

    def on_puback(self, mid: int) -> None:
        row_id = self._inflight.pop(mid, None)
        if row_id is None:
            return
        self.acked_total += 1
        self._acked.add(row_id)
        self._to_mark.append(row_id)
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._mark(), name="outbox-mark-sent")
        self._wake.set()

    async def _mark(self) -> None:
        while self._to_mark:
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
        pass

    async def run(self) -> None:
        last_prune = 0.0
        while True:
            if time.monotonic() - last_prune > PRUNE_EVERY_S:
                last_prune = time.monotonic()
                removed = (await self._writer.submit(lambda c: outbox.prune(c, self._retention_s))).value
                if removed:
                    self._log.info("outbox.pruned", rows=removed)
            await self._link.connected.wait()
            room = self._window - len(self._inflight)
            if room <= 0:
                await self._sleep()
                continue
            generation, after, limit = self._generation, self._after, room + len(self._acked)
            rows = await self._reader.read(lambda c: outbox.fetch_unsent(c, after, limit))  # noqa: B023 (awaited here)
            if generation != self._generation:
                continue  # the connection changed while we read: start over from its beginning
            rows = [r for r in rows if r.id not in self._acked][:room]
            if not rows:
                await self._sleep()
                continue
            for row in rows:
                try:
                    mid = self._link.publish(row.topic, row.payload, row.qos, row.retain, row.correlation)
                except NotConnected:
                    break
                self._inflight[mid] = row.id
                self._after = row.id
                self.published += 1

    async def _sleep(self) -> None:
        self._wake.clear()
        try:
            async with asyncio.timeout(1.0):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def stop(self) -> None:
        if self._marker is not None:
            await asyncio.gather(self._marker, return_exceptions=True)
