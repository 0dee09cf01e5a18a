"""A flood of malformed messages on every topic the agent subscribes to, with scans typed
throughout: how fast the agent takes the flood in, how late scans reach a subscriber meanwhile,
how many alerts it stores and sends, and how its storage grows. Baseline in the same run: the
same scans with no flood.

    python bench/flood.py [--messages 20000] [--scans 100]

A real Mosquitto, a real agent process, scans typed into a real pty that its serial driver reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.agentproc import AgentProcess, write_config  # noqa: E402
from tests.broker import Broker  # noqa: E402

BAD = [
    b"not json",
    b"{",
    b"[]",
    b'{"version": "x"}',
    b"\xff\xfe",
    b'{"job_id": 5}',
    b"[" * 5000 + b"]" * 5000,
]
SITE_ROOT = "dock/v1/hel1/dock-07"
TOPICS = [f"{SITE_ROOT}/job/print", f"{SITE_ROOT}/cmd/status", f"{SITE_ROOT}/cmd/nonsense",
          f"{SITE_ROOT}/config/desired", "dock/v1/hel1/manifest"]  # fmt: skip


class Watcher:
    """Scan events (arrival time per payload) and alerts, as the central system sees them."""

    def __init__(self, port: int) -> None:
        self.arrived: dict[str, int] = {}
        self.alerts: list[dict[str, Any]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{time.time_ns()}",
                                  protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        ready = threading.Event()
        self.client.on_connect = lambda c, *_: (
            c.subscribe([(f"{SITE_ROOT}/event/scan", 1), (f"{SITE_ROOT}/event/alert", 1)]),
            ready.set(),
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        ready.wait(10)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic_ns()
        data = json.loads(msg.payload)
        if msg.topic.endswith("/scan"):
            self.arrived.setdefault(data["decoded"]["raw"], now)
        else:
            self.alerts.append(data)


def run(messages: int, scans: int, flood: bool, folder: Path) -> dict[str, Any]:
    broker = Broker(folder / "broker").start()
    master, slave = os.openpty()
    link = folder / "s1"
    link.symlink_to(os.ttyname(slave))
    config = write_config(folder, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
    agent = AgentProcess(config, folder / "agent.log").start()
    watcher = Watcher(broker.port)
    db = folder / "state" / "agent.db"
    out: dict[str, Any] = {}
    try:
        agent.wait_for("mqtt.connected", timeout=30)
        agent.wait_for("scanner.opened", timeout=30)
        time.sleep(0.5)
        size_before = db.stat().st_size + Path(f"{db}-wal").stat().st_size
        flooder = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="flood", protocol=MQTTProtocolVersion.MQTTv5
        )
        flooder.max_inflight_messages_set(1000)
        flooder.connect("127.0.0.1", broker.port)
        flooder.loop_start()
        sent_at: dict[str, int] = {}
        stop = threading.Event()

        def typist() -> None:
            interval = 0.03
            for i in range(scans):
                payload = f"FLOOD-SCAN-{i:04d}"
                sent_at[payload] = time.monotonic_ns()
                os.write(master, payload.encode() + b"\r\n")
                time.sleep(interval)
            stop.set()

        threading.Thread(target=typist, daemon=True).start()
        t0 = time.monotonic()
        flooder = None
        if flood:  # its own process: its publishing loop must not hold this process's GIL while we time
            flooder = subprocess.Popen(
                [sys.executable, __file__, "--flooder", str(broker.port), str(messages)]
            )
        stop.wait(60)
        flood_s = time.monotonic() - t0
        deadline = time.monotonic() + 120
        while len(watcher.arrived) < scans and time.monotonic() < deadline:
            time.sleep(0.05)
        took = [(watcher.arrived[p] - sent_at[p]) / 1e6 for p in sent_at if p in watcher.arrived]
        durable = [r["latency_us"] / 1000 for r in agent.records() if r.get("event") == "scan.stored"]
        # the agent's own counters (status command): polled until every message is taken in
        handled, intake_s = 0, 0.0
        while flood and time.monotonic() - t0 < 180:
            counters = _status(broker.port)
            # (an agent from before the screen counted bad requests among its commands)
            handled = counters.get("bad_messages", 0) + counters.get(
                "bad_requests", counters.get("commands", 0)
            )
            if handled >= messages:
                intake_s = time.monotonic() - t0
                break
            time.sleep(0.1)
        time.sleep(1.0)
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        stored_alerts = conn.execute("SELECT count(*) FROM outbox WHERE kind = 'alert'").fetchone()[0]
        stored_replies = conn.execute("SELECT count(*) FROM outbox WHERE kind = 'reply'").fetchone()[0]
        conn.close()
        size_after = db.stat().st_size + Path(f"{db}-wal").stat().st_size
        out = {
            "flood": flood,
            "messages": messages if flood else 0,
            "scans_delivered": len(took),
            "scan_p50_ms": round(statistics.median(took), 1) if took else None,
            "scan_max_ms": round(max(took), 1) if took else None,
            "over_100ms": sum(1 for t in took if t > 100),
            "durable_p50_ms": round(statistics.median(durable), 1) if durable else None,
            "durable_max_ms": round(max(durable), 1) if durable else None,
            "bad_handled": handled,
            "intake_msg_s": round(handled / intake_s) if flood and intake_s > 0 else None,
            "alerts_stored": stored_alerts,
            "replies_stored": stored_replies,
            "alerts_received": len(watcher.alerts),
            "storage_growth_kb": round((size_after - size_before) / 1024),
            "flood_s": round(flood_s, 1),
        }
        if flooder is not None:
            flooder.wait(timeout=60)
    finally:
        agent.kill()
        watcher.client.disconnect()
        broker.close()
        os.close(master)
        os.close(slave)
    return out


def _status(port: int) -> dict[str, Any]:
    """The agent's `status` counters, asked as the central system asks (MQTT 5 request/response)."""
    from simulators.central import Central

    central = Central("127.0.0.1", port, "hel1", persistent=False)
    try:
        return dict(central.command("dock-07", "status", timeout=20)["data"]["counters"])
    except TimeoutError:
        return {}
    finally:
        central.close()


def flood_from_here(port: int, messages: int) -> None:
    flooder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="flood", protocol=MQTTProtocolVersion.MQTTv5)
    flooder.max_inflight_messages_set(1000)
    flooder.connect("127.0.0.1", port)
    flooder.loop_start()
    infos = [flooder.publish(TOPICS[i % len(TOPICS)], BAD[i % len(BAD)], qos=1) for i in range(messages)]
    for info in infos[-100:]:
        info.wait_for_publish(60)
    flooder.disconnect()
    flooder.loop_stop()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--flooder":
        flood_from_here(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--scans", type=int, default=100)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        for flood in (False, True):
            folder = Path(tmp) / ("flood" if flood else "quiet")
            folder.mkdir()
            results.append(run(args.messages, args.scans, flood, folder))
    keys = list(results[0])
    width = max(len(k) for k in keys)
    print(f"{'':{width}}  {'no flood':>12}  {'flood':>12}")
    for k in keys:
        print(f"{k:{width}}  " + "  ".join(f"{'-' if r[k] is None else r[k]!s:>12}" for r in results))


if __name__ == "__main__":
    main()
