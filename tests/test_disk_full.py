"""A full disk (agent.db capped with storage.max_size_mb): new scans fail loudly, nothing stored
is lost, and scanning recovers as soon as there is room again."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from simulators.central import Central
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker
from tests.conftest import ROOT
from tests.test_sync_scans import type_payloads, wait_until


def test_full_storage_fails_loudly_keeps_what_it_has_and_recovers(tmp_path: Path, broker: Broker) -> None:
    central = Central("127.0.0.1", broker.port, "hel1")
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
    config.write_text(config.read_text().replace("storage: {path:", "storage: {max_size_mb: 1, path:"))
    agent = AgentProcess(config, tmp_path / "agent.log").start()
    try:
        agent.wait_for("mqtt.connected")
        payloads = [f"PARCEL-{i:05d}-" + "x" * 200 for i in range(1200)]
        type_payloads(link, payloads, rate=400)
        full = agent.wait_for("storage.full", timeout=30)
        assert "full" in full["error"]
        failures = [r for r in agent.records() if r.get("event") == "scan.store_failed"]
        assert failures
        alerts = lambda: [json.loads(p) for t, p in list(central.messages) if t.endswith("/event/alert")]  # noqa: E731
        wait_until(
            lambda: any(a["kind"] == "storage" and a["state"] == "full" for a in alerts()), what="alert"
        )
        status = central.command("dock-07", "status")["data"]
        assert status["storage_full"] is True and status["counters"]["store_failures"] == len(failures)
        db = sqlite3.connect(f"file:{tmp_path / 'state' / 'agent.db'}?mode=ro", uri=True)
        seqs = [r[0] for r in db.execute("SELECT seq FROM scans ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) + len(failures) == len(payloads)
        stored = [r[0] for r in db.execute("SELECT raw FROM scans ORDER BY seq")]
        assert stored == payloads[: len(stored)]  # everything before the disk filled is there, in order
        # room again: the operator raises the cap and reloads; new scans are stored at once
        config.write_text(config.read_text().replace("max_size_mb: 1,", "max_size_mb: 64,"))
        assert central.command("dock-07", "reload_config")["status"] == "ok"
        type_payloads(link, ["AFTER-1", "AFTER-2"])
        agent.wait_for("storage.recovered")
        wait_until(
            lambda: any(a["kind"] == "storage" and a["state"] == "ok" for a in alerts()), what="ok alert"
        )
        last = [r[0] for r in db.execute("SELECT raw FROM scans ORDER BY seq DESC LIMIT 2")]
        assert last == ["AFTER-2", "AFTER-1"]
        report = json.loads(subprocess.run([sys.executable, "-m", "edge_agent.cli", "status", "-c", str(config),
                                            "--json"], capture_output=True, text=True, check=True, cwd=ROOT).stdout)  # fmt: skip
        assert report["last_seq"] == len(seqs) + 2
    finally:
        agent.kill()
        central.close()
