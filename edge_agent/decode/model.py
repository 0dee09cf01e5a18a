"""The decoded form of one payload, as `edge-agent decode --json` prints it (labels.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("command", "return_label", "iso15434", "gs1", "tracking", "gtin", "rule", "unknown")


@dataclass(slots=True)
class Decoded:
    raw: str
    symbology: str | None
    kind: str
    valid: bool
    error: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    detail: Any = None
    """The kind's own field (`gs1`, `iso15434`, `tracking`, `gtin`, `return_label`, `command`, `rule`); absent for
    unknown."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "raw": self.raw,
            "symbology": self.symbology,
            "kind": self.kind,
            "valid": self.valid,
            "error": self.error,
            "keys": self.keys,
        }
        if self.kind != "unknown":
            out[self.kind] = self.detail
        return out
