"""The display's state document: what a scan, a day change and a restart do to it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from edge_agent.display.hub import DisplayHub, load_from_db, local_day, local_midnight, scan_view
from edge_agent.store.db import open_agent_db


def event(seq: int, outcome: str, **extra: Any) -> dict[str, Any]:
    decoded = extra.pop(
        "decoded", {"kind": "return_label", "raw": f"RAW-{seq}", "valid": True, "error": None}
    )
    return {"seq": seq, "event_id": f"e{seq}", "ts": "2026-11-26T10:00:00.000Z", "scanner": "s1",
            "mode": "receive", "decoded": decoded, "outcome": outcome, "return": None, **extra}  # fmt: skip


def test_a_scan_sets_the_last_result_counts_and_mode() -> None:
    hub = DisplayHub({"site": "hel1", "device": "dock-07"})
    ret = {
        "return_id": "R1",
        "order_number": "SO-1",
        "items": [{"sku": "A", "qty": 1}],
        "customer": {"name": "X"},
    }
    hub.scan(event(1, "expected", **{"return": ret}), day="2026-11-26")
    hub.scan(event(2, "invalid"), day="2026-11-26")
    command = {"kind": "command", "raw": "CMD:MODE:REJECT", "valid": True, "error": None,
               "command": {"name": "mode", "value": "REJECT"}}  # fmt: skip
    hub.scan(event(3, "command", decoded=command), day="2026-11-26")
    doc = hub.document()
    assert doc["last"]["seq"] == 3 and doc["last"]["command"] == {"name": "mode", "value": "REJECT"}
    assert doc["mode"] == "reject"
    assert doc["today"] == {"day": "2026-11-26",
                            "counts": {"expected": 1, "duplicate": 0, "unknown": 0, "invalid": 1, "command": 1,
                                       "item": 0, "extra_item": 0}}  # fmt: skip
    assert scan_view(event(1, "expected", **{"return": ret}))["return"] == ret
    json.dumps(doc)  # the page gets it as JSON


def test_counts_start_again_each_local_day() -> None:
    hub = DisplayHub({})
    hub.scan(event(1, "expected"), day="2026-11-26")
    hub.scan(event(2, "expected"), day="2026-11-27")
    assert hub.document()["today"]["counts"]["expected"] == 1
    hub.roll_day("2026-11-28")
    assert hub.document()["today"] == {"day": "2026-11-28", "counts": dict.fromkeys(
        ("expected", "duplicate", "unknown", "invalid", "command", "item", "extra_item"), 0)}  # fmt: skip
    assert hub.document()["last"]["seq"] == 2  # the last result stays until the next scan


def test_watchers_are_woken_only_by_real_changes() -> None:
    async def main() -> None:
        hub = DisplayHub({})
        watcher = hub.watch()
        hub.set("outbox", {"depth": 0, "oldest_unsent_s": 0})  # the value it already has
        assert not watcher.is_set()
        hub.set("outbox", {"depth": 3, "oldest_unsent_s": 1})
        assert watcher.is_set()
        watcher.clear()
        version = hub.version
        hub.scan(event(1, "unknown"))
        assert watcher.is_set() and hub.version == version + 1
        hub.unwatch(watcher)
        assert hub.watchers == 0

    asyncio.run(main())


def test_state_after_a_restart_comes_from_storage(tmp_path: Path) -> None:
    conn = open_agent_db(tmp_path, None)
    midnight = local_midnight()
    rows = [(1, "expected", midnight - 60), (2, "duplicate", midnight + 5), (3, "expected", midnight + 6),
            (4, "unknown", time.time())]  # fmt: skip
    for seq, outcome, created in rows:
        payload = json.dumps(event(seq, outcome))
        conn.execute(
            "INSERT INTO scans(seq, event_id, scanner, mode, ts, raw, kind, valid, outcome, latency_us, payload,"
            " outbox_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                seq,
                f"e{seq}",
                "s1",
                "receive",
                "ts",
                "raw",
                "return_label",
                1,
                outcome,
                1,
                payload,
                seq,
                created,
            ),
        )
    conn.commit()
    last, counts = load_from_db(conn, midnight)
    conn.close()
    assert last is not None and last["seq"] == 4 and last["outcome"] == "unknown"
    assert counts == {
        "expected": 1,
        "duplicate": 1,
        "unknown": 1,
        "invalid": 0,
        "command": 0,
        "item": 0,
        "extra_item": 0,
    }  # not yesterday's
    hub = DisplayHub({})
    hub.loaded(last, counts, local_day())
    assert hub.document()["last"]["seq"] == 4 and hub.document()["today"]["counts"]["expected"] == 1
