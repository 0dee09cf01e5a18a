"""The broker link with TLS and client certificates, and per-device ACLs, on a real Mosquitto
started with a TLS listener and require_certificate; the certificates are made here."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker
from tests.conftest import ROOT
from tests.harness import wait_until
from tests.test_doctor import doctor as run_doctor


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("broker", "dock-hel1-dock-07", "dock-hel1-dock-08", "central-hel1"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))  # fmt: skip
        extra = ["-extfile", str(d / "san.cnf")] if name == "broker" else []
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey",
                str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-out", str(d / f"{name}.pem"), *extra)  # fmt: skip
    return d


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Path):  # type: ignore[no-untyped-def]
    acl = tmp_path / "edge-agent.acl"
    acl.write_text(subprocess.run([sys.executable, "-m", "edge_agent.cli", "acl", "hel1", "dock-07", "dock-08"],
                                  capture_output=True, text=True, check=True, cwd=ROOT).stdout)  # fmt: skip
    for f in pki.iterdir():
        os.chmod(f, 0o644)  # mosquitto drops to another user
    b = Broker(tmp_path / "broker", extra_conf=(
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'broker.pem'}\nkeyfile {pki / 'broker.key'}\n"
        f"require_certificate true\nuse_identity_as_username true\nacl_file {acl}\n"))  # fmt: skip
    b.conf.write_text(b.conf.read_text().replace("allow_anonymous true\n", "allow_anonymous false\n"))
    b.start()
    yield b
    b.close()


class TlsClient:
    def __init__(
        self, port: int, pki: Path, name: str | None, subscribe: str | None = None,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    ) -> None:  # fmt: skip
        self.got: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.refused = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name or 'anon'}-{uuid.uuid4().hex[:6]}",
                                  protocol=protocol)  # fmt: skip
        self.client.tls_set(ca_certs=str(pki / "ca.pem"), certfile=str(pki / f"{name}.pem") if name else None,
                            keyfile=str(pki / f"{name}.key") if name else None)  # fmt: skip

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            if rc.is_failure:
                self.refused.set()
                return
            if subscribe:
                c.subscribe(subscribe, 1)
            self.connected.set()

        self.client.on_connect = on_connect
        self.client.on_message = lambda _c, _u, m: self.got.append((m.topic, bytes(m.payload)))
        try:
            self.client.connect("127.0.0.1", port)
        except (ssl.SSLError, OSError):
            self.refused.set()
            return
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_agent_over_tls_with_client_certificate_and_acls(
    tmp_path: Path, pki: Path, tls_broker: Broker
) -> None:
    central = TlsClient(tls_broker.port, pki, "central-hel1", subscribe="dock/v1/hel1/#")
    assert central.connected.wait(10)
    time.sleep(0.3)
    config = write_config(tmp_path, tls_broker.port, extra="")
    text = config.read_text().replace(
        f"port: {tls_broker.port},",
        f"port: {tls_broker.port}, tls: {{ca: {pki / 'ca.pem'}, cert: {pki / 'dock-hel1-dock-07.pem'}, "
        f"key: {pki / 'dock-hel1-dock-07.key'}}},",
    )
    config.write_text(text)
    agent = AgentProcess(config, tmp_path / "agent.log").start()
    # MQTT 3.1.1: the broker drops a denied publish silently (an MQTT 5 client may be disconnected)
    intruder = TlsClient(tls_broker.port, pki, "dock-hel1-dock-08", protocol=MQTTProtocolVersion.MQTTv311)
    try:
        wait_until(
            lambda: any(t == "dock/v1/hel1/dock-07/state" for t, _ in central.got), what="presence over TLS"
        )
        state = json.loads(next(p for t, p in central.got if t == "dock/v1/hel1/dock-07/state"))
        assert state["online"] is True
        reply = central.client.publish(
            "dock/v1/hel1/dock-07/cmd/ping", json.dumps({"request_id": "tls-1"}), qos=1
        )
        reply.wait_for_publish(10)
        wait_until(
            lambda: any(t == "dock/v1/hel1/dock-07/cmd/ping/reply" for t, _ in central.got), what="reply"
        )
        # dock-08 may not publish under dock-07's root; its own root is fine
        assert intruder.connected.wait(10)
        intruder.connected.clear()
        intruder.client.publish(
            "dock/v1/hel1/dock-07/event/scan", b'{"forged": true}', qos=1
        ).wait_for_publish(10)
        time.sleep(0.5)
        if not intruder.client.is_connected():
            assert intruder.connected.wait(10)  # paho reconnects by itself
        intruder.client.publish(
            "dock/v1/hel1/dock-08/event/alert", b'{"kind": "test"}', qos=1
        ).wait_for_publish(10)
        wait_until(
            lambda: any(t == "dock/v1/hel1/dock-08/event/alert" for t, _ in central.got), what="own root"
        )
        assert not any(p == b'{"forged": true}' for _, p in central.got)
        # without a client certificate there is no connection at all
        anonymous = TlsClient(tls_broker.port, pki, None)
        assert anonymous.refused.wait(10) or not anonymous.connected.wait(2)
    finally:
        agent.kill()
        intruder.close()
        central.close()


def test_secrets_are_not_logged_and_a_readable_config_is_warned(tmp_path: Path, broker: Broker) -> None:
    config = write_config(tmp_path, broker.port)
    text = config.read_text().replace(
        f"port: {broker.port},", f"port: {broker.port}, username: u1, password: s3cr3t-pw,"
    )
    config.write_text(text)
    os.chmod(config, 0o644)
    agent = AgentProcess(config, tmp_path / "agent.log").start()
    try:
        agent.wait_for("mqtt.connected")
        warning = agent.wait_for("config.readable_by_others")
        assert warning["mode"] == "0o644"
        log = (tmp_path / "agent.log").read_text()
        assert "s3cr3t-pw" not in log and "00112233445566778899aabbccddeeff" not in log
    finally:
        agent.kill()


def test_doctor_checks_tls_the_certificate_login_and_acl(
    tmp_path: Path, pki: Path, tls_broker: Broker
) -> None:
    config = write_config(tmp_path, tls_broker.port, extra="")
    good = config.read_text().replace(
        f"port: {tls_broker.port},",
        f"port: {tls_broker.port}, tls: {{ca: {pki / 'ca.pem'}, cert: {pki / 'dock-hel1-dock-07.pem'}, "
        f"key: {pki / 'dock-hel1-dock-07.key'}}},",
    )

    def doctor() -> dict[str, Any]:
        report = run_doctor(config)[1]
        return {c["check"]: c for c in report["checks"] if c["check"].startswith("broker")}

    config.write_text(good)
    rows = doctor()
    assert [rows[k]["status"] for k in ("broker tls", "broker", "broker login", "broker acl")] == [
        "ok"
    ] * 4, rows
    assert "the certificate verifies" in rows["broker tls"]["detail"]
    assert rows["broker login"]["detail"].startswith("accepted as the client certificate")
    # a CA that did not sign the broker's certificate
    other = tmp_path / "other-ca"
    other.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other",
            "-keyout", str(other / "ca.key"), "-out", str(other / "ca.pem"))  # fmt: skip
    config.write_text(good.replace(str(pki / "ca.pem"), str(other / "ca.pem")))
    rows = doctor()
    assert rows["broker tls"]["status"] == "fail", rows
    assert "the broker's certificate does not verify: self-signed certificate" in rows["broker tls"]["detail"]
    assert "mqtt.tls.ca" in rows["broker tls"]["fix"]
    # another dock's certificate: TLS and login pass, the ACL does not
    config.write_text(good.replace("dock-hel1-dock-07.", "dock-hel1-dock-08."))
    rows = doctor()
    assert rows["broker login"]["status"] == "ok" and rows["broker acl"]["status"] == "fail", rows
