"""The outbox publisher and the MQTT link on a real Mosquitto: rows handed over in memory by the
writer thread, packets written by the thread that queues them, PUBACKs that are not ours."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent.config import MqttConfig
from edge_agent.store import outbox
from edge_agent.store.db import AGENT_DB, open_agent_db
from edge_agent.store.outbox import OutboxRow
from edge_agent.store.reader import Reader
from edge_agent.store.writer import Writer
from edge_agent.sync.link import Inbound, MqttLink
from edge_agent.sync.publisher import OutboxPublisher
from edge_agent.sync.topics import Topics
from tests.broker import Broker
from tests.harness import wait_until_async

TOPIC = "dock/v1/hel1/pub-01/event/scan"


class Watcher:
    """A subscriber in its own paho client: payloads in arrival order."""

    def __init__(self, port: int, topic: str) -> None:
        self.got: list[bytes] = []
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{time.time_ns()}",
                                  protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, 1)
        self.client.on_subscribe = lambda *_a: ready.set()
        self.client.on_message = lambda _c, _u, m: self.got.append(bytes(m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Rig:
    link: MqttLink
    publisher: OutboxPublisher
    writer: Writer
    inbound: list[Inbound]

    async def enqueue(self, payload: bytes, ready: bool = True) -> int:
        return (await self.writer.submit(lambda c: outbox.enqueue(c, TOPIC, payload, ready=ready))).value


@asynccontextmanager
async def rig(tmp_path: Path, port: int, on_message: Any = None) -> AsyncIterator[Rig]:
    writer = Writer(lambda: open_agent_db(tmp_path), "writer")
    writer.start()
    reader = Reader(tmp_path / AGENT_DB)
    inbound: list[Inbound] = []
    holder: dict[str, OutboxPublisher] = {}

    async def connected(_present: bool) -> None:
        holder["p"].on_connected()

    config = MqttConfig(host="127.0.0.1", port=port, keepalive_s=5)
    link = MqttLink(config, Topics("hel1", "pub-01"), b"{}", on_message or inbound.append, connected,
                    lambda mid: holder["p"].puback(mid))  # noqa: PLW0108 (made below)  # fmt: skip
    publisher = holder["p"] = OutboxPublisher(link, reader, writer, 3600.0)
    await link.start()
    await publisher.start()
    tasks = [asyncio.create_task(link.run()), asyncio.create_task(publisher.run())]
    try:
        await asyncio.wait_for(link.connected.wait(), 10)
        yield Rig(link, publisher, writer, inbound)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await link.stop()
        await publisher.stop()
        writer.stop()
        reader.close()


def test_rows_handed_over_by_the_writer_thread_go_out_once_in_order(tmp_path: Path, broker: Broker) -> None:
    """The writer thread hands each committed row over; one that is not the next row (another row
    committed before it was never read) is refused and read from storage; nothing goes out
    twice and the order at the subscriber is the outbox's."""
    watcher = Watcher(broker.port, TOPIC)

    async def main() -> None:
        async with rig(tmp_path, broker.port) as r:
            first = await r.enqueue(b'{"n":0}')
            await wait_until_async(lambda: watcher.got == [b'{"n":0}'], "the first row, read from storage")
            taken = []
            for n in range(1, 41):
                body = json.dumps({"n": n}).encode()
                before = json.dumps({"n": n, "read": True}).encode() if n % 10 == 0 else None

                def fn(conn: Any, body: bytes = body, before: bytes | None = before) -> int:
                    if before is not None:
                        # a row committed without a hand-over (a print event, say) comes first,
                        # in the same transaction: whether or not a read sees the two rows before
                        # the hand-over, the handed row is not the next one after that read
                        outbox.enqueue(conn, TOPIC, before)
                    return outbox.enqueue(conn, TOPIC, body)

                def durable(row_id: int, body: bytes = body) -> None:
                    taken.append(
                        r.publisher.hand_over(OutboxRow(row_id, TOPIC, body, 1, False, None, "scan"))
                    )

                await r.writer.submit(fn, durable=durable)
                if not taken[-1]:
                    r.publisher.wake()
                    # read from storage before the next hand-over (which, while that read is
                    # still going, would rightly be refused too and read as well)
                    await wait_until_async(lambda n=n: len(watcher.got) == 1 + n + n // 10, f"row {n} read")
            await wait_until_async(lambda: len(watcher.got) == 45, "45 rows")
            assert r.publisher.handed_over == sum(taken)
            refused = {i + 1 for i, t in enumerate(taken) if not t}
            # rows 10, 20, 30, 40 came after a row nobody handed over: refused, read instead
            assert {10, 20, 30, 40} <= refused
            # any other row is taken unless a read (woken by a PUBACK) saw it in the microseconds
            # between its commit and its hand-over, which is rare
            assert len(refused) <= 8, refused
            await wait_until_async(lambda: r.publisher.acked_total == 45, "every PUBACK")
            assert first > 0

    asyncio.run(main())
    watcher.close()
    numbers = [(json.loads(p)["n"], json.loads(p).get("read", False)) for p in watcher.got]
    expected = [(0, False)]
    for n in range(1, 41):
        if n % 10 == 0:
            expected.append((n, True))
        expected.append((n, False))
    assert numbers == expected


def test_a_packet_queued_by_another_thread_is_written_while_paho_s_thread_is_busy(
    tmp_path: Path, broker: Broker
) -> None:
    """A publish from the event loop reaches the broker at once, even while paho's network thread
    is held up (here: inside a message callback), because the queueing thread writes it."""
    watcher = Watcher(broker.port, TOPIC)
    release = threading.Event()
    inside = threading.Event()

    def blocking(_message: Inbound) -> None:  # runs in paho's network thread
        inside.set()
        release.wait(10)

    async def main() -> None:
        async with rig(tmp_path, broker.port, on_message=blocking) as r:
            topic = f"{r.link._topics.root}/cmd/ping"
            poke = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id="poke", protocol=MQTTProtocolVersion.MQTTv5
            )
            poke.connect("127.0.0.1", broker.port)
            poke.loop_start()
            poke.publish(topic, b"{}", qos=1)
            await asyncio.to_thread(inside.wait, 10)
            assert inside.is_set()
            r.link.publish(TOPIC, b'{"while":"busy"}', 1)
            await wait_until_async(
                lambda: watcher.got == [b'{"while":"busy"}'], "the event, paho's thread still busy"
            )
            assert not release.is_set()
            release.set()
            poke.disconnect()
            poke.loop_stop()

    asyncio.run(main())
    watcher.close()


def test_a_puback_that_is_not_ours_never_retires_a_row(tmp_path: Path, broker: Broker) -> None:
    """paho reports QoS 0 messages (telemetry, replies) to the same callback as PUBACKs. Such a mid
    must be forgotten: once paho's counter wraps, an outbox row gets the same mid, and it must
    stay unacknowledged until the broker acknowledges it. The broker is frozen (SIGSTOP) so no
    PUBACK can come; paho's counter is set back to reach the wrap within the test."""
    assert broker.proc is not None

    async def main() -> None:
        async with rig(tmp_path, broker.port) as r:
            client: Any = r.link._client
            mid = r.link.publish("dock/v1/hel1/pub-01/telemetry", b"{}", 0)  # QoS 0: "published" at once
            await asyncio.sleep(0.2)
            os.kill(broker.proc.pid, signal.SIGSTOP)
            try:
                with client._mid_generate_mutex:
                    client._last_mid = mid - 1  # the next message gets the telemetry's mid
                await r.enqueue(b'{"n":1}')
                r.publisher.wake()
                await wait_until_async(lambda: r.publisher.published == 1, "the row handed to paho")
                await asyncio.sleep(0.5)
                assert r.publisher.acked_total == 0, "a row retired without the broker's PUBACK"
            finally:
                os.kill(broker.proc.pid, signal.SIGCONT)
            await wait_until_async(lambda: r.publisher.acked_total == 1, "the real PUBACK")

    asyncio.run(main())
