"""The broker: reachable, its TLS, the login, and the ACL for the agent's own topics.

The doctor connects with a client id of its own (`…-doctor`) and a clean session: the agent's
session (its queued messages, its presence) is left alone. It subscribes to the agent's topic
filters and to `{root}/doctor`, and publishes one QoS 1 message there, which only the doctor
subscribes to. The broker's SUBACK and PUBACK reason codes (MQTT 5) say whether the ACL allows
them; Mosquitto accepts every subscription and filters at delivery instead, so the message must
also come back to prove the agent may read under its root.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge_agent.config import AgentConfig
from edge_agent.doctor.model import Check, fail, ok, warn
from edge_agent.sync.topics import Topics

TIMEOUT_S = 5.0
LOGIN_REFUSED = {"Bad user name or password", "Not authorized", "Banned", "Bad authentication method"}


def _tls_context(config: AgentConfig) -> ssl.SSLContext:
    tls = config.mqtt.tls
    assert tls is not None
    context = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
    if tls.cert:
        context.load_cert_chain(str(tls.cert), str(tls.key) if tls.key else None)
    return context


def _reach(config: AgentConfig) -> tuple[list[Check], tuple[str, int] | None]:
    rows, first = [], None
    for host, port in config.mqtt.endpoints():
        try:
            with socket.create_connection((host, port), timeout=TIMEOUT_S) as sock:
                if config.mqtt.tls is not None:
                    with _tls_context(config).wrap_socket(sock, server_hostname=host) as tls:
                        version = tls.version()
                    rows.append(ok("broker tls", f"{host}:{port}: {version}, the certificate verifies"))
        except ssl.SSLCertVerificationError as exc:
            rows.append(fail("broker tls", f"{host}:{port}: the broker's certificate does not verify: {exc.verify_message}",
                             "give mqtt.tls.ca the CA that signed the broker's certificate, and use the "
                             "broker's name as in its certificate for mqtt.host"))  # fmt: skip
            continue
        except ssl.SSLError as exc:
            rows.append(fail("broker tls", f"{host}:{port}: {exc.reason or exc}",
                             "check mqtt.tls.cert and mqtt.tls.key (the agent's certificate) and that the "
                             "broker's port speaks TLS"))  # fmt: skip
            continue
        except OSError as exc:
            rows.append(fail("broker", f"{host}:{port}: {exc.strerror or exc or 'timed out'}",
                             "check mqtt.host and mqtt.port, the network, and that the broker runs"))  # fmt: skip
            continue
        rows.append(ok("broker", f"{host}:{port} answers"))
        first = first or (host, port)
    return rows, first


class _Probe:
    """One short MQTT session: connect, subscribe, publish, and the broker's answers."""

    def __init__(self, config: AgentConfig, topics: Topics) -> None:
        v5 = config.mqtt.protocol == "5"
        self.v5 = v5
        # a clean session: clean_session for 3.1.1; MQTT 5 starts clean by default
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{topics.client_id}-doctor-{os.getpid()}",
                                  protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
                                  clean_session=None if v5 else True)  # fmt: skip
        cfg = config.mqtt
        if cfg.username is not None:
            self.client.username_pw_set(
                cfg.username, cfg.password.get_secret_value() if cfg.password else None
            )
        if cfg.tls is not None:
            self.client.tls_set_context(_tls_context(config))
        self.connected = threading.Event()
        self.suback = threading.Event()
        self.puback = threading.Event()
        self.echoed = threading.Event()
        self.connack: ReasonCode | None = None
        self.granted: list[ReasonCode] = []
        self.published: ReasonCode | None = None
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = lambda *_a: self.connected.set()
        self.client.on_message = lambda *_a: self.echoed.set()

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connack = reason
        self.connected.set()

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
        self.granted = list(codes)
        self.suback.set()

    def _on_publish(self, _c: Any, _u: Any, _mid: int, reason: ReasonCode, _p: Any) -> None:
        self.published = reason
        self.puback.set()


def broker_rows(config: AgentConfig) -> list[Check]:
    rows, endpoint = _reach(config)
    if endpoint is None:
        return rows
    topics = Topics(config.device.site, config.device.id)
    probe = _Probe(config, topics)
    host, port = endpoint
    try:
        probe.client.connect(host, port, keepalive=30)
    except (OSError, ValueError) as exc:
        return [
            *rows,
            fail("broker login", f"{host}:{port}: {exc}", "check mqtt.host, mqtt.port and mqtt.tls"),
        ]
    probe.client.loop_start()
    try:
        return rows + _session(config, topics, probe)
    finally:
        with contextlib.suppress(Exception):
            probe.client.disconnect()
        probe.client.loop_stop()


def _session(config: AgentConfig, topics: Topics, probe: _Probe) -> list[Check]:
    if not probe.connected.wait(TIMEOUT_S) or probe.connack is None:
        return [fail("broker login", "the broker did not answer the MQTT CONNECT",
                     "check that mqtt.port is the broker's MQTT port (TLS: usually 8883)")]  # fmt: skip
    user = config.mqtt.username or (
        "the client certificate" if config.mqtt.tls and config.mqtt.tls.cert else None
    )
    if probe.connack.is_failure:
        why = str(probe.connack)
        if why in LOGIN_REFUSED:
            return [fail("broker login", f"the broker refused the login ({why}) as {user or 'anonymous'}",
                         "the broker refused the login: check mqtt.username and mqtt.password "
                         "(or the client certificate in mqtt.tls)")]  # fmt: skip
        return [fail("broker login", f"the broker refused the connection: {why}",
                     "check the broker's log for why it refused this client")]  # fmt: skip
    rows = [ok("broker login", f"accepted as {user or 'anonymous'} (MQTT {config.mqtt.protocol})")]
    subs = topics.subscriptions()
    echo = f"{topics.root}/doctor"
    if probe.v5:
        probe.client.subscribe([(t, SubscribeOptions(qos=1)) for t in [*subs, echo]])
    else:
        probe.client.subscribe([(t, 1) for t in [*subs, echo]])
    if probe.suback.wait(TIMEOUT_S):
        probe.client.publish(echo, b'{"doctor":true}', qos=1)
    acl_fix = (f"let {topics.client_id} read and write {topics.root}/# and read "
               f"dock/v1/{config.device.site}/manifest (`edge-agent acl {config.device.site} {config.device.id}` "
               "prints the Mosquitto rules)")  # fmt: skip
    if not probe.suback.wait(TIMEOUT_S):
        return [*rows, fail("broker acl", "no answer to SUBSCRIBE", acl_fix)]
    denied = [t for t, code in zip([*subs, echo], probe.granted, strict=False) if code.is_failure]
    if denied:
        rows.append(fail("broker acl", f"the broker refused the subscriptions {', '.join(denied)}", acl_fix))
    if not probe.puback.wait(TIMEOUT_S):
        rows.append(fail("broker acl", f"no PUBACK for a publish to {topics.root}/doctor", acl_fix))
    elif probe.published is not None and probe.published.is_failure:
        rows.append(fail("broker acl", f"the broker refused a publish to {topics.root}/doctor ({probe.published})",
                         acl_fix))  # fmt: skip
    elif not probe.echoed.wait(TIMEOUT_S):
        rows.append(fail("broker acl", f"a message published to {echo} did not come back: the broker does not "
                         "let the agent read under its root", acl_fix))  # fmt: skip
    elif not denied:
        detail = f"may subscribe to its {len(subs)} topic filters and publish under {topics.root}"
        if not probe.v5:
            rows.append(warn("broker acl", detail + " (MQTT 3.1.1 cannot tell a refused publish)",
                             "use mqtt.protocol 5 for the broker to report ACL refusals"))  # fmt: skip
        else:
            rows.append(ok("broker acl", detail))
    return rows
