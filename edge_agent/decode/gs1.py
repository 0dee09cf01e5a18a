"""GS1 element strings through biip: every AI reported, check digits and dates verified."""

from __future__ import annotations

import re
from dataclasses import dataclass

from biip import ParseError
from biip.gs1_messages import GS1Message

GS = "\x1d"
# AIs whose value carries a GS1 check digit; an implicit GS1 string must hold one of them.
_CHECKED_AIS = frozenset({"00", "01", "02"})


@dataclass(slots=True)
class Gs1Result:
    valid: bool
    error: str | None
    ais: dict[str, str]
    keys: dict[str, str]


def has_gs1_marker(body: str) -> bool:
    return body.startswith((GS, "("))


def decode_gs1(body: str) -> Gs1Result:
    """Decode a payload that is known to be GS1 (by symbology or marker)."""
    text = body.lstrip(GS)  # a leading GS is FNC1 in first position, not data
    if not text:
        return Gs1Result(False, "GS1 payload holds no element string", {}, {})
    try:
        message = GS1Message.parse_hri(text) if text.startswith("(") else GS1Message.parse(text)
    except ParseError as exc:
        return Gs1Result(False, _explain(text, str(exc)), {}, {})
    return _check(message)


_NO_AI = re.compile(r"^Failed to get GS1 Application Identifier from '(.*)'\.$", re.DOTALL)


def _explain(text: str, message: str) -> str:
    """biip's message, or for an unknown AI one that names the AI before it: the usual cause is
    a variable-length field whose GS is missing, so the next AI was read as its data."""
    m = _NO_AI.match(message)
    if m is None:
        return f"GS1: {message}"
    rest = m.group(1)
    at = text.rfind(rest) if rest else -1
    if at > 0 and not text.startswith("("):
        try:
            elements = list(GS1Message.parse(text[:at]).element_strings)
        except ParseError:
            elements = []
        if elements:
            ai = elements[-1].ai.ai
            return (
                f"GS1: no known AI at {rest[:20]!r} (position {at}) after AI ({ai}); "
                f"is a GS missing after AI ({ai})?"
            )
    return f"GS1: no known AI at {rest[:20]!r}"


def try_implicit_gs1(body: str) -> Gs1Result | None:
    """A payload with no GS1 marker is GS1 only if it parses whole, every check passes, and it
    holds an AI with a check digit (00, 01, 02): other all-digit strings are too often something
    else (a carrier's number, an order number) that happens to parse."""
    if len(body) < 4 or not body[:2].isdigit():
        return None
    try:
        message = GS1Message.parse(body)
    except ParseError:
        return None
    result = _check(message)
    if not result.valid or not _CHECKED_AIS.intersection(result.ais):
        return None
    return result


def _check(message: GS1Message) -> Gs1Result:
    ais: dict[str, str] = {}
    keys: dict[str, str] = {}
    error: str | None = None
    for element in message.element_strings:
        ai = element.ai.ai
        if ai in ais:
            error = error or f"GS1 AI ({ai}) occurs twice"
            continue
        ais[ai] = element.value
        problem = element.sscc_error or element.gtin_error
        if problem:
            error = error or f"GS1 AI ({ai}): {problem}"
            continue
        if ai == "00":
            keys["sscc"] = element.value
        elif ai in ("01", "02"):
            keys.setdefault("gtin", element.value)
        elif ai == "401":
            keys["tracking_number"] = element.value
    return Gs1Result(error is None, error, ais, keys)
