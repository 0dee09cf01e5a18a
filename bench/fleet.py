"""A site of N real agent processes (default 50) on this machine, first on one Mosquitto, then on
two brokers with `mqtt.servers`. Prints one table:

- start-up: time until every agent is online, CPU seconds per agent until then, RSS per agent;
- a broker restart with scans typed into every agent during the outage: time from the broker's
  return until the central system has every event, missing, duplicates dropped by event_id;
- the reconnect spread: how many agents connected in the busiest second after the restart;
- failover: one of two brokers is killed; time until every agent that was on it is on the other;
- fan-out: `edge-fleet cmd SITE/* ping` to all N agents.

    python bench/fleet.py [--agents 50] [--scans 10]

Scans are typed into real ptys that each agent's serial driver reads (no simulator process per
agent, so the figures are the agents', not the simulators').
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulators.central import Central  # noqa: E402
from tests.agentproc import AgentProcess, write_config  # noqa: E402
from tests.broker import Broker  # noqa: E402

CLOCK = os.sysconf("SC_CLK_TCK")


class Dock:
    """One agent process and the pty its serial scanner is on."""

    def __init__(self, folder: Path, device: str, ports: list[int]) -> None:
        folder.mkdir(parents=True)
        self.device = device
        self.master, slave = os.openpty()
        self.link = folder / "s1"
        self.link.symlink_to(os.ttyname(slave))
        self.slave = slave
        config = write_config(folder, ports[0], [{"id": "s1", "type": "serial", "port": str(self.link)}],
                              device=device, servers=ports if len(ports) > 1 else None)  # fmt: skip
        self.agent = AgentProcess(config, folder / "agent.log")
        self.db = folder / "state" / "agent.db"

    def type(self, payload: str) -> None:
        os.write(self.master, payload.encode() + b"\r\n")

    def cpu_s(self) -> float:
        assert self.agent.proc is not None
        fields = Path(f"/proc/{self.agent.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK

    def rss_mb(self) -> float:
        assert self.agent.proc is not None
        for line in Path(f"/proc/{self.agent.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def connected_at(self, server: str | None = None, after: float = 0.0) -> float | None:
        for r in self.agent.records(since_start=False):
            if r.get("event") == "mqtt.connected" and (server is None or r.get("server") == server):
                t = _ts(r)
                if t >= after:
                    return t
        return None

    def close(self) -> None:
        self.agent.kill()
        os.close(self.master)
        os.close(self.slave)


def _ts(record: dict[str, Any]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _unsent(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 1


def run_site(n: int, scans: int, two: bool, folder: Path) -> dict[str, Any]:
    brokers = [Broker(folder / "a").start()] + ([Broker(folder / "b").start()] if two else [])
    ports = [b.port for b in brokers]
    central = Central("127.0.0.1", ports[0], "hel1",
                      extra_servers=tuple(("127.0.0.1", p) for p in ports[1:]))  # fmt: skip
    docks = [Dock(folder / f"dock-{i:03d}", f"dock-{i:03d}", ports if i % 2 or not two else ports[::-1])
             for i in range(n)]  # fmt: skip
    out: dict[str, Any] = {"agents": n, "brokers": len(brokers)}
    try:
        t0 = time.monotonic()
        for d in docks:
            d.agent.start()
        ok = _wait(lambda: all(d.connected_at() is not None for d in docks), 60 + 2 * n)
        out["startup_s"] = round(time.monotonic() - t0, 1) if ok else None
        out["cpu_s_per_agent"] = round(sum(d.cpu_s() for d in docks) / n, 2)
        time.sleep(2.0)
        out["rss_mb_per_agent"] = round(sum(d.rss_mb() for d in docks) / n, 1)

        # a broker restart under the whole site, scans typed while it is down
        main = brokers[0]
        on_main = [d for d in docks if d.connected_at(f"127.0.0.1:{main.port}") is not None] if two else docks
        main.stop()
        time.sleep(1.0)
        for k in range(scans):
            for d in docks:
                d.type(f"OUTAGE-{d.device}-{k}")
        time.sleep(1.0)
        back = time.time()
        main.start()
        expected = {d.device: None for d in docks}

        def delivered() -> bool:
            report = central.report()
            return all(report.get(dev, {}).get("unique", 0) >= scans for dev in expected) and all(
                _unsent(d.db) == 0 for d in docks
            )

        ok = _wait(delivered, 120)
        out["restart_deliver_s"] = round(time.time() - back, 2) if ok else None
        report = central.report()
        out["missing"] = sum(len(r["missing"]) for r in report.values())
        out["duplicates_dropped"] = sum(r["duplicates"] for r in report.values())
        out["inexact"] = sum(r["inexact_duplicates"] for r in report.values())
        if not two:
            times = [t for d in docks if (t := d.connected_at(after=back)) is not None]
            per_second = collections.Counter(int(t) for t in times)
            out["reconnect_peak_per_s"] = max(per_second.values()) if per_second else 0
            out["reconnect_spread_s"] = round(max(times) - min(times), 2) if times else None
        else:
            out["moved_during_restart"] = len(on_main)

        if two:  # failover: kill the broker half the site is on
            victim = brokers[1]
            server = f"127.0.0.1:{victim.port}"
            on_victim = [d for d in docks if _last_server(d) == server]
            killed = time.time()
            victim.kill()
            other = f"127.0.0.1:{brokers[0].port}"
            ok = _wait(lambda: all(d.connected_at(other, after=killed) is not None for d in on_victim), 120)
            worst = (
                max((d.connected_at(other, after=killed) or killed) - killed for d in on_victim)
                if ok
                else None
            )
            out["failover_agents"] = len(on_victim)
            out["failover_s"] = round(worst, 2) if worst is not None else None
            victim.start()

        t = time.monotonic()
        fan = subprocess.run([sys.executable, "-m", "edge_agent.fleetctl", "--port", str(ports[0]), "cmd", "hel1/*",
                              "ping", "--json", "--timeout", "30"], check=False, capture_output=True, text=True, cwd=ROOT)  # fmt: skip
        out["fanout_s"] = round(time.monotonic() - t, 2)
        rows = json.loads(fan.stdout) if fan.stdout.startswith("[") else []
        out["fanout_ok"] = sum(r["status"] == "ok" for r in rows)
    finally:
        for d in docks:
            d.close()
        central.close()
        for b in brokers:
            b.close()
    return out


def _last_server(dock: Dock) -> str | None:
    server = None
    for r in dock.agent.records(since_start=False):
        if r.get("event") == "mqtt.connected":
            server = r.get("server")
    return server


COLUMNS = [
    ("agents", "agents"), ("brokers", "brokers"), ("startup_s", "online in s"), ("cpu_s_per_agent", "CPU s/agent"),
    ("rss_mb_per_agent", "RSS MB/agent"), ("restart_deliver_s", "restart: all in s"), ("missing", "missing"),
    ("duplicates_dropped", "dupes dropped"), ("inexact", "inexact"), ("reconnect_peak_per_s", "peak conn/s"),
    ("reconnect_spread_s", "spread s"), ("failover_agents", "failover agents"), ("failover_s", "failover s"),
    ("fanout_s", "fan-out s"), ("fanout_ok", "fan-out ok"),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--scans", type=int, default=10, help="scans typed into each agent during the outage")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        for two in (False, True):
            results.append(run_site(args.agents, args.scans, two, Path(tmp) / ("two" if two else "one")))
    if args.json:
        print(json.dumps(results))
        return
    width = max(len(h) for _, h in COLUMNS)
    print(
        f"{'':{width}}  "
        + "  ".join(f"{'one broker' if r['brokers'] == 1 else 'two brokers':>12}" for r in results)
    )
    for key, head in COLUMNS:
        cells = ["-" if r.get(key) is None else str(r[key]) for r in results]
        print(f"{head:{width}}  " + "  ".join(f"{c:>12}" for c in cells))


if __name__ == "__main__":
    main()
