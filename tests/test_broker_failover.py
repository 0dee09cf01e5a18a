"""Two real Mosquitto brokers (`mqtt.servers`): the agent moves from one to the other and back
while scans are typed, nothing is lost, repeats are byte-identical, a print job in flight
during a move prints once; central consumers scale out with a shared subscription."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from simulators.central import Central
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker
from tests.conftest import ROOT, sim_cmd
from tests.harness import wait_until
from tests.test_printing_jobs import printed_at_sim, states, zpl_job

ROOT_T = "dock/v1/hel1/dock-07"


def _connected_to(agent: AgentProcess, port: int, after: int = 0) -> dict:
    """The agent's `mqtt.connected` record for the broker on `port`, newer than `after` records."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for r in agent.records()[after:]:
            if r.get("event") == "mqtt.connected" and r.get("server") == f"127.0.0.1:{port}":
                return r
        time.sleep(0.05)
    raise AssertionError(f"the agent did not connect to :{port}")


def _drained(db: Path) -> bool:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0] == 0
    finally:
        conn.close()


def test_failover_both_ways_with_scans_and_a_print_job_in_flight(
    tmp_path: Path, agents: Any, printers: Any
) -> None:
    a = Broker(tmp_path / "a").start()
    b = Broker(tmp_path / "b").start()
    sim = printers("zpl")
    central = Central("127.0.0.1", a.port, "hel1", extra_servers=(("127.0.0.1", b.port),))
    link = tmp_path / "s1"
    config = write_config(tmp_path, a.port, [{"id": "s1", "type": "serial", "port": str(link), "reopen_max_s": 0.2}],
                          servers=[a.port, b.port], extra=(
        "printers:\n"
        f"  - {{id: p1, language: zpl, transport: tcp, host: 127.0.0.1, port: {sim.port}}}\n"
        "printing: {poll_interval_s: 0.3, status_timeout_s: 1.0}\n"))  # fmt: skip
    agent = agents(config)
    payloads = tmp_path / "payloads.txt"
    payloads.write_text("".join(f"MOVE-{i:05d}\n" for i in range(100_000)))
    scanner = subprocess.Popen(sim_cmd("serial-scanner", "--link", str(link), "--file", str(payloads),
                                       "--rate", "40"), cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    db = tmp_path / "state" / "agent.db"
    try:
        _connected_to(agent, a.port)
        agent.wait_for("scan.stored")
        time.sleep(1.0)
        # a job arrives on A; the printer is slow to answer its status, so the job is in flight
        sim.control("slow 2.5")
        central.client.publish(f"{ROOT_T}/job/print", json.dumps(zpl_job(1)), qos=1).wait_for_publish(10)
        wait_until(lambda: "J-00001" in states(db), what="job stored")
        n = len(agent.records())
        a.kill()  # A crashes: the agent moves to B with scans still being typed
        moved = _connected_to(agent, b.port, n)
        assert moved["moved"] is True
        # the central system, seeing no result yet, sends the job again through B
        other = central.others[0]
        other.publish(f"{ROOT_T}/job/print", json.dumps(zpl_job(1)), qos=1).wait_for_publish(10)
        sim.control("slow 0")
        time.sleep(2.0)
        a.start()
        time.sleep(1.0)
        n = len(agent.records())
        b.kill()  # and back: B crashes, the agent returns to A
        _connected_to(agent, a.port, n)
        time.sleep(2.0)
        b.start()
        reply = central.command("dock-07", "status")
        assert reply["data"]["broker"]["server"] == f"127.0.0.1:{a.port}"
        assert reply["data"]["broker"]["moves"] >= 2
        assert reply["data"]["broker"]["servers"] == [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]
        scanner.send_signal(signal.SIGTERM)
        scanner.wait(timeout=10)
        wait_until(lambda: _drained(db), timeout=60, what="outbox drained")
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        stored = dict(conn.execute("SELECT seq, event_id FROM scans").fetchall())
        conn.close()
        last = max(stored)
        assert sorted(stored) == list(range(1, last + 1))
        wait_until(
            lambda: central.report()["dock-07"]["unique"] == last, timeout=60, what="all events at central"
        )
        report = central.report()["dock-07"]
        assert report["missing"] == [] and report["conflicts"] == 0 and report["inexact_duplicates"] == 0
        assert {seq: central.devices["dock-07"].by_seq[seq] for seq in stored} == stored
        assert last > 150
        wait_until(lambda: states(db).get("J-00001") == "printed", timeout=30, what="job printed")
        assert printed_at_sim(tmp_path)["00001"] == 1
        accepted = [
            r for r in agent.records() if r.get("event") == "job.accepted" and r.get("job_id") == "J-00001"
        ]
        assert len(accepted) <= 1
        print(
            json.dumps(
                {
                    "events": last,
                    "duplicates": report["duplicates"],
                    "moves": reply["data"]["broker"]["moves"],
                }
            )
        )
    finally:
        scanner.kill()
        central.close()
        a.close()
        b.close()


def test_shared_subscription_splits_events_between_two_central_processes(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker").start()
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
    dedupe = tmp_path / "handled.db"

    def consumer(name: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            sim_cmd("central", "--port", str(broker.port), "--share", "central", "--dedupe-db", str(dedupe),
                    "--consumer", name, "--duration", "60"),
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    first, second = consumer("central-1"), consumer("central-2")
    agent = AgentProcess(config, tmp_path / "agent.log").start()
    scanner = subprocess.Popen(sim_cmd("serial-scanner", "--link", str(link), "--rate", "100",
                                       *[f"SHARE-{i}" for i in range(400)]),
                               cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    db = tmp_path / "state" / "agent.db"
    try:
        agent.wait_for("mqtt.connected")
        time.sleep(1.5)
        second.kill()  # a consumer dies mid-stream; its unacknowledged events go to the other or to it again
        second.wait()
        time.sleep(0.5)
        second = consumer("central-2")
        scanner.wait(timeout=60)
        wait_until(lambda: _drained(db), timeout=60, what="outbox drained")

        def handled() -> dict[int, list[str]]:
            conn = sqlite3.connect(dedupe, timeout=30)
            try:
                rows = conn.execute("SELECT seq, consumer FROM handled WHERE device = 'dock-07'").fetchall()
            finally:
                conn.close()
            out: dict[int, list[str]] = {}
            for seq, who in rows:
                out.setdefault(seq, []).append(who)
            return out

        wait_until(lambda: len(handled()) == 400, timeout=60, what="every event handled")
        rows = handled()
        assert sorted(rows) == list(range(1, 401))
        assert all(len(who) == 1 for who in rows.values())  # exactly one consumer handled each
        by_consumer: dict[str, int] = {}
        for who in rows.values():
            by_consumer[who[0]] = by_consumer.get(who[0], 0) + 1
        assert len(by_consumer) >= 2 and min(by_consumer.values()) > 20, by_consumer
        print(json.dumps({"consumers": by_consumer}))
    finally:
        scanner.kill()
        agent.kill()
        for c in (first, second):
            c.kill()
            c.wait()
        broker.close()
