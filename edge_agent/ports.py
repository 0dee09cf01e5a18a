"""The ports components are built with: what each may read and do, instead of the whole agent.

`app.py` (the only composition root) makes one of each and hands every component the few it
uses. `Station` is the small shared state (mode, versions) that several read and a few write;
`Stores` the SQLite access; `Health` the read-only view that status, telemetry and the display
show; `Control` what fleet commands may ask of the agent; `Printing` what others may ask of the
print service. The outbound port (`sync.outbound.Outbound`) and alerts (`sync.alerts.Alerts`)
live in the sync layer.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from edge_agent.config import AgentConfig
from edge_agent.store.reader import Reader
from edge_agent.store.writer import Writer


@dataclass
class Station:
    """What the running station is: read by many components, written by the few that own each
    part (the scan path and `set_mode` the mode, the manifest feed its version, desired config
    the config version, the print workers the print count)."""

    boot_id: str
    started: float
    mode: str
    manifest_version: int = 0
    config_version: int = 0
    prints_total: int = 0


@dataclass(frozen=True)
class Stores:
    writer: Writer
    """The one connection that writes agent.db (scans, outbox, jobs, meta)."""
    reader: Reader
    manifest_writer: Writer
    manifest_reader: Reader


class Health(Protocol):
    """What status replies, telemetry and the station display read of the running agent."""

    def scanner_states(self) -> list[dict[str, Any]]: ...

    def printer_states(self) -> list[dict[str, Any]]: ...

    def scale_states(self) -> list[dict[str, Any]]: ...

    def display_status(self) -> dict[str, Any]: ...

    def broker_status(self) -> dict[str, Any]: ...

    def storage_status(self) -> tuple[str, str | None]: ...

    def scan_latency_us(self, q: float) -> int | None: ...

    def clock_synced(self) -> bool: ...

    def counters(self) -> dict[str, Any]: ...


class Control(Protocol):
    """What a fleet command or desired configuration may ask of the agent."""

    async def apply_config(self, new: AgentConfig) -> None: ...

    def file_data(self) -> dict[str, Any]: ...

    def set_mode(self, mode: str) -> None: ...

    async def change_mode(self, mode: str) -> None:
        """Store a new station mode (closing an open receipt, `closed_by: mode`), then show it."""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None: ...


class Printing(Protocol):
    """What others may ask of the print service."""

    async def on_message(self, payload: bytes) -> None: ...

    async def test_print(self, printer: str) -> str: ...

    async def reprint(self, job_id: str) -> str: ...

    def signal(self, printer: str, data: bytes, name: str) -> bool: ...
