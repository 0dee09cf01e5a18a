"""AIM symbology identifiers (ISO/IEC 15424): `]` + symbology letter + modifier."""

from __future__ import annotations

# Symbologies whose data is a GS1 element string (FNC1 in first position).
GS1_SYMBOLOGIES = frozenset({"]C1", "]d2", "]Q3", "]e0", "]J1"})


def split_symbology(payload: str) -> tuple[str | None, str]:
    """Return `(identifier, rest)`; `identifier` is None when the payload carries none."""
    if len(payload) >= 3 and payload[0] == "]" and payload[1].isascii() and payload[1].isalpha():
        modifier = payload[2]
        if modifier.isascii() and modifier.isalnum():
            return payload[:3], payload[3:]
    return None, payload
