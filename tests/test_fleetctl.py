"""edge-fleet against a real Mosquitto and two agent processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulators.central import labels_of, make_return
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker
from tests.conftest import ROOT
from tests.harness import type_payloads, wait_until


def fleet(broker: Broker, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_agent.fleetctl", "--port", str(broker.port), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)  # fmt: skip


@pytest.mark.slow
def test_fleet_tool_ls_cmd_config_tail_manifest(tmp_path: Path, broker: Broker) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    link = a / "s1"
    agent_a = AgentProcess(write_config(a, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                                        device="dock-07"), a / "agent.log").start()  # fmt: skip
    agent_b = AgentProcess(write_config(b, broker.port, device="dock-08"), b / "agent.log").start()
    try:
        agent_a.wait_for("mqtt.connected")
        agent_b.wait_for("mqtt.connected")
        rows = json.loads(fleet(broker, "ls", "--json").stdout)
        assert {(r["device"], r["online"]) for r in rows} == {("dock-07", True), ("dock-08", True)}
        table = fleet(broker, "ls").stdout
        assert "dock-07" in table and "dock-08" in table and "ONLINE" in table
        agent_b.kill()  # the Last Will says it is gone
        wait_until(lambda: {(r["device"], r["online"]) for r in json.loads(fleet(broker, "ls", "--json").stdout)}
                   == {("dock-07", True), ("dock-08", False)}, timeout=30, what="dock-08 offline")  # fmt: skip
        assert "no (lost)" in fleet(broker, "ls").stdout
        ping = fleet(broker, "cmd", "hel1/dock-07", "ping", "--json")
        assert ping.returncode == 0 and json.loads(ping.stdout)["status"] == "ok"
        bad = fleet(broker, "cmd", "hel1/dock-07", "nope")
        assert bad.returncode == 1 and "unknown_command" in bad.stdout
        overlay = tmp_path / "overlay.yaml"
        overlay.write_text("telemetry_interval_s: 2\n")
        pushed = fleet(broker, "config", "push", "hel1/dock-07", str(overlay), "--json")
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert json.loads(pushed.stdout)[0]["status"] == "applied"
        returns = [make_return(i) for i in range(1, 100_001)]
        manifest = tmp_path / "returns.json"
        manifest.write_text(json.dumps(returns))
        push = fleet(broker, "manifest", "push", "hel1", str(manifest), "--version", "7", "--progress")
        assert push.returncode == 0 and "100000 returns" in push.stdout and "chunk 34/34" in push.stderr
        agent_a.wait_for("manifest.applied", timeout=120, version=7)
        tail = subprocess.Popen([sys.executable, "-m", "edge_agent.fleetctl", "--port", str(broker.port), "tail",
                                 "hel1/dock-07", "--count", "1", "--seconds", "30"],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
        time.sleep(1.5)
        type_payloads(link, [labels_of(returns[99_998])[0]])
        out, _ = tail.communicate(timeout=40)
        assert "scan #1" in out and "expected" in out and returns[99_998]["order_number"] in out
    finally:
        agent_a.kill()
        agent_b.kill()
