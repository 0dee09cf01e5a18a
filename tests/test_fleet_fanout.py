"""`edge-fleet cmd SITE/*` and `config push SITE` against 20 real agent processes, some stopped
cleanly or killed (their retained state says offline: a clean goodbye, or the Last Will the
broker publishes when the killed process's connection closes) and some frozen with SIGSTOP
(connected but silent, so the broker still holds them online: they time out)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker
from tests.conftest import ROOT

N = 20


def fleet(broker: Broker, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_agent.fleetctl", "--port", str(broker.port), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)  # fmt: skip


@pytest.mark.slow
def test_fan_out_to_a_site_with_some_agents_down(tmp_path: Path, broker: Broker) -> None:
    agents = []
    for i in range(1, N + 1):
        folder = tmp_path / f"dock-{i:02d}"
        folder.mkdir()
        # a long keepalive: the broker holds a frozen agent online for the whole test
        config = write_config(folder, broker.port, device=f"dock-{i:02d}", keepalive_s=120)
        agents.append(AgentProcess(config, folder / "agent.log").start())
    try:
        for a in agents:
            a.wait_for("mqtt.connected", timeout=60)
        time.sleep(0.5)
        everyone = fleet(broker, "cmd", "hel1/*", "ping", "--json", "--timeout", "10")
        rows = json.loads(everyone.stdout)
        assert everyone.returncode == 0, everyone.stdout + everyone.stderr
        assert [r["device"] for r in rows] == [f"hel1/dock-{i:02d}" for i in range(1, N + 1)]
        assert all(r["status"] == "ok" and r["error"] is None for r in rows)
        assert fleet(broker, "cmd", "--all", "ping", "--json").returncode == 0

        for a in agents[:2]:  # stopped cleanly: retained state offline
            assert a.terminate() == 0
        for a in agents[2:4]:  # killed: the broker publishes their Last Will (offline)
            a.kill()
        for a in agents[4:6]:  # frozen: still online as far as the broker knows, and silent
            assert a.proc is not None
            a.proc.send_signal(signal.SIGSTOP)
        time.sleep(0.5)
        started = time.monotonic()
        result = fleet(broker, "cmd", "hel1/*", "ping", "--json", "--timeout", "4")
        took = time.monotonic() - started
        rows = json.loads(result.stdout)
        status = {r["device"]: r["status"] for r in rows}
        assert result.returncode == 1
        assert [status[f"hel1/dock-{i:02d}"] for i in (1, 2, 3, 4)] == ["offline"] * 4
        assert [status[f"hel1/dock-{i:02d}"] for i in (5, 6)] == ["timeout"] * 2
        assert sum(s == "ok" for s in status.values()) == N - 6
        assert all("boot_id" in r["result"] for r in rows if r["status"] == "ok")
        assert took < 4 + 8  # one deadline for the whole fan-out, not one per agent
        text = fleet(broker, "cmd", "hel1/*", "status", "--timeout", "4")
        lines = text.stdout.splitlines()
        assert lines[0].split()[:3] == ["DEVICE", "STATUS", "RESULT"] and len(lines) == N + 1
        assert "offline" in text.stdout and "timeout" in text.stdout and text.returncode == 1

        overlay = tmp_path / "overlay.yaml"
        overlay.write_text("telemetry_interval_s: 7\n")
        pushed = fleet(broker, "config", "push", "hel1", str(overlay), "--json", "--timeout", "8")
        outcome = {r["device"]: r["status"] for r in json.loads(pushed.stdout)}
        assert pushed.returncode == 1
        assert sum(s == "applied" for s in outcome.values()) == N - 6
        assert [outcome[f"hel1/dock-{i:02d}"] for i in (1, 2, 3, 4)] == ["offline"] * 4
        assert [outcome[f"hel1/dock-{i:02d}"] for i in (5, 6)] == ["timeout"] * 2
        bad = tmp_path / "bad.yaml"
        bad.write_text("telemetry_interval_s: -1\n")
        rejected = fleet(broker, "config", "push", "hel1", str(bad), "--json", "--timeout", "8")
        outcome = {r["device"]: r["status"] for r in json.loads(rejected.stdout)}
        assert sum(s == "rejected" for s in outcome.values()) == N - 6 and rejected.returncode == 1
    finally:
        for a in agents:
            if a.proc is not None:
                a.proc.send_signal(signal.SIGCONT)
            a.kill()
