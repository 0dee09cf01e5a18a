"""What a scale says, in one shape for every protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["ok", "motion", "overload", "underload", "error", "offline"]

# grams per unit, for the units scales at a dock report
GRAMS = {"g": 1.0, "kg": 1000.0, "mg": 0.001, "lb": 453.59237, "oz": 28.349523125, "t": 1_000_000.0}


@dataclass(frozen=True, slots=True)
class Reading:
    state: State
    """`ok` (a weight), `motion` (a weight not yet stable, or none while the scale settles),
    `overload`, `underload` (below zero, or the pan missing), `error` (the scale reports a fault),
    `offline` (a driver's verdict, never a parser's: the device is gone or does not answer)."""
    grams: float | None
    """The weight in grams; None where the reply carries none."""
    stable: bool
    """The scale's own stability flag (False where it has none: see `Stabilizer`)."""
    detail: str = ""
    """The reply as received, or the scale's error, for the log."""
    flagged: bool = True
    """Whether the protocol says if the weight is stable. False for a bare weight line: then
    `stable` is False and `Stabilizer` decides it from the readings that follow."""


def to_grams(value: float, unit: str) -> float:
    """`value` in `unit` as grams; raises ValueError naming an unknown unit."""
    try:
        return value * GRAMS[unit.lower()]
    except KeyError:
        raise ValueError(f"unknown weight unit {unit!r}") from None
