"""The outbound port: what a component may send to the central system, and nothing more.

`publish` stores a message in the outbox (durable, in order) and wakes the publisher; `send_now`
hands one straight to the broker link when there is one (presence, telemetry, an alert that cannot
wait for storage), and says whether it could. Components hold this, not the link, the writer or
the publisher.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any

import structlog

from edge_agent.config import DeviceConfig
from edge_agent.store import outbox
from edge_agent.store.writer import Writer
from edge_agent.sync.link import MqttLink, NotConnected, json_bytes
from edge_agent.sync.models import CONTRACT_VERSION, rfc3339
from edge_agent.sync.publisher import OutboxPublisher
from edge_agent.sync.topics import Topics


class Outbound:
    def __init__(
        self, device: DeviceConfig, topics: Topics, writer: Writer, link: MqttLink, publisher: OutboxPublisher
    ) -> None:
        self.topics = topics
        self._device = device
        self._writer = writer
        self._link = link
        self._publisher = publisher
        self._log = structlog.get_logger("edge_agent.sync").bind(component="outbound")

    def envelope(self, ts: str | None = None) -> dict[str, Any]:
        return {
            "v": CONTRACT_VERSION,
            "device": self._device.id,
            "site": self._device.site,
            "ts": ts or rfc3339(),
        }

    @property
    def connected(self) -> bool:
        return self._link.connected.is_set()

    async def publish(
        self, topic: str, payload: dict[str, Any], *, retain: bool = False, kind: str = "event",
        correlation: bytes | None = None,
    ) -> None:  # fmt: skip
        """Store a message in the outbox (durable, ordered) and wake the publisher."""
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        try:
            await self._writer.submit(lambda c: outbox.enqueue(c, topic, body, 1, retain, kind, correlation))
        except sqlite3.Error as exc:
            # storage refuses (full disk): send it now if we can, undurably, rather than not at all
            self._log.error("outbox.store_failed", topic=topic, kind=kind, error=str(exc))
            self.send_now(topic, body, qos=1, retain=retain, correlation=correlation)
            return
        self._publisher.wake()

    def send_now(
        self, topic: str, payload: dict[str, Any] | bytes, qos: int, retain: bool = False,
        correlation: bytes | None = None,
    ) -> bool:  # fmt: skip
        """Straight to the broker, not stored; False when there is no link now. Thread-safe."""
        body = payload if isinstance(payload, bytes) else json_bytes(payload)
        with contextlib.suppress(NotConnected):
            self._link.publish(topic, body, qos, retain, correlation)
            return True
        return False

    def wake(self) -> None:
        """Rows were added to the outbox by a component's own transaction: send them."""
        self._publisher.wake()
