"""What the station display shows, kept as one small document, and the pages watching it.

Each change (a scan, the mode, the broker link, a printer's state, the outbox depth) replaces a
part of the document; when a part really changes, every page is woken and sent the whole
document again. A page that falls behind only ever misses intermediate states, never the last
one: a slow kiosk cannot make the agent buffer.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

OUTCOMES = ("expected", "duplicate", "unknown", "invalid", "command", "item", "extra_item")


def local_day(epoch_s: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(epoch_s))


def local_midnight(epoch_s: float | None = None) -> float:
    t = time.localtime(epoch_s)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def scan_view(payload: dict[str, Any]) -> dict[str, Any]:
    """The part of a scan event the worker sees; built the same way from a live record and from
    the event stored before a restart."""
    decoded = payload.get("decoded") or {}
    command = decoded.get("command") or {}
    ret = payload.get("return") or None
    return {
        "seq": payload.get("seq"),
        "event_id": payload.get("event_id"),
        "ts": payload.get("ts"),
        "scanner": payload.get("scanner"),
        "mode": payload.get("mode"),
        "outcome": payload.get("outcome"),
        "kind": decoded.get("kind"),
        "raw": decoded.get("raw"),
        "error": decoded.get("error"),
        "command": {"name": command.get("name"), "value": command.get("value")} if command else None,
        "return": ret,
        "receipt": payload.get("receipt"),
        "qty": payload.get("qty"),
        "grade": payload.get("grade"),
        "serial": payload.get("serial"),
        "reason": payload.get("reason"),
        "weight": payload.get("weight"),
    }


def load_from_db(conn: sqlite3.Connection, midnight: float) -> tuple[dict[str, Any] | None, dict[str, int]]:
    """The last scan stored and today's counts (reader thread)."""
    row = conn.execute("SELECT payload FROM scans ORDER BY seq DESC LIMIT 1").fetchone()
    last = scan_view(json.loads(row[0])) if row else None
    counts = dict.fromkeys(OUTCOMES, 0)
    for outcome, n in conn.execute(
        "SELECT outcome, count(*) FROM scans WHERE created_at >= ? GROUP BY outcome", (midnight,)
    ):
        counts[outcome] = n
    return last, counts


class DisplayHub:
    def __init__(self, station: dict[str, Any]) -> None:
        self._doc: dict[str, Any] = {
            "station": station,
            "mode": None,
            "last": None,
            "today": {"day": local_day(), "counts": dict.fromkeys(OUTCOMES, 0)},
            "broker": {"connected": False},
            "outbox": {"depth": 0, "oldest_unsent_s": 0},
            "printers": [],
            "scanners": [],
            "scales": [],
            "storage_full": False,
            "manifest_version": 0,
            "receipt": None,
            "receipt_closed": None,
        }
        self.version = 0
        self._watchers: set[asyncio.Event] = set()

    # --- writers -------------------------------------------------------------------------
    def set(self, key: str, value: Any) -> None:
        if self._doc.get(key) != value:
            self._doc[key] = value
            self._changed()

    def loaded(self, last: dict[str, Any] | None, counts: dict[str, int], day: str) -> None:
        """State found in storage at start: the last scan before a restart and today's counts."""
        if self._doc["last"] is None or (
            last and (last.get("seq") or 0) > (self._doc["last"].get("seq") or 0)
        ):
            self._doc["last"] = last
        self._doc["today"] = {"day": day, "counts": {**dict.fromkeys(OUTCOMES, 0), **counts}}
        self._changed()

    def scan(self, payload: dict[str, Any], day: str | None = None, weighing: bool = False) -> None:
        """`weighing`: the parcel's weight is still being waited for (`weighed` brings it)."""
        view = scan_view(payload)
        if weighing:
            view["weighing"] = True
        self._roll(day or local_day())
        counts = self._doc["today"]["counts"]
        outcome = str(view["outcome"])
        counts[outcome] = counts.get(outcome, 0) + 1
        self._doc["last"] = view
        if view["command"] and view["command"]["name"] == "mode" and view["outcome"] == "command":
            self._doc["mode"] = str(view["command"]["value"]).lower()
        self._changed()

    def weighed(self, event_id: str, weight: dict[str, Any] | None, receipt: dict[str, Any] | None) -> None:
        """A parcel's weight that came after its scan: onto that scan's result while it is the one
        shown, and onto the open receipt it opened."""
        last = self._doc["last"]
        if last is not None and last.get("event_id") == event_id:
            self._doc["last"] = {**last, "weight": weight, "weighing": False}
        if receipt is not None and (self._doc["receipt"] or {}).get("receipt_id") == receipt.get(
            "receipt_id"
        ):
            self._doc["receipt"] = {**self._doc["receipt"], "weight": weight}
        self._changed()

    def show_receipt(self, view: dict[str, Any] | None, closed: dict[str, Any] | None = None) -> None:
        """The open receipt's checklist (None: none open), and a receipt just closed: its summary
        is shown until the next scan (`after_seq`, the last scan when it closed)."""
        changed = self._doc["receipt"] != view
        self._doc["receipt"] = view
        if closed is not None:
            last = self._doc["last"] or {}
            self._doc["receipt_closed"] = {**closed, "after_seq": last.get("seq") or 0}
            changed = True
        if changed:
            self._changed()

    def roll_day(self, day: str | None = None) -> None:
        """At local midnight today's counts start again."""
        if self._roll(day or local_day()):
            self._changed()

    def _roll(self, day: str) -> bool:
        if self._doc["today"]["day"] == day:
            return False
        self._doc["today"] = {"day": day, "counts": dict.fromkeys(OUTCOMES, 0)}
        return True

    def _changed(self) -> None:
        self.version += 1
        for watcher in self._watchers:
            watcher.set()

    # --- readers -------------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        return {**self._doc, "version": self.version, "server_time_ms": int(time.time() * 1000)}

    def watch(self) -> asyncio.Event:
        event = asyncio.Event()
        self._watchers.add(event)
        return event

    def unwatch(self, event: asyncio.Event) -> None:
        self._watchers.discard(event)

    def wake_all(self) -> None:
        for watcher in self._watchers:
            watcher.set()

    @property
    def watchers(self) -> int:
        return len(self._watchers)
