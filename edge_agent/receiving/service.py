"""The receiving component: closes idle receipts, and reports every receipt change and close
(log, station page, outbox wake-up, print on close). It never holds up a scan: what follows a
close runs after the scan's commit, and printing is a job like any other.

Ports: the agent.db `writer`; `close_idle`, the recorder's function of the connection run in the
writer thread; `wake` (the publisher: a receipt's event waits in the outbox); `show` (the station page's
receipt: the open one's checklist, and a summary of one just closed); `print_close` (queues the receipt's print job); `alert` (an `event/alert`); the running
configuration's `receiving` section.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from edge_agent.config import PrintOnClose, ReceivingConfig
from edge_agent.store.scans import ScanRecord
from edge_agent.store.writer import Writer
from edge_agent.sync.models import rfc3339

CloseIdle = Callable[[Any, float, str], dict[str, Any] | None]


def summary(event: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of a closed receipt: complete, short or extra, and what is missing."""
    lines = event.get("lines") or []
    missing = [
        {"sku": ln.get("sku"), "name": ln.get("name"), "missing": ln["expected_qty"] - ln["received_qty"]}
        for ln in lines
        if ln["received_qty"] < ln["expected_qty"]
    ]
    extra = event.get("extra") or []
    verdict = "cancelled" if event.get("closed_by") == "cancel" else (
        "complete" if event.get("complete") else "short" if missing else "extra")  # fmt: skip
    return {
        "receipt_id": event.get("event_id"),
        "receipt_seq": event.get("receipt_seq"),
        "return_id": event.get("return_id"),
        "order_number": event.get("order_number"),
        "closed_by": event.get("closed_by"),
        "verdict": verdict,
        "received": sum(ln["received_qty"] for ln in lines),
        "expected": sum(ln["expected_qty"] for ln in lines),
        "missing": missing,
        "extra": len(extra),
    }


class ReceivingService:
    """Polls once a second: a receipt is idle by the wall clock of its last scan (kept with it, so
    the deadline survives a restart), and a second is nothing next to `idle_close_s`."""

    name = "receiving"

    def __init__(
        self,
        writer: Writer,
        close_idle: CloseIdle,
        wake: Callable[[], None],
        show: Callable[[dict[str, Any] | None, dict[str, Any] | None], None],
        print_close: Callable[[dict[str, Any], PrintOnClose], Awaitable[None]],
        alert: Callable[..., Awaitable[None]],
        spawn: Callable[[Any, str], None],
        config: Callable[[], ReceivingConfig],
        interval_s: float = 1.0,
    ) -> None:
        self._writer = writer
        self._close_idle = close_idle
        self._wake = wake
        self._show = show
        self._print_close = print_close
        self._alert = alert
        self._spawn = spawn
        self._config = config
        self._interval_s = interval_s
        self._log = structlog.get_logger("edge_agent.receiving").bind(component="receiving")

    async def start(self) -> None:
        pass

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(self._interval_s, self._config().idle_close_s / 4))
            closed = await self._writer.submit(lambda conn: self._close_idle(conn, time.time(), rfc3339()))
            if closed.value is not None:
                self.closed([closed.value], None)

    async def stop(self) -> None:
        pass

    def after_scan(self, record: ScanRecord) -> None:
        """What a stored scan did to the receipts: bad item fields of the return it opened (the
        central system's data: told to it and to the operator, by name), closes, the open one."""
        if record.problems:
            return_id = (record.ret or {}).get("return_id")
            self._log.warning("manifest.item_invalid", return_id=return_id, problems=record.problems)
            alert = self._alert("manifest_item", return_id=return_id, error="; ".join(record.problems))
            self._spawn(alert, "manifest-item-alert")
        self.closed(record.closed, record.receipt)
        self.changed(record.receipt)

    def changed(self, view: dict[str, Any] | None) -> None:
        """After every scan: the open receipt as it stands (None: none open)."""
        self._show(view, None)

    def closed(self, events: list[dict[str, Any]], view: dict[str, Any] | None) -> None:
        """Receipts whose events a commit queued; `view`, the receipt open after it."""
        if not events:
            return
        self._wake()
        for event in events:
            lines = event["lines"]
            shown = summary(event)
            self._log.info(
                "receipt.closed",
                verdict=shown["verdict"],
                receipt_id=event["event_id"],
                receipt_seq=event["receipt_seq"],
                return_id=event["return_id"],
                order_number=event["order_number"],
                closed_by=event["closed_by"],
                complete=event["complete"],
                received=sum(ln["received_qty"] for ln in lines),
                expected=sum(ln["expected_qty"] for ln in lines),
                extra=len(event["extra"]),
            )
            self._show(view, shown)
            on_close = self._config().print_on_close
            if on_close is not None and (event["closed_by"] != "cancel" or on_close.on_cancel):
                self._spawn(self._print_close(event, on_close), f"receipt-print-{event['receipt_seq']}")
