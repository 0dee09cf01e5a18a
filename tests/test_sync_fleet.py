"""Commands, desired configuration and bad input, against a real broker and the agent process."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from simulators.central import Central
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker
from tests.harness import type_payloads, wait_until

ROOT_T = "dock/v1/hel1/dock-07"


class V311Client:
    """A central system that speaks MQTT 3.1.1: no response topics, replies on cmd/{name}/reply."""

    def __init__(self, port: int) -> None:
        self.got: dict[str, list[dict[str, Any]]] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"v311-{uuid.uuid4().hex[:6]}",
                                  protocol=MQTTProtocolVersion.MQTTv311)  # fmt: skip
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_connect = lambda c, *_: (c.subscribe(f"{ROOT_T}/cmd/+/reply", 1), ready.set())
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(10)
        time.sleep(0.2)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.got.setdefault(msg.topic, []).append(json.loads(msg.payload))

    def command(self, name: str, body: str) -> dict[str, Any]:
        topic = f"{ROOT_T}/cmd/{name}/reply"
        before = len(self.got.get(topic, []))
        self.client.publish(f"{ROOT_T}/cmd/{name}", body, qos=1)
        wait_until(lambda: len(self.got.get(topic, [])) > before, what=f"{name} reply")
        return self.got[topic][-1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def running(tmp_path: Path, broker: Broker, central: Central, agents):  # type: ignore[no-untyped-def]
    """The shared broker, central and agent fixtures: an agent with a scanner and a 10-return manifest."""
    central.generate(10)
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
    agent = agents(config)
    agent.wait_for("manifest.applied", version=1)
    return central, agent, link, config


def test_every_command_answers_over_response_topics(running, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    central, agent, link, _ = running
    ping = central.command("dock-07", "ping")
    assert ping["status"] == "ok" and isinstance(ping["data"]["uptime_s"], int)
    assert ping["device"] == "dock-07" and ping["site"] == "hel1" and ping["v"] == 1 and "ts" in ping
    type_payloads(link, ["ORDER-A", "ORDER-B", "ORDER-C"])
    wait_until(lambda: central.report().get("dock-07", {}).get("unique") == 3, what="3 events")
    status = central.command("dock-07", "status")["data"]
    assert status["manifest_version"] == 1 and status["manifest_returns"] == 10
    assert status["scanners"][0]["id"] == "s1" and status["scanners"][0]["connected"] in (True, False)
    assert {"outbox_depth", "oldest_unsent_s", "printers", "config_version", "counters"} <= set(status)
    assert status["counters"]["scans_total"] == 3
    mode = central.command("dock-07", "set_mode", {"mode": "restock"})
    assert mode["status"] == "ok" and mode["data"]["mode"] == "restock"
    bad_mode = central.command("dock-07", "set_mode", {"mode": "sleep"})
    assert bad_mode["status"] == "error" and bad_mode["error"]["code"] == "bad_args"
    type_payloads(link, ["ORDER-D"])
    wait_until(lambda: central.report()["dock-07"]["unique"] == 4, what="4th event")
    assert central.devices["dock-07"].events[-1]["mode"] == "restock"
    replay = central.command("dock-07", "replay_events", {"from_seq": 2, "to_seq": 3})
    assert replay["status"] == "ok" and replay["data"]["count"] == 2
    wait_until(lambda: central.report()["dock-07"]["duplicates"] == 2, what="replayed events")
    assert central.report()["dock-07"]["inexact_duplicates"] == 0
    bad_range = central.command("dock-07", "replay_events", {"from_seq": 5, "to_seq": 1})
    assert bad_range["error"]["code"] == "bad_args"
    requests = len(central.requests)
    resync = central.command("dock-07", "manifest_resync")
    assert resync["status"] == "ok"
    wait_until(lambda: len(central.requests) > requests, what="manifest/request")
    assert central.requests[-1] == ("dock-07", 0)
    reload = central.command("dock-07", "reload_config")
    assert reload["status"] == "ok" and reload["data"]["scanners"] == ["s1"]
    unknown = central.command("dock-07", "self_destruct")
    assert unknown["status"] == "error" and unknown["error"]["code"] == "unknown_command"


def test_commands_over_mqtt_311_reply_topics(running, broker: Broker) -> None:  # type: ignore[no-untyped-def]
    client = V311Client(broker.port)
    try:
        ok = client.command("ping", json.dumps({"request_id": "p-1"}))
        assert ok["request_id"] == "p-1" and ok["status"] == "ok"
        assert client.command("nope", json.dumps({"request_id": "u-1"}))["error"]["code"] == "unknown_command"
        bad = client.command("status", "{not json")
        assert (
            bad["status"] == "error" and bad["error"]["code"] == "bad_request" and bad["request_id"] is None
        )
        missing = client.command("ping", json.dumps({"args": {}}))
        assert missing["error"]["code"] == "bad_request" and "request_id" in missing["error"]["message"]
    finally:
        client.close()


def test_agent_configured_for_mqtt_311(tmp_path: Path, broker: Broker) -> None:
    config = write_config(tmp_path, broker.port, protocol="3.1.1")
    agent = AgentProcess(config, tmp_path / "agent.log").start()
    client = V311Client(broker.port)
    try:
        agent.wait_for("mqtt.connected", protocol="3.1.1")
        reply = client.command("ping", json.dumps({"request_id": "x"}))
        assert reply["status"] == "ok"
    finally:
        client.close()
        agent.kill()


def desired(central: Central, version: int, config: dict[str, Any]) -> None:
    central.client.publish(f"{ROOT_T}/config/desired", json.dumps({"version": version, "config": config}),
                           qos=1, retain=True).wait_for_publish(10)  # fmt: skip


def reported(central: Central) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p in list(central.messages) if t.endswith("/config/reported")]


def test_desired_config_hot_applies_persists_and_rejects(running, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    central, agent, link, config = running
    link2 = tmp_path / "s2"
    desired(central, 3, {"scanners": [{"id": "s1", "type": "serial", "port": str(link)},
                                      {"id": "s2", "type": "serial", "port": str(link2)}],
                         "telemetry_interval_s": 1})  # fmt: skip
    wait_until(lambda: any(r["version"] == 3 for r in reported(central)), what="reported 3")
    assert reported(central)[-1] == {
        **reported(central)[-1],
        "version": 3,
        "status": "applied",
        "error": None,
    }
    type_payloads(link2, ["FROM-S2"])
    wait_until(
        lambda: central.report().get("dock-07", {}).get("unique") == 1, what="scan from the new scanner"
    )
    assert central.devices["dock-07"].events[0]["scanner"] == "s2"
    # not greater than the applied version: ignored, no new report
    count = len(reported(central))
    desired(central, 2, {"telemetry_interval_s": 99})
    time.sleep(1.0)
    assert len(reported(central)) == count
    # invalid: rejected with the key named, the running configuration kept
    desired(central, 4, {"scanners": [{"id": "s1", "type": "serial"}]})
    wait_until(lambda: any(r["version"] == 4 for r in reported(central)), what="reported 4")
    rejected = reported(central)[-1]
    assert rejected["status"] == "rejected" and "scanners[0].port" in rejected["error"]
    desired(central, 5, {"mqtt": {"host": "elsewhere"}})
    wait_until(lambda: any(r["version"] == 5 for r in reported(central)), what="reported 5")
    assert reported(central)[-1]["status"] == "rejected" and "mqtt" in reported(central)[-1]["error"]
    assert central.command("dock-07", "ping")["status"] == "ok"
    # survives a restart, and an offline boot (the overlay is in storage, not fetched)
    agent.terminate()
    central.client.publish(f"{ROOT_T}/config/desired", b"", qos=1, retain=True).wait_for_publish(10)
    agent.start()
    started = agent.wait_for("agent.started")
    assert started["config_version"] == 3 and started["scanners"] == ["s1", "s2"]


def test_bad_input_is_answered_and_loses_nothing(running, broker: Broker) -> None:  # type: ignore[no-untyped-def]
    central, agent, link, _ = running

    def alerts() -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in list(central.messages) if t.endswith("/event/alert")]

    pub = central.client.publish
    pub("dock/v1/hel1/manifest", b"\xff\xfe not json", qos=1)
    pub("dock/v1/hel1/manifest", json.dumps({"version": "seven", "base_version": None}), qos=1)
    pub(f"{ROOT_T}/config/desired", b"[1,2,3]", qos=1)
    pub(f"{ROOT_T}/config/desired", b"x" * (1024 * 1024 + 10), qos=1)
    wait_until(lambda: len(alerts()) >= 4, what="4 alerts")
    kinds = {a["kind"] for a in alerts()}
    assert kinds == {"bad_message"}
    topics = [a["topic"] for a in alerts()]
    assert topics.count("dock/v1/hel1/manifest") == 2 and topics.count(f"{ROOT_T}/config/desired") == 2
    assert any("version" in a["error"] for a in alerts())
    assert any("max_payload_bytes" in a["error"] for a in alerts())
    for a in alerts():
        assert a["device"] == "dock-07" and a["v"] == 1
    # nothing else was lost: the manifest still matches, scans still flow, commands still answer
    type_payloads(link, [central.returns[0]["order_number"]])
    wait_until(lambda: central.report().get("dock-07", {}).get("unique") == 1, what="a scan")
    assert central.devices["dock-07"].events[0]["outcome"] == "expected"
    assert central.command("dock-07", "ping")["status"] == "ok"


def test_manifest_delta_in_step_and_out_of_step(running) -> None:  # type: ignore[no-untyped-def]
    central, agent, link, _ = running
    new = {"return_id": "R9999999", "order_number": "SO-NEW-1", "keys": {}, "items": []}
    version = central.publish_delta([new], deletes=[central.returns[0]["return_id"]])
    agent.wait_for("manifest.applied", version=version)
    type_payloads(link, ["SO-NEW-1", central.returns[0]["order_number"]])
    wait_until(lambda: central.report().get("dock-07", {}).get("unique") == 2, what="2 scans")
    assert [e["outcome"] for e in central.devices["dock-07"].events] == ["expected", "unknown"]
    # a delta whose base is not our version: the agent asks for what it misses
    central.serve_requests = False
    central.client.publish("dock/v1/hel1/manifest", json.dumps(
        {"version": 50, "base_version": 40, "upserts": [], "deletes": []}), qos=1)  # fmt: skip
    wait_until(lambda: ("dock-07", version) in central.requests, what="manifest/request with have_version")
