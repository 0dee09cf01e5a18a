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
5. the event goes into `scans` (history, replay) and `outbox` (delivery) in the same commit.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.store import outbox
from edge_agent.store.db import MANIFEST_DB, connect
from edge_agent.sync.models import CONTRACT_VERSION

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


class ScanRecorder:
    """Lives in the agent.db writer thread; owns a read-only connection to manifest.db."""

    def __init__(self, folder: Path, device: str, site: str, initial_mode: str) -> None:
        self._manifest_path = folder / MANIFEST_DB
        self._device = device
        self._site = site
        self._initial_mode = initial_mode
        self._manifest: sqlite3.Connection | None = None

    def _manifest_conn(self) -> sqlite3.Connection:
        if self._manifest is None:
            self._manifest = connect(self._manifest_path, readonly=True)
        return self._manifest

    def lookup(self, candidates: list[tuple[str, str]]) -> dict[str, Any] | None:
        if not candidates:
            return None
        conn = self._manifest_conn()
        conn.execute("BEGIN")
        try:
            active = conn.execute("SELECT value FROM meta WHERE key = 'active'").fetchone()[0]
            table = f"returns_{int(active)}"
            for column, value in candidates:
                row = conn.execute(
                    f"SELECT return_id, order_number, data FROM {table} WHERE {column} = ? LIMIT 1", (value,)
                ).fetchone()
                if row is not None:
                    data = json.loads(row[2])
                    ret: dict[str, Any] = {
                        "return_id": row[0],
                        "order_number": row[1],
                        "items": data.get("items", []),
                    }
                    if data.get("customer") is not None:
                        ret["customer"] = data["customer"]
                    if data.get("bin"):
                        ret["bin"] = data["bin"]
                    return ret
            return None
        finally:
            conn.execute("COMMIT")

    def mode(self, conn: sqlite3.Connection) -> str:
        return outbox.get_meta(conn, "mode", self._initial_mode) or self._initial_mode

    def record(self, conn: sqlite3.Connection, scan: ScanInput, topic: str) -> ScanRecord:
        decoded = scan.decoded
        mode = self.mode(conn)
        new_mode: str | None = None
        ret: dict[str, Any] | None = None
        if decoded["kind"] == "command":
            outcome = "command" if decoded["valid"] else "invalid"
            command = decoded.get("command") or {}
            if decoded["valid"] and command.get("name") == "mode":
                new_mode = str(command["value"]).lower()
                outbox.set_meta(conn, "mode", new_mode)
        elif not decoded["valid"]:
            outcome = "invalid"
        else:
            ret = self.lookup(_candidates(decoded, scan.body))
            if ret is None:
                outcome = "unknown"
            else:
                seen = conn.execute(
                    "SELECT 1 FROM received WHERE return_id = ? AND mode = ?", (ret["return_id"], mode)
                ).fetchone()
                outcome = "duplicate" if seen else "expected"
        seq = int(outbox.get_meta(conn, "seq", "0") or 0) + 1
        outbox.set_meta(conn, "seq", str(seq))
        if outcome == "expected" and ret is not None:
            conn.execute(
                "INSERT INTO received(return_id, mode, seq) VALUES (?,?,?)", (ret["return_id"], mode, seq)
            )
        payload = {
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
            # Time to the start of this commit. `after_commit` replaces it with the time to the
            # commit's end (the fsync included) before the row may be published.
            "latency_us": (time.monotonic_ns() - scan.t_last_byte_ns) // 1000,
        }
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
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
        return ScanRecord(seq, scan.event_id, outbox_id, outcome, mode, new_mode, ret, payload)

    @staticmethod
    def after_commit(
        conn: sqlite3.Connection, record: ScanRecord, committed_ns: int, t_last_byte_ns: int
    ) -> None:
        """Store the latency measured to the end of the scan's commit, and release the event to
        the publisher (`ready`); run by the writer right after that commit."""
        latency = (committed_ns - t_last_byte_ns) // 1000
        conn.execute("UPDATE scans SET latency_us = ?, payload = json_set(payload, '$.latency_us', ?) WHERE seq = ?",
                     (latency, latency, record.seq))  # fmt: skip
        conn.execute(
            "UPDATE outbox SET payload = CAST(json_set(CAST(payload AS TEXT), '$.latency_us', ?) AS BLOB),"
            " ready = 1 WHERE id = ? AND ready = 0",
            (latency, record.outbox_id),
        )

    def close(self) -> None:
        if self._manifest is not None:
            self._manifest.close()
            self._manifest = None


def _candidates(decoded: dict[str, Any], body: str) -> list[tuple[str, str]]:
    keys = decoded.get("keys") or {}
    out = [(column, keys[column]) for column in MATCH_COLUMNS if keys.get(column)]
    if decoded["kind"] in ("unknown", "rule", "tracking") and body:
        # A plain order number, or a number that merely looks like a carrier's, is tried whole.
        out.extend((column, body) for column in MATCH_COLUMNS if (column, body) not in out)
    return out
