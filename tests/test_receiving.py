"""Receipts end to end: a serial scanner on a pty → agent process → real Mosquitto → the simulated
central system (mqtt.md "Receipts"): every kind of product code, quantities, grades, serials,
every way a receipt closes, `kill -9` mid-receipt and a broker outage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from simulators.central import Central
from simulators.samples import GS, ean13, gs1_check_digit, upce, upce_as_upca
from tests.agentproc import write_config
from tests.broker import Broker
from tests.conftest import ROOT
from tests.harness import type_payloads, wait_until

ITEMS = [
    {"sku": "TSHIRT-M-BLK", "name": "T-shirt M black", "qty": 2, "gtin": ean13(1001), "weight_g": 180},
    {"sku": "CAP-RED", "name": "Cap red", "qty": 1, "gtin": "0" + upce_as_upca(upce(4242)),
     "barcodes": ["INHOUSE-CAP-7"]},
    {"sku": "PHONE-X", "name": "Phone X", "qty": 1, "gtin": "9506000134352"[:12] + gs1_check_digit("950600013435"),
     "serials": ["SN-1", "SN-2"]},
    {"sku": "CABLE-1", "name": "USB cable", "qty": 1, "gtin": "96385074"},
    {"sku": "MUG-1", "name": "Mug", "qty": 3, "gtin": "10012345678902"},
]  # fmt: skip
OTHER = {"sku": "SOCKS", "name": "Socks", "qty": 1, "gtin": ean13(2002)}


def returns() -> list[dict[str, Any]]:
    return [
        {
            "return_id": "R1",
            "order_number": "SO-1",
            "keys": {"tracking_number": "RR123456785SE"},
            "items": ITEMS,
        },
        {"return_id": "R2", "order_number": "SO-2", "keys": {}, "items": [OTHER]},
        {"return_id": "R3", "order_number": "SO-3", "keys": {}, "items": [OTHER]},
        {"return_id": "R4", "order_number": "SO-4", "keys": {}, "items": [OTHER]},
        {"return_id": "R5", "order_number": "SO-5", "keys": {}, "items": []},
        {"return_id": "R6", "order_number": "4006381333931", "keys": {}, "items": []},  # digits of an EAN-13
    ]


def start(
    tmp_path: Path, broker: Broker, central: Central, agents: Any, extra: str = ""
) -> tuple[Any, Path, Path]:
    central.returns = returns()
    central.version = 1
    link = tmp_path / "s1"
    config = write_config(
        tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}], extra=extra
    )
    agent = agents(config)
    agent.wait_for("manifest.applied", version=1)
    return agent, link, config


def scans(central: Central, n: int) -> list[dict[str, Any]]:
    wait_until(lambda: central.report().get("dock-07", {}).get("unique", 0) >= n, what=f"{n} scan events")
    return central.devices["dock-07"].events


def receipts(central: Central, n: int) -> list[dict[str, Any]]:
    wait_until(lambda: len(central.receipts.get("dock-07", _Empty).receipts) >= n, what=f"{n} receipts")
    return central.receipts["dock-07"].receipts


class _Empty:
    receipts: list[Any] = []


def status(config: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "edge_agent.cli", "status", "-c", str(config), "--json"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout  # fmt: skip
    return json.loads(out)


def test_a_full_receipt_with_every_kind_of_product_code(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    agent, link, config = start(tmp_path, broker, central, agents)
    phone14 = ITEMS[2]["gtin"].zfill(14)
    payloads = [
        "RR123456785SE",  # the parcel: expected, opens R1's receipt
        "]E0" + ITEMS[0]["gtin"],  # EAN-13 with its AIM identifier: line 0, 1 of 2
        "CMD:GRADE:B",
        ITEMS[0]["gtin"],  # bare EAN-13: line 0, 2 of 2, grade B
        "CMD:GRADE:A",
        "]E0" + upce(4242),  # UPC-E, expanded to the UPC-A the manifest lists: line 1
        f"]d201{phone14}21SN-2",  # GS1 DataMatrix with a serial that is expected: line 2
        f"https://id.gs1.org/01/{phone14}/21/SN-9",  # Digital Link, a serial not expected: wrong_serial
        "]E496385074",  # EAN-8: line 3
        "CMD:QTY:3",
        "]I110012345678902",  # ITF-14, three units at once: line 4 complete
        "INHOUSE-CAP-7",  # the cap's in-house barcode: already counted, over_quantity
        "]E0" + OTHER["gtin"],  # not in this return
        "CMD:DONE",
    ]
    type_payloads(link, payloads)
    events = scans(central, len(payloads))
    assert [e["outcome"] for e in events] == [
        "expected", "item", "command", "item", "command", "item", "item", "extra_item", "item", "command",
        "item", "extra_item", "extra_item", "command",
    ]  # fmt: skip
    rid = events[0]["receipt"]["receipt_id"]
    assert events[0]["receipt"] == {"receipt_id": rid, "return_id": "R1", "line": None}
    items = [e for e in events if e["outcome"] in ("item", "extra_item")]
    assert [e["receipt"]["line"] for e in items] == [0, 0, 1, 2, None, 3, 4, None, None]
    assert all(e["receipt"]["receipt_id"] == rid for e in items)
    assert [e["grade"] for e in items[:2]] == ["A", "B"]
    assert items[3]["serial"] == "SN-2" and items[4]["serial"] == "SN-9"
    assert [e.get("reason") for e in items if e["outcome"] == "extra_item"] == [
        "wrong_serial", "over_quantity", "not_in_return"]  # fmt: skip
    assert items[6]["qty"] == 3 and items[7]["qty"] == 1  # CMD:QTY counts one scan only
    (receipt,) = receipts(central, 1)
    assert receipt["receipt_seq"] == 1 and receipt["event_id"] == rid
    assert receipt["v"] == 1 and receipt["device"] == "dock-07" and receipt["site"] == "hel1"
    assert receipt["return_id"] == "R1" and receipt["order_number"] == "SO-1"
    assert receipt["opened_by"] == events[0]["event_id"] and receipt["opened_at"] == events[0]["ts"]
    assert receipt["closed_by"] == "done"
    lines = receipt["lines"]
    assert [ln["sku"] for ln in lines] == [i["sku"] for i in ITEMS]  # manifest order
    assert [(ln["received_qty"], ln["expected_qty"], ln["status"]) for ln in lines] == [
        (2, 2, "complete"),
        (1, 1, "complete"),
        (1, 1, "complete"),
        (1, 1, "complete"),
        (3, 3, "complete"),
    ]
    assert lines[0]["grades"] == {"A": 1, "B": 1} and lines[4]["grades"] == {"A": 3}
    assert lines[2]["serials"] == ["SN-2"] and lines[0]["serials"] == []
    assert lines[1]["gtin"] == ITEMS[1]["gtin"] and lines[1]["name"] == "Cap red"
    assert receipt["extra"] == [
        {"raw": f"https://id.gs1.org/01/{phone14}/21/SN-9", "gtin": phone14, "qty": 1, "grade": "A",
         "reason": "wrong_serial"},
        {"raw": "INHOUSE-CAP-7", "gtin": None, "qty": 1, "grade": "A", "reason": "over_quantity"},
        {"raw": OTHER["gtin"], "gtin": OTHER["gtin"].zfill(14), "qty": 1, "grade": "A", "reason": "not_in_return"},
    ]  # fmt: skip
    assert receipt["complete"] is False and receipt["weight"] is None
    report = status(config)["receipts"]
    assert report["open"] is None and report["last_receipt_seq"] == 1


def test_every_way_a_receipt_closes(tmp_path: Path, broker: Broker, central: Central, agents: Any) -> None:
    agent, link, config = start(tmp_path, broker, central, agents, extra="receiving: {idle_close_s: 2}\n")
    sock = "]E0" + OTHER["gtin"]
    type_payloads(link, ["SO-2", sock, "SO-3"])  # the next return closes R2's and opens R3's
    first = receipts(central, 1)
    assert first[0]["closed_by"] == "next_return" and first[0]["complete"] is True
    type_payloads(link, [sock, "CMD:CANCEL"])
    second = receipts(central, 2)[1]
    assert second["closed_by"] == "cancel" and second["return_id"] == "R3"
    assert second["lines"] == [{"sku": "SOCKS", "gtin": OTHER["gtin"], "name": "Socks", "expected_qty": 1,
                                "received_qty": 0, "grades": {}, "serials": [], "status": "missing"}]  # fmt: skip
    assert second["extra"] == [] and second["complete"] is False
    type_payloads(link, ["SO-4", "CMD:MODE:INSPECT"])  # a mode change closes it, short
    third = receipts(central, 3)[2]
    assert third["closed_by"] == "mode" and third["lines"][0]["status"] == "missing"
    type_payloads(link, ["SO-1", "]E0" + ITEMS[0]["gtin"]])  # in inspect too (open_in default)
    wait_until(lambda: (status(config)["receipts"]["open"] or {}).get("return_id") == "R1", what="R1 open")
    opened = status(config)["receipts"]["open"]
    assert [ln["received_qty"] for ln in opened["lines"]] == [1, 0, 0, 0, 0]
    fourth = receipts(central, 4)[3]  # idle for 2 s
    assert fourth["closed_by"] == "idle" and fourth["lines"][0]["status"] == "short"
    central.command("dock-07", "set_mode", {"mode": "receive"})
    type_payloads(link, ["SO-1"])  # receive mode: R1 expected again, new receipt
    wait_until(lambda: status(config)["receipts"]["open"] is not None, what="a receipt open")
    assert central.command("dock-07", "status")["data"]["receipt"]["return_id"] == "R1"
    central.command("dock-07", "set_mode", {"mode": "restock"})  # by command: closes it too
    fifth = receipts(central, 5)[4]
    assert fifth["closed_by"] == "mode"
    assert [r["receipt_seq"] for r in central.receipts["dock-07"].receipts] == [1, 2, 3, 4, 5]
    type_payloads(link, ["CMD:MODE:RECEIVE", "SO-5"])  # a return without items opens nothing
    events = scans(central, 12)
    assert events[-1]["outcome"] == "expected" and "receipt" not in events[-1]
    assert status(config)["receipts"]["open"] is None


def test_receipts_off_and_item_commands_without_a_receipt(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    agent, link, config = start(tmp_path, broker, central, agents, extra="receiving: {open_in: []}\n")
    type_payloads(link, ["SO-2", "]E0" + OTHER["gtin"], "CMD:QTY:2", "CMD:DONE", "4006381333931"])
    events = scans(central, 5)
    assert [e["outcome"] for e in events] == ["expected", "unknown", "command", "command", "expected"]
    assert events[4]["decoded"]["kind"] == "gtin" and events[4]["return"]["return_id"] == "R6"  # tried whole
    assert all("receipt" not in e for e in events)
    time.sleep(0.5)
    assert "dock-07" not in central.receipts


def test_kill_9_mid_receipt_keeps_it_whole(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    agent, link, config = start(tmp_path, broker, central, agents)
    type_payloads(link, ["SO-1", "]E0" + ITEMS[0]["gtin"], "CMD:GRADE:C", "CMD:QTY:2", "]I110012345678902"])
    scans(central, 5)
    agent.kill()  # SIGKILL: nothing of the receipt may be lost
    opened = status(config)["receipts"]["open"]
    assert opened["return_id"] == "R1" and opened["grade"] == "C"
    assert [ln["received_qty"] for ln in opened["lines"]] == [1, 0, 0, 0, 2]
    agent.start()
    type_payloads(link, ["]E0" + ITEMS[0]["gtin"], "CMD:DONE"])  # grade C still holds after the restart
    (receipt,) = receipts(central, 1)
    assert receipt["lines"][0]["grades"] == {"A": 1, "C": 1} and receipt["lines"][4]["grades"] == {"C": 2}
    assert receipt["closed_by"] == "done" and receipt["receipt_seq"] == 1


def test_a_receipt_closed_during_a_broker_outage_arrives_afterwards_byte_identical(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    agent, link, config = start(tmp_path, broker, central, agents)
    type_payloads(link, ["SO-2", "]E0" + OTHER["gtin"]])
    scans(central, 2)
    broker.stop()
    type_payloads(link, ["CMD:DONE", "SO-3", f"]C1{GS}01{OTHER['gtin'].zfill(14)}", "CMD:DONE"])
    time.sleep(1.0)
    stored = status(config)
    assert stored["receipts"]["last_receipt_seq"] == 2 and stored["outbox_depth"] >= 6
    broker.start()
    got = receipts(central, 2)
    assert [r["receipt_seq"] for r in got] == [1, 2] and [r["return_id"] for r in got] == ["R2", "R3"]
    assert got[1]["lines"][0]["received_qty"] == 1  # a GS1-128 (01) counts on the line
    # a repeat (redelivery, replay) carries the same bytes: what the central system got is what is stored
    conn_rows = subprocess.run(
        [sys.executable, "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]);"
         "print('\\n'.join(r[0].decode() for r in c.execute('SELECT o.payload FROM receipts r JOIN outbox o"
         " ON o.id = r.outbox_id ORDER BY r.receipt_seq')))", str(tmp_path / "state" / "agent.db")],
        capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    log = central.receipts["dock-07"]
    assert [log.by_id[r["event_id"]].decode() for r in got] == conn_rows
    assert log.inexact_duplicates == 0
    events = scans(central, 6)
    assert [e["seq"] for e in events] == list(range(1, 7))


def test_bad_item_fields_are_reported_by_name_and_left_out(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    agent, link, config = start(tmp_path, broker, central, agents)
    bad = {"return_id": "R9", "order_number": "SO-9", "keys": {},
           "items": [{"sku": "A", "gtin": "12AB5678"}, {"sku": "B", "qty": 0}, {"sku": "C", "serials": "S1"}]}  # fmt: skip
    central.publish_delta([bad])
    agent.wait_for("manifest.applied", version=2)  # the chunk is not refused for one item's fields
    type_payloads(link, ["SO-9", "B", "CMD:DONE"])
    (receipt,) = receipts(central, 1)
    assert [(ln["sku"], ln["gtin"], ln["expected_qty"]) for ln in receipt["lines"]] == [
        ("A", None, 1), ("B", None, 1), ("C", None, 1)]  # fmt: skip
    assert receipt["lines"][1]["status"] == "complete"
    wait_until(lambda: any(json.loads(p).get("kind") == "manifest_item" for t, p in central.messages
                           if t.endswith("/event/alert")), what="the alert")  # fmt: skip
    alert = next(json.loads(p) for t, p in central.messages if t.endswith("/event/alert")
                 and json.loads(p).get("kind") == "manifest_item")  # fmt: skip
    assert alert["return_id"] == "R9"
    assert (
        "items[0].gtin" in alert["error"]
        and "items[1].qty" in alert["error"]
        and "items[2].serials" in alert["error"]
    )
