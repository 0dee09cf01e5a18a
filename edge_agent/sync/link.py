"""The MQTT link to the broker, through paho-mqtt 2.x.

Theory of operation: one paho client per connection attempt, its network thread started with
`loop_start()`. A fresh client each time means nothing paho queued on a dead connection is sent
again behind our back: after a reconnect the outbox publisher alone decides what goes out, from
the first unacknowledged row, in order. The broker keeps our session (clean start false, session
expiry), so subscriptions and the QoS 1 messages queued for us while offline survive.

On CONNACK (in paho's thread) the subscriptions are sent at once, before anything else, and the
event loop is told; it publishes the retained presence and starts the outbox. An incoming message
is first shown to `screen` in paho's thread (sync/screen.py): a bad one is answered and
acknowledged there. Every other callback crosses into the event loop with `call_soon_threadsafe`. Incoming messages are acknowledged
(manual ack) only after they were handled, so a crash before that means a redelivery.

Several brokers (`mqtt.servers`, a cluster's nodes or a pair): the link is on one at a time. When
it cannot connect, or loses the connection, it tries the next one in the list at once; only when
a whole round has failed does it wait, with jittered exponential backoff from 0.5 s up to 30 s.
After losing a connection it waits a random 0.1-1.5 s before the next attempt, so a site whose
broker restarts does not come back in one burst. Wherever it lands, the outbox publisher starts
again at the first row not acknowledged: the new broker gets everything the old one may not
have (the central system drops repeats by `event_id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from drivers.backoff import backoff_delays
from edge_agent.config import MqttConfig
from edge_agent.sync.topics import Topics
from edge_agent.sync.wire import LinkClient


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    payload: bytes
    qos: int
    mid: int
    response_topic: str | None
    correlation: bytes | None
    client: mqtt.Client


class NotConnected(Exception):
    pass


class _PackedProperties(Properties):
    """PUBLISH properties packed once: paho packs properties on every publish, which halves the
    rate of a backlog drain; ours are the same for every message but replies."""

    def __init__(self, **values: Any) -> None:
        super().__init__(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        for name, value in values.items():
            setattr(self, name, value)
        object.__setattr__(self, "_packed", super().pack())  # type: ignore[no-untyped-call]  # (Properties refuses unknown attributes)

    def pack(self) -> bytes:
        packed: bytes = object.__getattribute__(self, "_packed")
        return packed


_JSON_PROPS = _PackedProperties(ContentType="application/json")


class MqttLink:
    inflight_window = 64
    receive_maximum = 32

    def __init__(
        self,
        config: MqttConfig,
        topics: Topics,
        will_payload: bytes,
        on_message: Callable[[Inbound], None],
        on_connected: Callable[[bool], Awaitable[None]],
        on_puback: Callable[[int], None],
        screen: Callable[[Inbound], bool] | None = None,
    ) -> None:
        self.name = "mqtt"
        self._screen = screen
        self._config = config
        self._topics = topics
        self._will = will_payload
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_puback = on_puback
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connack: asyncio.Future[tuple[bool, ReasonCode]] | None = None
        self._lost: asyncio.Event = asyncio.Event()
        self.connected = asyncio.Event()
        self.connects = 0
        self._servers = config.endpoints()
        self._index = 0
        self.server: str | None = None
        """`host:port` of the broker the link is on now; None while it is on none."""
        self.moves = 0
        """Times the link came up on a different broker than the one before."""
        self._last_server: str | None = None
        self._log = structlog.get_logger("edge_agent.sync").bind(component="mqtt", client_id=topics.client_id)

    @property
    def v5(self) -> bool:
        return self._config.protocol == "5"

    def _make_client(self) -> mqtt.Client:
        cfg = self._config
        if self.v5:
            client = LinkClient(
                CallbackAPIVersion.VERSION2,
                client_id=self._topics.client_id,
                protocol=MQTTProtocolVersion.MQTTv5,
                reconnect_on_failure=False,
                manual_ack=True,
            )
        else:
            client = LinkClient(
                CallbackAPIVersion.VERSION2,
                client_id=self._topics.client_id,
                clean_session=False,
                protocol=MQTTProtocolVersion.MQTTv311,
                reconnect_on_failure=False,
                manual_ack=True,
            )
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password.get_secret_value() if cfg.password else None)
        if cfg.tls is not None:
            client.tls_set(
                ca_certs=str(cfg.tls.ca) if cfg.tls.ca else None,
                certfile=str(cfg.tls.cert) if cfg.tls.cert else None,
                keyfile=str(cfg.tls.key) if cfg.tls.key else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        will_props = None
        if self.v5:
            will_props = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
            will_props.ContentType = "application/json"
        client.will_set(self._topics.state, self._will, qos=1, retain=True, properties=will_props)
        client.max_inflight_messages_set(self.inflight_window)  # QoS 1 messages on the wire, unacknowledged
        client.max_queued_messages_set(0)
        client.on_socket_open = _no_delay
        client.on_connect = self._cb_connect
        client.on_disconnect = self._cb_disconnect
        client.on_message = self._cb_message
        client.on_publish = self._cb_publish
        return client

    # --- paho's thread -------------------------------------------------------------------
    def _cb_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any) -> None:
        if client is not self._client or self._loop is None:
            return
        if not reason.is_failure:
            if self.v5:
                client.subscribe([(t, SubscribeOptions(qos=1)) for t in self._topics.subscriptions()])
            else:
                client.subscribe([(t, 1) for t in self._topics.subscriptions()])
        present = bool(getattr(flags, "session_present", False))
        self._loop.call_soon_threadsafe(self._set_connack, present, reason)

    def _set_connack(self, present: bool, reason: ReasonCode) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result((present, reason))

    def _cb_disconnect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if client is self._client and self._loop is not None:
            self._loop.call_soon_threadsafe(self._lost.set)

    def _cb_message(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if self._loop is None:
            return
        props = getattr(message, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        inbound = Inbound(
            message.topic,
            bytes(message.payload),
            message.qos,
            message.mid,
            response_topic,
            correlation,
            client,
        )
        if self._screen is not None and self._screen(inbound):
            # judged and answered here, in this thread: it never waits in the loop before scans
            if message.qos > 0:
                with contextlib.suppress(Exception):
                    client.ack(message.mid, message.qos)
            return
        self._loop.call_soon_threadsafe(self._on_message, inbound)

    def _cb_publish(self, client: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        # Called in paho's thread: the outbox publisher is built for that (see its docstring).
        if client is self._client:
            self._on_puback(mid)

    # --- event loop -------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def run(self) -> None:
        delays = backoff_delays(0.5, 30.0)
        failed_in_round = 0
        while True:
            host, port = self._servers[self._index]
            before = self.connects
            try:
                await self._session(host, port)
            except (OSError, TimeoutError, NotConnected, ssl.SSLError) as exc:
                self._log.warning(
                    "mqtt.connect_failed", server=f"{host}:{port}", error=str(exc) or type(exc).__name__
                )
            self._index = (self._index + 1) % len(self._servers)
            if self.connects > before:  # it was up, then lost: spread the fleet's comeback
                failed_in_round = 0
                delays = backoff_delays(0.5, 30.0)
                delay = random.uniform(0.1, 1.5)
            else:
                failed_in_round += 1
                if failed_in_round < len(self._servers):
                    continue  # the next broker of this round, at once
                failed_in_round = 0
                delay = next(delays)
            self._log.info(
                "mqtt.reconnect_wait",
                delay_s=round(delay, 2),
                next_server="{}:{}".format(*self._servers[self._index]),
            )
            await asyncio.sleep(delay)

    async def _session(self, host: str, port: int) -> None:
        assert self._loop is not None
        client = self._make_client()
        self._client = client
        self._lost = asyncio.Event()
        self._connack = self._loop.create_future()
        cfg = self._config
        props = None
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = cfg.session_expiry_s
            # Flow control: at most this many QoS 1 messages unacknowledged towards us. A flood
            # then arrives at the pace we take it in, and our PUBACKs never pile up in paho's
            # outgoing queue in front of a scan event (bench/flood.py, tests/test_flood.py).
            props.ReceiveMaximum = self.receive_maximum
        server = f"{host}:{port}"
        try:
            await asyncio.to_thread(
                client.connect,
                host,
                port,
                cfg.keepalive_s,
                clean_start=False if self.v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=props,
            )
            client.loop_start()
            async with asyncio.timeout(max(10, cfg.keepalive_s)):
                present, reason = await asyncio.shield(self._connack)
            if reason.is_failure:
                raise NotConnected(f"broker {server} refused the connection: {reason}")
            self.connects += 1
            moved = self._last_server is not None and self._last_server != server
            if moved:
                self.moves += 1
            self.server = self._last_server = server
            self._log.info(
                "mqtt.connected", server=server, moved=moved, session_present=present, protocol=cfg.protocol
            )
            self.connected.set()
            await self._on_connected(present)
            await self._lost.wait()
            self._log.warning("mqtt.disconnected", server=server)
        finally:
            self.connected.clear()
            self._client = None
            self.server = None
            await asyncio.to_thread(self._teardown, client)

    @staticmethod
    def _teardown(client: mqtt.Client) -> None:
        with contextlib.suppress(Exception):
            client.disconnect()
        with contextlib.suppress(Exception):
            client.loop_stop()

    def publish(
        self, topic: str, payload: bytes, qos: int, retain: bool = False, correlation: bytes | None = None
    ) -> int:
        """Hand a message to paho; returns its mid. Raises NotConnected when there is no link."""
        client = self._client
        if client is None or not self.connected.is_set():
            raise NotConnected("not connected")
        props: Properties | None = None
        if self.v5:
            props = _JSON_PROPS
            if correlation is not None:
                props = _PackedProperties(ContentType="application/json", CorrelationData=correlation)
        info = client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise NotConnected(f"publish refused: {mqtt.error_string(info.rc)}")
        return int(info.mid)

    def ack(self, message: Inbound) -> None:
        if message.qos > 0 and message.client is self._client:
            with contextlib.suppress(Exception):
                message.client.ack(message.mid, message.qos)

    async def goodbye(self, payload: bytes, timeout: float = 3.0) -> None:
        """Clean shutdown: the retained offline state, acknowledged, then DISCONNECT."""
        client = self._client
        if client is None or not self.connected.is_set():
            return
        info = client.publish(self._topics.state, payload, qos=1, retain=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.to_thread(info.wait_for_publish, timeout), timeout + 1)
        self._client = None
        await asyncio.to_thread(self._teardown, client)
        self.connected.clear()

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(self._teardown, client)
        self.connected.clear()


def _no_delay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    """TCP_NODELAY: a scan event must not wait behind Nagle for the broker to acknowledge the
    previous small packet. After a QoS 0 message (telemetry) the broker sends no MQTT answer, so
    its TCP delays the ACK (40 ms on Linux) and a scan event written then waited that long
    (bench/stall.py: a 25-40 ms stall once a second with telemetry at 1 s)."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def json_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")
