"""Start-up and memory of one agent: a serial scanner (on a pty), a ZPL printer (TCP) and the
station display, connected to a real broker. CPU time from exec to READY=1 (systemd's notify
protocol, read on our own socket) and RSS at READY and after it has run a while, next to the same
figures for a bare interpreter (`python -c pass`: the floor no Python program goes under) and for
the imports alone (`import edge_agent.app`). Where the memory goes: the largest mappings.

    python bench/footprint.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.agentproc import write_config  # noqa: E402
from tests.broker import Broker, free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def mappings(pid: int, top: int = 8) -> list[tuple[str, float]]:
    agg: Counter[str] = Counter()
    current = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        m = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
        if m:
            current = (m.group(1) or "[anon]").rsplit("/", 1)[-1]
        elif line.startswith("Rss:"):
            agg[current] += int(line.split()[1])
    return [(k, v / 1024) for k, v in agg.most_common(top)]


def floor(code: str) -> tuple[float, float]:
    """CPU seconds and RSS (MB) of `python -c CODE` when it is done (its own VmRSS: ru_maxrss would
    carry this benchmark's own size across fork and exec)."""
    out = subprocess.run([sys.executable, "-c", code + "\nimport os,re;t=os.times();"
                          "print(t.user+t.system, re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read())[1])"],
                         capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    cpu, rss = out.stdout.split()[-2:]
    return float(cpu), int(rss) / 1024


def one_agent(folder: Path, broker: Broker) -> dict[str, Any]:
    import pty

    master, slave = pty.openpty()
    link = folder / "s1"
    link.unlink(missing_ok=True)
    link.symlink_to(os.ttyname(slave))
    printer = socket.create_server(("127.0.0.1", 0))
    config = write_config(folder, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                          display_port=free_port(), extra=(
        f"printers:\n  - {{id: p1, language: zpl, transport: tcp, host: 127.0.0.1, "
        f"port: {printer.getsockname()[1]}}}\n"))  # fmt: skip
    notify = folder / "notify.sock"
    notify.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(30)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify)}
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "run", "-c", str(config)], env=env,
                            cwd=ROOT, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while b"READY=1" not in sock.recv(4096):
            pass
        ready_cpu, ready_rss = cpu_s(proc.pid), rss_mb(proc.pid)
        time.sleep(5)
        return {"ready_cpu_s": ready_cpu, "ready_rss_mb": ready_rss, "steady_rss_mb": rss_mb(proc.pid),
                "mappings": mappings(proc.pid)}  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        sock.close()
        printer.close()
        os.close(master)
        os.close(slave)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # An installed release starts from bytecode (pip compiles it); so does this checkout here.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "edge_agent", "drivers"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    bare = [floor("pass") for _ in range(args.runs)]
    imports = [floor("import edge_agent.app") for _ in range(args.runs)]
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker").start()
        try:
            runs = [one_agent(Path(tmp), broker) for _ in range(args.runs)]
        finally:
            broker.close()
    result = {
        "bare_cpu_s": statistics.median(c for c, _ in bare),
        "bare_rss_mb": statistics.median(r for _, r in bare),
        "import_cpu_s": statistics.median(c for c, _ in imports),
        "import_rss_mb": statistics.median(r for _, r in imports),
        "ready_cpu_s": statistics.median(r["ready_cpu_s"] for r in runs),
        "ready_rss_mb": statistics.median(r["ready_rss_mb"] for r in runs),
        "steady_rss_mb": statistics.median(r["steady_rss_mb"] for r in runs),
        "mappings": runs[-1]["mappings"],
    }
    print(f"one agent: serial scanner + ZPL printer + display, median of {args.runs} starts")
    print(f"{'':40}{'CPU s':>8}{'RSS MB':>8}")
    print(f"{'python -c pass (floor)':40}{result['bare_cpu_s']:>8.2f}{result['bare_rss_mb']:>8.1f}")
    print(f"{'import edge_agent.app':40}{result['import_cpu_s']:>8.2f}{result['import_rss_mb']:>8.1f}")
    print(f"{'agent at READY':40}{result['ready_cpu_s']:>8.2f}{result['ready_rss_mb']:>8.1f}")
    print(f"{'agent after 5 s':40}{'':>8}{result['steady_rss_mb']:>8.1f}")
    print("largest mappings: " + ", ".join(f"{k} {v:.1f} MB" for k, v in result["mappings"]))
    if args.json:
        print("JSON " + json.dumps(result))


if __name__ == "__main__":
    main()
