"""What a parcel should weigh and whether it does. Pure: no clock, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from drivers.scales.reading import Reading

Check = Literal["ok", "light", "heavy", "unknown"]


@dataclass(frozen=True, slots=True)
class Latest:
    """A scale's last reading as the scan recorder sees it from the writer thread (one immutable
    object swapped whole, so a read from another thread is never half of one)."""

    scale: str
    state: str
    """`ok`, `motion`, `overload`, `underload`, `error` or `offline`."""
    reading: Reading | None
    at_ns: int
    """`time.monotonic_ns()` when it was read."""
    min_load_g: float

    def loaded(self) -> bool:
        """A stable weight with a parcel on the pan: what a scan can take at once."""
        r = self.reading
        return (
            self.state == "ok"
            and r is not None
            and r.stable
            and r.grams is not None
            and r.grams >= self.min_load_g
        )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def expected_g(ret: dict[str, Any]) -> float | None:
    """The return's `weight_g`; else the sum of its items' `weight_g x qty`, when every item has
    one (a sum with an item left out would call every such parcel heavy); else None."""
    if _number(ret.get("weight_g")):
        return float(ret["weight_g"])
    items = ret.get("items") or []
    if not items:
        return None
    total = 0.0
    for item in items:
        if not isinstance(item, dict):
            return None
        weight, qty = item.get("weight_g"), item.get("qty", 1)
        if not _number(weight) or not _number(qty):
            return None
        total += weight * qty
    return total


def judge(grams: float | None, expected: float | None, percent: float, min_g: float) -> Check:
    """`light` or `heavy` outside the tolerance (`percent` of the expected weight, at least
    `min_g`), `ok` within it, `unknown` without a weight or an expected one."""
    if grams is None or expected is None:
        return "unknown"
    tolerance = max(expected * percent / 100.0, min_g)
    if grams < expected - tolerance:
        return "light"
    if grams > expected + tolerance:
        return "heavy"
    return "ok"


def grams_of(value: float | None) -> float | int | None:
    """Grams as sent: whole grams as an integer, else to a tenth."""
    if value is None:
        return None
    rounded = round(value, 1)
    return int(rounded) if rounded == int(rounded) else rounded


def weight_field(
    scale: str,
    grams: float | None,
    stable: bool,
    expected: float | None,
    percent: float,
    min_g: float,
    detail: str | None = None,
) -> dict[str, Any]:
    """The scan event's and the receipt's `weight` (mqtt.md "Scales"); `detail` says why a weight is
    `unknown` where that is not plain from the rest (no stable reading, the scale offline)."""
    check = judge(grams if stable else None, expected, percent, min_g)
    out: dict[str, Any] = {"grams": grams_of(grams), "stable": stable, "scale": scale,
                           "expected_g": grams_of(expected), "check": check}  # fmt: skip
    if detail is not None:
        out["detail"] = detail
    return out


def unknown_because(latest: Latest | None, settle_ms: int) -> str:
    if latest is None or latest.state == "offline":
        return "the scale is offline"
    if latest.state in ("overload", "underload", "error"):
        return f"the scale reports {latest.state}"
    r = latest.reading
    if latest.state == "ok" and r is not None and r.stable and (r.grams or 0.0) < latest.min_load_g:
        return "nothing on the scale"
    return f"no stable weight within {settle_ms} ms"
