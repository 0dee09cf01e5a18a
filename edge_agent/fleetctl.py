"""`edge-fleet`: one tool for fleet admins, over the same MQTT contract as the central system.

    edge-fleet ls [--site S] [--json]
    edge-fleet cmd SITE/DEVICE|SITE/*|--all NAME [ARGS-JSON] [--timeout S] [--json]
    edge-fleet config push SITE/DEVICE|SITE FILE [--timeout S] [--json]
    edge-fleet tail [SITE[/DEVICE]] [--json] [--count N]
    edge-fleet manifest push SITE FILE [--version N] [--base N] [--chunk N]

Broker options (`--host`, `--port`, `--username`, `--password`, `--ca`, `--cert`, `--key`) come
first; `EDGE_FLEET_HOST` and `EDGE_FLEET_PORT` set defaults.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

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


def _json(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _target(text: str) -> tuple[str, str | None]:
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
        data = _json(payload)
        if parts[4] == "state" and data:
            entry["state"] = data
        elif parts[4] == "telemetry":
            entry["telemetry"] = data
        elif parts[4] == "printer" and data:
            entry["printers"][parts[5]] = data.get("state")
    return {k: v for k, v in out.items() if "state" in v}


def cmd_ls(fleet: Fleet, args: argparse.Namespace) -> int:
    found = agents(fleet, args.site, args.wait)
    rows = []
    for (site, device), entry in sorted(found.items()):
        state, tele = entry["state"], entry.get("telemetry") or {}
        rows.append({
            "site": site, "device": device, "online": bool(state.get("online")),
            "reason": state.get("reason"), "version": state.get("agent_version"),
            "config_version": state.get("config_version"), "outbox_depth": tele.get("outbox_depth"),
            "manifest_version": state.get("manifest_version"), "printers": entry["printers"],
        })  # fmt: skip
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    header = f"{'SITE':8} {'DEVICE':12} {'ONLINE':7} {'VERSION':8} {'CONFIG':6} {'OUTBOX':6} {'MANIFEST':8} PRINTERS"
    print(header)
    for r in rows:
        online = "yes" if r["online"] else f"no ({r['reason'] or '?'})"
        printers = " ".join(f"{k}:{v}" for k, v in sorted(r["printers"].items())) or "-"
        outbox = "-" if r["outbox_depth"] is None else str(r["outbox_depth"])
        print(f"{r['site']:8} {r['device']:12} {online:7} {r['version'] or '-':8} {r['config_version']!s:6} "
              f"{outbox:6} {r['manifest_version']!s:8} {printers}")  # fmt: skip
    return EXIT_OK


def request(
    fleet: Fleet, site: str, device: str, name: str, cmd_args: dict[str, Any], timeout: float
) -> dict[str, Any] | None:
    reply_topic = f"fleet/replies/{uuid.uuid4().hex}"
    fleet.subscribe(reply_topic)
    request_id = uuid.uuid4().hex
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = reply_topic
    props.CorrelationData = request_id.encode()
    fleet.publish(f"dock/v1/{site}/{device}/cmd/{name}", json.dumps({"request_id": request_id, "args": cmd_args}).encode(),
                  props=props)  # fmt: skip

    def match(topic: str, payload: bytes, _p: Any) -> dict[str, Any] | None:
        data = _json(payload)
        return data if topic == reply_topic and data.get("request_id") == request_id else None

    result: dict[str, Any] | None = fleet.wait_for(match, timeout)
    return result


def cmd_cmd(fleet: Fleet, args: argparse.Namespace) -> int:
    if args.all:  # `cmd --all NAME [ARGS]`: the positionals move one place left
        target, name, raw_args = "+/*", args.target, args.name
    else:
        target, name, raw_args = args.target, args.name, args.args
    if name is None:
        print("edge-fleet: cmd needs a command NAME", file=sys.stderr)
        return EXIT_USAGE
    site, device = _target(target)
    if device is None:
        print("edge-fleet: cmd needs SITE/DEVICE, SITE/* or --all", file=sys.stderr)
        return EXIT_USAGE
    try:
        cmd_args = json.loads(raw_args) if raw_args else {}
    except ValueError as exc:
        print(f"edge-fleet: ARGS is not JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if device == "*":
        return fan_out(fleet, None if site == "+" else site, name, cmd_args, args)
    reply = request(fleet, site, device, name, cmd_args, args.timeout)
    if reply is None:
        print(f"edge-fleet: no reply from {site}/{device} within {args.timeout:g} s", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(reply) if args.json else json.dumps(reply.get("data") or reply.get("error"), indent=2))
    return EXIT_OK if reply.get("status") == "ok" else EXIT_ERROR


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
        request_id = uuid.uuid4().hex
        pending[request_id] = who
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = reply_topic
        props.CorrelationData = request_id.encode()
        body = json.dumps({"request_id": request_id, "args": cmd_args}).encode()
        infos.append(fleet.client.publish(f"dock/v1/{s}/{d}/cmd/{name}", body, qos=1, properties=props))
    deadline = started + args.timeout
    for info in infos:
        info.wait_for_publish(max(0.1, deadline - time.monotonic()))
    answered: dict[str, dict[str, Any]] = {}
    with fleet.arrived:
        while len(answered) < len(pending) and time.monotonic() < deadline:
            for topic, payload, _ in fleet.messages:
                if topic == reply_topic:
                    data = _json(payload)
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


def cmd_config_push(fleet: Fleet, args: argparse.Namespace) -> int:
    site, device = _target(args.target)
    overlay = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
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
        versions = [_json(p).get("version", 0) for t, p, _ in seen
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
                data = _json(payload)
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


def _describe(topic: str, data: dict[str, Any]) -> str:
    parts = topic.split("/")
    who = f"{parts[2]}/{parts[3]}"
    if parts[-1] == "scan":
        ret = data.get("return") or {}
        order = f" order {ret.get('order_number')}" if ret.get("order_number") else ""
        return (f"{data.get('ts', '')} {who} scan #{data.get('seq')} {data.get('scanner')} {data.get('outcome')} "
                f"{data.get('decoded', {}).get('raw', '')!r}{order}")  # fmt: skip
    if parts[-1] == "print":
        return f"{data.get('ts', '')} {who} print {data.get('job_id')} on {data.get('printer')}: {data.get('state')}"
    return f"{data.get('ts', '')} {who} alert {data.get('kind')}: {data}"


def cmd_tail(fleet: Fleet, args: argparse.Namespace) -> int:
    site, device = _target(args.target or "+")
    root = f"dock/v1/{site}/{device or '+'}"
    fleet.subscribe(f"{root}/event/scan", f"{root}/event/print", f"{root}/event/alert")
    shown = 0
    deadline = time.monotonic() + args.seconds if args.seconds else None
    try:
        while args.count == 0 or shown < args.count:
            if deadline is not None and time.monotonic() > deadline:
                break
            with fleet.arrived:
                if len(fleet.messages) <= shown:
                    fleet.arrived.wait(0.5)
                new = fleet.messages[shown:]
            for topic, payload, _ in new:
                data = _json(payload)
                print(
                    json.dumps({"topic": topic, **data}) if args.json else _describe(topic, data), flush=True
                )
                shown += 1
                if args.count and shown >= args.count:
                    break
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _read_returns(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                keys = {k: row[k] for k in ("tracking_number", "sscc") if row.get(k)}
                items = json.loads(row["items"]) if row.get("items") else []
                yield {"return_id": row["return_id"], "order_number": row.get("order_number") or None, "keys": keys,
                       "customer": {"name": row["customer_name"]} if row.get("customer_name") else None,
                       "items": items}  # fmt: skip
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    yield from data["returns"] if isinstance(data, dict) else data


def cmd_manifest_push(fleet: Fleet, args: argparse.Namespace) -> int:
    returns = list(_read_returns(Path(args.file)))
    version = args.version or int(time.time())
    chunks = max(1, -(-len(returns) // args.chunk))
    topic = f"dock/v1/{args.site}/manifest"
    for n in range(chunks):
        part = returns[n * args.chunk : (n + 1) * args.chunk]
        body = {"version": version, "base_version": args.base, "chunk": n + 1, "chunks": chunks,
                "upserts": part, "deletes": []}  # fmt: skip
        fleet.publish(topic, json.dumps(body, separators=(",", ":")).encode())
        if sys.stderr.isatty() or args.progress:
            done = (n + 1) * 30 // chunks
            print(
                f"\r[{'#' * done}{'.' * (30 - done)}] chunk {n + 1}/{chunks}",
                end="",
                file=sys.stderr,
                flush=True,
            )
    if sys.stderr.isatty() or args.progress:
        print(file=sys.stderr)
    kind = "snapshot" if args.base is None else f"delta from {args.base}"
    print(f"{args.site}: manifest version {version} ({kind}), {len(returns)} returns in {chunks} chunks")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-fleet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--host", default=os.environ.get("EDGE_FLEET_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("EDGE_FLEET_PORT", "1883")))
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("ls", help="every agent with a retained state")
    ls.add_argument("--site")
    ls.add_argument("--wait", type=float, default=1.5, help="seconds to gather retained states")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_ls)
    c = sub.add_parser("cmd", help="send a command to an agent, a site (SITE/*) or every site (--all)")
    c.add_argument("target", metavar="SITE/DEVICE|SITE/*")
    c.add_argument("name", nargs="?")
    c.add_argument("args", nargs="?", help="command arguments, a JSON object")
    c.add_argument("--all", action="store_true", help="every agent of every site: cmd --all NAME [ARGS]")
    c.add_argument("--timeout", type=float, default=10.0, help="seconds, one deadline for the whole fan-out")
    c.add_argument("--wait", type=float, default=3.0, help="longest wait for the retained states, seconds")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_cmd)
    cfg = sub.add_parser("config", help="desired configuration").add_subparsers(dest="action", required=True)
    push = cfg.add_parser("push", help="push a partial configuration file and wait for reported")
    push.add_argument("target", metavar="SITE/DEVICE|SITE")
    push.add_argument("file")
    push.add_argument("--timeout", type=float, default=15.0)
    push.add_argument("--wait", type=float, default=1.5)
    push.add_argument("--json", action="store_true")
    push.set_defaults(func=cmd_config_push)
    t = sub.add_parser("tail", help="scan, print and alert events as they happen")
    t.add_argument("target", nargs="?", metavar="SITE[/DEVICE]")
    t.add_argument("--json", action="store_true")
    t.add_argument("--count", type=int, default=0, help="stop after N events (0: until Ctrl-C)")
    t.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")
    t.set_defaults(func=cmd_tail)
    m = sub.add_parser("manifest", help="expected returns").add_subparsers(dest="action", required=True)
    mp = m.add_parser("push", help="send a CSV or JSON of returns as a chunked snapshot (or delta)")
    mp.add_argument("site")
    mp.add_argument("file")
    mp.add_argument("--version", type=int, help="manifest version (default: the time)")
    mp.add_argument("--base", type=int, help="send as a delta from this version")
    mp.add_argument("--chunk", type=int, default=3000, help="returns per message")
    mp.add_argument("--progress", action="store_true", help="progress bar even when not on a terminal")
    mp.set_defaults(func=cmd_manifest_push)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    fleet = Fleet(args)
    try:
        code: int = args.func(fleet, args)
        return code
    finally:
        fleet.close()


if __name__ == "__main__":
    sys.exit(main())
