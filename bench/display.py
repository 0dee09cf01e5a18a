"""Scan-to-screen latency of the station display, next to its baseline in the same run, and what
the display costs in memory:

- scan-to-page: from the payload handed to the serial scanner simulator until Debian's Chromium
  has drawn the result (the page stamps `data-shown-at` when it renders a new seq);
- baseline scan-to-broker: the same scans until an MQTT subscriber has the event (the path the
  central system sees);
- resident memory of the agent process with the display on and off, same configuration.

    python bench/display.py [--scans 200]

Starts its own Mosquitto, a central with a manifest, the agent, a serial scanner on a pty and
Chromium (headless). Target: scan-to-page p99 well under a second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulators.central import Central, labels_of
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker, free_port
from tests.browser import chromium, wait_page
from tests.test_display import Scanner, station_ready


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure_rss(folder: Path, broker: Broker, display_port: int | None) -> int:
    folder.mkdir()
    agent = AgentProcess(
        write_config(folder, broker.port, display_port=display_port), folder / "agent.log"
    ).start()
    try:
        agent.wait_for("mqtt.connected")
        if display_port:
            agent.wait_for("display.serving")
        time.sleep(2.0)
        assert agent.proc is not None
        return rss_kib(agent.proc.pid)
    finally:
        agent.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-display-"))
    broker = Broker(tmp / "broker").start()
    central = Central("127.0.0.1", broker.port, "hel1")
    central.generate(args.scans)
    arrived: dict[int, float] = {}
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        seq = json.loads(msg.payload)["seq"]
        with lock:
            arrived.setdefault(seq, time.time() * 1000)

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-display-sub")
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("dock/v1/hel1/dock-07/event/scan", qos=1)
    sub.loop_start()
    port = free_port()
    link = tmp / "s1"
    agent = AgentProcess(write_config(tmp, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                                      display_port=port), tmp / "agent.log").start()  # fmt: skip
    scanner = Scanner(link)
    to_page: list[float] = []
    to_broker: list[float] = []
    try:
        with chromium() as page:
            station_ready(agent, page, port)
            for i, ret in enumerate(central.returns[: args.scans], start=1):
                typed = scanner.scan(labels_of(ret)[i % 3])
                shown = wait_page(page, lambda s, i=i: s["seq"] == str(i), what=f"scan {i}")
                to_page.append(shown["shown_at_ms"] - typed)
                deadline = time.monotonic() + 5
                while i not in arrived and time.monotonic() < deadline:
                    time.sleep(0.002)
                to_broker.append(arrived[i] - typed)
        print(f"{args.scans} scans, one at a time, each shown before the next")
        print(f"{'':30}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
        for name, samples in (("scan-to-page (Chromium)", to_page), ("scan-to-broker (baseline)", to_broker)):
            print(
                f"{name:30}{statistics.median(samples):>10.1f}{pct(samples, 0.99):>10.1f}{max(samples):>10.1f}"
            )
        extra = [p - b for p, b in zip(to_page, to_broker, strict=True)]
        print(f"page minus broker, p50: {statistics.median(extra):.1f} ms")
    finally:
        scanner.close()
        agent.kill()
        sub.loop_stop()
    on = measure_rss(tmp / "rss-on", broker, free_port())
    off = measure_rss(tmp / "rss-off", broker, None)
    print(f"agent RSS with the display: {on / 1024:.1f} MiB; without: {off / 1024:.1f} MiB "
          f"(+{(on - off) / 1024:.1f} MiB)")  # fmt: skip
    central.close()
    broker.close()


if __name__ == "__main__":
    main()
