"""Error hierarchy of the agent: one base per boundary.

- `ConfigError`: the operator's configuration is wrong (our side, fixable by editing a file).
- `BrokerError`: the MQTT broker or the central system misbehaved (the remote side).
- Device errors live in `drivers.errors` because drivers know nothing of the daemon.
- `AgentBug`: our own misuse of an API (a programming error, never an input problem).
"""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(EdgeAgentError):
    """The configuration is invalid. `problems` holds one `(key_path, message)` per error."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" if path else msg for path, msg in problems))


class BrokerError(EdgeAgentError):
    """The broker connection or a message from the central system is at fault."""


class AgentBug(EdgeAgentError):
    """Our own code used an API wrongly; never caused by input."""
