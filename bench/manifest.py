"""A 1,000,000-return manifest snapshot while scans go on. The snapshot is published in chunks over
the real broker to an agent process; scans are typed every 50 ms on a pty meanwhile. Prints how
long the snapshot took to apply (first chunk published to the agent's `snapshot_applied`) and the
scan-to-subscriber latency of the scans typed during it, next to the same scans with no snapshot.

    python bench/manifest.py [--returns 1000000] [--chunk 3000] [--json]

PYSPY=out.txt samples the agent meanwhile (py-spy, GIL holders only) into a raw profile.
"""

from __future__ import annotations

import argparse
import json
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

from simulators.central import make_return  # noqa: E402
from tests.agentproc import AgentProcess, write_config  # noqa: E402
from tests.broker import Broker  # noqa: E402
from tests.conftest import sim_cmd  # noqa: E402


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Scans:
    """Scans typed on the pty (the simulator prints when each was written) and their events."""

    def __init__(self, port: int, link: Path) -> None:
        self.arrived: dict[str, int] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_a: c.subscribe("dock/v1/hel1/dock-07/event/scan", 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.sim = subprocess.Popen(sim_cmd("serial-scanner", "--link", str(link), "--rate", "0"),
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)  # fmt: skip
        self.typed: dict[str, int] = {}

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        raw = json.loads(msg.payload)["decoded"]["raw"]
        self.arrived[raw] = time.monotonic_ns()

    def type_for(self, seconds: float, prefix: str, stop: threading.Event | None = None) -> list[str]:
        assert self.sim.stdin is not None
        names = []
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            name = f"{prefix}-{i:05d}"
            self.typed[name] = time.monotonic_ns()
            self.sim.stdin.write(name + "\n")
            self.sim.stdin.flush()
            names.append(name)
            i += 1
            time.sleep(0.05)
        return names

    def latencies(self, names: list[str]) -> list[float]:
        time.sleep(1.0)
        return [(self.arrived[n] - self.typed[n]) / 1e6 for n in names if n in self.arrived]

    def close(self) -> None:
        self.sim.kill()
        self.client.disconnect()
        self.client.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--returns", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    chunks = -(-args.returns // args.chunk)
    version = 7
    bodies = [
        json.dumps({"version": version, "base_version": None, "chunk": n + 1, "chunks": chunks,
                    "upserts": [make_return(i) for i in range(n * args.chunk, min(args.returns, (n + 1) * args.chunk))],
                    "deletes": []}, separators=(",", ":")).encode()
        for n in range(chunks)
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker", persistence=False).start()
        link = folder / "s1"
        config = write_config(folder, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
        agent = AgentProcess(config, folder / "agent.log").start()
        scans = Scans(broker.port, link)
        try:
            agent.wait_for("scanner.opened")
            quiet = scans.latencies(scans.type_for(10, "QUIET"))
            pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            done = threading.Event()
            busy_names: list[str] = []
            typer = threading.Thread(target=lambda: busy_names.extend(scans.type_for(600, "BUSY", done)))
            t0 = time.monotonic()
            typer.start()
            import os

            spy = None
            if os.environ.get("PYSPY"):
                assert agent.proc is not None
                spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                                        str(agent.proc.pid), "--duration", "3", "--rate", "500", "--threads",
                                        "--format", "raw", "-o", os.environ["PYSPY"], "--gil"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            for body in bodies:
                pub.publish("dock/v1/hel1/manifest", body, qos=1).wait_for_publish(60)
            record = agent.wait_for(
                "manifest.applied", timeout=600, status="snapshot_applied", version=version
            )
            applied_s = time.monotonic() - t0
            done.set()
            typer.join()
            if spy is not None:
                spy.wait()
            busy = scans.latencies(busy_names)
            slow = sorted(((scans.arrived[n] - scans.typed[n]) / 1e6, (scans.typed[n] / 1e9) - t0, n)
                          for n in busy_names if n in scans.arrived)[-5:]  # fmt: skip
            pub.disconnect()
        finally:
            scans.close()
            agent.kill()
            broker.close()
    figures = {
        "returns": args.returns, "chunks": chunks, "applied_s": applied_s, "rows": record.get("rows"),
        "busy_scans": len(busy), "busy_p50_ms": statistics.median(busy), "busy_p99_ms": pct(busy, 0.99),
        "busy_max_ms": max(busy), "quiet_p50_ms": statistics.median(quiet), "quiet_p99_ms": pct(quiet, 0.99),
        "quiet_max_ms": max(quiet),
    }  # fmt: skip
    print(f"snapshot of {args.returns:,} returns in {chunks} chunks: applied in {applied_s:.1f} s "
          f"({record.get('rows'):,} rows)")  # fmt: skip
    print(f"{'scan typed -> event at a subscriber':38}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'scans':>7}")
    print(f"{'during the snapshot':38}{figures['busy_p50_ms']:>8.1f}{figures['busy_p99_ms']:>8.1f}"
          f"{figures['busy_max_ms']:>8.1f}{len(busy):>7}")  # fmt: skip
    print(f"{'no snapshot (floor)':38}{figures['quiet_p50_ms']:>8.1f}{figures['quiet_p99_ms']:>8.1f}"
          f"{figures['quiet_max_ms']:>8.1f}{len(quiet):>7}")  # fmt: skip
    print("slowest during the snapshot: " + "; ".join(f"{ms:.0f} ms at +{at:.1f} s" for ms, at, _ in slow))
    if args.json:
        print("JSON " + json.dumps(figures))


if __name__ == "__main__":
    main()
