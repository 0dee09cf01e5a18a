"""Chaos at fleet scale, about a minute: 10 agents on two real brokers (`mqtt.servers`), scans
typed into every agent throughout, random SIGKILLs of agents and restarts of either broker.
Afterwards every stored scan reached the central system, no seq was reused or skipped, and every
repeat carried the same bytes as the first copy."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from simulators.central import Central
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker
from tests.conftest import ROOT, sim_cmd
from tests.harness import wait_until

AGENTS = 10
CHAOS_S = 45.0


def _unsent(db: Path) -> int:
    if not db.exists():
        return 1
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.slow
def test_chaos_agents_killed_and_brokers_restarted_while_scanning(tmp_path: Path) -> None:
    brokers = [Broker(tmp_path / "a").start(), Broker(tmp_path / "b").start()]
    ports = [b.port for b in brokers]
    central = Central("127.0.0.1", ports[0], "hel1", extra_servers=(("127.0.0.1", ports[1]),))
    agents: list[AgentProcess] = []
    scanners: list[subprocess.Popen[bytes]] = []
    payloads = tmp_path / "payloads.txt"
    payloads.write_text("".join(f"CHAOS-{i:05d}\n" for i in range(100_000)))
    rng = random.Random(2026)
    for i in range(1, AGENTS + 1):
        folder = tmp_path / f"dock-{i:02d}"
        folder.mkdir()
        link = folder / "s1"
        order = ports if i % 2 else ports[::-1]  # half the site prefers each broker
        config = write_config(folder, 0, [{"id": "s1", "type": "serial", "port": str(link), "reopen_max_s": 0.2}],
                              device=f"dock-{i:02d}", servers=order)  # fmt: skip
        agents.append(AgentProcess(config, folder / "agent.log").start())
        scanners.append(subprocess.Popen(sim_cmd("serial-scanner", "--link", str(link), "--file", str(payloads),
                                                 "--rate", "6"), cwd=ROOT, stdout=subprocess.DEVNULL))  # fmt: skip
    figures = {"agent_kills": 0, "broker_restarts": 0}
    try:
        for a in agents:
            a.wait_for("mqtt.connected", timeout=60)
        end = time.monotonic() + CHAOS_S
        while time.monotonic() < end:
            time.sleep(rng.uniform(0.5, 2.0))
            if rng.random() < 0.7:
                victim = rng.choice(agents)
                victim.kill()
                figures["agent_kills"] += 1
                time.sleep(rng.uniform(0.0, 0.5))
                victim.start()
            else:
                broker = rng.choice(brokers)
                broker.stop()  # a restart: sessions and queued messages saved, as a broker does
                figures["broker_restarts"] += 1
                time.sleep(rng.uniform(0.5, 2.5))
                broker.start()
        for s in scanners:
            s.terminate()  # SIGTERM: each simulator unplugs (removes its link) before it goes
            s.wait()
        for b in brokers:
            if b.proc is None:
                b.start()
        dbs = [tmp_path / f"dock-{i:02d}" / "state" / "agent.db" for i in range(1, AGENTS + 1)]
        wait_until(lambda: all(_unsent(db) == 0 for db in dbs), timeout=120, what="every outbox drained")
        total = dupes = 0
        for i, db in enumerate(dbs, start=1):
            device = f"dock-{i:02d}"
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            stored = dict(conn.execute("SELECT seq, event_id FROM scans").fetchall())
            conn.close()
            last = max(stored)
            assert sorted(stored) == list(range(1, last + 1)), f"{device}: a seq was skipped or reused"
            wait_until(lambda d=device, n=last: central.report().get(d, {}).get("unique") == n, timeout=60,
                       what=f"{device}'s events at central")  # fmt: skip
            report = central.report()[device]
            assert report["missing"] == [] and report["conflicts"] == 0, (device, report)
            assert report["inexact_duplicates"] == 0, (device, report)
            assert {seq: central.devices[device].by_seq[seq] for seq in stored} == stored
            total += last
            dupes += report["duplicates"]
        figures.update({"events": total, "duplicates_dropped": dupes, "missing": 0})
        assert figures["agent_kills"] >= 5 and figures["broker_restarts"] >= 2 and total > 1000
        print(json.dumps(figures))
    finally:
        for s in scanners:
            s.terminate()
        for a in agents:
            a.kill()
        central.close()
        for b in brokers:
            b.close()
