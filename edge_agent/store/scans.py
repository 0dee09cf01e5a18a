"""Recording a scan: match, classify, number and store it in one transaction (writer thread).

Theory of operation: everything that decides a scan's event happens inside the scan's own
transaction, so the stored event, the station mode, the `received` set and the seq counter can
never disagree, whatever is killed when:

1. the station mode is read (a mode-change barcode updates it in the same transaction);
2. a valid, non-command payload is looked up in the active manifest table (manifest.db, read
   in one read transaction so that a snapshot swap is seen whole or not at all);
3. a match that this station already recorded in this mode is a `duplicate`, else `expected`
   (first scan wins), and is added to `received`;
4. `seq` is the persistent counter plus one: gapless, because counter and rows commit together;
5. the event goes into `scans` (history, replay) and `outbox` (delivery) in the same commit;
6. receipts (store/receipts.py, receiving/machine.py) change in the same commit: while one is
   open, a product code or a payload equal to one of its lines' codes is counted on it (`item`,
   `extra_item`), a command barcode sets its next quantity or grade or closes it, the scan of
   another return closes it (`next_return`) and an `expected` return with items opens the next;
   a closed receipt's event is queued after the scan's own;
7. a matched parcel at a station with a scale is weighed (edge_agent/scales/): a stable weight read
   since the scan goes into the event and the receipt, or the event is stored `unknown` and held
   (`weigh_pending`) until the scan service has waited for one and called `weighed`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.receiving import machine
from edge_agent.scales import weighing
from edge_agent.scales.weighing import Latest
from edge_agent.store import outbox, receipts
from edge_agent.store.db import MANIFEST_DB, connect
from edge_agent.sync.models import CONTRACT_VERSION

if TYPE_CHECKING:
    from edge_agent.config import ReceivingConfig

MATCH_COLUMNS = ("return_id", "order_number", "tracking_number", "sscc")


@dataclass(frozen=True, slots=True)
class ScanInput:
    event_id: str
    scanner: str
    ts: str
    decoded: dict[str, Any]
    body: str
    """The payload without its symbology identifier, tried whole against the manifest."""
    t_last_byte_ns: int
    clock_synced: bool = True
    """False while the wall clock is not synchronised: `ts` is then not to be trusted."""


@dataclass(frozen=True, slots=True)
class ScanRecord:
    seq: int
    event_id: str
    outbox_id: int
    outcome: str
    mode: str
    new_mode: str | None
    ret: dict[str, Any] | None
    payload: dict[str, Any]
    topic: str
    head: bytes
    """The event's JSON up to its last field, `latency_us`, which `after_commit` fills in."""
    receipt: dict[str, Any] | None = None
    """The open receipt after this scan (`Receipt.view`), None when none is open."""
    closed: list[dict[str, Any]] = field(default_factory=list)
    """Receipt events this scan's commit queued (a close), in order."""
    problems: list[str] = field(default_factory=list)
    """What is wrong with the items of the return whose receipt this scan opened (left out of it)."""
    weigh_pending: bool = False
    """The parcel's weight was not stable when it was scanned: the event is held until `weighed`."""
    expected_g: float | None = None
    """What the parcel should weigh (for `weighed`)."""


class ScanRecorder:
    """Lives in the agent.db writer thread; owns a read-only connection to manifest.db."""

    def __init__(
        self,
        folder: Path,
        device: str,
        site: str,
        initial_mode: str,
        receiving: Callable[[], ReceivingConfig] | None = None,
        receipt_topic: str = "",
        scale: Callable[[], Latest | None] = lambda: None,
    ) -> None:
        """`scale` gives the station scale's last reading, None at a station without one."""
        self._scale = scale
        self._manifest_path = folder / MANIFEST_DB
        self._device = device
        self._site = site
        self._initial_mode = initial_mode
        self._manifest: sqlite3.Connection | None = None
        self._receiving = receiving
        self.receipt_topic = receipt_topic

    def _manifest_conn(self) -> sqlite3.Connection:
        if self._manifest is None:
            self._manifest = connect(self._manifest_path, readonly=True)
        return self._manifest

    def lookup(self, candidates: list[tuple[str, str]]) -> dict[str, Any] | None:
        """The first candidate (column, value) that matches a return of the active manifest
        table. One statement, so one read snapshot: a snapshot swap is seen whole or not at all."""
        if not candidates:
            return None
        sql = _lookup_statement(tuple(column for column, _ in candidates))
        row = self._manifest_conn().execute(sql, [value for _, value in candidates]).fetchone()
        if row is None:
            return None
        data = json.loads(row[2])
        ret: dict[str, Any] = {"return_id": row[0], "order_number": row[1], "items": data.get("items", [])}
        if data.get("customer") is not None:
            ret["customer"] = data["customer"]
        if data.get("bin"):
            ret["bin"] = data["bin"]
        if data.get("weight_g") is not None:
            ret["weight_g"] = data["weight_g"]
        return ret

    def mode(self, conn: sqlite3.Connection) -> str:
        return outbox.get_meta(conn, "mode", self._initial_mode) or self._initial_mode

    def record(self, conn: sqlite3.Connection, scan: ScanInput, topic: str) -> ScanRecord:
        decoded = scan.decoded
        mode = self.mode(conn)
        new_mode: str | None = None
        ret: dict[str, Any] | None = None
        now = time.time()
        desk = receipts.Desk(self, conn, scan, now)
        receipt = desk.receipt
        item: machine.ItemResult | None = None
        if decoded["kind"] == "command":
            outcome = "command" if decoded["valid"] else "invalid"
            command = decoded.get("command") or {}
            if decoded["valid"] and command.get("name") == "mode":
                new_mode = str(command["value"]).lower()
                outbox.set_meta(conn, "mode", new_mode)
                if new_mode != mode:
                    desk.close_after("mode")
            elif decoded["valid"]:
                desk.command(str(command.get("name")), command.get("value"))
        elif not decoded["valid"]:
            outcome = "invalid"
        else:
            outcome = "unknown"  # or, with a match, decided with the seq below
            if receipt is not None:
                code = machine.scan_code(decoded, scan.body)
                lines = machine.candidates(receipt, code)
                if not lines and code.is_product:
                    ret = self.lookup(_candidates(decoded, scan.body))  # a return's own number wins
                if lines or (code.is_product and ret is None):
                    item = desk.count(lines, code)
                    outcome = item.outcome
            if item is None and ret is None:
                ret = self.lookup(_candidates(decoded, scan.body))
        seq = int(conn.execute(_NEXT_SEQ).fetchone()[0])
        if ret is not None:
            # the first scan of a return at this station in this mode is the one recorded
            first = conn.execute(
                "INSERT INTO received(return_id, mode, seq) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                (ret["return_id"], mode, seq),
            ).rowcount
            outcome = "expected" if first else "duplicate"
            desk.parcel(ret, outcome, mode)
        weight, pending, expected = self._weigh(ret, scan) if ret is not None else (None, False, None)
        if weight is not None:
            desk.weigh(weight)
        payload: dict[str, Any] = {
            "v": CONTRACT_VERSION,
            "device": self._device,
            "site": self._site,
            "ts": scan.ts,
            "event_id": scan.event_id,
            "seq": seq,
            "scanner": scan.scanner,
            "mode": mode,
            "decoded": decoded,
            "outcome": outcome,
            "return": ret,
            "clock_synced": scan.clock_synced,
            **desk.scan_fields(item),
        }
        if weight is not None:
            payload["weight"] = weight
        # `latency_us` comes last so that the final bytes are this head and the measured number.
        head = json.dumps(payload, separators=(",", ":")).encode("utf-8")[:-1]
        # Time to the start of this commit; `after_commit` replaces it with the time to the
        # commit's end (the fsync included) before the row may be published.
        payload["latency_us"] = (time.monotonic_ns() - scan.t_last_byte_ns) // 1000
        body = _with_latency(head, payload["latency_us"])
        outbox_id = outbox.enqueue(conn, topic, body, qos=1, kind="scan", ready=False)
        conn.execute(
            "INSERT INTO scans(seq, event_id, scanner, mode, ts, raw, kind, valid, outcome, return_id,"
            " order_number, latency_us, payload, outbox_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                seq,
                scan.event_id,
                scan.scanner,
                mode,
                scan.ts,
                decoded["raw"],
                decoded["kind"],
                int(decoded["valid"]),
                outcome,
                ret["return_id"] if ret else None,
                ret["order_number"] if ret else None,
                payload["latency_us"],
                body.decode("utf-8"),
                outbox_id,
                time.time(),
            ),
        )
        closed, view = desk.finish()
        return ScanRecord(seq, scan.event_id, outbox_id, outcome, mode, new_mode, ret, payload, topic, head,
                          view, closed, desk.problems, pending, expected)  # fmt: skip

    def _weigh(
        self, ret: dict[str, Any], scan: ScanInput
    ) -> tuple[dict[str, Any] | None, bool, float | None]:
        """(the event's `weight`, whether to wait for a stable one, the expected weight)."""
        latest = self._scale()
        if latest is None:
            return None, False, None
        settle_ms = self.settle_ms()
        expected = weighing.expected_g(ret)
        if latest.loaded() and latest.at_ns >= scan.t_last_byte_ns:
            # read after the scan: a stable weight from before it may be the previous parcel's
            return self.weight_of(latest, expected, None), False, expected
        pending = settle_ms > 0 and latest.state != "offline"
        # what the event says if the agent dies before the weight came: it leaves as stored
        why = (
            f"no stable weight within {settle_ms} ms"
            if pending
            else weighing.unknown_because(latest, settle_ms)
        )
        return self.weight_of(latest, expected, why), pending, expected

    def settle_ms(self) -> int:
        """How long a parcel's event may wait for its weight (`receiving.weight_settle_ms`)."""
        rules = self.rules()
        return rules.weight_settle_ms if rules is not None else 1500

    def weight_of(self, latest: Latest | None, expected: float | None, why: str | None) -> dict[str, Any]:
        rules = self.rules()
        percent, min_g = (
            (rules.weight_tolerance.percent, rules.weight_tolerance.min_g) if rules else (15.0, 50.0)
        )
        reading = latest.reading if latest is not None else None
        if latest is None or why is not None or not latest.loaded():
            # a weight that is not stable or not fresh (or an empty pan) is shown, never judged
            grams = reading.grams if reading is not None else None
            return weighing.weight_field(latest.scale if latest else "", grams, False, expected, percent, min_g,
                                         why or "no stable weight")  # fmt: skip
        assert reading is not None
        return weighing.weight_field(latest.scale, reading.grams, True, expected, percent, min_g)

    def weighed(self, conn: sqlite3.Connection, record: ScanRecord, weight: dict[str, Any]) -> bytes | None:
        """The weight a held parcel event waited for: into the event (history and outbox) and the
        receipt it opened; the event is released. Returns its final bytes, None when it had been
        released without it."""
        payload = {**record.payload, "weight": weight}
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        if not conn.execute(
            "UPDATE outbox SET payload = ?, ready = 1 WHERE id = ? AND ready = 0", (body, record.outbox_id)
        ).rowcount:
            return None  # released already as it was stored (a failed commit): it may be on its way
        record.payload["weight"] = weight
        conn.execute("UPDATE scans SET payload = ? WHERE seq = ?", (body.decode("utf-8"), record.seq))
        if record.receipt is not None and receipts.set_weight(conn, record.receipt["receipt_id"], weight):
            record.receipt["weight"] = weight
        return body

    @staticmethod
    def after_commit(
        conn: sqlite3.Connection, record: ScanRecord, committed_ns: int, t_last_byte_ns: int
    ) -> bytes:
        """Store the latency measured to the end of the scan's commit, and release the event to
        the publisher (`ready`); run by the writer right after that commit. Returns the event's
        final bytes: what is published, now and in every re-send."""
        latency = (committed_ns - t_last_byte_ns) // 1000
        body = _with_latency(record.head, latency)
        conn.execute(
            "UPDATE scans SET latency_us = ?, payload = ? WHERE seq = ?",
            (latency, body.decode("utf-8"), record.seq),
        )
        # a parcel waiting for its weight stays unready: `weighed` releases it
        conn.execute(
            "UPDATE outbox SET payload = ?, ready = ? WHERE id = ? AND ready = 0",
            (body, int(not record.weigh_pending), record.outbox_id),
        )
        record.payload["latency_us"] = latency
        return body

    def rules(self) -> ReceivingConfig | None:
        return self._receiving() if self._receiving is not None else None

    def envelope(self, ts: str) -> dict[str, Any]:
        return {"device": self._device, "site": self._site, "ts": ts}

    def close_idle(self, conn: sqlite3.Connection, now: float, ts: str) -> dict[str, Any] | None:
        """Close the open receipt if no scan touched it for `idle_close_s` (the receiving service
        asks this every second); returns its event, or None."""
        rules = self.rules()
        opened = receipts.load_open(conn)
        if rules is None or opened is None or now - opened[1] < rules.idle_close_s:
            return None
        return receipts.close_receipt(conn, opened[0], "idle", self.receipt_topic, self.envelope(ts))

    def close_open(self, conn: sqlite3.Connection, closed_by: str, ts: str) -> dict[str, Any] | None:
        """Close the open receipt, if any (a mode set by command); returns its event."""
        opened = receipts.load_open(conn)
        if opened is None:
            return None
        return receipts.close_receipt(conn, opened[0], closed_by, self.receipt_topic, self.envelope(ts))

    def close(self) -> None:
        if self._manifest is not None:
            self._manifest.close()
            self._manifest = None


# The persistent counter, incremented and read in one statement.
_NEXT_SEQ = (
    "INSERT INTO meta(key, value) VALUES ('seq', '1')"
    " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING value"
)


@cache
def _lookup_statement(columns: tuple[str, ...]) -> str:
    """Each candidate against whichever returns table is active, earliest candidate first. The
    CROSS JOIN makes `meta` the outer loop, so the inactive table is never entered: while a
    snapshot loads into it, it has no secondary indexes yet, and a lookup by order number there
    would scan it (a scan took 26 ms at p50 during a 200,000-return snapshot, bench/manifest.py)."""
    for column in columns:
        if column not in MATCH_COLUMNS:
            raise ValueError(f"not a match column: {column!r}")
    parts = [
        f"SELECT {i} AS pos, r.return_id, r.order_number, r.data FROM meta AS m CROSS JOIN returns_{table} AS r"
        f" WHERE m.key = 'active' AND CAST(m.value AS INTEGER) = {table} AND r.{column} = ?{i + 1}"
        for i, column in enumerate(columns)
        for table in (0, 1)
    ]
    return (
        "SELECT return_id, order_number, data FROM (" + " UNION ALL ".join(parts) + ") ORDER BY pos LIMIT 1"
    )


def _with_latency(head: bytes, latency_us: int) -> bytes:
    return b'%s,"latency_us":%d}' % (head, latency_us)


def _candidates(decoded: dict[str, Any], body: str) -> list[tuple[str, str]]:
    keys = decoded.get("keys") or {}
    out = [(column, keys[column]) for column in MATCH_COLUMNS if keys.get(column)]
    if decoded["kind"] in ("unknown", "rule", "tracking", "gtin") and body:
        # A plain order number, or a number that merely looks like a carrier's or a product's, is tried whole.
        out.extend((column, body) for column in MATCH_COLUMNS if (column, body) not in out)
    return out
