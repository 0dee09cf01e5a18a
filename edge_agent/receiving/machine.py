"""The receipt state machine: pure (no I/O, no clock, no logging); state in, state and results out.

A receipt is the checklist of one return: a line per manifest item with what is expected, what
was counted and in which grade, plus the scans that matched no line. The store keeps it as JSON
(`Receipt.to_json`) in the scan's own transaction, so it is whole after any crash.

    open_receipt(ret) ─▶ Receipt(open)
    set_qty / set_grade  (a command barcode: the next item scan's units, the grade from now on)
    count(receipt, lines, code) ─▶ ItemResult(item | extra_item, line, reason)
    close(receipt, closed_by) ─▶ the `event/receipt` body (mqtt.md "Receipts")

Matching (`count`): the candidate lines (`candidates`) are the ones whose codes equal the scan's
GTIN-14 or its raw payload; the first that still has room takes
the units. A serial read with the item (GS1 AI 21) must be one of the line's `serials` when the
item lists them, and is never counted twice. Otherwise the scan is an `extra_item` whose reason
says why: `not_in_return`, `over_quantity`, `wrong_serial`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

CLOSED_BY = ("done", "next_return", "idle", "mode", "cancel")
REASONS = ("not_in_return", "over_quantity", "wrong_serial")


@dataclass(slots=True)
class Line:
    sku: str | None
    gtin: str | None
    name: str | None
    expected_qty: int
    received_qty: int = 0
    grades: dict[str, int] = field(default_factory=dict)
    serials: list[str] = field(default_factory=list)
    """Serial numbers counted on this line, in scan order."""
    allowed_serials: list[str] | None = None
    """The item's `serials` from the manifest; None: any serial (or none) is accepted."""
    barcodes: list[str] = field(default_factory=list)
    weight_g: float | None = None

    @property
    def status(self) -> str:
        if self.received_qty >= self.expected_qty:
            return "complete"
        return "short" if self.received_qty else "missing"

    def codes(self) -> list[str]:
        """What a scan may equal to count on this line: its GTIN as GTIN-14 (`g:`), and as raw
        text (`r:`) its SKU, its other barcodes and its GTIN's digits as the manifest gives them."""
        out: list[str] = []
        if self.gtin and self.gtin.isdigit() and 8 <= len(self.gtin) <= 14:
            out.append("g:" + self.gtin.zfill(14))
        for raw in (self.sku, *self.barcodes, self.gtin):
            if raw:
                out.append("r:" + raw)
        return list(dict.fromkeys(out))


@dataclass(slots=True)
class Receipt:
    receipt_id: str
    return_id: str
    order_number: str | None
    opened_by: str
    opened_at: str
    grade: str
    lines: list[Line]
    extra: list[dict[str, Any]] = field(default_factory=list)
    pending_qty: int | None = None
    """Units the next item scan counts (`CMD:QTY:n`); None: one."""
    weight: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Receipt:
        data = json.loads(text)
        data["lines"] = [Line(**line) for line in data["lines"]]
        return cls(**data)

    def view(self) -> dict[str, Any]:
        """What the station page shows of an open receipt."""
        return {
            "receipt_id": self.receipt_id,
            "return_id": self.return_id,
            "order_number": self.order_number,
            "grade": self.grade,
            "pending_qty": self.pending_qty,
            "lines": [
                {
                    "sku": ln.sku,
                    "gtin": ln.gtin,
                    "name": ln.name,
                    "expected_qty": ln.expected_qty,
                    "received_qty": ln.received_qty,
                    "grades": dict(ln.grades),
                    "status": ln.status,
                }
                for ln in self.lines
            ],
            "extra": len(self.extra),
            "weight": self.weight,
        }


@dataclass(frozen=True, slots=True)
class ScanCode:
    """What an item scan offers for matching."""

    gtin14: str | None
    raw: str
    serial: str | None

    def keys(self) -> list[str]:
        out = ["g:" + self.gtin14] if self.gtin14 else []
        if self.raw:
            out.append("r:" + self.raw)
        return out

    @property
    def is_product(self) -> bool:
        """A product code by its kind (a GTIN), as opposed to text that merely equals a code."""
        return self.gtin14 is not None


@dataclass(frozen=True, slots=True)
class ItemResult:
    outcome: str
    """`item` or `extra_item`."""
    line: int | None
    qty: int
    grade: str
    serial: str | None
    reason: str | None


def scan_code(decoded: dict[str, Any], body: str) -> ScanCode:
    """The codes of a decoded payload: the GTIN (kind `gtin`, or GS1 with (01), a Digital Link
    included) as GTIN-14, the payload without its AIM identifier, and a serial (AI 21)."""
    keys = decoded.get("keys") or {}
    gtin = keys.get("gtin")
    serial = None
    if decoded.get("kind") == "gs1":
        serial = (decoded.get("gs1") or {}).get("21")
    return ScanCode(gtin.zfill(14) if gtin else None, body, serial)


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def item_problems(items: Any) -> list[str]:
    """What is wrong with a manifest return's items, each naming its field (`items[2].gtin: ...`).
    `open_receipt` leaves a bad field out (a bad `qty` counts as 1); the agent reports these."""
    if not isinstance(items, list):
        return ["items: must be a list"]
    out: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            out.append(f"items[{i}]: must be an object")
            continue
        gtin, qty = item.get("gtin"), item.get("qty")
        if gtin is not None and not (
            isinstance(gtin, str) and gtin.isascii() and gtin.isdigit() and 8 <= len(gtin) <= 14
        ):
            out.append(f"items[{i}].gtin: must be 8 to 14 digits, not {gtin!r}")
        if qty is not None and (not isinstance(qty, int) or isinstance(qty, bool) or qty < 1):
            out.append(f"items[{i}].qty: must be a whole number of at least 1, not {qty!r}")
        if item.get("sku") is not None and not isinstance(item["sku"], str):
            out.append(f"items[{i}].sku: must be a string")
        for name in ("barcodes", "serials"):
            value = item.get(name)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                out.append(f"items[{i}].{name}: must be a list of strings")
        weight = item.get("weight_g")
        if weight is not None and (
            not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0
        ):
            out.append(f"items[{i}].weight_g: must be a number of grams, at least 0")
    return out


def open_receipt(receipt_id: str, ret: dict[str, Any], opened_by: str, opened_at: str, grade: str) -> Receipt:
    """A receipt for a matched return, a line per manifest item, in manifest order."""
    lines = []
    for item in ret.get("items") or []:
        if not isinstance(item, dict):
            continue
        serials = item.get("serials")
        barcodes = item.get("barcodes")
        weight = item.get("weight_g")
        gtin = _text(item.get("gtin"))
        lines.append(
            Line(
                sku=_text(item.get("sku")),
                gtin=gtin
                if gtin is not None and gtin.isascii() and gtin.isdigit() and 8 <= len(gtin) <= 14
                else None,
                name=_text(item.get("name")),
                expected_qty=_int(item.get("qty"), 1),
                allowed_serials=[s for s in serials if isinstance(s, str)]
                if isinstance(serials, list)
                else None,
                barcodes=[b for b in barcodes if isinstance(b, str) and b]
                if isinstance(barcodes, list)
                else [],
                weight_g=float(weight)
                if isinstance(weight, int | float) and not isinstance(weight, bool)
                else None,
            )
        )
    return Receipt(receipt_id, ret["return_id"], ret.get("order_number"), opened_by, opened_at, grade, lines)


def set_qty(receipt: Receipt, qty: int) -> None:
    receipt.pending_qty = qty


def set_grade(receipt: Receipt, grade: str) -> None:
    receipt.grade = grade


def candidates(receipt: Receipt, code: ScanCode) -> list[int]:
    """The lines whose codes an item scan's codes equal, in line order."""
    keys = code.keys()
    return [i for i, line in enumerate(receipt.lines) if any(k in keys for k in line.codes())]


def count(receipt: Receipt, candidates: list[int], code: ScanCode) -> ItemResult:
    """Count one item scan. `candidates`: the indexes of the lines whose codes the scan equals,
    in line order. The pending quantity is used up by this scan, whatever its result."""
    qty = receipt.pending_qty or 1
    receipt.pending_qty = None
    grade = receipt.grade
    reason = "not_in_return"
    chosen: int | None = None
    for index in candidates:
        line = receipt.lines[index]
        if code.serial is not None and (
            code.serial in line.serials
            or (line.allowed_serials is not None and code.serial not in line.allowed_serials)
        ):
            reason = "wrong_serial"
            continue
        if line.received_qty + qty > line.expected_qty:
            reason = "over_quantity" if reason != "wrong_serial" else reason
            continue
        chosen = index
        break
    if chosen is None:
        receipt.extra.append(
            {"raw": code.raw, "gtin": code.gtin14, "qty": qty, "grade": grade, "reason": reason}
        )
        return ItemResult("extra_item", None, qty, grade, code.serial, reason)
    line = receipt.lines[chosen]
    line.received_qty += qty
    line.grades[grade] = line.grades.get(grade, 0) + qty
    if code.serial is not None:
        line.serials.append(code.serial)
    return ItemResult("item", chosen, qty, grade, code.serial, None)


def close(receipt: Receipt, closed_by: str) -> dict[str, Any]:
    """The receipt event's own fields (without envelope and `receipt_seq`). A cancelled receipt
    reports every line as received 0, `missing`, and no extra."""
    if closed_by not in CLOSED_BY:
        raise ValueError(f"closed_by {closed_by!r} is not one of {', '.join(CLOSED_BY)}")
    cancel = closed_by == "cancel"
    lines = [
        {
            "sku": ln.sku,
            "gtin": ln.gtin,
            "name": ln.name,
            "expected_qty": ln.expected_qty,
            "received_qty": 0 if cancel else ln.received_qty,
            "grades": {} if cancel else dict(ln.grades),
            "serials": [] if cancel else list(ln.serials),
            "status": "missing" if cancel else ln.status,
        }
        for ln in receipt.lines
    ]
    extra = [] if cancel else [dict(e) for e in receipt.extra]
    return {
        "event_id": receipt.receipt_id,
        "return_id": receipt.return_id,
        "order_number": receipt.order_number,
        "opened_by": receipt.opened_by,
        "opened_at": receipt.opened_at,
        "closed_by": closed_by,
        "lines": lines,
        "extra": extra,
        "complete": not extra and all(ln["status"] == "complete" for ln in lines),
        "weight": receipt.weight,
    }
