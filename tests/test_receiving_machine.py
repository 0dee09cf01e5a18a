"""The receipt state machine on its own (edge_agent/receiving/machine.py): no database, no clock."""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.decode import Decoder
from edge_agent.receiving import machine
from edge_agent.receiving.machine import Receipt, ScanCode, close, count, open_receipt, scan_code

RET: dict[str, Any] = {
    "return_id": "R1",
    "order_number": "SO-1",
    "items": [
        {"sku": "A", "name": "Alpha", "qty": 2, "gtin": "4006381333931", "barcodes": ["A-TAG"]},
        {"sku": "P", "name": "Phone", "qty": 1, "gtin": "09506000134352", "serials": ["S1", "S2"]},
        {"sku": "Z", "qty": 1},
        {"sku": 7, "qty": "many", "gtin": 12, "barcodes": "no", "serials": "no", "weight_g": True},  # junk
    ],
}


def fresh() -> Receipt:
    return open_receipt("rid", RET, "opener", "2026-12-02T08:00:00.000Z", "A")


def code(payload: str) -> ScanCode:
    decoded = Decoder().decode(payload).to_dict()
    from edge_agent.decode.aim import split_symbology

    return scan_code(decoded, split_symbology(decoded["raw"])[1])


def lines_of(receipt: Receipt, c: ScanCode) -> list[int]:
    return machine.candidates(receipt, c)


def test_lines_follow_the_manifest_and_junk_fields_do_not_break_them() -> None:
    r = fresh()
    assert [ln.sku for ln in r.lines] == ["A", "P", "Z", None]
    assert [ln.expected_qty for ln in r.lines] == [2, 1, 1, 1]
    assert r.lines[1].allowed_serials == ["S1", "S2"] and r.lines[0].allowed_serials is None
    assert r.lines[3].gtin is None and r.lines[3].barcodes == [] and r.lines[3].weight_g is None
    assert r.lines[0].codes() == ["g:04006381333931", "r:A", "r:A-TAG", "r:4006381333931"]


@pytest.mark.parametrize(
    "payload",
    ["]E04006381333931", "4006381333931", "]C1" + "0104006381333931", "https://x.example/01/04006381333931",
     "A", "A-TAG", "]C0A-TAG"],
)  # fmt: skip
def test_every_code_of_a_line_counts_on_it(payload: str) -> None:
    r = fresh()
    c = code(payload)
    result = count(r, lines_of(r, c), c)
    assert (result.outcome, result.line, result.qty, result.grade) == ("item", 0, 1, "A")
    assert r.lines[0].received_qty == 1 and r.lines[0].grades == {"A": 1}


def test_quantity_is_for_one_scan_and_grade_holds_until_changed() -> None:
    r = fresh()
    a = code("]E04006381333931")
    machine.set_qty(r, 2)
    machine.set_grade(r, "B")
    assert count(r, lines_of(r, a), a).qty == 2
    assert r.pending_qty is None and r.lines[0].grades == {"B": 2}
    over = count(r, lines_of(r, a), a)
    assert (over.outcome, over.reason, over.grade) == ("extra_item", "over_quantity", "B")
    machine.set_qty(r, 5)
    z = code("Z")
    assert count(r, lines_of(r, z), z).reason == "over_quantity"  # 5 units do not fit a line of 1
    assert r.pending_qty is None and r.lines[2].received_qty == 0


def test_serials_must_be_expected_and_are_never_counted_twice() -> None:
    r = fresh()
    wrong = code("]d2" + "0109506000134352" + "21S9")
    assert count(r, lines_of(r, wrong), wrong).reason == "wrong_serial"
    good = code("]d2" + "0109506000134352" + "21S2")
    result = count(r, lines_of(r, good), good)
    assert (result.outcome, result.serial) == ("item", "S2") and r.lines[1].serials == ["S2"]
    again = code("https://id.gs1.org/01/09506000134352/21/S2")
    assert count(r, lines_of(r, again), again).reason == "wrong_serial"
    no_serial = code("]E09506000134352")  # the EAN alone: a serial is checked when one is read
    assert count(r, lines_of(r, no_serial), no_serial).reason == "over_quantity"


def test_not_in_return() -> None:
    r = fresh()
    other = code("]E096385074")
    result = count(r, lines_of(r, other), other)
    assert (result.outcome, result.line, result.reason) == ("extra_item", None, "not_in_return")
    assert r.extra == [{"raw": "96385074", "gtin": "00000096385074", "qty": 1, "grade": "A",
                        "reason": "not_in_return"}]  # fmt: skip


def test_close_reports_lines_extra_and_complete() -> None:
    r = fresh()
    for payload in ("A", "A", "]d20109506000134352" + "21S1", "Z"):
        c = code(payload)
        count(r, lines_of(r, c), c)
    r.lines.pop()  # the junk line: without it the receipt is complete
    event = close(r, "done")
    assert event["complete"] is True and event["closed_by"] == "done" and event["event_id"] == "rid"
    assert [ln["status"] for ln in event["lines"]] == ["complete", "complete", "complete"]
    assert event["lines"][1]["serials"] == ["S1"]
    short = fresh()
    assert [ln["status"] for ln in close(short, "idle")["lines"]] == ["missing"] * 4
    with pytest.raises(ValueError, match="closed_by"):
        close(short, "whenever")


def test_cancel_reports_nothing_received() -> None:
    r = fresh()
    c = code("A")
    count(r, lines_of(r, c), c)
    x = code("]E096385074")
    count(r, lines_of(r, x), x)
    event = close(r, "cancel")
    assert all(
        ln["received_qty"] == 0 and ln["status"] == "missing" and ln["grades"] == {} for ln in event["lines"]
    )
    assert event["extra"] == [] and event["complete"] is False


def test_state_round_trips_through_its_json() -> None:
    r = fresh()
    c = code("A")
    count(r, lines_of(r, c), c)
    machine.set_qty(r, 3)
    back = Receipt.from_json(r.to_json())
    assert back == r and back.view()["lines"][0]["received_qty"] == 1 and back.pending_qty == 3
