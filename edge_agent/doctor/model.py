"""A doctor's verdicts: one row per check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    check: str
    """What was checked: `config`, `scanner s1`, `broker login`, `clock`..."""
    status: Status
    detail: str
    """What was found, in words."""
    fix: str | None = None
    """What to do, one sentence; set where the status is not `ok`."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, *checks: Check) -> None:
        self.checks.extend(checks)

    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.checks)


def ok(check: str, detail: str) -> Check:
    return Check(check, "ok", detail)


def warn(check: str, detail: str, fix: str) -> Check:
    return Check(check, "warn", detail, fix)


def fail(check: str, detail: str, fix: str) -> Check:
    return Check(check, "fail", detail, fix)
