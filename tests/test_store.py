"""Storage units on real SQLite files: group commit, outbox order, manifest application, overlay merge."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from edge_agent.errors import ConfigError
from edge_agent.store import manifest, outbox
from edge_agent.store.db import open_agent_db, open_manifest_db
from edge_agent.store.scans import ScanRecorder
from edge_agent.store.writer import Writer
from edge_agent.sync.desired import deep_merge, effective_config
from edge_agent.sync.models import ManifestMessage


def test_group_commit_shares_commits_under_a_burst_and_isolates_failures(tmp_path: Path) -> None:
    async def main() -> Writer:
        writer = Writer(lambda: open_agent_db(tmp_path), "w")
        writer.start()

        def add(i: int):  # type: ignore[no-untyped-def]
            def fn(conn: sqlite3.Connection) -> int:
                if i == 13:
                    raise ValueError("bad item")
                return outbox.enqueue(conn, "t/x", str(i).encode())

            return fn

        results = await asyncio.gather(*(writer.submit(add(i)) for i in range(200)), return_exceptions=True)
        assert isinstance(results[13], ValueError)
        ok = [r for r in results if not isinstance(r, BaseException)]
        assert len(ok) == 199
        lone = await writer.submit(add(500))  # alone: committed at once, not held back
        assert lone.value > 0
        writer.stop()
        return writer

    writer = asyncio.run(main())
    assert writer.commits < 100  # the burst shared commits
    conn = sqlite3.connect(tmp_path / "agent.db")
    payloads = [bytes(r[0]).decode() for r in conn.execute("SELECT payload FROM outbox ORDER BY id")]
    assert "13" not in payloads and len(payloads) == 200


def test_a_writer_with_max_group_commits_at_most_that_many_items_at_once(tmp_path: Path) -> None:
    """The manifest's writer commits each message alone (max_group=1), however many are waiting:
    a burst of snapshot chunks is not one large write that scans' fsyncs would wait behind."""
    sizes: dict[int, list[int]] = {}

    async def burst(max_group: int) -> None:
        writer = Writer(lambda: open_manifest_db(tmp_path / str(max_group)), "m", max_group=max_group)
        writer.start()
        gate = threading.Event()

        def item(i: int):  # type: ignore[no-untyped-def]
            def fn(conn: sqlite3.Connection) -> int:
                if i == 0:
                    gate.wait(5)  # hold the thread until the other 30 are queued behind it
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (f"k{i}", str(i)))
                return i

            return fn

        first = asyncio.ensure_future(writer.submit(item(0)))
        await asyncio.sleep(0.1)
        rest = [asyncio.ensure_future(writer.submit(item(i))) for i in range(1, 31)]
        await asyncio.sleep(0.1)
        gate.set()
        assert [c.value for c in await asyncio.gather(first, *rest)] == list(range(31))
        writer.stop()
        sizes[max_group] = [writer.commits, writer.items]

    asyncio.run(burst(1))
    asyncio.run(burst(8))
    assert sizes[1] == [31, 31]  # one commit per item
    assert sizes[8][1] == 31 and sizes[8][0] == 1 + 4  # the first alone, then 30 in groups of <= 8


def test_durable_runs_in_the_writer_thread_once_both_commits_are_on_disk(tmp_path: Path) -> None:
    """`durable` sees what `fn` and `after` wrote as committed (read by another connection); it is
    not called when `fn` raised (the lone item is rolled back alone) or when `after` failed."""
    seen: list[tuple[str, Any]] = []

    def look(row_id: int) -> None:
        other = sqlite3.connect(tmp_path / "agent.db")
        row = other.execute("SELECT payload, ready FROM outbox WHERE id = ?", (row_id,)).fetchone()
        other.close()
        seen.append((threading.current_thread().name, row and (bytes(row[0]), row[1])))

    def fn(conn: sqlite3.Connection) -> int:
        return outbox.enqueue(conn, "t/x", b"first", ready=False)

    def after(conn: sqlite3.Connection, row_id: int, _done: int) -> None:
        conn.execute("UPDATE outbox SET payload = ?, ready = 1 WHERE id = ?", (b"final", row_id))

    def broken_after(conn: sqlite3.Connection, _row_id: int, _done: int) -> None:
        conn.execute("UPDATE no_such_table SET x = 1")

    def failing(conn: sqlite3.Connection) -> int:
        outbox.enqueue(conn, "t/x", b"half")
        raise ValueError("bad item")

    async def main() -> None:
        writer = Writer(lambda: open_agent_db(tmp_path), "store-writer")
        writer.start()
        first = await writer.submit(fn, after=after, durable=look)
        with pytest.raises(ValueError):
            await writer.submit(failing, durable=look)
        third = await writer.submit(fn, after=broken_after, durable=look)
        writer.stop()
        assert seen == [("store-writer", (b"final", 1))]
        conn = sqlite3.connect(tmp_path / "agent.db")
        rows = conn.execute("SELECT id, payload, ready FROM outbox ORDER BY id").fetchall()
        # the failing item left nothing; the third keeps its first commit, not ready
        assert [(r[0], bytes(r[1]), r[2]) for r in rows] == [
            (first.value, b"final", 1),
            (third.value, b"first", 0),
        ]

    asyncio.run(main())


def test_outbox_stops_at_the_first_row_not_ready(tmp_path: Path) -> None:
    conn = open_agent_db(tmp_path)
    a = outbox.enqueue(conn, "t/a", b"a")
    b = outbox.enqueue(conn, "t/b", b"b", ready=False)
    outbox.enqueue(conn, "t/c", b"c")
    assert [r.id for r in outbox.fetch_unsent(conn, 0, 10)] == [a]
    assert outbox.release_unready(conn) == 1
    assert [r.topic for r in outbox.fetch_unsent(conn, 0, 10)] == ["t/a", "t/b", "t/c"]
    outbox.mark_sent(conn, [a, b])
    assert outbox.depth(conn)[0] == 1
    with pytest.raises(ValueError, match="wildcard"):
        outbox.enqueue(conn, "t/+/x", b"")


def _msg(
    version: int, base: int | None, chunk: int = 1, chunks: int = 1, ids: range = range(0), deletes=()
) -> ManifestMessage:  # type: ignore[no-untyped-def]
    return ManifestMessage.model_validate({
        "version": version, "base_version": base, "chunk": chunk, "chunks": chunks, "deletes": list(deletes),
        "upserts": [{"return_id": f"R{i}", "order_number": f"SO-{i}", "keys": {"sscc": f"S{i}"}} for i in ids],
    })  # fmt: skip


def _ids(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute(f"SELECT return_id FROM {manifest.active_table(conn)}")}


def test_snapshot_chunks_out_of_order_and_repeated_flip_once(tmp_path: Path) -> None:
    conn = open_manifest_db(tmp_path)
    assert manifest.apply(conn, _msg(5, None, 2, 3, range(10, 20))).status == "chunk_staged"
    assert manifest.apply(conn, _msg(5, None, 2, 3, range(10, 20))).status == "ignored"  # redelivered
    assert _ids(conn) == set() and manifest.version(conn) == 0  # nothing visible yet
    assert manifest.apply(conn, _msg(5, None, 1, 3, range(0, 10))).status == "chunk_staged"
    done = manifest.apply(conn, _msg(5, None, 3, 3, range(20, 25)))
    assert done.status == "snapshot_applied" and done.version == 5 and done.rows == 25
    assert _ids(conn) == {f"R{i}" for i in range(25)}
    # a newer snapshot replaces the whole manifest
    manifest.apply(conn, _msg(6, None, 1, 1, range(100, 102)))
    assert _ids(conn) == {"R100", "R101"} and manifest.version(conn) == 6
    assert manifest.apply(conn, _msg(6, None, 1, 1, range(0, 1))).status == "ignored"  # old news


def test_a_newer_snapshot_restarts_staging(tmp_path: Path) -> None:
    conn = open_manifest_db(tmp_path)
    manifest.apply(conn, _msg(3, None, 1, 2, range(0, 5)))
    manifest.apply(conn, _msg(4, None, 1, 2, range(50, 55)))
    assert manifest.apply(conn, _msg(3, None, 2, 2, range(5, 10))).status == "ignored"
    assert manifest.apply(conn, _msg(4, None, 2, 2, range(55, 60))).status == "snapshot_applied"
    assert _ids(conn) == {f"R{i}" for i in range(50, 60)}


def test_a_scan_lookup_never_enters_the_table_a_snapshot_is_loading(tmp_path: Path) -> None:
    """While a snapshot loads into the inactive table (no secondary indexes until its last chunk),
    a lookup by order number or SSCC must not scan it: counted in SQLite VM steps, not time."""
    conn = open_manifest_db(tmp_path)
    manifest.apply(conn, _msg(1, None, ids=range(0, 50)))
    assert manifest.apply(conn, _msg(2, None, 1, 2, range(100, 30_100))).status == "chunk_staged"
    conn.commit()
    recorder = ScanRecorder(tmp_path, "d1", "s1", "receive")
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    recorder._manifest_conn().set_progress_handler(count, 10)
    found = recorder.lookup([("order_number", "SO-7"), ("sscc", "S7")])
    assert found is not None and found["return_id"] == "R7"
    assert recorder.lookup([("order_number", "SO-200"), ("tracking_number", "SO-200")]) is None  # staged only
    assert steps * 10 < 2_000, f"{steps * 10} VM steps: the loading table was scanned"
    recorder.close()


def test_deltas_in_step_chunked_and_out_of_step(tmp_path: Path) -> None:
    conn = open_manifest_db(tmp_path)
    manifest.apply(conn, _msg(1, None, ids=range(0, 3)))
    assert manifest.apply(conn, _msg(3, 2, ids=range(9, 10))).status == "out_of_step"
    assert manifest.apply(conn, _msg(2, 1, 1, 2, range(3, 4))).status == "chunk_staged"
    assert manifest.version(conn) == 1
    out = manifest.apply(conn, _msg(2, 1, 2, 2, range(4, 5), deletes=["R0"]))
    assert out.status == "applied" and out.version == 2
    assert _ids(conn) == {"R1", "R2", "R3", "R4"}
    assert manifest.apply(conn, _msg(2, 1, ids=range(7, 8))).status == "ignored"
    manifest.drop_version(conn)
    assert manifest.version(conn) == 0 and _ids(conn) == {"R1", "R2", "R3", "R4"}


def test_manifest_parse_errors_name_the_field() -> None:
    assert "version" in str(manifest.parse(b'{"version": "x", "base_version": null}'))
    assert "base_version" in str(manifest.parse(b'{"version": 1}'))
    assert isinstance(manifest.parse(b"\xff"), str)
    assert isinstance(
        manifest.parse(json.dumps({"version": 1, "base_version": None}).encode()), ManifestMessage
    )


GOOD_RETURN = {"return_id": "R1", "order_number": "SO-1", "keys": {"sscc": "S1", "tracking_number": "T1"},
               "customer": {"name": "Ä. Virtanen"}, "items": [{"sku": "X", "qty": 1}], "bin": "B7"}  # fmt: skip


@pytest.mark.parametrize(("change", "where"), [
    ({"version": "x"}, "version: must be a whole number"),
    ({"version": -1}, "version: must be a whole number of at least 0"),
    ({"base_version": 1.5}, "base_version: must be a whole number of at least 0 or null"),
    ({"chunk": 0}, "chunk: must be a whole number of at least 1"),
    ({"upserts": {}}, "upserts: must be a list"),
    ({"deletes": ["R1", 2]}, "deletes[1]: must be a string"),
    ({"upserts": [GOOD_RETURN, 5]}, "upserts[1]: must be an object"),
    ({"upserts": [{**GOOD_RETURN, "return_id": 7}]}, "upserts[0].return_id: must be a string"),
    ({"upserts": [{**GOOD_RETURN, "return_id": ""}]}, "upserts[0].return_id: 1 to 64 characters"),
    ({"upserts": [{"order_number": "SO-1"}]}, "upserts[0].return_id: must be a string"),
    ({"upserts": [{**GOOD_RETURN, "order_number": "x" * 65}]}, "upserts[0].order_number: at most 64"),
    ({"upserts": [{**GOOD_RETURN, "keys": {"sscc": 1}}]}, "upserts[0].keys: every value must be a string"),
    ({"upserts": [{**GOOD_RETURN, "keys": None}]}, "upserts[0].keys: must be an object"),
    ({"upserts": [{**GOOD_RETURN, "customer": "A"}]}, "upserts[0].customer: must be an object or null"),
    ({"upserts": [{**GOOD_RETURN, "items": [1]}]}, "upserts[0].items: every item must be an object"),
    ({"upserts": [{**GOOD_RETURN, "bin": 3}]}, "upserts[0].bin: must be a string or null"),
])  # fmt: skip
def test_manifest_messages_are_checked_in_sqlite_naming_the_field(
    tmp_path: Path, change: dict[str, Any], where: str
) -> None:
    conn = open_manifest_db(tmp_path)
    raw = json.dumps({"version": 3, "base_version": None, **change}).encode()
    error = manifest.apply_raw(conn, raw)
    assert isinstance(error, str) and where in error, error
    assert isinstance(manifest.parse(raw), str)  # pydantic's model refuses it too
    assert manifest.version(conn) == 0 and _ids(conn) == set()


def test_manifest_rows_written_by_sqlite_are_what_the_model_says(tmp_path: Path) -> None:
    conn = open_manifest_db(tmp_path)
    minimal = {"return_id": "R2"}
    raw = json.dumps({"version": 3, "base_version": None, "upserts": [GOOD_RETURN, minimal, {**GOOD_RETURN,
                      "return_id": "R3", "customer": None, "bin": None, "extra": [1]}]}).encode()  # fmt: skip
    out = manifest.apply_raw(conn, raw)
    assert not isinstance(out, str) and out.status == "snapshot_applied" and out.rows == 3
    rows = {r[0]: r[1:] for r in conn.execute(f"SELECT * FROM {manifest.active_table(conn)}")}
    model = manifest.parse(raw)
    assert isinstance(model, ManifestMessage)
    for ret in model.upserts:
        order, tracking, sscc, data = rows[ret.return_id]
        assert (order, tracking, sscc) == (
            ret.order_number,
            ret.keys.get("tracking_number"),
            ret.keys.get("sscc"),
        )
        stored = json.loads(data)  # the return as sent: what a scan reads of it is what the model says
        assert (stored.get("keys", {}), stored.get("customer"), stored.get("items", []), stored.get("bin"),
                stored.get("weight_g")) == (ret.keys, ret.customer, ret.items, ret.bin, ret.weight_g)  # fmt: skip
    for bad in (b"\xff", b"[1, 2]", b"{not json", b"7"):
        assert isinstance(manifest.apply_raw(conn, bad), str)


def test_deep_merge_and_local_only_keys() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    file = {"device": {"id": "d", "site": "s"}, "mqtt": {"host": "h"}, "storage": {"path": "/x"}}
    assert effective_config(file, {"telemetry_interval_s": 5}).telemetry_interval_s == 5
    with pytest.raises(ConfigError) as info:
        effective_config(file, {"storage": {"path": "/y"}})
    assert info.value.problems[0][0] == "storage"


def test_prune_forgets_only_what_was_delivered_long_ago(tmp_path: Path) -> None:
    conn = open_agent_db(tmp_path)
    old_sent = outbox.enqueue(conn, "t/a", b"a")
    old_unsent = outbox.enqueue(conn, "t/b", b"b")
    new_sent = outbox.enqueue(conn, "t/c", b"c")
    outbox.mark_sent(conn, [old_sent], when=1.0)
    outbox.mark_sent(conn, [new_sent])
    conn.execute("UPDATE outbox SET created_at = 1.0 WHERE id IN (?, ?)", (old_sent, old_unsent))
    for seq, oid in ((1, old_sent), (2, old_unsent)):
        conn.execute(
            "INSERT INTO scans(seq, event_id, scanner, mode, ts, raw, kind, valid, outcome, latency_us, payload,"
            " outbox_id, created_at) VALUES (?, ?, 's1', 'receive', 't', 'r', 'unknown', 1, 'unknown', 1, '{}', ?, 1.0)",
            (seq, f"e{seq}", oid),
        )
    for rid, state, oid in (
        ("r-old", "closed", old_sent),
        ("r-unsent", "closed", old_unsent),
        ("r-open", "open", None),
    ):
        conn.execute(
            "INSERT INTO receipts(receipt_id, return_id, state, data, opened_at, updated_at, outbox_id)"
            " VALUES (?, 'R1', ?, '', 't', 1.0, ?)",
            (rid, state, oid),
        )
    removed = outbox.prune(conn, retention_s=7 * 86400)
    assert removed == 3  # the old delivered message, its scan and its receipt; never an undelivered one
    assert [r[0] for r in conn.execute("SELECT id FROM outbox ORDER BY id")] == [old_unsent, new_sent]
    assert [r[0] for r in conn.execute("SELECT seq FROM scans")] == [2]
    assert [r[0] for r in conn.execute("SELECT receipt_id FROM receipts ORDER BY 1")] == [
        "r-open",
        "r-unsent",
    ]
    assert outbox.id_ranges([5, 3, 4, 9, 10, 12]) == [(3, 5), (9, 10), (12, 12)]
