"""The manifest survives a power cut (LazyFS): once the agent has reported a manifest version, a
cut and a restart with the broker still down (a power cut often takes the site's network too)
find that version, and an expected return scans `expected`, offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.central import Central
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker
from tests.conftest import ROOT
from tests.harness import type_payloads
from tests.powercut import Disk


def status(config: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "edge_agent.cli", "status", "-c", str(config), "--json"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout  # fmt: skip
    return json.loads(out)  # type: ignore[no-any-return]


@pytest.mark.parametrize("update", ["snapshot", "delta"])
def test_a_reported_manifest_survives_a_power_cut(tmp_path: Path, update: str) -> None:
    broker = Broker(tmp_path / "broker").start()
    with Disk(tmp_path) as disk:
        central = Central("127.0.0.1", broker.port, "hel1")
        central.generate(300)
        link = tmp_path / "s1"
        config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
        config.write_text(config.read_text().replace(str(tmp_path / "state"), str(disk.mount / "state")))
        agent = AgentProcess(config, tmp_path / "agent.log").start()
        try:
            agent.wait_for("manifest.applied", version=1)
            expected = central.returns[0]["order_number"]
            if update == "delta":  # a return added by a delta is the one scanned after the cut
                new = {**central.returns[1], "return_id": "R-NEW", "order_number": "SO-NEW-1"}
                central.publish_delta([new])
                agent.wait_for("manifest.applied", version=2)
                expected = "SO-NEW-1"
            # reported: the version the central system now believes the dock has
            reported = central.command("dock-07", "status")["data"]["manifest_version"]
            assert reported == central.version
            disk.cut([agent.proc.pid])  # type: ignore[union-attr]
            agent.proc.wait()  # type: ignore[union-attr]
            central.close()
            broker.close()  # the site's network went with the power
            after = status(config)
            assert after["manifest_version"] == reported, after
            agent.start()
            agent.wait_for("agent.started")
            type_payloads(link, [expected])  # the simulator types once the agent has the port
            stored = agent.wait_for("scan.stored")
            assert stored["outcome"] == "expected", stored
            assert stored["order_number"] == expected
        finally:
            agent.kill()
            broker.close()
