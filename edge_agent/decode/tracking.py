"""Carrier tracking numbers, evaluated from the vendored `tracking_number_data` courier files.

Each courier file lists formats: a regular expression with named groups `SerialNumber` and
`CheckDigit`, a check-digit algorithm with its parameters, optional rules that rewrite the
serial number before checking, and lookups that must succeed (an S10 country code must be a
UPU member). This module compiles them once and evaluates them; it holds no carrier rules
of its own beyond the algorithms the data set names (see the data set's CHECKSUM_ALGORITHMS).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

_NAMED_GROUP = re.compile(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>")
_WS = re.compile(r"\s+")
_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_ALNUM36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True, slots=True)
class TrackingMatch:
    courier: str
    service: str
    number: str
    valid: bool
    error: str | None

    def detail(self) -> dict[str, str]:
        return {"courier": self.courier, "number": self.number, "service": self.service}


def _mod10(sequence: str, check: str, params: Mapping[str, Any]) -> bool:
    chars = sequence[::-1] if params.get("reverse") else sequence
    odds = params.get("odds_multiplier")
    evens = params.get("evens_multiplier")
    total = 0
    for i, c in enumerate(chars):
        x = int(c) if c.isdigit() else (ord(c) - 3) % 10
        if odds and i % 2 == 1:
            x *= int(odds)
        elif evens and i % 2 == 0:
            x *= int(evens)
        total += x
    digit = total % 10
    if digit:
        digit = 10 - digit
    return check.isdigit() and digit == int(check)


def _mod7(sequence: str, check: str, params: Mapping[str, Any]) -> bool:
    return sequence.isdigit() and check.isdigit() and int(sequence) % 7 == int(check)


def _s10(sequence: str, check: str, params: Mapping[str, Any]) -> bool:
    if not (sequence.isdigit() and check.isdigit()):
        return False
    total = sum(int(a) * b for a, b in zip(sequence, _S10_WEIGHTS, strict=False))
    remainder = total % 11
    digit = 0 if remainder == 1 else 5 if remainder == 0 else 11 - remainder
    return digit == int(check)


def _weighted(sequence: str, check: str, params: Mapping[str, Any]) -> bool:
    weights = params.get("weightings") or []
    if not (sequence.isdigit() and check.isdigit()):
        return False
    total = sum(int(a) * int(b) for a, b in zip(sequence, weights, strict=False))
    return total % int(params["modulo1"]) % int(params["modulo2"]) == int(check)


def _mod_37_36(sequence: str, check: str, params: Mapping[str, Any]) -> bool:
    mod = 36
    cd = mod
    for char in sequence.upper():
        if char not in _ALNUM36:
            return False
        cd += _ALNUM36.index(char)
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
}


@dataclass(frozen=True, slots=True)
class _Format:
    courier: str
    name: str
    regex: re.Pattern[str]
    checksum: Mapping[str, Any] | None
    prepend_if: tuple[re.Pattern[str], str] | None
    must_exist: tuple[tuple[str, str, frozenset[str], tuple[re.Pattern[str], ...]], ...]
    """(lookup name, regex group, exact values, patterns): the group's value must be one of them."""
    test_numbers: Mapping[str, list[str]]

    def evaluate(self, payload: str) -> TrackingMatch | None:
        m = self.regex.fullmatch(payload)
        if m is None:
            return None
        groups = m.groupdict()
        number = _WS.sub("", payload)
        serial = _WS.sub("", groups.get("SerialNumber") or "")
        check = _WS.sub("", groups.get("CheckDigit") or "")
        if self.prepend_if is not None and self.prepend_if[0].match(serial):
            serial = self.prepend_if[1] + serial
        if self.checksum is not None:
            algorithm = CHECKSUMS.get(self.checksum["name"])
            if algorithm is None or not algorithm(serial, check, self.checksum):
                return TrackingMatch(
                    self.courier,
                    self.name,
                    number,
                    False,
                    f"{self.name} tracking number: check digit is wrong",
                )
        for lookup_name, group, exact, patterns in self.must_exist:
            value = _WS.sub("", groups.get(group) or "")
            if value not in exact and not any(p.match(value) for p in patterns):
                return TrackingMatch(
                    self.courier,
                    self.name,
                    number,
                    False,
                    f"{self.name} tracking number: {lookup_name.lower()} code {value!r} is not known",
                )
        return TrackingMatch(self.courier, self.name, number, True, None)


def _compile(courier: str, spec: Mapping[str, Any]) -> _Format:
    source = spec["regex"]
    if isinstance(source, list):
        source = "".join(source)
    regex = re.compile(_NAMED_GROUP.sub(r"(?P<\1>", source))
    validation = spec.get("validation") or {}
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
        name=spec["name"],
        regex=regex,
        checksum=validation.get("checksum"),
        prepend_if=prepend_if,
        must_exist=tuple(must_exist),
        test_numbers=spec.get("test_numbers") or {},
    )


@cache
def formats() -> tuple[_Format, ...]:
    """Every format of every vendored courier file, S10 first (it is the most specific)."""
    folder = resources.files("edge_agent.decode").joinpath("data/tracking_number_data/couriers")
    out: list[_Format] = []
    for entry in sorted(folder.iterdir(), key=lambda e: (e.name != "s10.json", e.name)):
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text(encoding="utf-8"))
        courier = data["courier_code"]
        out.extend(_compile(courier, spec) for spec in data["tracking_numbers"])
    return tuple(out)


def match_tracking(payload: str) -> TrackingMatch | None:
    """The first format whose pattern and checks pass; else a failed match for a payload that has
    letters (such as an S10 number with a wrong check digit); else None.

    An all-digit string that fails every check digit is not called a bad tracking number: too many
    order numbers and EANs share those lengths, so it falls through to rules and `unknown`.
    """
    failed: TrackingMatch | None = None
    for fmt in formats():
        result = fmt.evaluate(payload)
        if result is None:
            continue
        if result.valid:
            return result
        failed = failed or result
    if failed is not None and any(c.isalpha() for c in payload):
        return failed
    return None
