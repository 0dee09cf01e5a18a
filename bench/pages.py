"""Pages a scan's commit writes (WAL frames): a count, not a time, so it is the same on any machine
and under any load, and it is what a scan's fsync pays for. The scan recorder is driven directly
on a real agent.db, with a 2,000-return manifest (each return with items):

- a parcel scan with receipts off (`receiving.open_in: []`): the scan alone;
- a parcel scan that opens a receipt and closes the one before (`next_return`), the receive
  station's steady state;
- an item scan counted on the open receipt.

    python bench/pages.py [--scans 400] [--json]

For the same figure of an older tree, run that tree's copy of this file (receipts off is then the
only case it knows).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.store import manifest
from edge_agent.store.db import open_agent_db, open_manifest_db
from edge_agent.store.scans import ScanInput, ScanRecorder
from simulators.central import make_return


def _scan(i: int, payload: str, decoded: dict[str, Any]) -> ScanInput:
    return ScanInput(f"e{i}", "s1", "2026-12-02T00:00:00.000Z", decoded, payload, time.monotonic_ns())


def _unknown(payload: str) -> dict[str, Any]:
    return {"raw": payload, "symbology": None, "kind": "unknown", "valid": True, "error": None, "keys": {}}


def measure(scans: int, open_in: list[str] | None) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="edge-pages-"))
    m = open_manifest_db(folder)
    upserts = [make_return(i) for i in range(1, scans + 1)]
    manifest.apply_raw(m, json.dumps({"version": 1, "base_version": None, "upserts": upserts}).encode())
    m.close()
    conn = open_agent_db(folder)
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # every frame of every commit stays countable
    kw: dict[str, Any] = {}
    if open_in is not None and "receiving" in inspect.signature(ScanRecorder).parameters:
        from edge_agent.config import ReceivingConfig

        rules = ReceivingConfig(open_in=open_in)  # type: ignore[arg-type]
        kw = {"receiving": lambda: rules, "receipt_topic": "dock/v1/hel1/dock-07/event/receipt"}
    recorder = ScanRecorder(folder, "dock-07", "hel1", "receive", **kw)
    wal = folder / "agent.db-wal"
    page = int(conn.execute("PRAGMA page_size").fetchone()[0])

    def frames(scan: ScanInput) -> int:
        before = wal.stat().st_size if wal.exists() else 0
        conn.execute("BEGIN IMMEDIATE")
        recorder.record(conn, scan, "dock/v1/hel1/dock-07/event/scan")
        conn.execute("COMMIT")
        return (wal.stat().st_size - before) // (page + 24)

    parcel, item = [], []
    for i, ret in enumerate(upserts, start=1):
        parcel.append(frames(_scan(2 * i, ret["order_number"], _unknown(ret["order_number"]))))
        sku = ret["items"][0]["sku"]  # the SKU as a Code 128: counted on the open receipt, if any
        item.append(frames(_scan(2 * i + 1, sku, _unknown(sku))))
    recorder.close()
    conn.close()
    out: dict[str, float] = {}
    for name, values in (("parcel", parcel), ("item", item)):
        values.sort()
        out[f"{name}_median"] = values[len(values) // 2]
        out[f"{name}_p90"] = values[int(len(values) * 0.9)]
        out[f"{name}_mean"] = round(sum(values) / len(values), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    off = measure(args.scans, [])
    on = measure(args.scans, ["receive", "inspect"])
    print(f"WAL frames per scan commit ({args.scans} parcels, each followed by one item scan)")
    print(f"{'':40}{'median':>8}{'p90':>6}{'mean':>8}")
    for label, figures, kind in (
        ("parcel scan, receipts off", off, "parcel"),
        ("parcel scan, opens a receipt", on, "parcel"),
        ("item scan, receipts off (unknown)", off, "item"),
        ("item scan on the open receipt", on, "item"),
    ):
        print(
            f"{label:40}{figures[kind + '_median']:>8}{figures[kind + '_p90']:>6}{figures[kind + '_mean']:>8}"
        )
    if args.json:
        print("JSON " + json.dumps({"off": off, "on": on}))


if __name__ == "__main__":
    main()
