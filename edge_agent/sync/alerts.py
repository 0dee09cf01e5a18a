"""Alerts to the central system, and the rate-limited report of bad input (mqtt.md, "Bad input").

`alert` stores an `event/alert` like any event; `alert_now` sends one straight away (storage may be
what fails). `bad_message` counts a bad inbound message and reports it as an alert while the rate
limit allows, from the event loop; `bad_message_threadsafe` does the same from paho's thread, where
`screen` finds most bad messages. Both share one `Screen`, so the limit is one per topic filter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from edge_agent.sync.outbound import Outbound
from edge_agent.sync.screen import Screen

Spawn = Callable[[Coroutine[Any, Any, Any], str], None]


class Alerts:
    def __init__(
        self, out: Outbound, screening: Screen, spawn: Spawn, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._out = out
        self.screening = screening
        self._spawn = spawn
        self._loop = loop
        self._log = structlog.get_logger("edge_agent.sync").bind(component="alerts")

    async def alert(self, kind: str, **fields: Any) -> None:
        await self._out.publish(self._out.topics.event_alert, {**self._out.envelope(), "kind": kind, **fields},
                                kind="alert")  # fmt: skip

    def alert_now(self, kind: str, **fields: Any) -> None:
        """An alert that cannot wait for (or fit in) the outbox: sent directly, when connected."""
        self._out.send_now(
            self._out.topics.event_alert, {**self._out.envelope(), "kind": kind, **fields}, qos=1
        )

    async def bad_message(self, topic: str, error: str) -> None:
        """A bad message found by a handler in the event loop."""
        report, summary_at = self.screening.bad(self._out.topics, topic)
        if summary_at is not None:
            self._loop.call_later(summary_at - time.monotonic() + 0.01, self._summaries)
        if report:
            self._report(topic, error)

    def bad_message_threadsafe(self, topic: str, error: str) -> None:
        """The same, from paho's network thread: only what the limit admits reaches the loop."""
        report, summary_at = self.screening.bad(self._out.topics, topic)
        if summary_at is not None:
            self._loop.call_soon_threadsafe(self._loop.call_later, summary_at - time.monotonic() + 0.01,
                                            self._summaries)  # fmt: skip
        if report:
            self._loop.call_soon_threadsafe(self._report, topic, error)

    def _report(self, topic: str, error: str) -> None:
        self._log.warning(
            "inbound.bad_message", topic=topic, filter=self._out.topics.filter_of(topic), error=error
        )
        self._spawn(self.alert("bad_message", topic=topic, error=error), "bad-message-alert")

    def _summaries(self) -> None:
        for key, suppressed in self.screening.summaries():
            total = self.screening.counts()["bad_messages"]
            self._log.warning("inbound.flood", filter=key, suppressed=suppressed, bad_messages=total)
            self._spawn(self.alert("bad_message", topic=key, suppressed=suppressed), "flood-summary")
