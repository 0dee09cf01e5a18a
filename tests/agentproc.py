"""The agent as a real process, configured like the contract's minimal file, with its JSON log."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import KEY, ROOT


def write_config(folder: Path, port: int, scanners: list[dict[str, Any]] | None = None, extra: str = "",
                 device: str = "dock-07", protocol: str = "5", display_port: int | None = None,
                 servers: list[int] | None = None, keepalive_s: int = 5) -> Path:  # fmt: skip
    """The contract's minimal file plus scanners; the station display only where a test asks for
    it (`display_port`), so that agents running side by side do not contend for port 8080.
    `servers`: broker ports on this host for `mqtt.servers` instead of `host`/`port`."""
    broker = (f"servers: [{', '.join(f'127.0.0.1:{p}' for p in servers)}]" if servers
              else f"host: 127.0.0.1, port: {port}")  # fmt: skip
    lines = [
        f"device: {{id: {device}, site: hel1}}",
        f"mqtt: {{{broker}, protocol: '{protocol}', keepalive_s: {keepalive_s}}}",
        f"storage: {{path: {folder / 'state'}}}",
        f"labels: {{keys: {{K1: '{KEY.hex()}'}}}}",
        "log: {format: json}",
        f"display: {{port: {display_port}}}" if display_port else "display: {enabled: false}",
        "scanners:" + ("" if scanners else " []"),
    ]
    for s in scanners or []:
        lines.append("  - " + json.dumps(s))
    path = folder / "agent.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


class AgentProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self) -> AgentProcess:
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge_agent.cli", "run", "-c", str(self.config)], stderr=log, cwd=ROOT
            )
        return self

    def records(self, since_start: bool = True) -> list[dict[str, Any]]:
        data = self.log_path.read_bytes()[self._offset if since_start else 0 :]
        out = []
        for line in data.decode("utf-8", "replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue  # a line cut by SIGKILL
        return out

    def wait_for(self, event: str, timeout: float = 20.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.records():
                if r.get("event") == event and all(r.get(k) == v for k, v in match.items()):
                    return r
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode} waiting for {event}")
            time.sleep(0.05)
        raise AssertionError(f"no {event} {match} in the agent's log")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code
