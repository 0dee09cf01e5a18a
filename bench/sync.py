"""Scan-to-durable and scan-to-broker latency, and the drain of a backlog after an outage, each
next to its raw baseline measured in the same run on the same machine:

- scan-to-durable p50/p99 (the agent's whole scan path up to its COMMIT, matching included: the
  `latency_us` of each event) vs. a raw SQLite insert + COMMIT with synchronous=FULL in WAL mode;
- scan-to-broker p50/p99: a real agent process with a serial scanner on a pty, scans typed one at
  a time (labels of returns in its manifest), from the last byte written to the pty to the event
  at a subscriber in this process; vs. a raw paho QoS 1 publish to the same subscriber;
- the drain of 100,000 events buffered during an outage vs. a raw paho QoS 1 publish loop of
  100,000 messages of the same size with the same in-flight window.

    python bench/sync.py [--scans 2000] [--backlog 100000]

Starts its own Mosquitto on a free port. Targets: scan-to-durable p99 <= 2 ms; drain >= 70 % of
the raw loop's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.scanners import RawScan
from edge_agent.app import Agent
from edge_agent.config import parse_config
from simulators.central import Central, labels_of
from simulators.samples import DEMO_KEY
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker

WINDOW = 64


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def raw_sqlite_commits(folder: Path, n: int, size: int, tables: int = 1) -> list[float]:
    """n commits of one row into each of `tables` tables (a page per table): with 7, the pages
    that a matched scan's first transaction writes (scans, its event_id index, outbox, its unsent
    index, sqlite_sequence, the seq counter, received)."""
    conn = sqlite3.connect(folder / f"raw-{tables}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    for t in range(tables):
        conn.execute(f"CREATE TABLE t{t}(id INTEGER PRIMARY KEY, payload TEXT)")
    out = []
    body = "x" * (size // tables)
    for _ in range(n):
        t0 = time.perf_counter_ns()
        conn.execute("BEGIN")
        for t in range(tables):
            conn.execute(f"INSERT INTO t{t}(payload) VALUES (?)", (body,))
        conn.execute("COMMIT")
        out.append((time.perf_counter_ns() - t0) / 1000)
        time.sleep(0.001)
    conn.close()
    return out


class Sub:
    def __init__(self, port: int, topic: str) -> None:
        self.arrivals: dict[str, int] = {}
        self.count = 0
        self.done = threading.Event()
        self.expect = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{time.time_ns()}",
                                  protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        ready = threading.Event()
        self.client.on_connect = lambda c, *_: (c.subscribe(topic, 1), ready.set())
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        ready.wait(10)
        time.sleep(0.2)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic_ns()
        if msg.payload[:1] == b"{":
            key = json.loads(msg.payload)["event_id"]
        else:
            key = msg.payload[:10].decode("ascii")  # the raw baseline's sequence number
        self.arrivals[key] = now
        self.count += 1
        if self.expect and self.count >= self.expect:
            self.done.set()


def raw_paho_round_trips(port: int, n: int, size: int) -> list[float]:
    sub = Sub(port, "bench/rt")
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=MQTTProtocolVersion.MQTTv5)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    time.sleep(0.2)
    out = []
    for i in range(n):
        key = f"{i:010d}"
        t0 = time.monotonic_ns()
        pub.publish("bench/rt", key + "x" * (size - len(key)), qos=1)
        deadline = time.monotonic() + 5
        while key not in sub.arrivals and time.monotonic() < deadline:
            time.sleep(0.00005)
        out.append((sub.arrivals.get(key, t0) - t0) / 1000)
    pub.disconnect()
    sub.client.disconnect()
    return out


def raw_paho_loop(port: int, n: int, size: int) -> float:
    """Seconds to publish n QoS 1 messages and have every PUBACK, window as the agent's."""
    acked = 0
    done = threading.Event()

    def on_publish(*_a: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == n:
            done.set()

    pub = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-loop", protocol=MQTTProtocolVersion.MQTTv5
    )
    pub.max_inflight_messages_set(WINDOW)
    pub.on_publish = on_publish
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    time.sleep(0.2)
    body = b"x" * size
    t0 = time.perf_counter()
    for i in range(n):
        # paho's message ids wrap at 65535: keep fewer than that queued inside it
        while i - acked > 20_000:
            time.sleep(0.001)
        pub.publish("bench/loop", body, qos=1)
    done.wait(600)
    elapsed = time.perf_counter() - t0
    pub.disconnect()
    pub.loop_stop()
    return elapsed


def bridge_drain(folder: Path, n: int, size: int) -> float:
    """The same backlog through a Mosquitto bridge, the other way a dock could buffer an outage: a
    broker on the dock bridged to the site's broker. The site's broker is down while n QoS 1
    messages are published to the dock's broker (which queues them for the bridge); seconds from
    the first of them to reach a subscriber at the site to the last (as the agent's drain is timed
    from its reconnection, not its backoff)."""
    central = Broker(folder / "bridge-central", extra_conf="set_tcp_nodelay true\n").start()
    local = Broker(folder / "bridge-local", extra_conf=(
        f"connection site\naddress 127.0.0.1:{central.port}\ntopic bench/bridge out 1\n"
        "cleansession false\nrestart_timeout 1\nbridge_protocol_version mqttv311\n")).start()  # fmt: skip
    got = 0
    first = 0.0
    done = threading.Event()

    def on_message(*_a: Any) -> None:
        nonlocal got, first
        got += 1
        if got == 1:
            first = time.perf_counter()
        if got >= n:
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bridge-sub", clean_session=False,
                      protocol=MQTTProtocolVersion.MQTTv311)  # fmt: skip
    sub.on_message = on_message
    sub.on_connect = lambda c, *_a: c.subscribe("bench/bridge", 1)
    sub.connect("127.0.0.1", central.port)
    sub.loop_start()
    time.sleep(2.0)  # the bridge connects (its session is kept) and the subscription is in place
    central.stop()
    pub = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-bridge-pub", protocol=MQTTProtocolVersion.MQTTv5
    )
    pub.max_inflight_messages_set(WINDOW)
    pub.connect("127.0.0.1", local.port)
    pub.loop_start()
    body = b"x" * size
    infos: list[mqtt.MQTTMessageInfo] = []
    for _ in range(n):
        # paho's message ids wrap at 65535: keep fewer than that unacknowledged inside it
        while len(infos) > 20_000 and not infos[-20_000].is_published():
            time.sleep(0.001)
        infos.append(pub.publish("bench/bridge", body, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    time.sleep(1.0)  # the dock's broker has them all queued for the bridge
    got = 0
    central.start()
    done.wait(600)
    elapsed = time.perf_counter() - first
    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()
    local.close()
    central.close()
    return elapsed if got >= n else float("nan")


def process_scans(folder: Path, broker: Broker, n: int) -> dict[str, list[float]]:
    """Scans typed into a real agent process on a pty, one at a time: (durable, to_broker) in us."""
    folder.mkdir()
    central = Central("127.0.0.1", broker.port, "hel1", persistent=False)
    central.generate(10_000)
    master, slave = os.openpty()
    tty.setraw(master)
    link = folder / "s1"
    link.symlink_to(os.ttyname(slave))
    config = write_config(folder, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                          extra="telemetry_interval_s: 3600\n")  # fmt: skip
    agent = AgentProcess(config, folder / "agent.log").start()
    events: dict[str, tuple[int, int]] = {}  # raw -> (arrival ns, latency_us)

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic_ns()
        event = json.loads(msg.payload)
        events[event["decoded"]["raw"]] = (now, event["latency_us"])

    watcher = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-watch", protocol=MQTTProtocolVersion.MQTTv5
    )
    watcher.on_message = on_message
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe("dock/v1/hel1/dock-07/event/scan", 1)
    watcher.loop_start()
    durable: list[float] = []
    to_broker: list[float] = []
    try:
        agent.wait_for("scanner.opened", timeout=30)
        agent.wait_for("manifest.applied", timeout=60)
        time.sleep(1.0)
        for i, ret in enumerate(central.returns[:n]):
            label = labels_of(ret)[i % 3]
            t0 = time.monotonic_ns()
            os.write(master, label.encode() + b"\r\n")
            deadline = time.monotonic() + 5
            while label not in events and time.monotonic() < deadline:
                time.sleep(0.00005)
            if label in events:
                arrival, latency_us = events[label]
                to_broker.append((arrival - t0) / 1000)
                durable.append(float(latency_us))
            time.sleep(0.003)
    finally:
        agent.kill()
        watcher.disconnect()
        watcher.loop_stop()
        central.close()
        os.close(master)
        os.close(slave)
    return {"durable": durable, "to_broker": to_broker}


def agent_config(folder: Path, port: int) -> Any:
    return parse_config({
        "device": {"id": "bench-01", "site": "hel1"},
        "mqtt": {"host": "127.0.0.1", "port": port, "keepalive_s": 5},
        "storage": {"path": str(folder / "state")},
        "labels": {"keys": {"K1": DEMO_KEY.hex()}},
        "log": {"level": "warning", "format": "json"},
        "telemetry_interval_s": 3600,
    })  # fmt: skip


async def agent_scans(agent: Agent, payloads: list[str], spacing_s: float) -> list[tuple[Any, int]]:
    """(record, t_last_byte_ns) per scan, through the agent's own scan path."""
    out = []
    for payload in payloads:
        raw = RawScan("s1", payload.encode(), time.monotonic_ns())
        out.append((await agent.scans.record(raw, agent.decode(raw.data)), raw.t_last_byte_ns))
        if spacing_s:
            await asyncio.sleep(spacing_s)
    return out


async def run_agent_phase(folder: Path, broker: Broker, args: argparse.Namespace) -> dict[str, Any]:
    from edge_agent.logs import setup_logging

    setup_logging("warning", "json", open("/dev/null", "w"))  # noqa: SIM115
    central = Central("127.0.0.1", broker.port, "hel1", persistent=False)
    central.generate(10_000)
    agent = Agent(agent_config(folder, broker.port))
    stop = asyncio.Event()
    runner = asyncio.create_task(agent.run(stop))
    while (
        not hasattr(agent, "link") or not agent.link.connected.is_set() or agent.station.manifest_version != 1
    ):
        await asyncio.sleep(0.05)
    await agent_scans(agent, [labels_of(r)[i % 3] for i, r in enumerate(central.returns[:200])], 0.001)
    central.close()  # a subscriber in this process would compete for the GIL during the drain

    # outage: stop the broker, buffer a backlog, start it, time the drain
    broker.stop()
    while agent.link.connected.is_set():
        await asyncio.sleep(0.05)
    backlog = [f"BACKLOG-{i:06d}" for i in range(args.backlog)]
    sem = asyncio.Semaphore(256)

    async def one(p: str) -> None:
        async with sem:
            await agent.scans.record(RawScan("s1", p.encode(), time.monotonic_ns()), agent.decode(p.encode()))

    await asyncio.gather(*(one(p) for p in backlog))
    size = len(agent_sample_payload(folder))
    acked_before = agent.publisher.acked_total
    broker.start()
    await agent.link.connected.wait()  # the drain is timed from the reconnection, not the backoff
    t0 = time.perf_counter()
    while agent.publisher.acked_total - acked_before < args.backlog:
        await asyncio.sleep(0.01)
    drain_s = time.perf_counter() - t0
    stop.set()
    await runner
    return {"drain_s": drain_s, "size": size}


def agent_sample_payload(folder: Path) -> bytes:
    conn = sqlite3.connect(folder / "state" / "agent.db")
    row = conn.execute("SELECT payload FROM outbox WHERE kind='scan' ORDER BY id DESC LIMIT 1").fetchone()
    conn.close()
    return bytes(row[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=2000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker").start()
        try:
            raw_commit = raw_sqlite_commits(folder, args.scans, 600)
            raw_commit7 = raw_sqlite_commits(folder, args.scans, 1200, tables=7)
            raw_rt = raw_paho_round_trips(broker.port, args.scans, 600)
            result = process_scans(folder / "process", broker, args.scans)
            result.update(asyncio.run(run_agent_phase(folder, broker, args)))
            raw_loop_s = raw_paho_loop(broker.port, args.backlog, result["size"])
        finally:
            broker.close()
        bridge_s = bridge_drain(folder, args.backlog, result["size"])
    durable, to_broker = result["durable"], result["to_broker"]
    print(f"scans: {args.scans} typed into an agent process (labels of returns in a 10,000-return manifest)")
    print(f"{'':34}{'p50 us':>10}{'p99 us':>10}")
    print(f"{'scan-to-durable (agent)':34}{statistics.median(durable):>10.0f}{pct(durable, 0.99):>10.0f}")
    print(
        f"{'raw SQLite FULL commit (baseline)':34}{statistics.median(raw_commit):>10.0f}{pct(raw_commit, 0.99):>10.0f}"
    )
    print(
        f"{'raw FULL commit of 7 pages':34}{statistics.median(raw_commit7):>10.0f}{pct(raw_commit7, 0.99):>10.0f}"
    )
    if to_broker:
        print(
            f"{'scan-to-broker (agent)':34}{statistics.median(to_broker):>10.0f}{pct(to_broker, 0.99):>10.0f}"
        )
    print(f"{'raw paho QoS 1 round trip':34}{statistics.median(raw_rt):>10.0f}{pct(raw_rt, 0.99):>10.0f}")
    agent_rate = args.backlog / result["drain_s"]
    raw_rate = args.backlog / raw_loop_s
    print(f"drain of {args.backlog} buffered events ({result['size']} bytes each): {result['drain_s']:.2f} s, "
          f"{agent_rate:,.0f} msg/s")  # fmt: skip
    print(f"raw paho QoS 1 loop, same size and window {WINDOW}: {raw_loop_s:.2f} s, {raw_rate:,.0f} msg/s")
    bridge_rate = args.backlog / bridge_s
    print(
        f"Mosquitto bridge, same backlog queued on a dock broker: {bridge_s:.2f} s, {bridge_rate:,.0f} msg/s"
    )
    print(f"drain rate / raw rate: {agent_rate / raw_rate:.0%}; / bridge: {agent_rate / bridge_rate:.0%}")
    figures = {
        "scans": args.scans, "backlog": args.backlog, "size": result["size"],
        "durable_p50_us": statistics.median(durable), "durable_p99_us": pct(durable, 0.99),
        "commit_p50_us": statistics.median(raw_commit), "commit_p99_us": pct(raw_commit, 0.99),
        "commit7_p50_us": statistics.median(raw_commit7), "commit7_p99_us": pct(raw_commit7, 0.99),
        "broker_p50_us": statistics.median(to_broker) if to_broker else None,
        "broker_p99_us": pct(to_broker, 0.99) if to_broker else None,
        "qos1_p50_us": statistics.median(raw_rt), "qos1_p99_us": pct(raw_rt, 0.99),
        "drain_rate": agent_rate, "raw_rate": raw_rate, "bridge_rate": bridge_rate,
    }  # fmt: skip
    if args.json:
        print("JSON " + json.dumps(figures))


if __name__ == "__main__":
    main()
