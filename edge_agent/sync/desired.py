"""Desired configuration from the central system: merge, validate, persist (pure parts)."""

from __future__ import annotations

import copy
import json
import sqlite3
import time
from typing import Any

from edge_agent.config import AgentConfig, parse_config
from edge_agent.errors import ConfigError


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; everything else (lists included) is replaced."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def effective_config(file_data: dict[str, Any], overlay: dict[str, Any]) -> AgentConfig:
    """The file's configuration with the desired overlay on top; raises ConfigError naming every
    key the local file's `remote_config.allow` does not let the central system set."""
    allow = parse_config(file_data).remote_config.allow
    refused = [k for k in overlay if k not in allow]
    if refused:
        raise ConfigError(
            [(k, f"may not be set remotely (remote_config.allow in the agent's file: {', '.join(allow)})")
             for k in refused]
        )  # fmt: skip
    return parse_config(deep_merge(file_data, overlay))


def load_overlay(conn: sqlite3.Connection) -> tuple[int, dict[str, Any]]:
    row = conn.execute("SELECT version, overlay FROM desired_config WHERE id = 1").fetchone()
    if row is None:
        return 0, {}
    return int(row[0]), json.loads(row[1])


def save_overlay(conn: sqlite3.Connection, version: int, overlay: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO desired_config(id, version, overlay, applied_at) VALUES (1, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET version = excluded.version, overlay = excluded.overlay,"
        " applied_at = excluded.applied_at",
        (version, json.dumps(overlay, separators=(",", ":")), time.time()),
    )
