"""A full disk (agent.db capped with storage.max_size_mb): new scans fail loudly, nothing stored
is lost, and scanning recovers as soon as there is room again."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from simulators.central import Central
from tests.agentproc import write_config
from tests.broker import Broker
from tests.conftest import ROOT
from tests.harness import type_payloads, wait_until


def test_full_storage_fails_loudly_keeps_what_it_has_and_recovers(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
    config.write_text(config.read_text().replace("storage: {path:", "storage: {max_size_mb: 1, path:"))
    agent = agents(config)
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


def _alerts(central: Central) -> list[dict]:
    return [json.loads(p) for t, p in list(central.messages) if t.endswith("/event/alert")]


def test_read_only_card_is_reported_keeps_what_it_has_and_is_back_after_repair(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    """The state directory on a real ext4 filesystem (a loop-mounted image) mounted
    `errors=remount-ro`, as Raspberry Pi OS mounts its SD card. An ext4 error is triggered through
    the kernel's own knob (/sys/fs/ext4/DEV/trigger_fs_error), so the kernel remounts it read-only
    under the running agent, as it does for a failing card. The agent stays up and says so; after
    the operator's repair (stop, fsck, mount, start) everything stored is there and scanning goes on."""
    image, mnt = tmp_path / "card.img", tmp_path / "card"
    mnt.mkdir()
    subprocess.run(["truncate", "-s", "32M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(mnt)], check=True)
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
    config.write_text(
        config.read_text().replace(f"storage: {{path: {tmp_path / 'state'}", f"storage: {{path: {mnt}")
    )
    agent = agents(config)
    try:
        agent.wait_for("mqtt.connected")
        type_payloads(link, [f"BEFORE-{i}" for i in range(5)])
        wait_until(lambda: central.report().get("dock-07", {}).get("unique") == 5, what="5 scans delivered")
        device = Path(subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(mnt)], capture_output=True, text=True,
                                     check=True).stdout.strip()).name  # fmt: skip
        Path(f"/sys/fs/ext4/{device}/trigger_fs_error").write_text("1")
        type_payloads(link, [f"DURING-{i}" for i in range(3)])
        failed = agent.wait_for("storage.read_only", timeout=30)
        assert failed["error"] in ("disk I/O error", "attempt to write a readonly database")
        wait_until(lambda: any(a["kind"] == "storage" and a["state"] == "read_only" for a in _alerts(central)),
                   what="read_only alert")  # fmt: skip
        status = central.command("dock-07", "status")["data"]
        assert status["storage"]["state"] == "read_only" and status["counters"]["store_failures"] >= 1
        telemetry = central.command("dock-07", "ping")
        assert telemetry["status"] == "ok"  # up, and answering
        assert agent.terminate() == 0  # the operator stops it, repairs the card, starts it again
        subprocess.run(["umount", str(mnt)], check=True)
        subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True, check=False)
        subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(mnt)], check=True)
        agent.start()
        agent.wait_for("mqtt.connected")
        type_payloads(link, ["AFTER-1", "AFTER-2"])
        wait_until(lambda: central.report()["dock-07"]["unique"] == 7, what="the scans after the repair")
        db = sqlite3.connect(f"file:{mnt / 'agent.db'}?mode=ro", uri=True)
        stored = [r[0] for r in db.execute("SELECT raw FROM scans ORDER BY seq")]
        db.close()
        assert stored == [f"BEFORE-{i}" for i in range(5)] + ["AFTER-1", "AFTER-2"]
        assert central.report()["dock-07"]["missing"] == []
    finally:
        agent.kill()
        central.close()
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_io_errors_are_reported_and_scanning_recovers_when_writes_work_again(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    """Writes to agent.db and its WAL refused by the filesystem (`chattr +i`: EPERM on write, which
    SQLite reports as SQLITE_IOERR), then allowed again, under the running agent."""
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
    agent = agents(config)
    files = [tmp_path / "state" / "agent.db", tmp_path / "state" / "agent.db-wal"]
    try:
        agent.wait_for("mqtt.connected")
        type_payloads(link, [f"BEFORE-{i}" for i in range(5)])
        wait_until(lambda: central.report().get("dock-07", {}).get("unique") == 5, what="5 scans delivered")
        for f in files:
            subprocess.run(["chattr", "+i", str(f)], check=True)
        type_payloads(link, [f"DURING-{i}" for i in range(3)])
        failed = agent.wait_for("storage.io_error", timeout=30)
        assert "I/O" in failed["error"]
        wait_until(lambda: any(a["kind"] == "storage" and a["state"] == "io_error" for a in _alerts(central)),
                   what="io_error alert")  # fmt: skip
        assert central.command("dock-07", "status")["data"]["storage"]["state"] == "io_error"
        for f in files:
            subprocess.run(["chattr", "-i", str(f)], check=True)
        type_payloads(link, ["AFTER-1", "AFTER-2"])
        agent.wait_for("storage.recovered", timeout=30)
        wait_until(lambda: any(a["kind"] == "storage" and a["state"] == "ok" for a in _alerts(central)),
                   what="ok alert")  # fmt: skip
        db = sqlite3.connect(f"file:{files[0]}?mode=ro", uri=True)
        stored = [r[0] for r in db.execute("SELECT raw FROM scans ORDER BY seq")]
        seqs = [r[0] for r in db.execute("SELECT seq FROM scans ORDER BY seq")]
        db.close()
        assert stored[:5] == [f"BEFORE-{i}" for i in range(5)] and stored[-2:] == ["AFTER-1", "AFTER-2"]
        assert seqs == list(range(1, len(seqs) + 1))
        wait_until(
            lambda: central.report()["dock-07"]["unique"] == len(seqs), what="all stored scans delivered"
        )
    finally:
        for f in files:
            subprocess.run(["chattr", "-i", str(f)], check=False)
        agent.kill()
        central.close()
