"""Carrier tracking numbers, evaluated from the vendored `tracking_number_data` courier files.

Each courier file lists formats: a regular expression with named groups `SerialNumber` and
`CheckDigit`, a check-digit algorithm with its parameters, optional rules that rewrite the
serial number before checking, and lookups that must succeed (an S10 country code must be a
UPU member). This module compiles them once and evaluates them; it holds no carrier rules of
its own beyond the algorithms the data set names (its CHECKSUM_ALGORITHMS.md, plus Luhn) and
which formats are package barcodes that wrap a shorter number (labels.md, kind 5).

Speed: a payload is compacted (spaces as printed are not part of the number) and only the
formats whose compact length range and first character admit it are tried, so a payload meets
one to three regular expressions instead of every format of every courier.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from operator import mul
from typing import Any

from edge_agent.decode._regex_shape import shape

_NAMED_GROUP = re.compile(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>")
_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_ALNUM36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MOD10_LETTERS = str.maketrans({c: str((ord(c) - 3) % 10) for c in _ALNUM36[10:] + _ALNUM36[10:].lower()})
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")
_MAX_LEN = 64

# Package barcodes that wrap a tracking number (labels.md kind 5), by format id: the inner
# number is SerialNumber + CheckDigit, cut to its last N characters where N is given. USPS
# formats carry an optional `420` + ZIP routing prefix in front of the serial number.
_INNER: dict[str, int | None] = {
    "usps_impb_n": None,
    "usps_impb_c": None,
    "usps_legacy": None,
    "fedex_ground_96": None,
    "fedex_astra_32": None,
    "fedex_ground_gsn": 12,
    "fedex_34": 12,
}

# When numbers of two couriers share a shape and both check digits pass, the first courier here
# wins (then the data set's file order). Checked formats always come before unchecked ones.
_PRIORITY = (
    "s10",
    "ups",
    "usps",
    "purolator",
    "fedex",
    "old_dominion",
    "dhl",
    "dpd",
    "canada_post",
    "ontrac",
)


@dataclass(slots=True)
class TrackingMatch:
    courier: str
    service: str
    number: str
    valid: bool
    error: str | None
    barcode: str | None = None
    """The whole package barcode when `number` is the tracking number it wraps."""

    def detail(self) -> dict[str, str]:
        out = {"courier": self.courier, "number": self.number, "service": self.service}
        if self.barcode is not None:
            out["barcode"] = self.barcode
        return out


def _digit_sum(digits: str) -> int:
    """Sum of ASCII digits, summed as bytes in C rather than int() by int()."""
    return sum(digits.encode()) - 48 * len(digits)


def _weighted_sum(digits: str, weights: Sequence[int]) -> int:
    """Σ digit × weight over the shorter of the two (as zip), from the ASCII bytes."""
    n = min(len(digits), len(weights))
    total: int = sum(map(mul, digits.encode(), weights))
    return total - 48 * sum(weights[:n])


def _mod10(sequence: str, check: str, params: Mapping[str, Any]) -> bool:
    """The data set's mod 10: a letter counts as (ord - 3) % 10; positions (from 0) are weighted
    by `evens_multiplier` and `odds_multiplier`, the sum's complement to 10 is the check digit."""
    if not check.isdigit():
        return False
    digits = (sequence[::-1] if params.get("reverse") else sequence).translate(_MOD10_LETTERS)
    if not (digits.isascii() and digits.isdigit()):
        return False
    evens = int(params.get("evens_multiplier") or 1)
    odds = int(params.get("odds_multiplier") or 1)
    total = evens * _digit_sum(digits[0::2]) + odds * _digit_sum(digits[1::2])
    return (10 - total % 10) % 10 == int(check)


def _luhn(sequence: str, check: str, params: Mapping[str, Any]) -> bool:
    """Ordinary Luhn: from the right of the sequence (the check digit's neighbour), double every
    other digit starting with the first, subtract 9 above 9."""
    if not (sequence.isascii() and sequence.isdigit() and check.isdigit()):
        return False
    backwards = sequence[::-1]
    total = _digit_sum(backwards[0::2].translate(_LUHN_DOUBLED)) + _digit_sum(backwards[1::2])
    return (10 - total % 10) % 10 == int(check)


def _mod7(sequence: str, check: str, params: Mapping[str, Any]) -> bool:
    return sequence.isdigit() and check.isdigit() and int(sequence) % 7 == int(check)


def _s10(sequence: str, check: str, params: Mapping[str, Any]) -> bool:
    if not (sequence.isascii() and sequence.isdigit() and check.isdigit()):
        return False
    remainder = _weighted_sum(sequence, _S10_WEIGHTS) % 11
    digit = 0 if remainder == 1 else 5 if remainder == 0 else 11 - remainder
    return digit == int(check)


def _weighted(sequence: str, check: str, params: Mapping[str, Any]) -> bool:
    if not (sequence.isascii() and sequence.isdigit() and check.isdigit()):
        return False
    total = _weighted_sum(sequence, params.get("weightings") or ())
    return total % int(params["modulo1"]) % int(params["modulo2"]) == int(check)


def _mod_37_36(sequence: str, check: str, params: Mapping[str, Any]) -> bool:
    mod = 36
    cd = mod
    for char in sequence.upper():
        value = _ALNUM36.find(char)
        if value < 0:
            return False
        cd += value
        if cd > mod:
            cd -= mod
        cd *= 2
        if cd > mod:
            cd -= mod + 1
    cd = mod + 1 - cd
    if cd == mod:
        cd = 0
    return _ALNUM36[cd] == check.upper()


CHECKSUMS: dict[str, Callable[[str, str, Mapping[str, Any]], bool]] = {
    "mod10": _mod10,
    "mod7": _mod7,
    "s10": _s10,
    "sum_product_with_weightings_and_modulo": _weighted,
    "mod_37_36": _mod_37_36,
    "luhn": _luhn,
}


@dataclass(frozen=True, slots=True)
class _Format:
    courier: str
    id: str
    name: str
    source: str
    """The (compact) pattern; compiled the first time a number of this length and first
    character comes (most of the ~250 formats never do at a given dock: compiling them all cost
    every start ~8 ms of CPU)."""
    min_len: int
    max_len: int
    first: frozenset[str] | None
    """Characters a (compact) number of this format can start with; None: any."""
    checksum: Mapping[str, Any] | None
    check: Callable[[str, str, Mapping[str, Any]], bool] | None
    prepend_if: tuple[re.Pattern[str], str] | None
    must_exist: tuple[tuple[str, str, frozenset[str], tuple[re.Pattern[str], ...]], ...]
    """(lookup name, regex group, exact values, patterns): the group's value must be one of them."""
    test_numbers: Mapping[str, list[str]]

    def evaluate(self, payload: str) -> TrackingMatch | None:
        """Evaluate a number as printed (spaces allowed)."""
        return self.evaluate_compact("".join(payload.split()))

    def evaluate_compact(self, number: str) -> TrackingMatch | None:
        regex = _pattern(self.source)
        m = regex.fullmatch(number)
        if m is None:
            return None
        serial = m.group("SerialNumber") or ""
        check = (m.group("CheckDigit") or "") if "CheckDigit" in regex.groupindex else ""
        inner, barcode = number, None
        if self.id in _INNER:
            inner = (serial + check)[-(_INNER[self.id] or 0) :]
            if inner != number:
                barcode = number
        if self.check is not None and self.checksum is not None:
            if self.prepend_if is not None and self.prepend_if[0].match(serial):
                serial = self.prepend_if[1] + serial
            if not self.check(serial, check, self.checksum):
                error = f"{self.name} tracking number: check digit is wrong"
                return TrackingMatch(self.courier, self.name, inner, False, error, barcode)
        for lookup_name, group, exact, patterns in self.must_exist:
            value = m.group(group) or ""
            if value not in exact and not any(p.match(value) for p in patterns):
                error = f"{self.name} tracking number: {lookup_name.lower()} code {value!r} is not known"
                return TrackingMatch(self.courier, self.name, inner, False, error, barcode)
        return TrackingMatch(self.courier, self.name, inner, True, None, barcode)


@cache
def _pattern(source: str) -> re.Pattern[str]:
    return re.compile(source)


def _compile(courier: str, spec: Mapping[str, Any]) -> _Format:
    source = spec["regex"]
    if isinstance(source, list):
        source = "".join(source)
    source = _NAMED_GROUP.sub(r"(?P<\1>", source)
    # Numbers are matched compact, so the data set's optional whitespace never matches anything.
    compact = source.replace(r"\s*", "")
    lo, hi, first = shape(compact)
    validation = spec.get("validation") or {}
    checksum = validation.get("checksum")
    prepend = (validation.get("serial_number_format") or {}).get("prepend_if")
    prepend_if = (re.compile(prepend["matches_regex"]), str(prepend["content"])) if prepend else None
    must_exist = []
    lookups = {a["name"]: a for a in spec.get("additional") or []}
    for name in (validation.get("additional") or {}).get("exists") or []:
        extra = lookups[name]
        entries = extra.get("lookup") or []
        exact = frozenset(str(e["matches"]) for e in entries if "matches" in e)
        patterns = tuple(re.compile(e["matches_regex"]) for e in entries if "matches_regex" in e)
        must_exist.append((name, extra["regex_group_name"], exact, patterns))
    return _Format(
        courier=courier,
        id=spec.get("id") or spec["name"],
        name=spec["name"],
        source=compact,
        min_len=lo,
        max_len=min(hi, _MAX_LEN),
        first=first,
        checksum=checksum,
        check=CHECKSUMS.get(checksum["name"]) if checksum else None,
        prepend_if=prepend_if,
        must_exist=tuple(must_exist),
        test_numbers=spec.get("test_numbers") or {},
    )


@cache
def formats() -> tuple[_Format, ...]:
    """Every format of every vendored courier file, checked formats first, in `_PRIORITY` order."""
    folder = resources.files("edge_agent.decode").joinpath("data/tracking_number_data/couriers")
    out: list[_Format] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            out.extend(_compile(data["courier_code"], spec) for spec in data["tracking_numbers"])

    def rank(f: _Format) -> tuple[int, int]:
        order = _PRIORITY.index(f.courier) if f.courier in _PRIORITY else len(_PRIORITY)
        return (f.checksum is None, order)

    return tuple(sorted(out, key=rank))


@cache
def _by_length() -> tuple[tuple[_Format, ...], ...]:
    """For each compact length up to the longest format, the formats that admit it, in order."""
    table: list[list[_Format]] = [[] for _ in range(_MAX_LEN + 1)]
    for fmt in formats():
        for n in range(fmt.min_len, fmt.max_len + 1):
            table[n].append(fmt)
    return tuple(tuple(t) for t in table)


_CANDIDATES: dict[tuple[int, str], tuple[_Format, ...]] = {}


def _candidates(length: int, first: str) -> tuple[_Format, ...]:
    key = (length, first)
    found = _CANDIDATES.get(key)
    if found is None:
        found = tuple(f for f in _by_length()[length] if f.first is None or first in f.first)
        if len(_CANDIDATES) < 4096:  # first characters are whatever a scanner sends: stay bounded
            _CANDIDATES[key] = found
    return found


def match_tracking(payload: str) -> TrackingMatch | None:
    """The first format whose pattern and checks pass; else a failed match for a payload that has
    letters (such as an S10 number with a wrong check digit); else None.

    An all-digit string that fails every check digit is not called a bad tracking number: too many
    order numbers and EANs share those lengths, so it falls through to rules and `unknown`.
    """
    number = payload if payload.isalnum() else "".join(payload.split())
    if not number or len(number) > _MAX_LEN:
        return None
    failed: TrackingMatch | None = None
    for fmt in _candidates(len(number), number[0]):
        result = fmt.evaluate_compact(number)
        if result is None:
            continue
        if result.valid:
            if failed is not None and fmt.checksum is None:
                break  # a number that fails a real check digit is not rescued by a format with none
            return result
        failed = failed or result
    if failed is not None and not number.isdigit():
        return failed
    return None
