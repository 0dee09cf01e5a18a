"""SIGKILL in the middle of bursts, 20 times: no seq lost, none used twice, only exact re-sends."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulators.central import Central
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker
from tests.conftest import ROOT, sim_cmd
from tests.harness import wait_until


@pytest.mark.slow
def test_sigkill_twenty_times_during_bursts(tmp_path: Path, broker: Broker) -> None:
    central = Central("127.0.0.1", broker.port, "hel1")
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link),
                                                    "reopen_max_s": 0.2}])  # fmt: skip
    agent = AgentProcess(config, tmp_path / "agent.log").start()
    payloads = tmp_path / "payloads.txt"
    payloads.write_text("".join(f"BURST-{i}\n" for i in range(100_000)))
    scanner = subprocess.Popen(sim_cmd("serial-scanner", "--link", str(link), "--file", str(payloads),
                                       "--rate", "400", "--split-every", "7"),
                               cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    rng = random.Random(7)
    kills = 0
    try:
        agent.wait_for("scanner.opened")
        for _ in range(20):
            time.sleep(rng.uniform(0.3, 1.2))
            agent.kill()
            kills += 1
            agent.start()
            agent.wait_for("scanner.opened", timeout=30)
        time.sleep(1.0)
        scanner.terminate()  # SIGTERM: the simulator unplugs (removes its link) before it goes
        scanner.wait()
        db = sqlite3.connect(tmp_path / "state" / "agent.db")
        wait_until(lambda: db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0] == 0,
                   timeout=60, what="outbox drained")  # fmt: skip
        stored = dict(db.execute("SELECT seq, event_id FROM scans").fetchall())
        last = max(stored)
        assert sorted(stored) == list(range(1, last + 1)), "the stored seqs have a gap"
        wait_until(
            lambda: central.report()["dock-07"]["unique"] == last, timeout=60, what="every event at central"
        )
        report = central.report()["dock-07"]
        assert report["missing"] == [] and report["conflicts"] == 0 and report["inexact_duplicates"] == 0
        log = central.devices["dock-07"]
        assert {
            seq: log.by_seq[seq] for seq in stored
        } == stored  # the event_id central has is the stored one
        assert kills == 20 and last > 200
        print(json.dumps({"kills": kills, "events": last, "duplicates": report["duplicates"]}))
    finally:
        scanner.terminate()
        agent.kill()
        central.close()


def test_status_works_while_the_daemon_is_down(tmp_path: Path) -> None:
    config = write_config(tmp_path, 1)
    out = subprocess.run([sys.executable, "-m", "edge_agent.cli", "status", "-c", str(config)],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout  # fmt: skip
    assert "outbox           0 unsent" in out and "(none)" in out
