"""What `edge-fleet` says over MQTT: its client, the agents' retained states, one request and its
reply, and the fan-outs to a whole site (a command; a desired configuration), each agent answered
or marked offline or timed out under one deadline."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.config.yaml12 import loads

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class Fleet:
    def __init__(self, args: argparse.Namespace) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-fleet-{uuid.uuid4().hex[:10]}",
                                  protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        if args.username:
            self.client.username_pw_set(args.username, args.password)
        if args.ca or args.cert:
            self.client.tls_set(ca_certs=args.ca, certfile=args.cert, keyfile=args.key)
        self.messages: list[tuple[str, bytes, Any]] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *_a: connected.set()
        self.client.connect(args.host, args.port, 30)
        self.client.loop_start()
        if not connected.wait(10):
            raise SystemExit(f"edge-fleet: no answer from the broker at {args.host}:{args.port}")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.arrived:
            self.messages.append((msg.topic, bytes(msg.payload), getattr(msg, "properties", None)))
            self.arrived.notify_all()

    def subscribe(self, *topics: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe([(t, 1) for t in topics])
        done.wait(5)

    def collect(self, seconds: float) -> list[tuple[str, bytes, Any]]:
        time.sleep(seconds)
        with self.lock:
            return list(self.messages)

    def collect_until_quiet(self, quiet: float, limit: float) -> list[tuple[str, bytes, Any]]:
        deadline = time.monotonic() + limit
        with self.arrived:
            seen = -1
            while len(self.messages) != seen and time.monotonic() < deadline:
                seen = len(self.messages)
                self.arrived.wait(min(quiet, max(0.0, deadline - time.monotonic())))
            return list(self.messages)

    def wait_for(self, predicate: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for topic, payload, props in self.messages:
                    found = predicate(topic, payload, props)
                    if found is not None:
                        return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.arrived.wait(remaining)

    def publish(
        self, topic: str, payload: bytes, retain: bool = False, props: Properties | None = None
    ) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain, properties=props).wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def json_object(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def split_target(text: str) -> tuple[str, str | None]:
    site, _, device = text.partition("/")
    return site, device or None


def agents(
    fleet: Fleet, site: str | None, wait: float, quiet: float | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """Agents with a retained state. Retained messages arrive right after the subscription: with
    `quiet`, gathering ends once that long passes with nothing new (at most `wait`)."""
    s = site or "+"
    topics = [f"dock/v1/{s}/+/state"]
    if quiet is None:
        topics += [f"dock/v1/{s}/+/telemetry", f"dock/v1/{s}/+/printer/+/status"]
    fleet.subscribe(*topics)
    messages = fleet.collect(wait) if quiet is None else fleet.collect_until_quiet(quiet, wait)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for topic, payload, _ in messages:
        parts = topic.split("/")
        key = (parts[2], parts[3])
        entry = out.setdefault(key, {"site": parts[2], "device": parts[3], "printers": {}})
        data = json_object(payload)
        if parts[4] == "state" and data:
            entry["state"] = data
        elif parts[4] == "telemetry":
            entry["telemetry"] = data
        elif parts[4] == "printer" and data:
            entry["printers"][parts[5]] = data.get("state")
    return {k: v for k, v in out.items() if "state" in v}


def command(reply_topic: str, cmd_args: dict[str, Any]) -> tuple[str, bytes, Properties]:
    """A new command request: its request id, its payload, and the MQTT 5 properties that send the
    reply to `reply_topic` with the request id as correlation data."""
    request_id = uuid.uuid4().hex
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = reply_topic
    props.CorrelationData = request_id.encode()
    return request_id, json.dumps({"request_id": request_id, "args": cmd_args}).encode(), props


def request(
    fleet: Fleet, site: str, device: str, name: str, cmd_args: dict[str, Any], timeout: float
) -> dict[str, Any] | None:
    reply_topic = f"fleet/replies/{uuid.uuid4().hex}"
    fleet.subscribe(reply_topic)
    request_id, body, props = command(reply_topic, cmd_args)
    fleet.publish(f"dock/v1/{site}/{device}/cmd/{name}", body, props=props)

    def match(topic: str, payload: bytes, _p: Any) -> dict[str, Any] | None:
        data = json_object(payload)
        return data if topic == reply_topic and data.get("request_id") == request_id else None

    result: dict[str, Any] | None = fleet.wait_for(match, timeout)
    return result


def fan_out(
    fleet: Fleet, site: str | None, name: str, cmd_args: dict[str, Any], args: argparse.Namespace
) -> int:
    """One command to every agent with a retained state, all at once, one deadline for all."""
    started = time.monotonic()
    found = agents(fleet, site, wait=args.wait, quiet=0.3)
    rows: dict[str, dict[str, Any]] = {}
    pending: dict[str, str] = {}  # request id -> SITE/DEVICE
    reply_topic = f"fleet/replies/{uuid.uuid4().hex}"
    fleet.subscribe(reply_topic)
    infos = []
    for (s, d), entry in sorted(found.items()):
        who = f"{s}/{d}"
        if not entry["state"].get("online"):
            rows[who] = {"device": who, "status": "offline", "result": None,
                         "error": entry["state"].get("reason") or "offline"}  # fmt: skip
            continue
        request_id, body, props = command(reply_topic, cmd_args)
        pending[request_id] = who
        infos.append(fleet.client.publish(f"dock/v1/{s}/{d}/cmd/{name}", body, qos=1, properties=props))
    deadline = started + args.timeout
    for info in infos:
        info.wait_for_publish(max(0.1, deadline - time.monotonic()))
    answered: dict[str, dict[str, Any]] = {}
    with fleet.arrived:
        while len(answered) < len(pending) and time.monotonic() < deadline:
            for topic, payload, _ in fleet.messages:
                if topic == reply_topic:
                    data = json_object(payload)
                    if data.get("request_id") in pending:
                        answered[str(data["request_id"])] = data
            if len(answered) < len(pending):
                fleet.arrived.wait(max(0.0, min(0.2, deadline - time.monotonic())))
    for request_id, who in pending.items():
        reply = answered.get(request_id)
        if reply is None:
            rows[who] = {"device": who, "status": "timeout", "result": None,
                         "error": f"no reply within {args.timeout:g} s"}  # fmt: skip
        else:
            status = "ok" if reply.get("status") == "ok" else "error"
            rows[who] = {
                "device": who,
                "status": status,
                "result": reply.get("data"),
                "error": reply.get("error"),
            }
    ordered = [rows[k] for k in sorted(rows)]
    if args.json:
        print(json.dumps(ordered))
    else:
        print(f"{'DEVICE':24} {'STATUS':8} RESULT")
        for r in ordered:
            detail = r["result"] if r["status"] == "ok" else r["error"]
            print(f"{r['device']:24} {r['status']:8} {json.dumps(detail, separators=(',', ':'))[:200]}")
        counts = {
            k: sum(1 for r in ordered if r["status"] == k) for k in ("ok", "error", "offline", "timeout")
        }
        print(f"{len(ordered)} agents: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
              + f" ({time.monotonic() - started:.2f} s)", file=sys.stderr)  # fmt: skip
    return EXIT_OK if ordered and all(r["status"] == "ok" for r in ordered) else EXIT_ERROR


def config_push(fleet: Fleet, args: argparse.Namespace) -> int:
    site, device = split_target(args.target)
    overlay = loads(Path(args.file).read_text(encoding="utf-8"))
    if not isinstance(overlay, dict):
        print(f"edge-fleet: {args.file} must hold a mapping of configuration keys", file=sys.stderr)
        return EXIT_USAGE
    started = time.monotonic()
    found = agents(fleet, site, args.wait, quiet=0.3)
    if device:
        found = {k: v for k, v in found.items() if k[1] == device} or {
            (site, device): {"state": {"online": True}}
        }
    roots = {f"{s}/{d}": f"dock/v1/{s}/{d}" for (s, d) in found}
    online = {f"{s}/{d}": bool(entry["state"].get("online")) for (s, d), entry in found.items()}
    fleet.subscribe(*[t for r in roots.values() for t in (f"{r}/config/desired", f"{r}/config/reported")])
    seen = fleet.collect_until_quiet(0.3, 2.0)
    results: dict[str, dict[str, Any]] = {}
    waiting: dict[str, int] = {}
    for who, root in sorted(roots.items()):
        versions = [json_object(p).get("version", 0) for t, p, _ in seen
                    if t in (f"{root}/config/desired", f"{root}/config/reported")]  # fmt: skip
        version = max([v for v in versions if isinstance(v, int)] or [0]) + 1
        # retained: an offline agent applies it when it comes back
        fleet.publish(f"{root}/config/desired", json.dumps({"version": version, "config": overlay}).encode(),
                      retain=True)  # fmt: skip
        if online[who]:
            waiting[who] = version
        else:
            results[who] = {"device": who, "version": version, "status": "offline",
                            "error": "offline: it applies the retained configuration when it is back"}  # fmt: skip
    deadline = started + args.timeout
    while waiting and time.monotonic() < deadline:
        with fleet.lock:
            messages = list(fleet.messages)
        for topic, payload, _ in messages:
            for who, version in list(waiting.items()):
                data = json_object(payload)
                if topic == f"{roots[who]}/config/reported" and data.get("version") == version:
                    results[who] = {"device": who, "version": version, "status": data.get("status"),
                                    "error": data.get("error")}  # fmt: skip
                    del waiting[who]
        if waiting:
            with fleet.arrived:
                fleet.arrived.wait(0.2)
    for who, version in waiting.items():
        results[who] = {"device": who, "version": version, "status": "timeout",
                        "error": f"no reported state within {args.timeout:g} s"}  # fmt: skip
    ordered = [results[k] for k in sorted(results)]
    if args.json:
        print(json.dumps(ordered))
    else:
        for r in ordered:
            print(
                f"{r['device']}: version {r['version']} {r['status']}"
                + (f": {r['error']}" if r["error"] else "")
            )
    return EXIT_OK if ordered and all(r["status"] == "applied" for r in ordered) else EXIT_ERROR
