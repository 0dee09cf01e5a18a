"""Receipts in agent.db: the open one and the closed ones (writer thread); pruned with the outbox.

Theory of operation: at most one receipt is open, the one `meta.open_receipt` names (meta's page is
written by every scan anyway, for its seq: an index of its own would be one more b-tree page in
each scan's commit). Its state is the machine's JSON in `receipts.data`, its lines' codes
included, rewritten in the transaction of every scan that changes it,
so after `kill -9` or a power cut it is exactly what the last stored scan left. Matching an item
scan reads that one row by its primary key; the lines are then compared in memory
(`machine.candidates`): a table of codes with its own index cost each parcel scan that opens a
receipt five more pages in its commit (WAL frames 7 -> 12 a matched scan) for a dozen codes. Closing
numbers the receipt (`receipt_seq`, a persistent counter beside the scans' `seq`, gapless for the
same reason) and puts the event's bytes in the outbox in the same transaction (a repeat is those
bytes); the row keeps the verdict, not a second copy of the event. The table is a WITHOUT ROWID
b-tree keyed by the receipt's UUIDv7, so a new receipt is appended where the last one is.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any, Protocol

import uuid6

from edge_agent.receiving import machine
from edge_agent.receiving.machine import Receipt, close
from edge_agent.store import outbox
from edge_agent.sync.models import CONTRACT_VERSION

if TYPE_CHECKING:
    from edge_agent.config import ReceivingConfig


class Recorder(Protocol):
    """What a desk needs of the scan recorder: the receiving rules, the envelope, the topic."""

    receipt_topic: str

    def rules(self) -> ReceivingConfig | None: ...

    def envelope(self, ts: str) -> dict[str, Any]: ...


_NEXT_RECEIPT_SEQ = (
    "INSERT INTO meta(key, value) VALUES ('receipt_seq', '1')"
    " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING value"
)


_LOAD_OPEN = (
    "SELECT r.data, r.updated_at FROM meta AS m JOIN receipts AS r ON r.receipt_id = m.value"
    " WHERE m.key = 'open_receipt' AND r.state = 'open'"
)


def load_open(conn: sqlite3.Connection) -> tuple[Receipt, float] | None:
    """The open receipt and when a scan last touched it (epoch seconds), or None."""
    row = conn.execute(_LOAD_OPEN).fetchone()
    return (Receipt.from_json(row[0]), float(row[1])) if row else None


def insert(conn: sqlite3.Connection, receipt: Receipt, now: float) -> None:
    conn.execute(
        "INSERT INTO receipts(receipt_id, return_id, state, data, opened_at, updated_at) VALUES (?,?,?,?,?,?)",
        (receipt.receipt_id, receipt.return_id, "open", receipt.to_json(), receipt.opened_at, now),
    )
    outbox.set_meta(conn, "open_receipt", receipt.receipt_id)


def save(conn: sqlite3.Connection, receipt: Receipt, now: float) -> None:
    conn.execute(
        "UPDATE receipts SET data = ?, updated_at = ? WHERE receipt_id = ? AND state = 'open'",
        (receipt.to_json(), now, receipt.receipt_id),
    )


def touch(conn: sqlite3.Connection, receipt_id: str, now: float) -> None:
    """A scan that did not change the receipt still keeps it from closing as idle."""
    conn.execute("UPDATE receipts SET updated_at = ? WHERE receipt_id = ?", (now, receipt_id))


def close_receipt(
    conn: sqlite3.Connection,
    receipt: Receipt,
    closed_by: str,
    topic: str,
    envelope: dict[str, Any],
) -> dict[str, Any]:
    """Close the open receipt: number it, store its event and queue it for delivery. Returns the
    event as published."""
    seq = int(conn.execute(_NEXT_RECEIPT_SEQ).fetchone()[0])
    body = close(receipt, closed_by)
    payload = {"v": CONTRACT_VERSION, **envelope, "receipt_seq": seq, **body}
    data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    outbox_id = outbox.enqueue(conn, topic, data, qos=1, kind="receipt")
    conn.execute(
        "UPDATE receipts SET state = 'closed', receipt_seq = ?, closed_by = ?, complete = ?, outbox_id = ?,"
        " data = '', updated_at = ? WHERE receipt_id = ?",
        (seq, closed_by, int(payload["complete"]), outbox_id, time.time(), receipt.receipt_id),
    )
    conn.execute("DELETE FROM meta WHERE key = 'open_receipt'")
    return payload


def set_weight(conn: sqlite3.Connection, receipt_id: str, weight: dict[str, Any]) -> bool:
    """A parcel's weight that came after its scan, onto the receipt the scan opened: the open one,
    or, closed meanwhile (`CMD:DONE` within the settle time), its queued event. That event cannot
    have left: it is behind the parcel's event, which was held for this weight (outbox order)."""
    opened = load_open(conn)
    if opened is not None and opened[0].receipt_id == receipt_id:
        opened[0].weight = weight
        save(conn, opened[0], opened[1])
        return True
    row = conn.execute(
        "SELECT o.id, o.payload FROM receipts AS r JOIN outbox AS o ON o.id = r.outbox_id"
        " WHERE r.receipt_id = ? AND r.state = 'closed' AND o.sent_at IS NULL",
        (receipt_id,),
    ).fetchone()
    if row is None:
        return False
    event = json.loads(row[1])
    event["weight"] = weight
    data = json.dumps(event, separators=(",", ":")).encode("utf-8")
    conn.execute("UPDATE outbox SET payload = ? WHERE id = ?", (data, row[0]))
    return True


def status(conn: sqlite3.Connection) -> dict[str, Any]:
    """The open receipt (as the page shows it, with when a scan last touched it) and the last closed
    ones, for `status`; empty on a database from before receipts (read-only readers)."""
    try:
        opened = load_open(conn)
        seq = conn.execute("SELECT value FROM meta WHERE key = 'receipt_seq'").fetchone()
    except sqlite3.OperationalError:
        return {"open": None, "last_receipt_seq": 0, "recent": []}
    view = None
    if opened is not None:
        view = {**opened[0].view(), "idle_s": round(max(0.0, time.time() - opened[1]), 1)}
    return {"open": view, "last_receipt_seq": int(seq[0]) if seq else 0, "recent": recent(conn)}


def recent(conn: sqlite3.Connection, limit: int = 5) -> list[dict[str, Any]]:
    """The last closed receipts, newest first (status)."""
    rows = conn.execute(
        "SELECT receipt_seq, receipt_id, return_id, closed_by, complete FROM receipts"
        " WHERE state = 'closed' ORDER BY receipt_id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    out = []
    for seq, rid, return_id, closed_by, complete in rows:
        out.append({"receipt_seq": seq, "receipt_id": rid, "return_id": return_id, "closed_by": closed_by,
                    "complete": bool(complete)})  # fmt: skip
    return out


class Desk:
    """One scan's dealings with the receipts, inside its transaction: what it counted, set,
    opened and closed, written when the scan's own row is (`finish`)."""

    def __init__(self, recorder: Recorder, conn: sqlite3.Connection, scan: Any, now: float) -> None:
        self._recorder = recorder
        self._conn = conn
        self._scan = scan
        self._now = now
        self._rules = recorder.rules()
        self._closed: list[dict[str, Any]] = []
        self._close_by: str | None = None
        self._opening: machine.Receipt | None = None
        self._changed = False
        self.problems: list[str] = []
        opened = load_open(conn)
        self.receipt = opened[0] if opened else None
        if opened is not None and self._rules is not None and now - opened[1] >= self._rules.idle_close_s:
            # idle before this scan came, even if the service has not noticed yet
            self._closed.append(self._close(opened[0], "idle"))
            self.receipt = None

    def _close(self, receipt: machine.Receipt, closed_by: str) -> dict[str, Any]:
        envelope = self._recorder.envelope(self._scan.ts)
        return close_receipt(self._conn, receipt, closed_by, self._recorder.receipt_topic, envelope)

    def close_after(self, closed_by: str) -> None:
        if self.receipt is not None and self._close_by is None:
            self._close_by = closed_by

    def command(self, name: str, value: str | None) -> None:
        if self.receipt is None:
            return
        if name in ("done", "cancel"):
            self.close_after(name)
        elif name == "qty" and value is not None:
            machine.set_qty(self.receipt, int(value))
            self._changed = True
        elif name == "grade" and value is not None:
            machine.set_grade(self.receipt, value)
            self._changed = True

    def count(self, lines: list[int], code: machine.ScanCode) -> machine.ItemResult:
        assert self.receipt is not None
        self._changed = True
        return machine.count(self.receipt, lines, code)

    def parcel(self, ret: dict[str, Any], outcome: str, mode: str) -> None:
        """A parcel scan: another return closes the open receipt; an expected one with items
        opens its own, in a mode that opens"""
        rules = self._rules
        opens = (
            rules is not None and outcome == "expected" and mode in rules.open_in and bool(ret.get("items"))
        )
        if self.receipt is not None and (opens or ret["return_id"] != self.receipt.return_id):
            self.close_after("next_return")
        if opens and rules is not None:
            self.problems = machine.item_problems(ret.get("items"))
            self._opening = machine.open_receipt(
                str(uuid6.uuid7()), ret, self._scan.event_id, self._scan.ts, rules.default_grade
            )

    def weigh(self, weight: dict[str, Any]) -> None:
        """The parcel's weight, on the receipt this scan opens."""
        if self._opening is not None:
            self._opening.weight = weight

    def scan_fields(self, item: machine.ItemResult | None) -> dict[str, Any]:
        """The scan event's receipt fields (mqtt.md, scan event extras)."""
        target = self._opening or self.receipt
        if target is None:
            return {}
        out: dict[str, Any] = {
            "receipt": {
                "receipt_id": target.receipt_id,
                "return_id": target.return_id,
                "line": item.line if item is not None else None,
            }
        }
        if item is not None:
            out["qty"] = item.qty
            out["grade"] = item.grade
            if item.serial is not None:
                out["serial"] = item.serial
            if item.reason is not None:
                out["reason"] = item.reason
        return out

    def finish(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Write what changed, after the scan's own outbox row: (closed events, open view)."""
        receipt = self.receipt
        if receipt is not None and self._close_by is not None:
            self._closed.append(self._close(receipt, self._close_by))
            receipt = None
        elif receipt is not None and self._changed:
            save(self._conn, receipt, self._now)
        elif receipt is not None:
            touch(self._conn, receipt.receipt_id, self._now)
        if self._opening is not None:
            insert(self._conn, self._opening, self._now)
            receipt = self._opening
        return self._closed, receipt.view() if receipt is not None else None
