"""Configured rules for in-house and local-carrier formats: a regex with named groups."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    keys: Mapping[str, str]
    """Named group to key name."""

    @classmethod
    def build(cls, name: str, pattern: str, keys: Mapping[str, str]) -> Rule:
        return cls(name, re.compile(pattern), dict(keys))

    def apply(self, body: str) -> dict[str, str] | None:
        m = self.pattern.fullmatch(body)
        if m is None:
            return None
        return {key: m.group(group) for group, key in self.keys.items() if m.group(group)}
