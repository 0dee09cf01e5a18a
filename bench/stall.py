"""Does anything the agent does on the side delay a scan? Scans typed every 100 ms for a while into
a real agent process, with a ZPL printer polled every second, the station page open (a client on
its event stream) and telemetry every second, against the same scans with none of those. Prints
scan-to-subscriber latency (p50, p99, max) and the slowest scans of each run, each with its own
`latency_us` (to its commit): whether it waited before its event was stored or after.

    python bench/stall.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.agentproc import AgentProcess, write_config  # noqa: E402
from tests.broker import Broker, free_port  # noqa: E402
from tests.harness import SimPrinter  # noqa: E402

SITE_ROOT = "dock/v1/hel1/dock-07"


def run(seconds: float, busy: bool, folder: Path) -> dict[str, Any]:
    broker = Broker(folder / "broker").start()
    master, slave = os.openpty()
    link = folder / "s1"
    link.symlink_to(os.ttyname(slave))
    display_port = free_port() if busy else None
    printer = SimPrinter("zpl", folder) if busy else None
    extra = "telemetry_interval_s: 1\n"
    if printer is not None:
        extra += (f"printers:\n  - {{id: p1, language: zpl, transport: tcp, host: 127.0.0.1, port: {printer.port}}}\n"
                  "printing: {poll_interval_s: 1.0}\n")  # fmt: skip
    config = write_config(folder, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                          display_port=display_port, extra=extra)  # fmt: skip
    agent = AgentProcess(config, folder / "agent.log").start()
    arrived: dict[str, int] = {}
    stored_us: dict[
        str, int
    ] = {}  # each event's own latency_us: a slow scan waited before or after its commit

    def on_message(_c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        now = time.monotonic_ns()
        event = json.loads(m.payload)
        arrived.setdefault(event["decoded"]["raw"], now)
        stored_us.setdefault(event["decoded"]["raw"], event["latency_us"])

    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watch", protocol=MQTTProtocolVersion.MQTTv5)
    watcher.on_message = on_message
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe(f"{SITE_ROOT}/event/scan", 1)
    watcher.loop_start()
    stop = threading.Event()
    try:
        agent.wait_for("mqtt.connected", timeout=30)
        agent.wait_for("scanner.opened", timeout=30)
        if display_port is not None:
            agent.wait_for("display.serving", timeout=30)

            def page() -> None:  # a kiosk on the event stream, reading every update
                with urllib.request.urlopen(f"http://127.0.0.1:{display_port}/events", timeout=5) as stream:
                    while not stop.is_set():
                        if not stream.readline():
                            break

            threading.Thread(target=page, daemon=True).start()
        time.sleep(2.0)
        sent: dict[str, int] = {}
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            payload = f"STALL-{i:05d}"
            sent[payload] = time.monotonic_ns()
            os.write(master, payload.encode() + b"\r\n")
            i += 1
            time.sleep(0.1)
        deadline = time.monotonic() + 30
        while len(arrived) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        took = sorted(((arrived[p] - sent[p]) / 1e6, p) for p in sent if p in arrived)
        ms = [t for t, _ in took]
        return {
            "busy": busy, "scans": len(sent), "delivered": len(took),
            "p50_ms": round(statistics.median(ms), 1), "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 1),
            "max_ms": round(ms[-1], 1), "over_20ms": sum(1 for t in ms if t > 20),
            "slowest": [f"{p} {t:.1f} ms (stored in {stored_us[p] / 1000:.1f})" for t, p in took[-5:][::-1]],
        }  # fmt: skip
    finally:
        stop.set()
        agent.kill()
        watcher.disconnect()
        if printer is not None:
            printer.close()
        broker.close()
        os.close(master)
        os.close(slave)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="(the figures' JSON line is always printed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stall-") as tmp:
        quiet = run(args.seconds, False, Path(tmp) / "quiet")
        busy = run(args.seconds, True, Path(tmp) / "busy")
    print(f"scans every 100 ms for {args.seconds:g} s; scan typed -> event at a subscriber")
    print(f"{'':34}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'>20 ms':>8}")
    for label, r in (("alone (baseline)", quiet), ("printer polled, page open, telemetry 1 s", busy)):
        print(f"{label[:34]:34}{r['p50_ms']:>8}{r['p99_ms']:>8}{r['max_ms']:>8}{r['over_20ms']:>8}")
    print("slowest with everything on: " + "; ".join(busy["slowest"]))
    print("slowest alone: " + "; ".join(quiet["slowest"]))
    print("JSON " + json.dumps({"seconds": args.seconds, "quiet": quiet, "busy": busy}))


if __name__ == "__main__":
    main()
