"""Decoding of scanned payloads (labels.md). Pure: no I/O, no logging; never raises.

Kinds are tried in the contract's order: command, return_label, iso15434, gs1 (element strings
and Digital Link URIs), tracking, gtin (product numbers; first under the EAN/UPC identifiers),
rule, unknown. Each step looks at the first characters before
running anything costly, so a payload meets only the parsers that could accept it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edge_agent.decode import gtin, iso15434, ret1
from edge_agent.decode.aim import GS1_SYMBOLOGIES, split_symbology
from edge_agent.decode.commands import DEFAULT_GRADES, parse_command
from edge_agent.decode.commands import PREFIX as CMD_PREFIX
from edge_agent.decode.digital_link import decode_digital_link
from edge_agent.decode.gs1 import (
    Gs1Result,
    decode_gs1,
    has_gs1_marker,
    looks_like_url,
    try_implicit_gs1,
)
from edge_agent.decode.model import KINDS, Decoded
from edge_agent.decode.rules import Rule
from edge_agent.decode.tracking import match_tracking

__all__ = ["KINDS", "Decoded", "Decoder", "Rule"]

_TRIM = " \r\n"


class Decoder:
    """Decodes payloads with the configured RET1 keys and rules."""

    def __init__(
        self,
        keys: Mapping[str, bytes] | None = None,
        rules: Sequence[Rule] = (),
        grades: Sequence[str] = DEFAULT_GRADES,
    ) -> None:
        self._keys = dict(keys or {})
        self._rules = tuple(rules)
        self._grades = tuple(grades)

    def decode(self, payload: str | bytes) -> Decoded:
        try:
            return self._decode(payload)
        except Exception as exc:  # the contract: decoding never raises, whatever the input
            raw = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
            return Decoded(raw.strip(_TRIM), None, "unknown", False, f"internal decoder error: {exc!r}")

    def _decode(self, payload: str | bytes) -> Decoded:
        encoding_error: str | None = None
        if isinstance(payload, bytes):
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                encoding_error = f"payload is not UTF-8 text (byte {exc.start})"
                text = payload.decode("utf-8", "replace")
        else:
            text = payload
        raw = text.strip(_TRIM)
        if not raw:
            return Decoded(raw, None, "unknown", False, "empty payload")
        symbology, body = split_symbology(raw)
        if not body:
            return Decoded(raw, symbology, "unknown", False, "empty payload after the symbology identifier")

        if gtin.symbol_says_gtin(body, symbology):
            return self._gtin(raw, symbology, body)
        head = body[:5].upper()
        if head.startswith(CMD_PREFIX):
            command, error = parse_command(body, self._grades)
            return Decoded(raw, symbology, "command", error is None, error, {}, command)
        if head == ret1.PREFIX:
            return self._return_label(raw, symbology, body.upper())

        if iso15434.is_envelope(body):
            return self._envelope(raw, symbology, body)

        result: Gs1Result | None
        if looks_like_url(body):  # a Digital Link in a QR, or a GS1 DataMatrix a scanner calls ]d2
            result = decode_digital_link(body)
        elif symbology in GS1_SYMBOLOGIES or has_gs1_marker(body):
            result = decode_gs1(body)
        else:
            result = try_implicit_gs1(body)
        if result is not None:
            keys = result.keys if result.valid else {}
            return Decoded(raw, symbology, "gs1", result.valid, result.error, keys, result.ais)

        tracking = match_tracking(body)
        if tracking is not None:
            keys = {"tracking_number": tracking.number} if tracking.valid else {}
            return Decoded(
                raw, symbology, "tracking", tracking.valid, tracking.error, keys, tracking.detail()
            )

        if gtin.wants(body, symbology):
            return self._gtin(raw, symbology, body)

        for rule in self._rules:
            found = rule.apply(body)
            if found is not None:
                return Decoded(raw, symbology, "rule", True, None, found, rule.name)

        error = encoding_error or _unprintable(body)
        return Decoded(raw, symbology, "unknown", error is None, error)

    def _gtin(self, raw: str, symbology: str | None, body: str) -> Decoded:
        result = gtin.decode_gtin(body, symbology)
        keys = {"gtin": result.gtin14} if result.valid and result.gtin14 else {}
        return Decoded(raw, symbology, "gtin", result.valid, result.error, keys, result.detail())

    def _envelope(self, raw: str, symbology: str | None, body: str) -> Decoded:
        envelope, end = iso15434.parse_envelope(body)
        error = envelope.error
        if error is None and end < len(body):
            error = f"ISO/IEC 15434: text after the end of the message (EOT) at position {end}"
        only = envelope.formats[0] if len(envelope.formats) == 1 else None
        if error is None and only is not None and only.format == "05":
            result = decode_gs1(only.fields[0])  # labels.md: a message of format 05 alone is GS1
            keys = result.keys if result.valid else {}
            return Decoded(raw, symbology, "gs1", result.valid, result.error, keys, result.ais)
        keys = envelope.keys if error is None else {}
        return Decoded(raw, symbology, "iso15434", error is None, error, keys, envelope.detail())

    def _return_label(self, raw: str, symbology: str | None, text: str) -> Decoded:
        label, error = ret1.parse(text)
        detail: dict[str, str | None] = {
            "kid": label.kid if label else None,
            "return_id": label.return_id if label else None,
            "order_number": label.order_number if label else None,
            "signature": "invalid",
        }
        if label is None or error is not None:
            return Decoded(raw, symbology, "return_label", False, error, {}, detail)
        key = self._keys.get(label.kid)
        if key is None:
            detail["signature"] = "unverified"
        elif ret1.verify(label, key):
            detail["signature"] = "valid"
        else:
            return Decoded(
                raw,
                symbology,
                "return_label",
                False,
                f"RET1 signature does not match key {label.kid}",
                {},
                detail,
            )
        keys = {"return_id": label.return_id, "order_number": label.order_number}
        return Decoded(raw, symbology, "return_label", True, None, keys, detail)


def _unprintable(body: str) -> str | None:
    if body.isprintable():
        return None
    for i, ch in enumerate(body):
        if not ch.isprintable():
            return f"payload has a non-printable character U+{ord(ch):04X} at position {i}"
    return None
