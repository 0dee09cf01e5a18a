"""Does a scale delay a scan? Parcel scans typed every 300 ms into a real agent process, each
matching a return of its manifest, with an MT-SICS scale (`edge-sim scale`, polled every 200 ms,
a parcel's stable weight on it) against the same scans with no scale, in alternating runs.

Two figures per run: scan -> durable (each event's own `latency_us`: last byte read to the end of
the commit that stored it, the fsync included), which the scale must not change, and scan ->
event at a subscriber, which with a scale includes the wait for a stable reading taken after the
scan (one request and its reply while the pan is still: the scale is asked at once, not at its
next poll; `receiving.weight_settle_ms` at worst).

    python bench/scale.py [--scans 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulators.central import Central, make_return  # noqa: E402
from tests.agentproc import AgentProcess, write_config  # noqa: E402
from tests.broker import Broker  # noqa: E402

SITE_ROOT = "dock/v1/hel1/dock-07"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)


def run(scans: int, with_scale: bool, folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True)
    broker = Broker(folder / "broker").start()
    central = Central("127.0.0.1", broker.port, "hel1")
    central.returns, central.version = [make_return(i) for i in range(1, scans + 1)], 1
    master, slave = os.openpty()
    link = folder / "s1"
    link.symlink_to(os.ttyname(slave))
    sim = None
    extra = ""
    if with_scale:
        sim = subprocess.Popen([sys.executable, "-m", "simulators", "scale", "--protocol", "sics", "--link",
                                str(folder / "scale"), "--stay"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, cwd=ROOT)  # fmt: skip
        assert sim.stdin is not None and sim.stdout is not None
        sim.stdout.readline()
        sim.stdin.write("!weight 900\n")
        sim.stdin.flush()
        extra = f"scales:\n  - {{id: sc1, type: serial, protocol: sics, port: {folder / 'scale'}}}\n"
    config = write_config(
        folder, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}], extra=extra
    )
    agent = AgentProcess(config, folder / "agent.log").start()
    arrived: dict[str, tuple[int, int, dict[str, Any] | None]] = {}

    def on_message(_c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        event = json.loads(m.payload)
        arrived.setdefault(
            event["decoded"]["raw"], (time.monotonic_ns(), event["latency_us"], event.get("weight"))
        )

    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watch", protocol=MQTTProtocolVersion.MQTTv5)
    watcher.on_message = on_message
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe(f"{SITE_ROOT}/event/scan", 1)
    watcher.loop_start()
    try:
        agent.wait_for("manifest.applied", timeout=60)
        agent.wait_for("scanner.opened", timeout=30)
        if with_scale:
            agent.wait_for("scale.state", state="ok", timeout=30)
        time.sleep(1.0)
        sent: dict[str, int] = {}
        for ret in central.returns:
            payload = ret["order_number"]
            sent[payload] = time.monotonic_ns()
            os.write(master, payload.encode() + b"\r\n")
            time.sleep(0.3)
        deadline = time.monotonic() + 30
        while len(arrived) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        durable_ms = [arrived[p][1] / 1000 for p in sent if p in arrived]
        at_sub_ms = [(arrived[p][0] - sent[p]) / 1e6 for p in sent if p in arrived]
        checks = [(arrived[p][2] or {}).get("check") for p in sent if p in arrived]
        return {
            "scale": with_scale, "scans": len(sent), "delivered": len(durable_ms),
            "durable_p50_ms": pct(durable_ms, 0.5), "durable_p99_ms": pct(durable_ms, 0.99),
            "event_p50_ms": pct(at_sub_ms, 0.5), "event_p99_ms": pct(at_sub_ms, 0.99),
            "event_mean_ms": round(statistics.mean(at_sub_ms), 1),
            "checks": {c: checks.count(c) for c in set(checks)},
        }  # fmt: skip
    finally:
        agent.kill()
        watcher.disconnect()
        central.close()
        if sim is not None:
            sim.kill()
            sim.wait()
        broker.close()
        os.close(master)
        os.close(slave)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for n in range(args.rounds):
            for with_scale in (False, True):
                results.append(run(args.scans, with_scale, Path(tmp) / f"{n}-{int(with_scale)}"))
    print(f"{args.scans} parcel scans every 300 ms, each matching a return; alternating runs")
    print(f"{'':24}{'durable p50':>12}{'p99':>8}{'event p50':>11}{'p99':>8}  checks")
    for r in results:
        label = "MT-SICS scale" if r["scale"] else "no scale (baseline)"
        print(f"{label:24}{r['durable_p50_ms']:>12}{r['durable_p99_ms']:>8}{r['event_p50_ms']:>11}"
              f"{r['event_p99_ms']:>8}  {r['checks']}")  # fmt: skip
    print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
