"""`receiving:`: receipts, the item-by-item check of a returned parcel (contract cli.md, mqtt.md
"Receipts")."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge_agent.config.base import _Model

Mode = Literal["receive", "inspect", "restock", "reject"]
_OPEN_IN: tuple[Mode, ...] = ("receive", "inspect")
GRADE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,15}$")


class WeightTolerance(_Model):
    percent: float = Field(default=15.0, ge=0, le=100)
    """How far a parcel's weight may be from what it should weigh, percent of the expected weight."""
    min_g: float = Field(default=50.0, ge=0)
    """The least tolerance, grams: a light parcel's few percent are within a scale's own error."""


class PrintOnClose(_Model):
    printer: str = Field(min_length=1)
    """Printer id, or `role:{name}`, that prints when a receipt closes."""
    what: Literal["slip", "restock_labels"] = "slip"
    """`slip`: one receipt slip (template `receipt_slip`); `restock_labels`: one label per unit
    received, for the shelf (template `restock_label`: SKU, grade, return)."""
    on_cancel: bool = False
    """Whether a cancelled receipt prints too."""


class ReceivingConfig(_Model):
    open_in: list[Mode] = Field(default_factory=lambda: list(_OPEN_IN))
    """Station modes whose parcel scans (outcome `expected`) open a receipt; `[]` turns receipts off."""
    grades: list[str] = Field(default_factory=lambda: ["A", "B", "C", "SCRAP"], min_length=1)
    """Condition grades a worker can scan (`CMD:GRADE:{grade}`), upper case."""
    default_grade: str = "A"
    """The grade every receipt starts at; one of `grades`."""
    idle_close_s: float = Field(default=300.0, gt=0, le=86400)
    """An open receipt with no scan for this long closes by itself (`closed_by: idle`), seconds."""
    weight_settle_ms: int = Field(default=1500, ge=0, le=60000)
    """How long after a parcel scan a stable weight from the station's scale is waited for,
    milliseconds (the scan is stored at once; its event leaves with the weight or `unknown`)."""
    scale: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """Id of the scale that weighs this station's parcels; none: the first of `scales`."""
    weight_tolerance: WeightTolerance = Field(default_factory=WeightTolerance)
    """How far a weight may be from the expected one before it is `light` or `heavy`."""
    print_on_close: PrintOnClose | None = None
    """What prints when a receipt closes; none: nothing."""

    @field_validator("grades")
    @classmethod
    def _grades(cls, grades: list[str]) -> list[str]:
        out = [g.upper() for g in grades]
        for grade in out:
            if not GRADE_PATTERN.match(grade):
                raise ValueError(
                    f"grade {grade!r} must be 1-16 of A-Z, 0-9, _ and -, starting with a letter or digit"
                )
        if len(set(out)) != len(out):
            raise ValueError("a grade is listed twice")
        return out

    @field_validator("default_grade")
    @classmethod
    def _upper(cls, grade: str) -> str:
        return grade.upper()

    @model_validator(mode="after")
    def _default_known(self) -> ReceivingConfig:
        if self.default_grade not in self.grades:
            raise ValueError(
                f"default_grade {self.default_grade!r} is not one of grades ({', '.join(self.grades)})"
            )
        return self
