"""The contract's payloads (mqtt.md), named once, for the agent, the simulators and the tests.

Inbound models ignore unknown fields (the contract allows extra fields) and reject wrong types
and missing required fields with errors that name the field.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONTRACT_VERSION = 1
MODES = ("receive", "inspect", "restock", "reject")
OUTCOMES = ("expected", "duplicate", "unknown", "invalid", "command")
PRINT_STATES = ("accepted", "printing", "printed", "failed", "expired", "rejected", "uncertain")
PRINTER_STATES = ("ready", "paper_out", "head_open", "ribbon_out", "paused", "offline", "error", "unknown")


def rfc3339(epoch_ns: int | None = None) -> str:
    """`2026-11-26T08:15:02.123Z`: UTC with milliseconds."""
    ns = time.time_ns() if epoch_ns is None else epoch_ns
    dt = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(ns // 1_000_000) % 1000:03d}Z"


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CommandRequest(_Inbound):
    request_id: str = Field(min_length=1, max_length=200)
    args: dict[str, Any] = Field(default_factory=dict)


class DesiredConfig(_Inbound):
    version: int = Field(ge=0)
    config: dict[str, Any]


class ManifestReturn(_Inbound):
    return_id: str = Field(min_length=1, max_length=64)
    order_number: str | None = Field(default=None, max_length=64)
    keys: dict[str, str] = Field(default_factory=dict)
    customer: dict[str, Any] | None = None
    items: list[dict[str, Any]] = Field(default_factory=list)
    bin: str | None = Field(default=None, max_length=64)
    """Extra field: where the parcel goes next at this warehouse, printed on routing slips."""


class ManifestMessage(_Inbound):
    version: int = Field(ge=0)
    base_version: int | None
    chunk: int = Field(default=1, ge=1)
    chunks: int = Field(default=1, ge=1)
    upserts: list[ManifestReturn] = Field(default_factory=list)
    deletes: list[str] = Field(default_factory=list)


class PrintJob(_Inbound):
    job_id: str = Field(min_length=1, max_length=128)
    printer: str = Field(min_length=1, max_length=64)
    copies: int = Field(default=1, ge=1, le=100)
    template: str | None = None
    data: dict[str, Any] | None = None
    zpl: str | None = None
    escpos_b64: str | None = None
    not_after: str | None = None


class ReplyError(BaseModel):
    code: str
    message: str


Status = Literal["ok", "error"]


def describe(exc: ValidationError) -> str:
    """One sentence naming each wrong field."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
