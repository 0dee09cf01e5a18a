"""Print job arrival to the first byte at the printer, and render time per template and language,
each next to a baseline measured in the same run:

- arrival to first byte p50/p99 (a job published over MQTT until its first byte reaches a TCP
  listener playing the printer, through the agent: store, status check, claim, render, send)
  vs. the floor of the same trip without the agent: an MQTT delivery to a subscriber plus a TCP
  connect and send to the same listener;
- render time per built-in template for ZPL, ESC/POS and PNG vs. formatting a fixed ZPL string
  with the same fields.

    python bench/print.py [--jobs 300]
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.printers.zpl_status import host_status
from edge_agent.printing.render_escpos import render_escpos
from edge_agent.printing.render_png import render_png
from edge_agent.printing.render_zpl import render_zpl
from edge_agent.printing.templates import builtin_templates, fill
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker, free_port
from tests.test_printing_render import DATA


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Listener:
    """A raw-9100 printer: answers ~HS 'ready', records when each job's first byte arrived."""

    def __init__(self) -> None:
        self.port = free_port()
        self.first_byte: dict[str, int] = {}
        self.sock = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        first: int | None = None
        data = b""
        with conn:
            while chunk := conn.recv(65536):
                if first is None and not chunk.startswith(b"~HS"):
                    first = time.time_ns()
                if chunk.startswith(b"~HS"):
                    conn.sendall(host_status())
                    continue
                data += chunk
        m = re.search(rb"BENCH-(\d+)", data)
        if m and first is not None:
            self.first_byte[m.group(1).decode()] = first


def render_times(rounds: int) -> list[tuple[str, str, float, float]]:
    out = []
    renderers = {"zpl": render_zpl, "escpos": render_escpos, "png": render_png}
    for name, template in sorted(builtin_templates().items()):
        for lang, render in renderers.items():
            samples = []
            for _ in range(rounds):
                t0 = time.perf_counter_ns()
                render(fill(template, DATA))
                samples.append((time.perf_counter_ns() - t0) / 1000)
            out.append((name, lang, statistics.median(samples), pct(samples, 0.99)))
    return out


def fixed_zpl_times(rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        ("^XA^FO40,40^A0N,64,64^FD{0}^FS^FO40,128^A0N,28,22^FD{1} {2}^FS^FO40,488^BQN,2,6^FDQA,{3}^FS"
         "^FO40,783^BY3^BCN,96,Y,N,N^FD{2}^FS^XZ").format("RETURN", DATA["return_id"], DATA["order_number"],
                                                          DATA["ret1"]).encode()  # fmt: skip
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return statistics.median(samples), pct(samples, 0.99)


def client(port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{name}-{time.time_ns()}", protocol=MQTTProtocolVersion.MQTTv5
    )
    c.connect("127.0.0.1", port)
    c.loop_start()
    time.sleep(0.3)
    return c


def baseline_trip(broker_port: int, printer_port: int, n: int) -> list[float]:
    """MQTT delivery to a subscriber, then a TCP connect and send: the trip without the agent."""
    got: dict[str, int] = {}
    sub = client(broker_port, "bench-sub")
    sub.on_message = lambda _c, _u, m: got.__setitem__(json.loads(m.payload)["job_id"], time.time_ns())
    sub.subscribe("bench/jobs", 1)
    pub = client(broker_port, "bench-pub")
    time.sleep(0.2)
    out = []
    for i in range(n):
        job_id = f"B{i}"
        t0 = time.time_ns()
        pub.publish("bench/jobs", json.dumps({"job_id": job_id}), qos=1)
        while job_id not in got:
            time.sleep(0.0001)
        with socket.create_connection(("127.0.0.1", printer_port)) as s:
            s.sendall(b"^XA^FDx^FS^XZ")
            first = time.time_ns()
        out.append((first - t0) / 1000)
    sub.disconnect()
    pub.disconnect()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="(the figures' JSON line is always printed)")
    args = parser.parse_args()
    renders = render_times(args.rounds)
    fixed = fixed_zpl_times(args.rounds * 10)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker").start()
        listener = Listener()
        config = write_config(folder, broker.port, extra=(
            f"printers:\n  - {{id: p1, language: zpl, transport: tcp, host: 127.0.0.1, port: {listener.port}}}\n"
            "printing: {poll_interval_s: 5}\n"))  # fmt: skip
        agent = AgentProcess(config, folder / "agent.log").start()
        try:
            agent.wait_for("printer.status", printer="p1")
            pub = client(broker.port, "bench-central")
            sent: dict[str, int] = {}
            for i in range(args.jobs):
                job_id = str(i)
                body: dict[str, Any] = {"job_id": f"J{i}", "printer": "p1", "zpl": f"^XA^FDBENCH-{i}^FS^XZ"}
                sent[job_id] = time.time_ns()
                pub.publish("dock/v1/hel1/dock-07/job/print", json.dumps(body), qos=1)
                time.sleep(0.02)  # jobs one by one, as a packing line sends them
            deadline = time.monotonic() + 60
            while len(listener.first_byte) < args.jobs and time.monotonic() < deadline:
                time.sleep(0.05)
            trips = [(listener.first_byte[k] - sent[k]) / 1000 for k in sent if k in listener.first_byte]
            base = baseline_trip(broker.port, listener.port, min(args.jobs, 200))
            pub.disconnect()
        finally:
            agent.kill()
            broker.close()
    print(f"jobs: {len(trips)} of {args.jobs} reached the printer")
    print(f"{'':44}{'p50 us':>10}{'p99 us':>10}")
    print(
        f"{'job arrival to first byte (agent)':44}{statistics.median(trips):>10.0f}{pct(trips, 0.99):>10.0f}"
    )
    print(
        f"{'MQTT delivery + TCP send, no agent (floor)':44}{statistics.median(base):>10.0f}{pct(base, 0.99):>10.0f}"
    )
    print(f"\nrender time per label ({args.rounds} rounds), fill + render:")
    print(f"{'template':16}{'language':10}{'p50 us':>10}{'p99 us':>10}")
    for name, lang, p50, p99 in renders:
        print(f"{name:16}{lang:10}{p50:>10.0f}{p99:>10.0f}")
    print(f"{'(baseline) a fixed ZPL string, formatted':26}{fixed[0]:>10.1f}{fixed[1]:>10.1f}")
    print("JSON " + json.dumps({"jobs": len(trips), "p50_us": statistics.median(trips), "p99_us": pct(trips, 0.99),
                               "floor_p50_us": statistics.median(base), "floor_p99_us": pct(base, 0.99)}))  # fmt: skip


if __name__ == "__main__":
    main()
