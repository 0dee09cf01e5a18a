"""Software update: the `update` command's arguments, the `software` state (mqtt.md, "Software
update"), and the line protocol between `edge-agent launch` and the agent it runs. Pure: no I/O.

The channel is one stream socket (a socketpair the launcher makes; the agent finds its end in
$EDGE_AGENT_LAUNCHER_FD) carrying one JSON object per line, both ways:

    agent -> launcher   {"op": "hello", "version", "schema", "pid"}      as soon as the agent runs
                        {"op": "health", "stage": "storage" | "online"}  storage open; state published
                        {"op": "update", "id", "args"} / {"op": "rollback", "id"}
    launcher -> agent   {"op": "reply", "id", "status": "ok" | "error", "code", "message", "data"}
                        {"op": "software", "state": {...}}               every change, and after hello

The launcher is the authority on releases; the agent owns the MQTT session and publishes what the
launcher says on `{root}/software`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

STATES = ("idle", "downloading", "verifying", "installing", "restarting", "healthy", "rolled_back", "failed")
BUSY_STATES = ("downloading", "verifying", "installing", "restarting")
VERSION_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
CHANNEL_ENV = "EDGE_AGENT_LAUNCHER_FD"
MAX_LINE = 64 * 1024


class UpdateArgs(BaseModel):
    """`{root}/cmd/update` args. Unknown fields are ignored, as everywhere in the contract."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=4096)
    sha256: str
    signature: str

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not VERSION_PATTERN.match(value) or ".." in value or value in ("current", "previous"):
            raise ValueError(f"{value!r} is not a release version (letters, digits, . + _ -)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        scheme = value.partition(":")[0].lower()
        if scheme not in ("http", "https", "file") or "://" not in value:
            raise ValueError("must be an http://, https:// or file:// URL")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be the 64 hex digits of the bundle's SHA-256")
        return value.lower()

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{128}", value):
            raise ValueError("must be the 128 hex digits of an Ed25519 signature")
        return value.lower()


def parse_update_args(args: dict[str, Any]) -> UpdateArgs:
    """The validated arguments; ValueError naming each wrong field."""
    try:
        return UpdateArgs.model_validate(args)
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"]) or "args"
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"args.{where}: {msg}")
        raise ValueError("; ".join(parts)) from None


@dataclass
class Software:
    """What `{root}/software` says (without the envelope, which the agent adds)."""

    current: str
    previous: str | None = None
    target: str | None = None
    state: str = "idle"
    error: dict[str, str] | None = None
    ts: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "previous": self.previous,
            "target": self.target,
            "state": self.state,
            "error": self.error,
            "ts": self.ts,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Software:
        known = ("current", "previous", "target", "state", "error", "ts")
        return cls(
            current=str(data.get("current") or ""),
            previous=data.get("previous"),
            target=data.get("target"),
            state=str(data.get("state") or "idle"),
            error=data.get("error"),
            ts=str(data.get("ts") or ""),
            extra={k: v for k, v in data.items() if k not in known},
        )


def error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n"


class LineDecoder:
    """Bytes in, messages out: `feed()` returns every whole line received so far as a dict. A
    line that is not a JSON object, or longer than MAX_LINE, is returned as `{"op": "garbage"}`
    with what was wrong, so the reader can log it and go on."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buffer = bytearray()
        self._max = max_line
        self._skipping = False

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self._max:
                    self._buffer.clear()
                    if not self._skipping:
                        out.append({"op": "garbage", "error": f"line longer than {self._max} bytes"})
                    self._skipping = True
                return out
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._skipping:
                self._skipping = False
                continue
            if not line.strip():
                continue
            if len(line) > self._max:
                out.append({"op": "garbage", "error": f"line longer than {self._max} bytes"})
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                out.append({"op": "garbage", "error": f"not JSON: {exc}"})
                continue
            if not isinstance(value, dict) or not isinstance(value.get("op"), str):
                out.append({"op": "garbage", "error": "not an object with an op"})
                continue
            out.append(value)
