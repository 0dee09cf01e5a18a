"""The link's paho client (edge_agent/sync/wire.py) on a real Mosquitto: packets written by the
threads that queue them, joined into one send, reads served from a buffer. Whatever the threads
and the socket do, every message arrives whole, once, in each sender's order."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent.sync import wire
from edge_agent.sync.wire import LinkClient
from tests.broker import Broker


class Collector:
    def __init__(self, port: int, topic: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collect-{time.time_ns()}",
                                  protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, 1)
        self.client.on_subscribe = lambda *_a: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(10)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((message.topic, bytes(message.payload)))

    def wait(self, n: int, timeout: float = 30.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # nothing more should come
        with self.lock:
            return list(self.got)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connected(port: int) -> tuple[LinkClient, list[int]]:
    acked: list[int] = []
    client = LinkClient(CallbackAPIVersion.VERSION2, client_id=f"wire-{time.time_ns()}",
                        protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
    client.max_inflight_messages_set(64)
    up = threading.Event()
    client.on_connect = lambda *_a: up.set()
    client.on_publish = lambda _c, _u, mid, *_a: acked.append(mid)
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert up.wait(10)
    return client, acked


def body(sender: str, i: int, size: int) -> bytes:
    head = f"{sender}:{i:06d}:".encode()
    return head + bytes([65 + i % 26]) * (size - len(head))


def check(got: list[tuple[str, bytes]], senders: dict[str, tuple[int, int]]) -> None:
    for sender, (n, size) in senders.items():
        mine = [p for t, p in got if t == f"wire/{sender}"]
        assert mine == [body(sender, i, size) for i in range(n)], (
            f"{sender}: {len(mine)} of {n}, or out of order"
        )


def test_threads_publishing_at_once_each_arrive_whole_once_and_in_order(broker: Broker) -> None:
    """Two threads publish QoS 1 and QoS 0 at once while paho's thread publishes from its PUBACK
    callback: writes from three threads, joined sends and paho's own writes interleave."""
    sink = Collector(broker.port, "wire/#")
    client, _acked = connected(broker.port)
    chained = {"n": 0}
    chain_mids: set[int] = set()

    def on_publish(c: Any, _u: Any, mid: int, *_a: Any) -> None:  # paho's thread: publish from here
        if mid in chain_mids and chained["n"] < 300:
            info = c.publish("wire/paho", body("paho", chained["n"], 120), qos=1)
            chained["n"] += 1
            chain_mids.add(info.mid)

    client.on_publish = on_publish
    first = client.publish("wire/paho", body("paho", 0, 120), qos=1)
    chained["n"] = 1
    chain_mids.add(first.mid)

    def sender(name: str, qos: int, n: int, size: int) -> None:
        for i in range(n):
            client.publish(f"wire/{name}", body(name, i, size), qos=qos)

    threads = [threading.Thread(target=sender, args=("a", 1, 2000, 200)),
               threading.Thread(target=sender, args=("b", 0, 500, 90))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = sink.wait(2000 + 500 + 300)
    client.disconnect()
    client.loop_stop()
    sink.close()
    check(got, {"a": (2000, 200), "b": (500, 90), "paho": (300, 120)})


def test_a_full_socket_buffer_mid_send_loses_and_reorders_nothing(broker: Broker) -> None:
    """The broker is frozen (SIGSTOP) while 30 MB are published, more than the socket buffers hold
    with 64 messages in flight: sends stop part-way through joined packets; once it runs again
    everything arrives, whole and in order."""
    assert broker.proc is not None
    sink = Collector(broker.port, "wire/#")
    client, acked = connected(broker.port)
    os.kill(broker.proc.pid, signal.SIGSTOP)
    try:
        for i in range(150):
            client.publish("wire/big", body("big", i, 200_000), qos=1)
        time.sleep(0.5)
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    got = sink.wait(150, timeout=60)
    deadline = time.monotonic() + 30
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    sink.close()
    check(got, {"big": (150, 200_000)})
    assert len(acked) == 150


def test_large_messages_and_bursts_of_small_ones_are_read_whole(broker: Broker) -> None:
    """Reads from the buffer and straight from the socket, with few socket reads per turn:
    megabyte messages between bursts of small ones all reach the client whole and in order."""
    client, _acked = connected(broker.port)
    got: list[bytes] = []
    subscribed = threading.Event()
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    client.subscribe("wire/in", 1)
    assert subscribed.wait(10)
    assert wire.READ_SYSCALLS < 10  # a megabyte needs more reads than one turn allows
    source = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="source", protocol=MQTTProtocolVersion.MQTTv5)
    source.connect("127.0.0.1", broker.port)
    source.loop_start()
    expected = []
    for i in range(60):
        size = 1_000_000 if i % 10 == 0 else 40
        expected.append(body("in", i, size))
        source.publish("wire/in", expected[-1], qos=1)
    deadline = time.monotonic() + 60
    while len(got) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.05)
    source.disconnect()
    source.loop_stop()
    client.disconnect()
    client.loop_stop()
    assert got == expected
