"""What every printer driver reports: one of the contract's printer states and a detail."""

from __future__ import annotations

from dataclasses import dataclass

STATES = ("ready", "paper_out", "head_open", "ribbon_out", "paused", "offline", "error", "unknown")


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    state: str
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.state == "ready"


class StatusParseError(ValueError):
    """The printer answered a status request with bytes that are not a status."""
