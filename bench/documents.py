"""Documents on thermal printers: a carrier's 4x6" PDF label from the job's arrival (MQTT) to the
first byte at the printer, on ZPL and ESC/POS at 203 and 300 dpi, with the agent's and
the renderer's resident memory during it, next to the same label sent as ZPL (the floor: what a
job costs without rasterising). Then scans typed every 100 ms while 20-page PDFs render (five
jobs, one after the other; only the scans typed while the renderer works are counted),
against the same scans with nothing rendering: scan -> durable (`latency_us`) and scan -> event
at a subscriber.

    python bench/documents.py [--jobs 10] [--scans 100] [--big-jobs 5]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
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

from drivers.printers.escpos_status import realtime_answer  # noqa: E402
from drivers.printers.zpl_status import host_status  # noqa: E402
from edge_agent.printing.documents.pages import Profile, render  # noqa: E402
from tests.agentproc import AgentProcess, write_config  # noqa: E402
from tests.broker import Broker, free_port  # noqa: E402
from tests.documents import Code, carrier_4x6, draw  # noqa: E402

SITE_ROOT = "dock/v1/hel1/dock-07"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)


class Listener:
    """A raw-9100 printer that answers status (ZPL ~HS, ESC/POS DLE EOT n) and stamps the first
    byte of everything else that arrives after `expect()`."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.port = free_port()
        self.first: list[int] = []
        self._armed = False
        self.sock = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, daemon=True).start()

    def expect(self) -> None:
        self._armed = True

    def _serve(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        with conn:
            while chunk := conn.recv(1 << 20):
                if self.language == "zpl" and chunk.startswith(b"~HS"):
                    conn.sendall(host_status())
                    continue
                if self.language == "escpos" and chunk[:2] == b"\x10\x04" and len(chunk) % 3 == 0:
                    conn.sendall(b"".join(realtime_answer(chunk[i + 2]) for i in range(0, len(chunk), 3)))
                    continue
                if self._armed:
                    self._armed = False
                    self.first.append(time.time_ns())


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            out += [child, *descendants(child)]
    return out


def big_pdf(pages: int) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(unit="mm", format=(101.6, 152.4))
    pdf.set_auto_page_break(False)
    for n in range(pages):
        pdf.add_page()
        draw(pdf, Code("Code128", f"PAGE{n:04d}X123456"), 8, 20, 0.375, 20)
        draw(pdf, Code("QRCode", f"https://returns.example/page/{n}"), 8, 60, 1.0)
    return bytes(pdf.output())


def client(port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=MQTTProtocolVersion.MQTTv5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    broker = Broker(folder / "broker").start()
    printers = {
        "zpl203": Listener("zpl"),
        "zpl300": Listener("zpl"),
        "escpos203": Listener("escpos"),
        "escpos300": Listener("escpos"),
    }
    master, slave = os.openpty()
    link = folder / "s1"
    link.symlink_to(os.ttyname(slave))
    lines = [
        f"  - {{id: zpl203, language: zpl, transport: tcp, host: 127.0.0.1, port: {printers['zpl203'].port}}}",
        f"  - {{id: zpl300, language: zpl, transport: tcp, host: 127.0.0.1, port: {printers['zpl300'].port}, dpi: 300}}",
        f"  - {{id: escpos203, language: escpos, transport: tcp, host: 127.0.0.1, port: {printers['escpos203'].port}}}",
        f"  - {{id: escpos300, language: escpos, transport: tcp, host: 127.0.0.1, port: {printers['escpos300'].port}, dpi: 300}}",
    ]  # fmt: skip
    config = write_config(folder, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                          extra="printers:\n" + "\n".join(lines) + "\nprinting: {poll_interval_s: 5}\n")  # fmt: skip
    agent = AgentProcess(config, folder / "agent.log").start()
    pub = client(broker.port, "bench-central")
    arrived: dict[str, tuple[int, int]] = {}

    def on_message(_c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        event = json.loads(m.payload)
        arrived.setdefault(event["decoded"]["raw"], (time.monotonic_ns(), event["latency_us"]))

    watcher = client(broker.port, "bench-watch")
    watcher.on_message = on_message
    watcher.subscribe(f"{SITE_ROOT}/event/scan", 1)
    label, _ = carrier_4x6()
    results: dict[str, Any] = {}
    try:
        for name in printers:
            agent.wait_for("printer.status", printer=name, timeout=30)
        agent.wait_for("scanner.opened", timeout=30)
        assert agent.proc is not None
        pid = agent.proc.pid
        for name, listener in printers.items():
            for kind in ("pdf", "zpl"):
                trips, agent_rss, renderer_rss = [], 0, 0
                for i in range(args.jobs):
                    body: dict[str, Any] = {"job_id": f"{name}-{kind}-{i}", "printer": name}
                    if kind == "pdf":
                        body["pdf_b64"] = base64.b64encode(label).decode()
                    elif listener.language == "zpl":
                        body["zpl"] = f"^XA^FO50,50^A0N,40,40^FDBENCH-{i}^FS^XZ"
                    else:  # the floor on ESC/POS: raw bytes, nothing to rasterise
                        body["escpos_b64"] = base64.b64encode(
                            f"\x1b@BENCH-{i}\n\x1dV\x42\x00".encode()
                        ).decode()
                    listener.expect()
                    before = len(listener.first)
                    sent = time.time_ns()
                    pub.publish(f"{SITE_ROOT}/job/print", json.dumps(body), qos=1)
                    deadline = time.monotonic() + 60
                    while len(listener.first) == before and time.monotonic() < deadline:
                        agent_rss = max(agent_rss, rss_kb(pid))
                        renderer_rss = max([renderer_rss, *(rss_kb(c) for c in descendants(pid))])
                        time.sleep(0.005)
                    trips.append((listener.first[-1] - sent) / 1e6)
                results[f"{name}_{kind}"] = {"p50_ms": pct(trips, 0.5), "max_ms": pct(trips, 1.0),
                                             "agent_rss_mb": round(agent_rss / 1024, 1),
                                             "renderer_rss_mb": round(renderer_rss / 1024, 1)}  # fmt: skip

        def scans(tag: str) -> dict[str, int]:
            sent: dict[str, int] = {}
            for i in range(args.scans):
                payload = f"{tag}-{i:04d}"
                sent[payload] = time.monotonic_ns()
                os.write(master, payload.encode() + b"\r\n")
                time.sleep(0.1)
            deadline = time.monotonic() + 30
            while not all(p in arrived for p in sent) and time.monotonic() < deadline:
                time.sleep(0.05)
            return sent

        def summary(sent: dict[str, int]) -> dict[str, Any]:
            durable = [arrived[p][1] / 1000 for p in sent if p in arrived]
            at_sub = [(arrived[p][0] - sent[p]) / 1e6 for p in sent if p in arrived]
            return {"durable_p50_ms": pct(durable, 0.5), "durable_p99_ms": pct(durable, 0.99),
                    "event_p50_ms": pct(at_sub, 0.5), "event_p99_ms": pct(at_sub, 0.99), "n": len(durable)}  # fmt: skip

        results["scans_alone"] = summary(scans("ALONE"))
        pages = base64.b64encode(big_pdf(20)).decode()
        printers["zpl300"].expect()
        t0 = time.monotonic_ns()
        # five 20-page jobs, rendered one after the other for the printer, keep the renderer busy
        # for most of the scans
        for n in range(args.big_jobs):
            pub.publish(f"{SITE_ROOT}/job/print", json.dumps({"job_id": f"BIG-20-{n}", "printer": "zpl300",
                                                              "pdf_b64": pages}))  # fmt: skip
        busy = scans("BUSY")
        ms = [
            agent.wait_for("job.rendered", job_id=f"BIG-20-{n}", timeout=120)["ms"]
            for n in range(args.big_jobs)
        ]
        results["big_pdf_render_ms"] = pct(ms, 0.5)
        # only the scans typed while the renderer was at work: from the first document's arrival
        # for the render times added up (the sends between them make the true span a little longer)
        end = t0 + int(sum(ms) * 1e6)
        results["scans_while_rendering"] = summary({p: t for p, t in busy.items() if t < end})
    finally:
        agent.kill()
        pub.disconnect()
        watcher.disconnect()
        broker.close()
        os.close(master)
        os.close(slave)
    return results


def in_process_render_ms(rounds: int) -> dict[str, float]:
    label, _ = carrier_4x6()
    out = {}
    for name, profile in (("zpl203", Profile("zpl", 203, 812, 1219, 20, 40_000_000)),
                          ("zpl300", Profile("zpl", 300, 1219, 1828, 20, 40_000_000)),
                          ("escpos203", Profile("escpos", 203, 576, None, 20, 40_000_000)),
                          ("escpos300", Profile("escpos", 300, 864, None, 20, 40_000_000))):  # fmt: skip
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            render("pdf", label, profile, 1)
            times.append((time.perf_counter() - t) * 1000)
        out[name] = pct(times, 0.5)
    return out


def printers_of(r: dict[str, Any]) -> list[str]:
    return [k.removesuffix("_pdf") for k in r if k.endswith("_pdf")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--scans", type=int, default=100)
    parser.add_argument("--big-jobs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-documents-") as tmp:
        r = run(args, Path(tmp))
    r["render_in_process_p50_ms"] = in_process_render_ms(5)
    print(f"carrier 4x6 PDF, {args.jobs} jobs each: arrival -> first byte at the printer (ms)")
    print(
        f"{'printer':12}{'PDF p50':>9}{'max':>8}{'raw p50':>9}{'max':>8}{'agent RSS':>11}{'renderer RSS':>14}"
    )
    for name in printers_of(r):
        p, z = r[f"{name}_pdf"], r[f"{name}_zpl"]
        print(f"{name:12}{p['p50_ms']:>9}{p['max_ms']:>8}{z['p50_ms']:>9}{z['max_ms']:>8}"
              f"{p['agent_rss_mb']:>9} MB{p['renderer_rss_mb']:>12} MB")  # fmt: skip
    print(f"render in process, p50 ms: {r['render_in_process_p50_ms']}")
    a, b = r["scans_alone"], r["scans_while_rendering"]
    print(f"scans every 100 ms: durable p50/p99 {a['durable_p50_ms']}/{a['durable_p99_ms']} ms alone, "
          f"{b['durable_p50_ms']}/{b['durable_p99_ms']} ms for the {b['n']} typed while 20-page PDFs "
          f"rendered ({r['big_pdf_render_ms']} ms each); at a subscriber {a['event_p50_ms']}/{a['event_p99_ms']} vs "
          f"{b['event_p50_ms']}/{b['event_p99_ms']} ms")  # fmt: skip
    print("JSON " + json.dumps(r))


if __name__ == "__main__":
    main()
