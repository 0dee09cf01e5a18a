"""GS1 element strings, their human-readable form, and GS1 Digital Link URIs (labels.md kind 4).

The table of Application Identifiers (value pattern, whether a GS must end the field) is biip's. Element strings are split here rather than by biip's
`GS1Message.parse`: the split is a few dictionary look-ups per element, where biip builds rich
objects (prefix tables, decimals) that a dock does not use and that cost ~60 µs a payload, and
it is strict where biip is lenient (biip reads a variable field without its GS as the longest
value that fits, then carries on; here the field runs to its GS and a too-long value is an error
that names it). Every error names the AI, or the position where no AI could be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from edge_agent.decode._regex_shape import width

GS = "\x1d"
# AIs whose value carries a GS1 check digit; an implicit GS1 string must hold one of them.
_CHECKED_AIS = frozenset({"00", "01", "02"})
_CHECK_DIGIT_AIS = frozenset({"00", "01", "02", "03"})
# AIs whose value starts with YYMMDD (7007 may hold two dates), as the GS1 General Specifications say.
_DATE_AIS = frozenset(
    {"11", "12", "13", "15", "16", "17", "4324", "4325", "4326", "7003", "7006", "7007", "7011", "8008"}
)
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(slots=True)
class Gs1Result:
    valid: bool
    error: str | None
    ais: dict[str, str]
    keys: dict[str, str]


class _Ai:
    """One Application Identifier. Its value pattern is compiled, and its lengths worked out, the
    first time a label carries it: a dock sees a handful of the ~500 AIs, and compiling them all
    cost every start of the agent ~10 ms of CPU (bench/footprint.py)."""

    __slots__ = ("_fixed", "_longest", "_separator", "_source", "_value", "ai", "format")

    def __init__(self, ai: str, source: str, separator_required: bool, format: str) -> None:
        self.ai = ai
        self.format = format
        self._source = source
        self._separator = separator_required
        self._value: re.Pattern[str] | None = None

    def _load(self) -> re.Pattern[str]:
        lo, hi = width(self._source)
        self._fixed = lo if lo == hi and not self._separator else None
        self._longest = hi
        self._value = re.compile(self._source)
        return self._value

    @property
    def value(self) -> re.Pattern[str]:
        return self._value or self._load()

    @property
    def fixed(self) -> int | None:
        """Value length when the AI has a predefined length (no GS needed after it)."""
        if self._value is None:
            self._load()
        return self._fixed

    @property
    def longest(self) -> int:
        if self._value is None:
            self._load()
        return self._longest


def biip_data(relative: str) -> bytes:
    """A data file of the biip package, read without importing biip: its package import loads the
    GS1 Company Prefix trie (5.5 MB of objects, 70 ms) and its whole parser, none of which the
    agent uses (bench/footprint.py)."""
    import importlib.util

    spec = importlib.util.find_spec("biip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("biip is not installed")
    folder = next(iter(spec.submodule_search_locations))
    with open(f"{folder}/{relative}", "rb") as fh:
        return fh.read()


@cache
def ai_table() -> dict[str, _Ai]:
    """biip's table of GS1 Application Identifiers, compiled for splitting element strings."""
    import json

    table: dict[str, _Ai] = {}
    for ai in json.loads(biip_data("gs1_application_identifiers/_application_identifiers.json")):
        code = ai["ai"]
        value = "^" + ai["pattern"].removeprefix("^" + code)
        table[code] = _Ai(code, value, bool(ai["separator_required"]), ai["format"])
    return table


def has_gs1_marker(body: str) -> bool:
    return body.startswith((GS, "("))


def looks_like_url(body: str) -> bool:
    return body[:8].lower().startswith(("https://", "http://"))


class _Gs1Error(Exception):
    pass


def _ai_at(text: str, pos: int) -> _Ai | None:
    table = ai_table()
    for size in (2, 3, 4):
        found = table.get(text[pos : pos + size])
        if found is not None:
            return found
    return None


def _split(text: str) -> list[tuple[str, str]]:
    """Element string (GS-separated, no leading GS) → [(AI, value)]; raises _Gs1Error."""
    out: list[tuple[str, str]] = []
    pos, n = 0, len(text)
    while pos < n:
        if text[pos] == GS:
            pos += 1  # a GS after a fixed-length field is allowed, if not needed
            continue
        ai = _ai_at(text, pos)
        if ai is None:
            raise _Gs1Error(_no_ai(text, pos, out))
        start = pos + len(ai.ai)
        if ai.fixed is not None:
            end = start + ai.fixed
            if end > n:
                raise _Gs1Error(
                    f"GS1 AI ({ai.ai}) needs {ai.fixed} characters, has {n - start} (position {start})"
                )
        else:
            end = text.find(GS, start)
            if end < 0:
                end = n
            if end - start > ai.longest:
                raise _Gs1Error(
                    f"GS1 AI ({ai.ai}): value of {end - start} characters at position {start} is longer "
                    f"than its {ai.format}; is a GS missing after AI ({ai.ai})?"
                )
        out.append((ai.ai, text[start:end]))
        pos = end
    if not out:
        raise _Gs1Error("GS1 payload holds no element string")
    return out


def _no_ai(text: str, pos: int, before: list[tuple[str, str]]) -> str:
    message = f"GS1: no known AI at position {pos} ({text[pos : pos + 4]!r})"
    if before:
        ai = before[-1][0]
        message += f" after AI ({ai})"
    return message


_HRI_AI = re.compile(r"\(([^()]*)\)")


def _split_hri(text: str) -> list[tuple[str, str]]:
    """`(AI)value(AI)value` → [(AI, value)]: every `(` opens an element; raises _Gs1Error."""
    out: list[tuple[str, str]] = []
    pos, n = 0, len(text)
    while pos < n:
        m = _HRI_AI.match(text, pos)
        if m is None:
            if text[pos] == "(":
                raise _Gs1Error(f"GS1: unclosed parenthesis at position {pos}")
            raise _Gs1Error(f"GS1: text outside an element at position {pos} ({text[pos : pos + 8]!r})")
        code = m.group(1)
        if not code:
            raise _Gs1Error(f"GS1: empty parentheses at position {pos}")
        if not code.isdigit() or not 2 <= len(code) <= 4:
            raise _Gs1Error(f"GS1: ({code}) at position {pos} is not an Application Identifier")
        ai = ai_table().get(code)
        if ai is None:
            raise _Gs1Error(f"GS1: ({code}) at position {pos} is not a known Application Identifier")
        start = m.end()
        end = text.find("(", start)
        if end < 0:
            end = n
        value = text[start:end]
        if not value:
            raise _Gs1Error(f"GS1 AI ({code}) at position {pos} has no value")
        if ai.fixed is not None and len(value) > ai.fixed:
            at = start + ai.fixed
            raise _Gs1Error(
                f"GS1: text outside an element at position {at} ({text[at : at + 8]!r} after AI ({code}))"
            )
        out.append((code, value))
        pos = end
    if not out:
        raise _Gs1Error("GS1 payload holds no element string")
    return out


def _gs1_check_digit_ok(digits: str) -> bool:
    body = digits[:-1].encode()  # the AI's pattern let only ASCII digits through
    threes, ones = body[::-2], body[-2::-2]
    total = 3 * (sum(threes) - 48 * len(threes)) + sum(ones) - 48 * len(ones)
    return (10 - total % 10) % 10 == ord(digits[-1]) - 48


def _date_ok(yymmdd: str) -> bool:
    month, day = int(yymmdd[2:4]), int(yymmdd[4:6])
    if not 1 <= month <= 12:
        return False
    year = int(yymmdd[:2])
    last = _DAYS[month - 1]
    if month == 2 and year % 4 != 0:
        last = 28  # the GS1 century window puts YY=00 at 2000, a leap year; other YY agree in both centuries
    return day <= last  # day 00 means the last day of the month


def _problem(ai: str, value: str) -> str | None:
    spec = ai_table()[ai]
    if spec.value.fullmatch(value) is None:
        shown = value if len(value) <= 24 else value[:24] + "..."
        return f"GS1 AI ({ai}): {shown!r} does not match its format {spec.format}"
    if ai in _CHECK_DIGIT_AIS and not _gs1_check_digit_ok(value):
        name = "SSCC" if ai == "00" else "GTIN"
        return f"GS1 AI ({ai}): {name} {value} has a wrong check digit"
    if ai in _DATE_AIS and (
        not _date_ok(value[:6]) or (ai == "7007" and len(value) == 12 and not _date_ok(value[6:]))
    ):
        return f"GS1 AI ({ai}): {value!r} is not a real date"
    return None


def check_elements(elements: list[tuple[str, str]]) -> Gs1Result:
    ais: dict[str, str] = {}
    keys: dict[str, str] = {}
    error: str | None = None
    for ai, value in elements:
        if ai in ais:
            error = error or f"GS1 AI ({ai}) occurs twice"
            continue
        ais[ai] = value
        problem = _problem(ai, value)
        if problem:
            error = error or problem
            continue
        if ai == "00":
            keys["sscc"] = value
        elif ai in ("01", "02"):
            keys.setdefault("gtin", value)
        elif ai == "401":
            keys["tracking_number"] = value
    return Gs1Result(error is None, error, ais, keys if error is None else {})


def decode_gs1(body: str) -> Gs1Result:
    """Decode a payload that is known to be GS1 (by symbology or marker)."""
    text = body.lstrip(GS)  # a leading GS is FNC1 in first position, not data
    try:
        elements = _split_hri(text) if text.startswith("(") else _split(text)
    except _Gs1Error as exc:
        return Gs1Result(False, str(exc), {}, {})
    return check_elements(elements)


def try_implicit_gs1(body: str) -> Gs1Result | None:
    """A payload with no GS1 marker is GS1 only if it parses whole, every check passes, and it
    holds an AI with a check digit (00, 01, 02): other all-digit strings are too often something
    else (a carrier's number, an order number) that happens to parse."""
    if len(body) < 4 or not body[:2].isdigit():
        return None
    try:
        elements = _split(body)
    except _Gs1Error:
        return None
    if not any(ai in _CHECKED_AIS for ai, _ in elements):
        return None
    result = check_elements(elements)
    return result if result.valid else None
